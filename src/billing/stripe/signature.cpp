#include "billing/stripe/signature.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <vector>

#include "common/encoding.hpp"

namespace clozit::billing::stripe {
namespace {

Error BadSignature(std::string message) { return Error::InvalidArgument("Stripe-Signature", std::move(message)); }

}  // namespace

std::string SignatureV1(std::string_view signing_secret, int64_t timestamp, std::string_view payload) {
  std::string signed_payload = std::to_string(timestamp);
  signed_payload += '.';
  signed_payload += payload;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), signing_secret.data(), static_cast<int>(signing_secret.size()),
       reinterpret_cast<const unsigned char*>(signed_payload.data()), signed_payload.size(), digest, &length);
  return Hex(std::span<const uint8_t>(digest, length));
}

std::string SignatureHeader(std::string_view signing_secret, int64_t timestamp, std::string_view payload) {
  return "t=" + std::to_string(timestamp) + ",v1=" + SignatureV1(signing_secret, timestamp, payload);
}

Result<void> VerifySignature(std::string_view signing_secret, std::string_view header, std::string_view payload,
                             TimePoint now, std::chrono::seconds tolerance) {
  if (signing_secret.empty()) return Error::Make(ErrorCode::kUnavailable, "no webhook signing secret is configured");
  std::optional<int64_t> timestamp;
  std::vector<std::string_view> candidates;
  while (!header.empty()) {
    const size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "t") {
      int64_t parsed = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
      if (ec != std::errc() || end != value.data() + value.size()) return BadSignature("malformed timestamp t");
      timestamp = parsed;
    } else if (key == "v1") {
      candidates.push_back(value);
    }
  }
  if (!timestamp) return BadSignature("no timestamp t in Stripe-Signature");
  if (candidates.empty()) return BadSignature("no v1 signature in Stripe-Signature");
  const int64_t now_seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (*timestamp < now_seconds - tolerance.count() || *timestamp > now_seconds + tolerance.count()) {
    return BadSignature("signature timestamp outside the tolerance of " + std::to_string(tolerance.count()) + " s");
  }
  const std::string expected = SignatureV1(signing_secret, *timestamp, payload);
  bool matched = false;
  for (std::string_view candidate : candidates) {
    // Compare every candidate (no early exit) so timing says nothing about which one matched.
    if (candidate.size() == expected.size() && ConstantTimeEquals(candidate, expected)) matched = true;
  }
  if (!matched) return BadSignature("no v1 signature matches the payload");
  return Ok();
}

}  // namespace clozit::billing::stripe
