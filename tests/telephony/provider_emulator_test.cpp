// Adapter ↔ carrier-emulator integration: the Twilio and Telnyx adapters place
// calls at the emulator (in-process, on a loopback port); a small webhook
// receiver verifies every delivery with telephony/*/signature.hpp before
// parsing it into CallEvents, and the tests assert the event sequences of
// every callee persona, fault injection, error mapping and number round trips.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "emulator.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "telephony/emulator_harness.hpp"
#include "telephony/telnyx/signature.hpp"
#include "telephony/telnyx/telnyx_provider.hpp"
#include "telephony/twilio/signature.hpp"
#include "telephony/twilio/twilio_provider.hpp"

namespace clozit::telephony {
namespace {

using namespace std::chrono_literals;

constexpr char kAccountSid[] = "AC0123456789abcdef0123456789abcdef";
constexpr char kAuthToken[] = "test-auth-token";
constexpr char kApiKey[] = "KEYtest";
constexpr char kCaller[] = "+14155550100";
constexpr char kAnswers[] = "+15550001001";
constexpr char kMachine[] = "+15550001002";
constexpr char kBusy[] = "+15550001003";
constexpr char kNoAnswer[] = "+15550001004";
constexpr char kInvalid[] = "+15550001005";
constexpr char kRejects[] = "+15550001006";
constexpr char kTalksLong[] = "+15550001007";

constexpr char kScenario[] = R"({
  "default": {"persona": "answer", "ring_seconds": 1, "talk_seconds": 2},
  "rules": [
    {"match": "+15550001001", "persona": "answer", "ring_seconds": 1, "hangup_after_seconds": 2},
    {"match": "+15550001002", "persona": "machine", "ring_seconds": 1, "talk_seconds": 3},
    {"match": "+15550001003", "persona": "busy"},
    {"match": "+15550001004", "persona": "no_answer"},
    {"match": "+15550001005", "persona": "invalid"},
    {"match": "+15550001006", "persona": "reject", "ring_seconds": 1},
    {"match": "+1555000100*", "persona": "answer", "ring_seconds": 1, "talk_seconds": 100}
  ]})";

std::vector<CallEventKind> Kinds(const std::vector<CallEvent>& events) {
  std::vector<CallEventKind> kinds;
  for (const auto& event : events) kinds.push_back(event.kind);
  return kinds;
}

std::vector<CallEvent> Unique(const std::vector<CallEvent>& events) {
  std::set<std::string> seen;
  std::vector<CallEvent> out;
  for (const auto& event : events)
    if (seen.insert(event.event_id).second) out.push_back(event);
  return out;
}

struct Setup {
  double time_scale = 0.02;
  int telnyx_calls_per_second = 50;
  int max_retries = 0;
  int webhook_senders = 1;
  std::function<void(std::chrono::milliseconds)> sleep = [](std::chrono::milliseconds) {};
};

class Carrier {
 public:
  explicit Carrier(Setup setup = {}) {
    emulator::EmulatorOptions options;
    options.twilio_auth_token = kAuthToken;
    options.telnyx_api_key = kApiKey;
    options.time_scale = setup.time_scale;
    options.telnyx_calls_per_second = setup.telnyx_calls_per_second;
    options.webhook_senders = setup.webhook_senders;
    auto scenario = emulator::Scenario::FromJson(kScenario);
    EXPECT_TRUE(scenario.ok());
    auto created = emulator::Emulator::Create(options, scenario.value(), clock_);
    EXPECT_TRUE(created.ok());
    emulator_ = std::move(created).value();
    auto* emulator = emulator_.get();
    server_ = std::make_unique<RunningServer>([emulator](http::Request& request) { return emulator->Handle(request); });
    receiver_ = std::make_unique<WebhookReceiver>(kAuthToken, emulator_->telnyx_public_key_base64());

    detail::RetryPolicy retry{setup.max_retries, 5s, setup.sleep};
    twilio_ = std::make_unique<twilio::TwilioProvider>(
        twilio::TwilioSettings{kAccountSid, kAuthToken, server_->origin(), {}, retry});
    telnyx_ = std::make_unique<telnyx::TelnyxProvider>(
        clock_, random_,
        telnyx::TelnyxSettings{kApiKey, "conn-1", emulator_->telnyx_public_key_base64(), server_->origin(), {}, retry});
  }
  ~Carrier() {
    twilio_.reset();
    telnyx_.reset();
    receiver_.reset();
    server_.reset();
  }

