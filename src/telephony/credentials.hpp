// telephony: sealing provider credentials at rest.
//
// A CredentialBox holds the 32-byte libsodium secretbox key (XSalsa20-Poly1305)
// that seals a provider account's secret (Twilio auth token, Telnyx API key)
// before it reaches the database; the sealed text is base64 of nonce || box.
// The key comes from `telephony.credentials_key` (base64 or hex); when none is
// configured a key file is created once beside the SQLite database (mode 0600)
// and reused on every start. Immutable after construction: thread-safe. The key
// and the secrets it opens are never logged.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace clozit::telephony {

class CredentialBox {
 public:
  static constexpr size_t kKeyBytes = 32;

  /// `text`: 32 bytes as 64 hex digits or standard base64. invalid_argument (field
  /// "telephony.credentials_key") otherwise.
  static Result<CredentialBox> FromKeyText(std::string_view text);
  /// The configured key, or the key file at `key_file` (created with a fresh random key when missing).
  static Result<CredentialBox> Load(std::string_view configured_key, const std::string& key_file, Random& random);

  CredentialBox(const CredentialBox& other) = default;
  CredentialBox& operator=(const CredentialBox& other) = default;
  ~CredentialBox();

  std::string Seal(std::string_view secret, Random& random) const;
  /// kInternal when the text was not sealed with this key (a changed key, or a corrupted row).
  Result<std::string> Open(std::string_view sealed) const;

 private:
  CredentialBox() = default;
  std::array<uint8_t, kKeyBytes> key_{};
};

/// Standard (RFC 4648 §4, padded) base64; nullopt when malformed.
std::optional<std::vector<uint8_t>> DecodeStandardBase64(std::string_view text);

/// What the API shows of a secret: its last four characters behind a mask ("••••1f3a").
std::string MaskedHint(std::string_view secret);

}  // namespace clozit::telephony
