#include "telephony/call_event.hpp"

#include <gtest/gtest.h>

namespace clozit::telephony {
namespace {

constexpr const char* kSid = "CA0123456789abcdef0123456789abcdef";

TEST(TwilioCallback, MapsEveryStatus) {
  struct Case {
    const char* status;
    CallEventKind kind;
    CallOutcome outcome;
  };
  for (const Case& c : {Case{"queued", CallEventKind::kInitiated, CallOutcome::kNone},
                        Case{"initiated", CallEventKind::kInitiated, CallOutcome::kNone},
                        Case{"ringing", CallEventKind::kRinging, CallOutcome::kNone},
                        Case{"in-progress", CallEventKind::kAnswered, CallOutcome::kNone},
                        Case{"completed", CallEventKind::kEnded, CallOutcome::kCompleted},
                        Case{"busy", CallEventKind::kEnded, CallOutcome::kBusy},
                        Case{"no-answer", CallEventKind::kEnded, CallOutcome::kNoAnswer},
                        Case{"failed", CallEventKind::kEnded, CallOutcome::kFailed},
                        Case{"canceled", CallEventKind::kEnded, CallOutcome::kCanceled}}) {
    auto event = ParseTwilioStatusCallback({{"CallSid", kSid}, {"CallStatus", c.status}, {"SequenceNumber", "2"}});
    ASSERT_TRUE(event.ok()) << c.status;
    EXPECT_EQ(event->kind, c.kind) << c.status;
    EXPECT_EQ(event->outcome, c.outcome) << c.status;
    EXPECT_EQ(event->call_id, kSid);
    EXPECT_EQ(event->sequence, 2);
  }
}

TEST(TwilioCallback, DedupeKeyDistinguishesStatusAndSequence) {
  auto a = ParseTwilioStatusCallback({{"CallSid", kSid}, {"CallStatus", "ringing"}, {"SequenceNumber", "1"}});
  auto b = ParseTwilioStatusCallback({{"CallSid", kSid}, {"CallStatus", "ringing"}, {"SequenceNumber", "1"}});
  auto c = ParseTwilioStatusCallback(
      {{"CallSid", kSid}, {"CallStatus", "completed"}, {"SequenceNumber", "3"}, {"CallDuration", "42"}});
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->event_id, b->event_id);
  EXPECT_NE(a->event_id, c->event_id);
  EXPECT_EQ(c->duration_seconds, 42);
}

TEST(TwilioCallback, AnsweringMachineDetection) {
  auto amd = ParseTwilioStatusCallback({{"CallSid", kSid}, {"AnsweredBy", "machine_end_beep"}});
  ASSERT_TRUE(amd.ok());
  EXPECT_EQ(amd->kind, CallEventKind::kMachineDetection);
  EXPECT_EQ(amd->answered_by, AnsweredBy::kMachine);
  auto human = ParseTwilioStatusCallback({{"CallSid", kSid}, {"CallStatus", "in-progress"}, {"AnsweredBy", "human"}});
  ASSERT_TRUE(human.ok());
  EXPECT_EQ(human->answered_by, AnsweredBy::kHuman);
}

TEST(TwilioCallback, RefusesMalformedInput) {
  EXPECT_EQ(ParseTwilioStatusCallback({{"CallStatus", "ringing"}}).error().field, "CallSid");
  EXPECT_EQ(ParseTwilioStatusCallback({{"CallSid", "CA12"}, {"CallStatus", "ringing"}}).error().field, "CallSid");
  EXPECT_EQ(ParseTwilioStatusCallback({{"CallSid", kSid}, {"CallStatus", "exploded"}}).error().field, "CallStatus");
}

std::string TelnyxBody(const std::string& type, const std::string& payload_extra = "") {
  return R"({"data":{"record_type":"event","event_type":")" + type +
         R"(","id":"0ccc7b54-4df3-4bca-a65a-3da1ecc777f0","occurred_at":"2026-11-26T13:00:05.123456Z",)"
         R"("payload":{"call_control_id":"v3:abc","client_state":"aGk=")" +
         payload_extra + R"(}},"meta":{"attempt":1}})";
}