  PlaceCallRequest Call(Provider& provider, const std::string& to, bool amd = false) const {
    PlaceCallRequest request;
    request.from = kCaller;
    request.to = to;
    request.machine_detection = amd;
    request.ring_timeout = 10s;
    request.status_callback_url =
        receiver_->url(provider.kind() == ProviderKind::kTwilio ? "/twilio/status" : "/telnyx");
    request.media_stream_url = "wss://platform.example/media";
    request.client_state = "campaign-7";
    return request;
  }

  nlohmann::json Recorded(const std::string& what) {
    auto client = http::Client::Create(server_->origin());
    EXPECT_TRUE(client.ok());
    auto response = (*client)->Send("GET", "/_emulator/" + what);
    EXPECT_TRUE(response.ok());
    return nlohmann::json::parse(response->body);
  }

  /// FindNumber answers `held` for its number and nothing for `not_held`, asking the carrier for that number
  /// alone (a full list is one page only, and must not decide whether a number is held).
  void ExpectFindsOnly(Provider& provider, const OwnedNumber& held, const std::string& not_held) {
    auto found = provider.FindNumber(held.phone_number);
    ASSERT_TRUE(found.ok()) << found.error().message;
    ASSERT_TRUE(found->has_value());
    EXPECT_EQ((*found)->id, held.id);
    auto missing = provider.FindNumber(not_held);
    ASSERT_TRUE(missing.ok()) << missing.error().message;
    EXPECT_FALSE(missing->has_value());
    const std::string target = Recorded("requests").back().value("target", "");
    EXPECT_NE(target.find("%2B" + not_held.substr(1)), std::string::npos) << target;
  }

  SystemClock clock_;
  SeededRandom random_{42};
  std::unique_ptr<emulator::Emulator> emulator_;
  std::unique_ptr<RunningServer> server_;
  std::unique_ptr<WebhookReceiver> receiver_;
  std::unique_ptr<twilio::TwilioProvider> twilio_;
  std::unique_ptr<telnyx::TelnyxProvider> telnyx_;
};

using K = CallEventKind;

// ---------------------------------------------------------------- Twilio

TEST(TwilioEmulator, AnsweredCallSendsInitiatedRingingAnsweredCompleted) {
  Carrier carrier;
  auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kAnswers));
  ASSERT_TRUE(call.ok()) << call.error().message;
  EXPECT_TRUE(call->call_id.starts_with("CA"));
  EXPECT_EQ(call->call_id.size(), 34u);
  EXPECT_EQ(call->status, "queued");
  auto events = carrier.receiver_->WaitForEnd(call->call_id);
  EXPECT_EQ(Kinds(events), (std::vector<K>{K::kInitiated, K::kRinging, K::kAnswered, K::kEnded}));
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events.back().outcome, CallOutcome::kCompleted);
  EXPECT_EQ(events.back().duration_seconds, 2);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].sequence, static_cast<int64_t>(i));
  EXPECT_EQ(carrier.receiver_->rejected(), 0);

  // What the adapter sent: PascalCase form, repeated StatusCallbackEvent, TwiML with the media stream.
  auto calls = carrier.Recorded("calls");
  ASSERT_EQ(calls.size(), 1u);
  const auto& sent = calls[0]["request"];
  EXPECT_EQ(sent["To"], kAnswers);
  EXPECT_EQ(sent["From"], kCaller);
  EXPECT_EQ(sent["StatusCallbackEvent"], nlohmann::json({"initiated", "ringing", "answered", "completed"}));
  EXPECT_EQ(sent["Twiml"], "<Response><Connect><Stream url=\"wss://platform.example/media\"/></Connect></Response>");
  EXPECT_EQ(sent["Timeout"], "10");

  // What it delivered, and that the receiver accepted every delivery.
  ASSERT_TRUE(carrier.emulator_->WaitIdle(5s));
  auto delivered = carrier.Recorded("events");
  ASSERT_EQ(delivered.size(), 4u);
  for (const auto& event : delivered) EXPECT_EQ(event["status"], 200) << event.dump();
  EXPECT_EQ(delivered[2]["event"], "in-progress");
}

