// The carrier emulator's simulated callee against the platform's media
// endpoints: a call placed through each adapter is answered, the emulator
// opens the media WebSocket with the token from the TwiML / stream_url,
// streams 20 ms frames, and records the agent's audio and marks; a dropped
// socket reaches the handler as `dropped`.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "emulator.hpp"
#include "http/client.hpp"
#include "http/server.hpp"
#include "telephony/emulator_harness.hpp"
#include "telephony/media/media_endpoints.hpp"
#include "telephony/telnyx/telnyx_provider.hpp"
#include "telephony/twilio/twilio_provider.hpp"

namespace clozit::telephony {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

struct Platform {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<media::MediaStreamInfo> starts;  // guarded by mutex
  int64_t frames = 0;                          // guarded by mutex
  std::vector<std::string> marks;              // guarded by mutex
  int stops = 0;                               // guarded by mutex
  int drops = 0;                               // guarded by mutex
  template <class Predicate>
  bool Wait(Predicate predicate, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return predicate(); });
  }
};

/// Echoes the callee and marks every 25th frame; records what happened.
class AgentStandIn final : public media::MediaHandler {
 public:
  explicit AgentStandIn(Platform& platform) : platform_(platform) {}
  void OnStart(const media::MediaStreamInfo& info, media::MediaOutput& output) override {
    output_ = &output;
    std::lock_guard lock(platform_.mutex);
    platform_.starts.push_back(info);
    platform_.changed.notify_all();
  }
  void OnAudio(std::span<const int16_t> pcm) override {
    EXPECT_TRUE(output_->SendAudio(pcm).ok());
    if (++frames_ % 25 == 0) output_->SendMark("mark-" + std::to_string(frames_ / 25));
    std::lock_guard lock(platform_.mutex);
    ++platform_.frames;
    platform_.changed.notify_all();
  }
  void OnDtmf(char) override {}
  void OnMark(std::string_view name) override {
    std::lock_guard lock(platform_.mutex);
    platform_.marks.emplace_back(name);
    platform_.changed.notify_all();
  }
  void OnStop(bool dropped) override {
    std::lock_guard lock(platform_.mutex);
    ++platform_.stops;
    platform_.drops += dropped ? 1 : 0;
    platform_.changed.notify_all();
  }

 private:
  Platform& platform_;
  media::MediaOutput* output_ = nullptr;
  int frames_ = 0;
};

constexpr char kScenario[] = R"({"default": {"persona": "answer", "ring_seconds": 0.2, "talk_seconds": 2}})";

class MediaEmulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    endpoints_ = std::make_unique<media::MediaEndpoints>(
        tokens_, [this](const media::MediaStreamInfo&) { return std::make_unique<AgentStandIn>(platform_); });
    http::ServerOptions options;
    options.handle_signals = false;
    options.shutdown_deadline = 2s;
    options.websocket_routes = endpoints_->Routes();
    // The webhooks land here too; this test only cares about media.
    server_ = std::make_unique<http::Server>(options, [](http::Request&) { return http::Response::NoContent(); });
    ASSERT_TRUE(server_->Start().ok());
    server_thread_ = std::thread([this] { server_->Run(); });
  }
  void Start(std::chrono::milliseconds drop_media_after) {
    emulator::EmulatorOptions options;
    options.twilio_auth_token = "media-test-token";
    options.drop_media_after = drop_media_after;
    auto scenario = emulator::Scenario::FromJson(kScenario);
    ASSERT_TRUE(scenario.ok());
    auto created = emulator::Emulator::Create(options, scenario.value(), clock_);
    ASSERT_TRUE(created.ok());
    emulator_ = std::move(created).value();
    carrier_ = std::make_unique<RunningServer>([this](http::Request& request) { return emulator_->Handle(request); });
  }
  void TearDown() override {
    carrier_.reset();
    emulator_.reset();
    server_->Shutdown();
    server_thread_.join();
  }
  std::string Platform(const std::string& path) { return "http://127.0.0.1:" + std::to_string(server_->port()) + path; }
  PlaceCallRequest Call(const std::string& provider) {
    PlaceCallRequest request;
    request.from = "+14155550100";
    request.to = "+14155550123";
    request.status_callback_url = Platform("/webhooks/" + provider);
    request.media_stream_url = "ws://127.0.0.1:" + std::to_string(server_->port()) + "/v1/media/" + provider;
    request.media_stream_token = tokens_.Issue("01JMEDIACALL", 1h);
    return request;
  }
  json EmulatorCall() {
    auto client = http::Client::Create(carrier_->origin());
    EXPECT_TRUE(client.ok());
    auto response = (*client)->Send("GET", "/_emulator/calls");
    EXPECT_TRUE(response.ok());
    auto calls = json::parse(response->body);
    EXPECT_EQ(calls.size(), 1u);
    return calls.empty() ? json() : calls[0];
  }
  void ExpectFullCall() {
    ASSERT_TRUE(platform_.Wait([&] { return platform_.stops == 1; }, 15s));
    ASSERT_TRUE(emulator_->WaitIdle(5s));
    std::this_thread::sleep_for(200ms);  // the callee's close completes
    json call = EmulatorCall();
    json media = call["media"];
    ASSERT_TRUE(media.is_object()) << call.dump();
    EXPECT_EQ(media["state"], "stopped") << media.dump();
    std::lock_guard lock(platform_.mutex);
    ASSERT_EQ(platform_.starts.size(), 1u);
    EXPECT_EQ(platform_.starts[0].call_id, "01JMEDIACALL");
    EXPECT_EQ(platform_.starts[0].carrier_call_id, call["id"]);
    EXPECT_EQ(platform_.drops, 0);
    // ~2 s of talk: about 100 frames each way, and the agent's audio came back paced.
    EXPECT_GE(platform_.frames, 60);
    EXPECT_GE(media["frames_sent"].get<int>(), 60);
    EXPECT_GE(media["frames_received"].get<int>(), 50);
    EXPECT_NEAR(media["interval_mean_ms"].get<double>(), 20.0, 5.0);
    EXPECT_GE(media["marks_received"].size(), 2u);
    EXPECT_GE(platform_.marks.size(), 1u);  // echoed back once played
  }

  ManualClock clock_{FromUnixMillis(1'790'000'000'000)};
  media::MediaTokens tokens_{"media-emulator-test-secret", clock_};
  struct Platform platform_;
  std::unique_ptr<media::MediaEndpoints> endpoints_;
  std::unique_ptr<http::Server> server_;
  std::thread server_thread_;
  std::unique_ptr<emulator::Emulator> emulator_;
  std::unique_ptr<RunningServer> carrier_;
};

