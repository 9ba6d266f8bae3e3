// The carrier-emulator binary, black-box: started with its CLI flags and the
// example scenario, driven by the Twilio adapter, faults switched on over
// /_emulator/faults (a 500, a lost answer, an endpoint down), its webhooks
// verified by the platform-side receiver, and calls' state read back.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/client.hpp"
#include "telephony/emulator_harness.hpp"
#include "telephony/telnyx/telnyx_provider.hpp"
#include "telephony/twilio/twilio_provider.hpp"

namespace clozit::telephony {
namespace {

constexpr char kToken[] = "binary-test-token";
constexpr char kSeedHex[] = "0101010101010101010101010101010101010101010101010101010101010101";

/// The emulator process; SIGTERM and reaped on destruction.
class EmulatorProcess {
 public:
  explicit EmulatorProcess(const std::string& webhook_base) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execl(CARRIER_EMULATOR_BINARY, CARRIER_EMULATOR_BINARY, "--port", "0", "--webhook-base", webhook_base.c_str(),
            "--twilio-auth-token", kToken, "--telnyx-private-key-seed-hex", kSeedHex, "--scenario",
            CARRIER_EMULATOR_SCENARIO, "--time-scale", "0.01", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    FILE* stream = fdopen(out[0], "r");
    char line[512] = {};
    if (stream && fgets(line, sizeof line, stream)) {
      auto json = nlohmann::json::parse(line, nullptr, false);
      if (json.is_object()) {
        port_ = json.value("port", 0);
        public_key_ = json.value("telnyx_public_key", "");
      }
    }
    if (stream) fclose(stream);
  }
  ~EmulatorProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  int port() const { return port_; }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& public_key() const { return public_key_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string public_key_;
};

TEST(CarrierEmulatorBinary, ServesTwilioWithScenarioFaultsAndSignedWebhooks) {
  WebhookReceiver receiver(kToken, "");
  EmulatorProcess emulator(receiver.url(""));
  ASSERT_GT(emulator.port(), 0);
  EXPECT_FALSE(emulator.public_key().empty());

  twilio::TwilioProvider twilio({"AC0123456789abcdef0123456789abcdef", kToken, emulator.origin()});
  auto faults = http::Client::Create(emulator.origin());
  ASSERT_TRUE(faults.ok());
  auto set = (*faults)->Send("POST", "/_emulator/faults", {}, R"({"fail_next":[1]})");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->status, 204);

  PlaceCallRequest request;
  request.from = "+14155550100";
  request.to = "+15550001003";  // busy in scenarios/example.json
  request.status_callback_url = receiver.url("/twilio/status");
  auto failed = twilio.PlaceCall(request);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);

  auto call = twilio.PlaceCall(request);
  ASSERT_TRUE(call.ok()) << call.error().message;
  auto events = receiver.WaitForEnd(call->call_id);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, CallEventKind::kInitiated);
  EXPECT_EQ(events[1].outcome, CallOutcome::kBusy);
  EXPECT_EQ(receiver.rejected(), 0);

  // Telnyx: webhooks signed with the key derived from --telnyx-private-key-seed-hex, printed at start-up.
  WebhookReceiver telnyx_receiver("", emulator.public_key());
  SystemClock clock;
  SeededRandom random(5);
  telnyx::TelnyxProvider telnyx(clock, random, {"KEYany", "conn-1", emulator.public_key(), emulator.origin()});
  PlaceCallRequest telnyx_request = request;
  telnyx_request.to = "+15550002001";  // answers, hangs up after 5 s (50 ms here)
  telnyx_request.status_callback_url = telnyx_receiver.url("/telnyx");
  auto telnyx_call = telnyx.PlaceCall(telnyx_request);
  ASSERT_TRUE(telnyx_call.ok()) << telnyx_call.error().message;
  auto telnyx_events = telnyx_receiver.WaitForEnd(telnyx_call->call_id);
  ASSERT_EQ(telnyx_events.size(), 3u);
  EXPECT_EQ(telnyx_events[1].kind, CallEventKind::kAnswered);
  EXPECT_EQ(telnyx_events[2].outcome, CallOutcome::kCompleted);
  EXPECT_EQ(telnyx_receiver.rejected(), 0);