TEST(TwilioEmulator, ConcurrentSendersKeepEachCallsWebhooksInOrder) {
  Carrier carrier({.webhook_senders = 4});
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) {
    auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kAnswers));
    ASSERT_TRUE(call.ok()) << call.error().message;
    ids.push_back(call->call_id);
  }
  for (const auto& id : ids) {
    auto events = carrier.receiver_->WaitForEnd(id);
    EXPECT_EQ(Kinds(events), (std::vector<K>{K::kInitiated, K::kRinging, K::kAnswered, K::kEnded})) << id;
    for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i].sequence, static_cast<int64_t>(i)) << id;
  }
  ASSERT_TRUE(carrier.emulator_->WaitIdle(5s));
  auto delivered = carrier.Recorded("events");
  EXPECT_EQ(delivered.size(), 4u * ids.size());
  for (const auto& event : delivered) EXPECT_EQ(event["status"], 200) << event.dump();
}

TEST(TwilioEmulator, BusyNoAnswerAndRejectEndWithTheirOutcomes) {
  Carrier carrier;
  struct Case {
    const char* to;
    std::vector<K> kinds;
    CallOutcome outcome;
  };
  for (const auto& c : {Case{kBusy, {K::kInitiated, K::kEnded}, CallOutcome::kBusy},
                        Case{kNoAnswer, {K::kInitiated, K::kRinging, K::kEnded}, CallOutcome::kNoAnswer},
                        Case{kRejects, {K::kInitiated, K::kRinging, K::kEnded}, CallOutcome::kFailed}}) {
    auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, c.to));
    ASSERT_TRUE(call.ok()) << call.error().message;
    auto events = carrier.receiver_->WaitForEnd(call->call_id);
    EXPECT_EQ(Kinds(events), c.kinds) << c.to;
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().outcome, c.outcome) << c.to;
  }
}

TEST(TwilioEmulator, MachineDetectionReportsMachineAndHuman) {
  Carrier carrier;
  auto machine = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kMachine, /*amd=*/true));
  auto human = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kAnswers, /*amd=*/true));
  ASSERT_TRUE(machine.ok() && human.ok());
  auto machine_events = carrier.receiver_->WaitForEnd(machine->call_id);
  auto human_events = carrier.receiver_->WaitForEnd(human->call_id);
  EXPECT_EQ(Kinds(machine_events),
            (std::vector<K>{K::kInitiated, K::kRinging, K::kAnswered, K::kMachineDetection, K::kEnded}));
  ASSERT_EQ(machine_events.size(), 5u);
  EXPECT_EQ(machine_events[3].answered_by, AnsweredBy::kMachine);
  EXPECT_EQ(machine_events[3].detail, "machine_start");
  ASSERT_EQ(human_events.size(), 5u);
  EXPECT_EQ(human_events[3].answered_by, AnsweredBy::kHuman);
  auto calls = carrier.Recorded("calls");
  EXPECT_EQ(calls[0]["request"]["MachineDetection"], "Enable");
  EXPECT_EQ(calls[0]["request"]["AsyncAmd"], "true");
}

TEST(TwilioEmulator, InvalidNumberIsInvalidArgumentOnTo) {
  Carrier carrier;
  for (const char* to : {kInvalid, "5550001"}) {
    auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, to));
    ASSERT_FALSE(call.ok());
    EXPECT_EQ(call.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(call.error().field, "to");
    EXPECT_NE(call.error().message.find("21217"), std::string::npos) << call.error().message;
  }
  EXPECT_TRUE(carrier.Recorded("calls").empty());
}

TEST(TwilioEmulator, WrongAuthTokenIsUnauthenticatedAndNotInTheMessage) {
  Carrier carrier;
  twilio::TwilioProvider wrong({kAccountSid, "not-the-token", carrier.server_->origin()});
  auto call = wrong.PlaceCall(carrier.Call(wrong, kAnswers));
  ASSERT_FALSE(call.ok());
  EXPECT_EQ(call.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(call.error().message.find("not-the-token"), std::string::npos);
}

TEST(TwilioEmulator, HangupOfARingingCallCancelsIt) {
  Carrier carrier;
  auto request = carrier.Call(*carrier.twilio_, kNoAnswer);
  request.ring_timeout = 600s;  // 12 s at this time scale: the hang-up comes first
  auto call = carrier.twilio_->PlaceCall(request);
  ASSERT_TRUE(call.ok());
  carrier.receiver_->WaitFor(call->call_id, K::kRinging);
  ASSERT_TRUE(carrier.twilio_->Hangup(call->call_id).ok());
  auto events = carrier.receiver_->WaitForEnd(call->call_id);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().outcome, CallOutcome::kCanceled);
}

