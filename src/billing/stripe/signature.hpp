// billing/stripe/signature: Stripe's webhook signature, checked before a
// single byte of the payload is parsed.
//
// Header `Stripe-Signature: t=1700000000,v1=<hex>,v1=<hex>,v0=…`: v1 is
// HMAC-SHA256 of "<t>.<raw body>" keyed with the endpoint's signing secret
// (whsec_…). Several v1 values appear while a secret is being rolled; any one
// that matches is enough. Other schemes (v0, the test-mode scheme) are
// ignored. The timestamp must lie within `tolerance` of now, either way, so a
// captured delivery cannot be replayed later. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.hpp"
#include "common/result.hpp"

namespace clozit::billing::stripe {

inline constexpr std::chrono::seconds kDefaultSignatureTolerance{300};

/// Ok, or invalid_argument (field "Stripe-Signature") saying what is wrong, never echoing the secret.
Result<void> VerifySignature(std::string_view signing_secret, std::string_view header, std::string_view payload,
                             TimePoint now, std::chrono::seconds tolerance = kDefaultSignatureTolerance);

/// Lowercase hex HMAC-SHA256 of "<timestamp>.<payload>": what v1 carries.
std::string SignatureV1(std::string_view signing_secret, int64_t timestamp, std::string_view payload);

/// "t=<timestamp>,v1=<SignatureV1>": the header Stripe would send (tests, the fake server).
std::string SignatureHeader(std::string_view signing_secret, int64_t timestamp, std::string_view payload);

}  // namespace clozit::billing::stripe
