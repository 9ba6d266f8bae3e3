#include "telephony/media_stream.hpp"

#include <gtest/gtest.h>

namespace clozit::telephony {
namespace {

TEST(MediaStreamStart, ParsesTwilioStart) {
  EXPECT_TRUE(IsMediaStreamConnected(R"({"event":"connected","protocol":"Call","version":"1.0.0"})"));
  auto start = ParseMediaStreamStart(ProviderKind::kTwilio, R"({"event":"start","sequenceNumber":"1",
    "streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0",
    "start":{"accountSid":"AC123","streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0",
             "callSid":"CA0123456789abcdef0123456789abcdef","tracks":["inbound"],
             "customParameters":{"campaign":"7"},
             "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}})");
  ASSERT_TRUE(start.ok()) << start.error().message;
  EXPECT_EQ(start->stream_id, "MZ18ad3ab5a668481ce02b83e7395059f0");
  EXPECT_EQ(start->call_id, "CA0123456789abcdef0123456789abcdef");
  EXPECT_EQ(start->encoding, "audio/x-mulaw");
  EXPECT_EQ(start->sample_rate, 8000);
  EXPECT_EQ(start->custom_parameters.at("campaign"), "7");
}

TEST(MediaStreamStart, ParsesTelnyxStart) {
  auto start = ParseMediaStreamStart(ProviderKind::kTelnyx, R"({"event":"start","sequence_number":"1",
    "stream_id":"32de0dea-53cb-4b21-89a4-9b0f9ec2cbe5",
    "start":{"call_control_id":"v3:abc","call_session_id":"s","from":"+1","to":"+2","client_state":"YQ==",
             "custom_parameters":{},"media_format":{"encoding":"PCMU","sample_rate":8000,"channels":1}}})");
  ASSERT_TRUE(start.ok()) << start.error().message;
  EXPECT_EQ(start->stream_id, "32de0dea-53cb-4b21-89a4-9b0f9ec2cbe5");
  EXPECT_EQ(start->call_id, "v3:abc");
  EXPECT_EQ(start->encoding, "PCMU");
  EXPECT_EQ(start->client_state, "YQ==");
}

TEST(MediaStreamStart, RefusesOtherFramesAndJunk) {
  EXPECT_FALSE(ParseMediaStreamStart(ProviderKind::kTwilio, R"({"event":"media"})").ok());
  EXPECT_FALSE(ParseMediaStreamStart(ProviderKind::kTwilio, "not json").ok());
  EXPECT_FALSE(ParseMediaStreamStart(ProviderKind::kTelnyx, R"({"event":"start","start":{}})").ok());
  EXPECT_FALSE(IsMediaStreamConnected("[]"));
}

}  // namespace
}  // namespace clozit::telephony