TEST(TwilioEmulator, TransferThenHangupOfAnAnsweredCall) {
  Carrier carrier;
  auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kTalksLong));
  ASSERT_TRUE(call.ok());
  carrier.receiver_->WaitFor(call->call_id, K::kAnswered);
  ASSERT_TRUE(carrier.twilio_->Transfer(call->call_id, "+15557654321", kCaller).ok());
  ASSERT_TRUE(carrier.twilio_->Hangup(call->call_id).ok());
  auto events = carrier.receiver_->WaitForEnd(call->call_id);
  EXPECT_EQ(Kinds(events), (std::vector<K>{K::kInitiated, K::kRinging, K::kAnswered, K::kEnded}));
  EXPECT_EQ(events.back().outcome, CallOutcome::kCompleted);
  auto actions = carrier.Recorded("calls")[0]["actions"];
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0]["twiml"],
            "<Response><Dial callerId=\"+14155550100\" timeout=\"30\">+15557654321</Dial></Response>");
  EXPECT_EQ(actions[1]["status"], "completed");
  // The call is over: redirecting it now is a conflict (21220).
  auto late = carrier.twilio_->Transfer(call->call_id, "+15557654321", kCaller);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kConflict);
}

TEST(TwilioEmulator, CallsBeyondOnePerSecondAreQueuedNotRefused) {
  Carrier carrier({.time_scale = 0.2});  // one call per 200 ms: three placements fit in one slot even under ASan
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kBusy));
    ASSERT_TRUE(call.ok());
    ids.push_back(call->call_id);
  }
  auto calls = carrier.Recorded("calls");
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(calls[0]["queue_time_ms"].get<int>(), 0);
  EXPECT_GT(calls[1]["queue_time_ms"].get<int>(), 0);
  EXPECT_GT(calls[2]["queue_time_ms"].get<int>(), calls[1]["queue_time_ms"].get<int>());
  EXPECT_GT(calls[2]["queue_time_ms"].get<int>(), 200);  // behind two slots of 200 ms
  for (const auto& id : ids) EXPECT_EQ(carrier.receiver_->WaitForEnd(id).back().outcome, CallOutcome::kBusy);
}

TEST(TwilioEmulator, ServerErrorIsUnavailableAndCreatesNoCall) {
  Carrier carrier;
  carrier.emulator_->SetFaults(false, false, {1});
  auto failed = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kBusy));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(carrier.Recorded("calls").empty());
  auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kBusy));
  ASSERT_TRUE(call.ok());
}

TEST(TwilioEmulator, DuplicateDeliveriesDedupeOnEventId) {
  Carrier carrier;
  carrier.emulator_->SetFaults(true, false, {});
  auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kAnswers));
  ASSERT_TRUE(call.ok());
  carrier.receiver_->WaitForEnd(call->call_id);
  ASSERT_TRUE(carrier.emulator_->WaitIdle(5s));
  auto events = carrier.receiver_->Events(call->call_id);
  EXPECT_EQ(events.size(), 8u);
  EXPECT_EQ(Kinds(Unique(events)), (std::vector<K>{K::kInitiated, K::kRinging, K::kAnswered, K::kEnded}));
}

TEST(TwilioEmulator, ReorderedDeliveriesSortBySequenceNumber) {
  Carrier carrier;
  carrier.emulator_->SetFaults(false, true, {});
  auto call = carrier.twilio_->PlaceCall(carrier.Call(*carrier.twilio_, kAnswers));
  ASSERT_TRUE(call.ok());
  carrier.receiver_->WaitForEnd(call->call_id);
  ASSERT_TRUE(carrier.emulator_->WaitIdle(5s));
  auto events = carrier.receiver_->Events(call->call_id);
  EXPECT_EQ(Kinds(events), (std::vector<K>{K::kRinging, K::kInitiated, K::kEnded, K::kAnswered}));
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) { return a.sequence < b.sequence; });
  EXPECT_EQ(Kinds(events), (std::vector<K>{K::kInitiated, K::kRinging, K::kAnswered, K::kEnded}));
}

