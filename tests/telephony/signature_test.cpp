#include <sodium.h>

#include <gtest/gtest.h>

#include "common/encoding.hpp"
#include "telephony/telnyx/signature.hpp"
#include "telephony/twilio/signature.hpp"

namespace clozit::telephony {
namespace {

// Vectors from the official Twilio SDK's tests (auth token 12345), via providers.md.
const twilio::FormParams kTwilioParams = {{"CallSid", "CA1234567890ABCDE"},
                                          {"Caller", "+14158675309"},
                                          {"Digits", "1234"},
                                          {"From", "+14158675309"},
                                          {"To", "+18005551212"}};
constexpr std::string_view kUrl = "https://mycompany.com/myapp.php?foo=1&bar=2";
constexpr std::string_view kUrlWithPort = "https://mycompany.com:443/myapp.php?foo=1&bar=2";

TEST(TwilioSignature, MatchesTheSdkVectors) {
  EXPECT_EQ(twilio::ComputeSignature("12345", kUrl, kTwilioParams), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  EXPECT_EQ(twilio::ComputeSignature("12345", kUrlWithPort, kTwilioParams), "kvajT1Ptam85bY51eRf/AJRuM3w=");
}

TEST(TwilioSignature, AcceptsBothPortForms) {
  EXPECT_TRUE(twilio::VerifyRequest("12345", kUrl, kTwilioParams, "", "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  EXPECT_TRUE(twilio::VerifyRequest("12345", kUrlWithPort, kTwilioParams, "", "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  EXPECT_TRUE(twilio::VerifyRequest("12345", kUrl, kTwilioParams, "", "kvajT1Ptam85bY51eRf/AJRuM3w="));
}

TEST(TwilioSignature, RefusesTamperingWrongTokenAndMissingHeader) {
  auto changed = kTwilioParams;
  changed.find("Digits")->second = "1235";
  EXPECT_FALSE(twilio::VerifyRequest("12345", kUrl, changed, "", "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  EXPECT_FALSE(twilio::VerifyRequest("12346", kUrl, kTwilioParams, "", "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  EXPECT_FALSE(twilio::VerifyRequest("12345", kUrl, kTwilioParams, "", ""));
  EXPECT_FALSE(twilio::VerifyRequest("12345", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", kTwilioParams, "",
                                     "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
  EXPECT_FALSE(twilio::VerifyRequest("12345", "http://mycompany.com/myapp.php?foo=1&bar=2", kTwilioParams, "",
                                     "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
}

TEST(TwilioSignature, JsonBodiesAreSignedThroughBodySha256) {
  const std::string body = R"({"property": "value", "boolean": true})";
  const std::string hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
  EXPECT_EQ(Sha256Hex(body), hash);
  const std::string url = std::string(kUrl) + "&bodySHA256=" + hash;
  EXPECT_EQ(twilio::ComputeSignature("12345", url, {}), "a9nBmqA0ju/hNViExpshrM61xv4=");
  EXPECT_TRUE(twilio::VerifyRequest("12345", url, {}, body, "a9nBmqA0ju/hNViExpshrM61xv4="));
  std::string tampered = body;
  tampered[3] = 'P';
  EXPECT_FALSE(twilio::VerifyRequest("12345", url, {}, tampered, "a9nBmqA0ju/hNViExpshrM61xv4="));
}

TEST(TwilioSignature, RepeatedParametersSignEachValueSorted) {
  twilio::FormParams params = {{"StatusCallbackEvent", "ringing"}, {"StatusCallbackEvent", "initiated"}};
  twilio::FormParams reordered = {{"StatusCallbackEvent", "initiated"}, {"StatusCallbackEvent", "ringing"}};
  EXPECT_EQ(twilio::ComputeSignature("t", "https://x.test/cb", params),
            twilio::ComputeSignature("t", "https://x.test/cb", reordered));
}

// RFC 8032 §7.1 TEST 1 key, via providers.md.
constexpr std::string_view kTelnyxKey = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
constexpr std::string_view kTelnyxBody =
    R"({"data":{"event_type":"call.answered","payload":{"call_control_id":"v3:test"}}})";
constexpr std::string_view kTelnyxSignature =
    "0PWVo189R58m/SmUi7G1Ppc6JGQ4hlaUtImK+xGxrh93j9DFB8uDG1vMA6WDGtxDtsN2gFbn7KjUPN5JIYSEBw==";

TimePoint At(int64_t seconds) { return TimePoint(std::chrono::seconds(seconds)); }

TEST(TelnyxSignature, MatchesTheRfc8032Vector) {
  ASSERT_EQ(kTelnyxBody.size(), 79u);
  EXPECT_TRUE(telnyx::VerifyWebhook(kTelnyxKey, "1700000000", kTelnyxBody, kTelnyxSignature, At(1'700'000'000)));
  EXPECT_TRUE(telnyx::VerifyWebhook(kTelnyxKey, "1700000000", kTelnyxBody, kTelnyxSignature, At(1'700'000'300)));
}

TEST(TelnyxSignature, RefusesChangedBodyStaleTimestampAndJunk) {
  std::string changed(kTelnyxBody);
  changed[10] = 'X';
  EXPECT_FALSE(telnyx::VerifyWebhook(kTelnyxKey, "1700000000", changed, kTelnyxSignature, At(1'700'000'000)));
  EXPECT_FALSE(telnyx::VerifyWebhook(kTelnyxKey, "1700000000", kTelnyxBody, kTelnyxSignature, At(1'700'000'301)));
  EXPECT_FALSE(telnyx::VerifyWebhook(kTelnyxKey, "1700000000", kTelnyxBody, kTelnyxSignature, At(1'699'999'699)));
  EXPECT_FALSE(telnyx::VerifyWebhook(kTelnyxKey, "1700000001", kTelnyxBody, kTelnyxSignature, At(1'700'000'000)));
  EXPECT_FALSE(telnyx::VerifyWebhook(kTelnyxKey, "", kTelnyxBody, kTelnyxSignature, At(1'700'000'000)));
  EXPECT_FALSE(telnyx::VerifyWebhook(kTelnyxKey, "17e8", kTelnyxBody, kTelnyxSignature, At(1'700'000'000)));
  EXPECT_FALSE(telnyx::VerifyWebhook(kTelnyxKey, "1700000000", kTelnyxBody, "", At(1'700'000'000)));
  EXPECT_FALSE(telnyx::VerifyWebhook("not base64!", "1700000000", kTelnyxBody, kTelnyxSignature, At(1'700'000'000)));
  EXPECT_FALSE(telnyx::VerifyWebhook(kTelnyxKey, "1700000000", kTelnyxBody, "AAAA", At(1'700'000'000)));
}

TEST(TelnyxSignature, SignaturesWeMakeVerify) {
  ASSERT_GE(sodium_init(), 0);
  unsigned char public_key[crypto_sign_PUBLICKEYBYTES];
  unsigned char secret_key[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(public_key, secret_key);
  std::string message = "1800000000|{\"a\":1}";
  unsigned char signature[crypto_sign_BYTES];
  crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                       secret_key);
  auto b64 = [](const unsigned char* data, size_t size) {
    std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
    out.resize(out.find('\0'));
    return out;
  };
  EXPECT_TRUE(telnyx::VerifyWebhook(b64(public_key, sizeof public_key), "1800000000", "{\"a\":1}",
                                    b64(signature, sizeof signature), At(1'800'000'000)));
}

}  // namespace
}  // namespace clozit::telephony