TEST(TelnyxWebhook, MapsTheOutboundSequence) {
  auto initiated = ParseTelnyxWebhook(TelnyxBody("call.initiated"));
  ASSERT_TRUE(initiated.ok()) << initiated.error().message;
  EXPECT_EQ(initiated->kind, CallEventKind::kInitiated);
  EXPECT_EQ(initiated->event_id, "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0");
  EXPECT_EQ(initiated->call_id, "v3:abc");
  EXPECT_EQ(initiated->client_state, "aGk=");
  ASSERT_TRUE(initiated->occurred_at.has_value());
  EXPECT_EQ(FormatRfc3339(*initiated->occurred_at), "2026-11-26T13:00:05.123Z");

  EXPECT_EQ(ParseTelnyxWebhook(TelnyxBody("call.answered"))->kind, CallEventKind::kAnswered);
  auto amd = ParseTelnyxWebhook(TelnyxBody("call.machine.detection.ended", R"(,"result":"machine")"));
  ASSERT_TRUE(amd.ok());
  EXPECT_EQ(amd->kind, CallEventKind::kMachineDetection);
  EXPECT_EQ(amd->answered_by, AnsweredBy::kMachine);
}

TEST(TelnyxWebhook, MapsHangupCausesToOutcomes) {
  struct Case {
    const char* cause;
    CallOutcome outcome;
  };
  for (const Case& c : {Case{"normal_clearing", CallOutcome::kCompleted}, Case{"user_busy", CallOutcome::kBusy},
                        Case{"timeout", CallOutcome::kNoAnswer}, Case{"no_answer", CallOutcome::kNoAnswer},
                        Case{"originator_cancel", CallOutcome::kCanceled}, Case{"call_rejected", CallOutcome::kFailed},
                        Case{"not_found", CallOutcome::kFailed}, Case{"unspecified", CallOutcome::kFailed}}) {
    auto event = ParseTelnyxWebhook(
        TelnyxBody("call.hangup", std::string(R"(,"hangup_cause":")") + c.cause +
                                      R"(","start_time":"2026-11-26T13:00:00Z","end_time":"2026-11-26T13:01:30Z")"));
    ASSERT_TRUE(event.ok()) << c.cause;
    EXPECT_EQ(event->kind, CallEventKind::kEnded);
    EXPECT_EQ(event->outcome, c.outcome) << c.cause;
    EXPECT_EQ(event->duration_seconds, 90);
  }
}

TEST(TelnyxWebhook, RefusesMalformedInput) {
  EXPECT_FALSE(ParseTelnyxWebhook("not json").ok());
  EXPECT_FALSE(ParseTelnyxWebhook("[]").ok());
  EXPECT_EQ(ParseTelnyxWebhook(R"({"data":{}})").error().field, "data.payload");
  EXPECT_EQ(ParseTelnyxWebhook(R"({"data":{"payload":{"call_control_id":"v3:x"}}})").error().field, "data.id");
  EXPECT_EQ(ParseTelnyxWebhook(TelnyxBody("call.exploded")).error().field, "data.event_type");
}

TEST(TelnyxWebhook, ReadsTimestampsWithOffsetsAndRefusesBadOnes) {
  auto hangup =
      ParseTelnyxWebhook(R"({"data":{"event_type":"call.hangup","id":"e1","occurred_at":"2026-11-26T12:00:07.5Z",)"
                         R"("payload":{"call_control_id":"v3:x","hangup_cause":"normal_clearing",)"
                         R"("start_time":"2026-11-26T13:00:00+01:00","end_time":"2026-11-26T12:00:07Z"}}})");
  ASSERT_TRUE(hangup.ok()) << hangup.error().message;
  EXPECT_EQ(hangup->duration_seconds, 7);
  ASSERT_TRUE(hangup->occurred_at.has_value());
  EXPECT_EQ(FormatRfc3339(*hangup->occurred_at), "2026-11-26T12:00:07.500Z");
  auto bad =
      ParseTelnyxWebhook(R"({"data":{"event_type":"call.answered","id":"e2","occurred_at":"2026-13-40T25:00:00Z",)"
                         R"("payload":{"call_control_id":"v3:x"}}})");
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->occurred_at.has_value());
}

}  // namespace
}  // namespace clozit::telephony