TEST(TwilioEmulator, NumberSearchBuyListReleaseRoundTrip) {
  Carrier carrier;
  auto found = carrier.twilio_->SearchNumbers({"US", "415", "", 5});
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->size(), 5u);
  for (const auto& number : *found) EXPECT_TRUE(number.phone_number.starts_with("+1415")) << number.phone_number;
  EXPECT_EQ(found->front().locality, "San Francisco");
  EXPECT_EQ(found->front().monthly_cost, "1.15");
  EXPECT_EQ(found->front().currency, "USD");

  auto bought = carrier.twilio_->BuyNumber(found->front().phone_number);
  ASSERT_TRUE(bought.ok()) << bought.error().message;
  EXPECT_TRUE(bought->id.starts_with("PN"));
  EXPECT_EQ(bought->phone_number, found->front().phone_number);
  auto again = carrier.twilio_->BuyNumber(found->front().phone_number);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);

  auto listed = carrier.twilio_->ListNumbers();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().id, bought->id);
  carrier.ExpectFindsOnly(*carrier.twilio_, *bought, (*found)[1].phone_number);
  auto after = carrier.twilio_->SearchNumbers({"US", "415", "", 50});
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(std::none_of(after->begin(), after->end(),
                           [&](const auto& n) { return n.phone_number == bought->phone_number; }));

  ASSERT_TRUE(carrier.twilio_->ReleaseNumber(bought->id).ok());
  EXPECT_TRUE(carrier.twilio_->ListNumbers()->empty());
  EXPECT_FALSE(carrier.twilio_->FindNumber(bought->phone_number)->has_value());
  auto twice = carrier.twilio_->ReleaseNumber(bought->id);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ErrorCode::kNotFound);
}

TEST(TwilioEmulator, AdapterVerifiesWebhooksAndRefusesTampering) {
  Carrier carrier;
  std::string url = "https://platform.example/webhooks/twilio/status";
  std::string body = "CallSid=CA0123456789abcdef0123456789abcdef&CallStatus=ringing&SequenceNumber=1";
  twilio::FormParams params;
  for (auto& [name, value] : http::ParseQuery(body)) params.emplace(name, value);
  WebhookRequest request{url, {}, body};
  request.headers.Set("X-Twilio-Signature", twilio::ComputeSignature(kAuthToken, url, params));
  EXPECT_TRUE(carrier.twilio_->VerifyWebhook(request));
  auto event = carrier.twilio_->ParseWebhook(request);
  ASSERT_TRUE(event.ok());
  EXPECT_EQ(event->kind, K::kRinging);
  request.body[request.body.size() - 1] = '2';
  EXPECT_FALSE(carrier.twilio_->VerifyWebhook(request));
  WebhookRequest unsigned_request{url, {}, body};
  EXPECT_FALSE(carrier.twilio_->VerifyWebhook(unsigned_request));
}

// ---------------------------------------------------------------- Telnyx

TEST(TelnyxEmulator, AnsweredCallSendsInitiatedAnsweredHangup) {
  Carrier carrier;
  auto call = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kAnswers));
  ASSERT_TRUE(call.ok()) << call.error().message;
  EXPECT_TRUE(call->call_id.starts_with("v3:"));
  auto events = carrier.receiver_->WaitForEnd(call->call_id);
  EXPECT_EQ(Kinds(events), (std::vector<K>{K::kInitiated, K::kAnswered, K::kEnded}));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events.back().outcome, CallOutcome::kCompleted);
  EXPECT_EQ(events.back().detail, "normal_clearing");
  EXPECT_EQ(events.back().duration_seconds, 2);
  for (const auto& event : events) EXPECT_EQ(event.client_state, "Y2FtcGFpZ24tNw==");  // base64("campaign-7")
  EXPECT_EQ(carrier.receiver_->rejected(), 0);

  auto sent = carrier.Recorded("calls")[0]["request"];
  EXPECT_EQ(sent["connection_id"], "conn-1");
  EXPECT_EQ(sent["timeout_secs"], 10);
  EXPECT_EQ(sent["answering_machine_detection"], "disabled");
  EXPECT_EQ(sent["stream_url"], "wss://platform.example/media");
  EXPECT_FALSE(sent["command_id"].get<std::string>().empty());
}

