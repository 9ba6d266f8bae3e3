// libFuzzer target for the Stripe-Signature check (untrusted webhook headers
// and bodies, checked before anything else reads them).
//
// The input is "<header>\n<body>". Besides memory errors and undefined
// behaviour it checks the promises: a refusal is invalid_argument naming
// Stripe-Signature and never quoting the secret; a forged header only passes
// if it carries a v1 value; and the signature made for the body with
// the fixed timestamp always verifies, alone or among other v1 values.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "billing/stripe/signature.hpp"

namespace {

constexpr std::string_view kSecret = "whsec_fuzz_secret";
constexpr int64_t kNow = 1'790'000'000;

void Check(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz_stripe_signature: check failed: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace clozit;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view header = input.substr(0, newline);
  const std::string_view body = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  const TimePoint now{std::chrono::seconds(kNow)};

  auto result = billing::stripe::VerifySignature(kSecret, header, body, now);
  if (!result.ok()) {
    Check(result.error().code == ErrorCode::kInvalidArgument, "refusals are invalid_argument");
    Check(result.error().field == "Stripe-Signature", "refusals name the header");
    Check(result.error().message.find(kSecret) == std::string::npos, "the secret is never quoted");
  } else {
    Check(header.find("v1=") != std::string_view::npos, "an accepted header carries a v1 signature");
  }
  const std::string genuine = billing::stripe::SignatureHeader(kSecret, kNow, body);
  Check(billing::stripe::VerifySignature(kSecret, genuine, body, now).ok(), "the genuine signature verifies");
  Check(billing::stripe::VerifySignature(
            kSecret, std::string(header) + "," + genuine.substr(genuine.find(',') + 1) + ",t=" + std::to_string(kNow),
            body, now)
                .ok() ||
            header.find("t=") != std::string_view::npos,
        "a genuine v1 among fuzzed items verifies");
  return 0;
}
