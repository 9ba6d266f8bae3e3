// Byte encodings and digests shared by every module: base64url, hex, SHA-256, UTF-8 validation.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace clozit {

std::string Base64Url(std::span<const uint8_t> bytes);  // unpadded
std::optional<std::vector<uint8_t>> DecodeBase64Url(std::string_view text);
std::string Hex(std::span<const uint8_t> bytes);
/// SHA-256 of `data` as lowercase hex: how tokens and keys are stored (never the secret itself).
std::string Sha256Hex(std::string_view data);
/// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points above U+10FFFF).
bool IsValidUtf8(std::string_view text);
/// Constant-time equality for secrets of equal length.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace clozit