TEST(TelnyxEmulator, UndeliveredWebhooksGoToTheFailoverUrlSignedForIt) {
  Carrier carrier;
  auto request = carrier.Call(*carrier.telnyx_, kAnswers);
  request.status_callback_failover_url = request.status_callback_url;
  request.status_callback_url = "http://127.0.0.1:1/telnyx";  // nothing listens on port 1: the endpoint is down
  auto call = carrier.telnyx_->PlaceCall(request);
  ASSERT_TRUE(call.ok()) << call.error().message;
  auto events = carrier.receiver_->WaitForEnd(call->call_id);
  EXPECT_EQ(Kinds(events), (std::vector<K>{K::kInitiated, K::kAnswered, K::kEnded}));
  EXPECT_EQ(carrier.receiver_->rejected(), 0);  // re-signed for the failover delivery
  ASSERT_TRUE(carrier.emulator_->WaitIdle(5s));
  auto sent = carrier.Recorded("events");
  ASSERT_EQ(sent.size(), 3u);
  for (const auto& event : sent) {
    EXPECT_EQ(event["status"], 0) << event.dump();
    EXPECT_EQ(event.value("failover_url", ""), request.status_callback_failover_url);
    EXPECT_EQ(event.value("failover_status", 0), 200);
  }
}

TEST(TelnyxEmulator, BusyNoAnswerAndRejectEndWithTheirCauses) {
  Carrier carrier;
  struct Case {
    const char* to;
    CallOutcome outcome;
    const char* cause;
  };
  for (const auto& c :
       {Case{kBusy, CallOutcome::kBusy, "user_busy"}, Case{kNoAnswer, CallOutcome::kNoAnswer, "timeout"},
        Case{kRejects, CallOutcome::kFailed, "call_rejected"}}) {
    auto call = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, c.to));
    ASSERT_TRUE(call.ok()) << call.error().message;
    auto events = carrier.receiver_->WaitForEnd(call->call_id);
    EXPECT_EQ(Kinds(events), (std::vector<K>{K::kInitiated, K::kEnded})) << c.to;  // Telnyx sends no ringing
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().outcome, c.outcome) << c.to;
    EXPECT_EQ(events.back().detail, c.cause);
  }
}

TEST(TelnyxEmulator, MachineDetectionReportsMachineAndHuman) {
  Carrier carrier;
  auto machine = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kMachine, true));
  auto human = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kAnswers, true));
  ASSERT_TRUE(machine.ok() && human.ok());
  auto machine_events = carrier.receiver_->WaitForEnd(machine->call_id);
  auto human_events = carrier.receiver_->WaitForEnd(human->call_id);
  EXPECT_EQ(Kinds(machine_events), (std::vector<K>{K::kInitiated, K::kAnswered, K::kMachineDetection, K::kEnded}));
  ASSERT_EQ(machine_events.size(), 4u);
  EXPECT_EQ(machine_events[2].answered_by, AnsweredBy::kMachine);
  ASSERT_EQ(human_events.size(), 4u);
  EXPECT_EQ(human_events[2].answered_by, AnsweredBy::kHuman);
  EXPECT_EQ(carrier.Recorded("calls")[0]["request"]["answering_machine_detection"], "detect");
}

TEST(TelnyxEmulator, InvalidNumberIsInvalidArgumentOnTo) {
  Carrier carrier;
  for (const char* to : {kInvalid, "5550001"}) {
    auto call = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, to));
    ASSERT_FALSE(call.ok());
    EXPECT_EQ(call.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(call.error().field, "to");
    EXPECT_NE(call.error().message.find("10016"), std::string::npos) << call.error().message;
  }
}

