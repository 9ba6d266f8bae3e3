// The media-frame fast path: what it reads must be what the full JSON parser
// reads, and everything it declines goes to that parser.
#include "telephony/media/detail/media_frame.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace clozit::telephony::media::detail {
namespace {

using nlohmann::json;

constexpr std::string_view kTwilio =
    R"({"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"/w=="},"streamSid":"MZ18ad3ab5a668481ce02b83e7395059f0"})";
constexpr std::string_view kTelnyx =
    R"({"event":"media","sequence_number":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"AAEC"},"stream_id":"32de0dea-53cb-4b21-89a4-9324f2af9e43"})";

TEST(MediaFrameScan, ReadsBothCarriersMediaFrames) {
  MediaFrameView view;
  ASSERT_TRUE(ScanMediaFrame(kTwilio, view));
  EXPECT_EQ(view.track, "inbound");
  EXPECT_EQ(view.payload, "/w==");
  ASSERT_TRUE(ScanMediaFrame(kTelnyx, view));
  EXPECT_EQ(view.payload, "AAEC");
}

TEST(MediaFrameScan, AcceptsAnyMemberOrderWhitespaceAndNoTrack) {
  MediaFrameView view;
  ASSERT_TRUE(ScanMediaFrame(" {\n \"media\" : { \"payload\" : \"AAEC\" } ,\t\"event\":\"media\" }\r\n", view));
  EXPECT_EQ(view.payload, "AAEC");
  EXPECT_TRUE(view.track.empty());
}

TEST(MediaFrameScan, DeclinesOtherEventsAndShapesItDoesNotRead) {
  const std::vector<std::string> declined = {
      R"({"event":"mark","streamSid":"MZ1","mark":{"name":"a"}})",
      R"({"event":"stop","stop":{"accountSid":"AC1","callSid":"CA1"}})",
      R"({"event":"media","media":{"track":"inbound"}})",                                     // no payload
      R"({"event":"media","sequenceNumber":3,"media":{"payload":"AAEC"}})",                   // a number: full parser
      R"({"event":"media","media":{"payload":"AA\u0045C"}})",                                 // an escape: full parser
      R"({"event":"media","media":{"payload":"AAEC"},"extra":{"nested":"x"}})",               // another object
      R"({"event":"media","media":{"payload":"AAEC"},"tracks":["inbound"]})",                 // an array
      R"({"event":"media","event":"stop","media":{"payload":"AAEC"}})",                       // a repeated key
      R"({"event":"media","media":{"payload":"AAEC","payload":"AAAA"}})",                     // a repeated inner key
      R"({"event":"media","media":"AAEC"})",                                                  // media not an object
      "{\"event\":\"media\",\"streamSid\":\"MZ\xC3\xA9\",\"media\":{\"payload\":\"AAEC\"}}",  // non-ASCII
  };
  for (const auto& frame : declined) {
    MediaFrameView view;
    EXPECT_FALSE(ScanMediaFrame(frame, view)) << frame;
  }
}

TEST(MediaFrameScan, DeclinesMalformedFramesWithoutReadingPastThem) {
  const std::vector<std::string> malformed = {
      "",
      "{",
      "not json",
      R"({"event":"media","media":{"payload":"AAEC"})",                         // unterminated
      R"({"event":"media","media":{"payload":"AAEC"}}})",                       // trailing garbage
      R"({"event":"media","media":{"payload":"AAEC"}} x)",                      // trailing garbage
      R"({"event":"media","media":{"payload":"AAEC})",                          // unterminated string
      R"({"event":"media","media":{"payload":"AAEC",}})",                       // trailing comma
      R"({"event":"media",,"media":{"payload":"AAEC"}})",                       // empty member
      R"({"event" "media","media":{"payload":"AAEC"}})",                        // no colon
      R"({event:"media","media":{"payload":"AAEC"}})",                          // bare key
      std::string("{\"event\":\"media\",\"media\":{\"payload\":\"AA\nEC\"}}"),  // control byte
      std::string("{\"event\":\"media\",\"media\":{\"payload\":\"AA\0EC\"}}", 41),
  };
  for (const auto& frame : malformed) {
    MediaFrameView view;
    EXPECT_FALSE(ScanMediaFrame(frame, view)) << frame;
    // Every truncation of a good frame is declined too (the cursor never runs past the end).
  }
  for (size_t length = 0; length < kTwilio.size(); ++length) {
    MediaFrameView view;
    EXPECT_FALSE(ScanMediaFrame(kTwilio.substr(0, length), view)) << length;
  }
}

TEST(MediaFrameScan, WhatItAcceptsTheFullParserReadsTheSame) {
  for (std::string_view frame : {kTwilio, kTelnyx}) {
    MediaFrameView view;
    ASSERT_TRUE(ScanMediaFrame(frame, view));
    json parsed = json::parse(frame);
    EXPECT_EQ(parsed["event"], "media");
    EXPECT_EQ(parsed["media"]["payload"].get<std::string>(), view.payload);
    EXPECT_EQ(parsed["media"]["track"].get<std::string>(), view.track);
  }
}

TEST(MediaFrameBase64, DecodesIntoTheReusedBufferAndRefusesBadInput) {
  std::string out;
  ASSERT_TRUE(DecodeBase64Into("AAEC/w==", out));
  EXPECT_EQ(out, std::string("\x00\x01\x02\xFF", 4));
  EXPECT_FALSE(DecodeBase64Into("AAE", out));
  EXPECT_FALSE(DecodeBase64Into("AA*C", out));
  // What OpenSSL's table decoder alone would let through.
  EXPECT_FALSE(DecodeBase64Into("QU=D", out)) << "'=' before the end";
  EXPECT_FALSE(DecodeBase64Into("Q===", out)) << "three '='";
  EXPECT_FALSE(DecodeBase64Into("QUJD    ", out)) << "trailing spaces";
  EXPECT_FALSE(DecodeBase64Into("    QUJD", out)) << "leading spaces";
  EXPECT_FALSE(DecodeBase64Into("QUJDQQ\n\n", out)) << "line ends";
  EXPECT_FALSE(DecodeBase64Into("QR==", out)) << "bits left over before the padding";
  EXPECT_FALSE(DecodeBase64Into("QUJ=QUJD", out)) << "padding inside";
  EXPECT_FALSE(DecodeBase64Into("\xb4\xaa\xb6\xc2", out)) << "bytes from 0x80 up (libsodium 1.0.18 decodes these)";
  ASSERT_TRUE(DecodeBase64Into("QUI=", out));
  EXPECT_EQ(out, "AB");
  ASSERT_TRUE(DecodeBase64Into("", out));
  EXPECT_TRUE(out.empty());
}

TEST(MediaFrameWrite, WritesEachCarriersOutboundFrame) {
  const std::string mulaw("\x00\x01\x02\xFF", 4);
  std::string twilio;
  AppendMediaFrame("MZ1", mulaw, twilio);
  EXPECT_EQ(json::parse(twilio), json::parse(R"({"event":"media","streamSid":"MZ1","media":{"payload":"AAEC/w=="}})"));
  std::string telnyx;
  AppendMediaFrame("", mulaw, telnyx);
  EXPECT_EQ(telnyx, R"({"event":"media","media":{"payload":"AAEC/w=="}})");
  MediaFrameView view;
  ASSERT_TRUE(ScanMediaFrame(twilio, view));  // what we write, we can read
  EXPECT_EQ(view.payload, "AAEC/w==");
}

}  // namespace
}  // namespace clozit::telephony::media::detail