  request.to = "+15550001005";  // invalid
  auto invalid = twilio.PlaceCall(request);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().field, "to");
}

TEST(CarrierEmulatorBinary, LostAnswersAndDownEndpointsAreOneShotCountedFaults) {
  WebhookReceiver receiver(kToken, "");
  EmulatorProcess emulator(receiver.url(""));
  ASSERT_GT(emulator.port(), 0);
  twilio::TwilioProvider twilio({"AC0123456789abcdef0123456789abcdef", kToken, emulator.origin()});
  auto admin = http::Client::Create(emulator.origin());
  ASSERT_TRUE(admin.ok());
  auto set = (*admin)->Send("POST", "/_emulator/faults", {}, R"({"lose_next":[1],"fail_webhook_next":[1]})");
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->status, 204);

  PlaceCallRequest request;
  request.from = "+14155550100";
  request.to = "+15550001003";  // busy
  request.status_callback_url = receiver.url("/twilio/status");
  auto lost = twilio.PlaceCall(request);
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable);
  // ... and yet the carrier dials it; its first webhook finds the endpoint down and is lost (no retry).
  auto calls = (*admin)->Send("GET", "/_emulator/calls", {}, "");
  ASSERT_TRUE(calls.ok());
  auto listed = nlohmann::json::parse(calls->body);
  ASSERT_EQ(listed.size(), 1u);
  const std::string sid = listed[0].value("id", "");
  auto events = receiver.WaitForEnd(sid);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].outcome, CallOutcome::kBusy);

  auto state = twilio.GetCall(sid);
  ASSERT_TRUE(state.ok()) << state.error().message;
  EXPECT_FALSE(state->live);
  EXPECT_EQ(state->outcome, CallOutcome::kBusy);
  EXPECT_EQ(twilio.GetCall("CA" + std::string(32, '0')).error().code, ErrorCode::kNotFound);

  auto health = (*admin)->Send("GET", "/_emulator/health", {}, "");
  ASSERT_TRUE(health.ok());
  auto counts = nlohmann::json::parse(health->body);
  EXPECT_EQ(counts.value("faults_triggered", -1), 2);
  EXPECT_TRUE(twilio.PlaceCall(request).ok());  // one-shot: the next request is answered
}

TEST(CarrierEmulatorBinary, TelnyxReportsWhetherACallIsAlive) {
  WebhookReceiver receiver("", "");
  EmulatorProcess emulator(receiver.url(""));
  ASSERT_GT(emulator.port(), 0);
  WebhookReceiver telnyx_receiver("", emulator.public_key());
  SystemClock clock;
  SeededRandom random(9);
  telnyx::TelnyxProvider telnyx(clock, random, {"KEYany", "conn-1", emulator.public_key(), emulator.origin()});
  PlaceCallRequest request;
  request.from = "+14155550100";
  request.to = "+15550001004";  // no answer: rings for the 600 s timeout (6 s here) unless hung up
  request.ring_timeout = std::chrono::seconds(600);
  request.status_callback_url = telnyx_receiver.url("/telnyx");
  auto call = telnyx.PlaceCall(request);
  ASSERT_TRUE(call.ok()) << call.error().message;
  auto ringing = telnyx.GetCall(call->call_id);
  ASSERT_TRUE(ringing.ok()) << ringing.error().message;
  EXPECT_TRUE(ringing->live);
  ASSERT_TRUE(telnyx.Hangup(call->call_id).ok());
  telnyx_receiver.WaitForEnd(call->call_id);
  auto ended = telnyx.GetCall(call->call_id);
  ASSERT_TRUE(ended.ok()) << ended.error().message;
  EXPECT_FALSE(ended->live);
  EXPECT_EQ(ended->outcome, CallOutcome::kNone);  // Telnyx does not say how
}

}  // namespace
}  // namespace clozit::telephony