TEST(TelnyxEmulator, WrongApiKeyIsUnauthenticated) {
  Carrier carrier;
  SeededRandom random(7);
  telnyx::TelnyxProvider wrong(carrier.clock_, random, {"KEYwrong", "conn-1", "", carrier.server_->origin()});
  auto call = wrong.PlaceCall(carrier.Call(wrong, kAnswers));
  ASSERT_FALSE(call.ok());
  EXPECT_EQ(call.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(call.error().message.find("KEYwrong"), std::string::npos);
}

TEST(TelnyxEmulator, OverTheCallRateIsRateLimitedWithRetryAfter) {
  Carrier carrier({.telnyx_calls_per_second = 1});
  ASSERT_TRUE(carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kBusy)).ok());
  auto refused = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kBusy));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kRateLimited);
  EXPECT_EQ(RetryAfterSeconds(refused.error()), 1);
  EXPECT_EQ(carrier.Recorded("calls").size(), 1u);
}

TEST(TelnyxEmulator, RateLimitedCallIsRetriedAfterRetryAfter) {
  std::vector<std::chrono::milliseconds> waits;
  Carrier carrier({.telnyx_calls_per_second = 1, .max_retries = 2, .sleep = [&](std::chrono::milliseconds wait) {
                     waits.push_back(wait);
                     std::this_thread::sleep_for(wait);
                   }});
  ASSERT_TRUE(carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kBusy)).ok());
  auto retried = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kBusy));
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_EQ(waits, (std::vector<std::chrono::milliseconds>{1000ms}));
  EXPECT_EQ(carrier.Recorded("calls").size(), 2u);
}

TEST(TelnyxEmulator, ServerErrorIsUnavailableWithoutRetries) {
  Carrier carrier;
  carrier.emulator_->SetFaults(false, false, {1});
  auto failed = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kBusy));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kUnavailable);
}

TEST(TelnyxEmulator, ServerErrorIsRetriedWithTheSameCommandId) {
  Carrier carrier({.max_retries = 2});
  carrier.emulator_->SetFaults(false, false, {1});
  auto call = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kBusy));
  ASSERT_TRUE(call.ok()) << call.error().message;
  auto requests = carrier.Recorded("requests");
  ASSERT_EQ(requests.size(), 2u);
  auto first = nlohmann::json::parse(requests[0]["body"].get<std::string>());
  auto second = nlohmann::json::parse(requests[1]["body"].get<std::string>());
  EXPECT_EQ(first["command_id"], second["command_id"]);
  EXPECT_EQ(carrier.Recorded("calls").size(), 1u);
}

TEST(TelnyxEmulator, HangupEndsTheCallAndASecondHangupIsAConflict) {
  Carrier carrier;
  auto call = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kTalksLong));
  ASSERT_TRUE(call.ok());
  carrier.receiver_->WaitFor(call->call_id, K::kAnswered);
  ASSERT_TRUE(carrier.telnyx_->Transfer(call->call_id, "+15557654321", kCaller).ok());
  ASSERT_TRUE(carrier.telnyx_->Hangup(call->call_id).ok());
  auto events = carrier.receiver_->WaitForEnd(call->call_id);
  EXPECT_EQ(Kinds(events), (std::vector<K>{K::kInitiated, K::kAnswered, K::kEnded}));
  EXPECT_EQ(events.back().outcome, CallOutcome::kCompleted);
  auto again = carrier.telnyx_->Hangup(call->call_id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  auto actions = carrier.Recorded("calls")[0]["actions"];
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0]["action"], "transfer");
  EXPECT_EQ(actions[0]["body"]["to"], "+15557654321");
  EXPECT_EQ(actions[1]["action"], "hangup");
}

TEST(TelnyxEmulator, DuplicateAndReorderedDeliveriesAreRecoverable) {
  Carrier carrier;
  carrier.emulator_->SetFaults(true, true, {});
  auto call = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kAnswers));
  ASSERT_TRUE(call.ok());
  carrier.receiver_->WaitForEnd(call->call_id);
  ASSERT_TRUE(carrier.emulator_->WaitIdle(5s));
  auto events = carrier.receiver_->Events(call->call_id);
  EXPECT_EQ(events.size(), 6u);
  auto unique = Unique(events);
  EXPECT_EQ(Kinds(unique), (std::vector<K>{K::kAnswered, K::kInitiated, K::kEnded}));
  std::sort(unique.begin(), unique.end(), [](const auto& a, const auto& b) { return a.occurred_at < b.occurred_at; });
  EXPECT_EQ(Kinds(unique), (std::vector<K>{K::kInitiated, K::kAnswered, K::kEnded}));
}