TEST_F(MediaEmulatorTest, TwilioCalleeStreamsThroughTheTokenInTheTwiml) {
  Start(0ms);
  twilio::TwilioProvider provider(twilio::TwilioSettings{"ACmedia", "media-test-token", carrier_->origin(), {}, {}});
  auto placed = provider.PlaceCall(Call("twilio"));
  ASSERT_TRUE(placed.ok()) << placed.error().message;
  ExpectFullCall();
}

TEST_F(MediaEmulatorTest, TelnyxCalleeStreamsThroughTheTokenInTheStreamUrl) {
  Start(0ms);
  SystemRandom random;
  telnyx::TelnyxProvider provider(
      clock_, random,
      telnyx::TelnyxSettings{"key", "conn-1", emulator_->telnyx_public_key_base64(), carrier_->origin(), {}, {}});
  auto placed = provider.PlaceCall(Call("telnyx"));
  ASSERT_TRUE(placed.ok()) << placed.error().message;
  ExpectFullCall();
}

TEST_F(MediaEmulatorTest, DroppedMediaSocketReachesTheHandlerAsDropped) {
  Start(300ms);
  twilio::TwilioProvider provider(twilio::TwilioSettings{"ACmedia", "media-test-token", carrier_->origin(), {}, {}});
  ASSERT_TRUE(provider.PlaceCall(Call("twilio")).ok());
  ASSERT_TRUE(platform_.Wait([&] { return platform_.stops == 1; }, 10s));
  std::lock_guard lock(platform_.mutex);
  EXPECT_EQ(platform_.drops, 1);
  EXPECT_EQ(endpoints_->stats().dropped.load(), 1);
}

TEST_F(MediaEmulatorTest, ForgedTokenIsRefusedAndRecordedByTheEmulator) {
  Start(0ms);
  media::MediaTokens forger("not-the-platform-secret-x", clock_);
  twilio::TwilioProvider provider(twilio::TwilioSettings{"ACmedia", "media-test-token", carrier_->origin(), {}, {}});
  auto request = Call("twilio");
  request.media_stream_token = forger.Issue("01JMEDIACALL", 1h);
  ASSERT_TRUE(provider.PlaceCall(request).ok());
  ASSERT_TRUE(emulator_->WaitIdle(15s));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(EmulatorCall()["media"]["state"], "refused");
  std::lock_guard lock(platform_.mutex);
  EXPECT_TRUE(platform_.starts.empty());
  EXPECT_GE(endpoints_->stats().refused.load(), 1);
}

}  // namespace
}  // namespace clozit::telephony