TEST(TelnyxEmulator, NumberSearchBuyListReleaseRoundTripWithCosts) {
  Carrier carrier;
  auto found = carrier.telnyx_->SearchNumbers({"US", "212", "", 3});
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->size(), 3u);
  EXPECT_TRUE(found->front().phone_number.starts_with("+1212"));
  EXPECT_EQ(found->front().monthly_cost, "1.00");
  EXPECT_EQ(found->front().upfront_cost, "1.00");
  EXPECT_EQ(found->front().currency, "USD");
  EXPECT_EQ(found->front().locality, "New York");

  auto bought = carrier.telnyx_->BuyNumber(found->front().phone_number);
  ASSERT_TRUE(bought.ok()) << bought.error().message;
  EXPECT_FALSE(bought->id.empty());
  auto again = carrier.telnyx_->BuyNumber(found->front().phone_number);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  auto listed = carrier.telnyx_->ListNumbers();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().phone_number, found->front().phone_number);
  carrier.ExpectFindsOnly(*carrier.telnyx_, *bought, (*found)[1].phone_number);
  ASSERT_TRUE(carrier.telnyx_->ReleaseNumber(bought->id).ok());
  EXPECT_TRUE(carrier.telnyx_->ListNumbers()->empty());
  EXPECT_FALSE(carrier.telnyx_->FindNumber(bought->phone_number)->has_value());
  auto twice = carrier.telnyx_->ReleaseNumber(bought->id);
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ErrorCode::kNotFound);
  // The Twilio account sees none of it.
  EXPECT_TRUE(carrier.twilio_->ListNumbers()->empty());
}

TEST(TelnyxEmulator, AdapterRefusesTamperedAndMissingSignatures) {
  Carrier carrier;
  auto call = carrier.telnyx_->PlaceCall(carrier.Call(*carrier.telnyx_, kBusy));
  ASSERT_TRUE(call.ok());
  carrier.receiver_->WaitForEnd(call->call_id);
  WebhookRequest unsigned_request{"http://x/telnyx", {}, R"({"data":{}})"};
  EXPECT_FALSE(carrier.telnyx_->VerifyWebhook(unsigned_request));
  EXPECT_EQ(carrier.receiver_->rejected(), 0);
}

TEST(Scenario, FirstMatchingRuleWinsAndBadFilesAreRefused) {
  auto scenario = emulator::Scenario::FromJson(kScenario);
  ASSERT_TRUE(scenario.ok());
  EXPECT_EQ(scenario->For(kBusy).kind, emulator::PersonaKind::kBusy);
  EXPECT_EQ(scenario->For(kTalksLong).talk_seconds, 100);
  EXPECT_EQ(scenario->For("+19990000000").kind, emulator::PersonaKind::kAnswer);
  EXPECT_FALSE(emulator::Scenario::FromJson(R"({"rules":[{"match":"+1","persona":"sings"}]})").ok());
  EXPECT_FALSE(emulator::Scenario::FromJson("not json").ok());
}

TEST(ProviderErrors, UnreachableCarrierIsUnavailable) {
  SystemClock clock;
  SeededRandom random(3);
  http::ClientOptions fast;
  fast.timeout = std::chrono::milliseconds(2000);
  twilio::TwilioProvider twilio({kAccountSid, kAuthToken, "http://127.0.0.1:1", fast});
  telnyx::TelnyxProvider telnyx(clock, random, {kApiKey, "conn-1", "", "http://127.0.0.1:1", fast});
  PlaceCallRequest request{kCaller, kAnswers};
  auto twilio_call = twilio.PlaceCall(request);
  ASSERT_FALSE(twilio_call.ok());
  EXPECT_EQ(twilio_call.error().code, ErrorCode::kUnavailable);
  auto telnyx_numbers = telnyx.ListNumbers();
  ASSERT_FALSE(telnyx_numbers.ok());
  EXPECT_EQ(telnyx_numbers.error().code, ErrorCode::kUnavailable);
}

TEST(RetryAfter, RoundTripsThroughTheError) {
  auto error = RateLimitedError("telnyx", 7);
  EXPECT_EQ(error.code, ErrorCode::kRateLimited);
  EXPECT_EQ(RetryAfterSeconds(error), 7);
  EXPECT_EQ(RetryAfterSeconds(Error::Internal("x")), std::nullopt);
}

}  // namespace
}  // namespace clozit::telephony
