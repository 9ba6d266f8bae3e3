// Media streams: the G.711 µ-law codec against the standard's values, media
// tokens, and both carriers' WebSocket endpoints end to end through a real
// http::Server, with a WebSocketClient playing the carrier.
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

#include "http/server.hpp"
#include "http/websocket.hpp"
#include "telephony/media/media_endpoints.hpp"
#include "telephony/media/mulaw.hpp"
#include "telephony/twilio/twilio_provider.hpp"

namespace clozit::telephony::media {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// ---- codec ----

TEST(Mulaw, DecodesTheG711TableValues) {
  // Codes are sent inverted; 0xFF/0x7F are the two zeros, 0x80/0x00 the extremes (G.711 Table 2a).
  EXPECT_EQ(MulawDecode(0xFF), 0);
  EXPECT_EQ(MulawDecode(0x7F), 0);
  EXPECT_EQ(MulawDecode(0x80), 32124);
  EXPECT_EQ(MulawDecode(0x00), -32124);
  EXPECT_EQ(MulawDecode(0xFE), 8);  // first step of segment 0: steps of 8 (2 in 14-bit units)
  EXPECT_EQ(MulawDecode(0x7E), -8);
  EXPECT_EQ(MulawDecode(0xEF), 132);    // first code of segment 1: (0x84 << 1) - 0x84
  EXPECT_EQ(MulawDecode(0xF0), 120);    // end of segment 0: (15·8+132)−132
  EXPECT_EQ(MulawDecode(0x8F), 16764);  // first code of segment 7 (inverted 0x70): 132·128−132
  EXPECT_EQ(MulawEncode(0), 0xFF);
  EXPECT_EQ(MulawEncode(32767), 0x80);   // clipped at 32635
  EXPECT_EQ(MulawEncode(-32768), 0x00);  // clipped at −32635
  EXPECT_EQ(MulawEncode(8), 0xFE);
  EXPECT_EQ(MulawEncode(-8), 0x7E);
}

TEST(Mulaw, EveryCodeSurvivesARoundTrip) {
  for (int code = 0; code < 256; ++code) {
    if (code == 0x7F) continue;  // negative zero encodes as positive zero (0xFF)
    EXPECT_EQ(MulawEncode(MulawDecode(static_cast<uint8_t>(code))), code) << "code " << code;
  }
  EXPECT_EQ(MulawEncode(MulawDecode(0x7F)), 0xFF);
}

TEST(Mulaw, QuantisationErrorStaysWithinHalfAStepOfTheSegment) {
  for (int sample = -32635; sample <= 32635; sample += 7) {
    int decoded = MulawDecode(MulawEncode(static_cast<int16_t>(sample)));
    int magnitude = std::abs(sample);
    int step = magnitude < 124     ? 8
               : magnitude < 380   ? 16
               : magnitude < 892   ? 32
               : magnitude < 1916  ? 64
               : magnitude < 3964  ? 128
               : magnitude < 8060  ? 256
               : magnitude < 16252 ? 512
                                   : 1024;
    EXPECT_LE(std::abs(decoded - sample), step) << "sample " << sample;
  }
}

// ---- tokens ----

TEST(MediaTokens, VerifiesItsOwnTokensAndRefusesForgedOrExpiredOnes) {
  ManualClock clock(FromUnixMillis(1'700'000'000'000));
  MediaTokens tokens("a-secret-of-at-least-16-bytes", clock);
  std::string token = tokens.Issue("01JCALL", 60s);
  auto verified = tokens.Verify(token);
  ASSERT_TRUE(verified.ok());
  EXPECT_EQ(*verified, "01JCALL");

  std::string forged = token;
  forged[0] = 'X';  // another call id with the same MAC
  EXPECT_EQ(tokens.Verify(forged).error().code, ErrorCode::kUnauthenticated);
  MediaTokens other("another-secret-of-16-bytes", clock);
  EXPECT_FALSE(other.Verify(token).ok());
  EXPECT_FALSE(tokens.Verify("").ok());
  EXPECT_FALSE(tokens.Verify("no-dots").ok());
  EXPECT_FALSE(tokens.Verify("a.b.c").ok());

  clock.Advance(61s);
  auto expired = tokens.Verify(token);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().field, "token");
}

TEST(MediaTokens, TwilioTwimlCarriesTheTokenAsAStreamParameter) {
  std::string twiml = twilio::TwilioProvider::StreamTwiml("wss://clozit.example/v1/media/twilio", "01J.17.a&b");
  EXPECT_EQ(twiml,
            "<Response><Connect><Stream url=\"wss://clozit.example/v1/media/twilio\">"
            "<Parameter name=\"token\" value=\"01J.17.a&amp;b\"/></Stream></Connect></Response>");
}

// ---- endpoints ----

/// What the handler on the platform side saw.
struct Seen {
  std::mutex mutex;
  std::condition_variable changed;
  std::optional<MediaStreamInfo> info;  // guarded by mutex
  std::vector<int16_t> audio;           // guarded by mutex
  std::vector<std::string> marks;       // guarded by mutex
  std::string dtmf;                     // guarded by mutex
  int stops = 0;                        // guarded by mutex
  bool dropped = false;                 // guarded by mutex

  template <class Predicate>
  bool Wait(Predicate predicate, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return predicate(); });
  }
};

/// Records everything; on its first audio frame speaks `reply_frames` frames of a ramp, then a mark.
class ScriptedHandler final : public MediaHandler {
 public:
  ScriptedHandler(std::shared_ptr<Seen> seen, int reply_frames) : seen_(std::move(seen)), reply_frames_(reply_frames) {}
  void OnStart(const MediaStreamInfo& info, MediaOutput& output) override {
    output_ = &output;
    std::lock_guard lock(seen_->mutex);
    seen_->info = info;
    seen_->changed.notify_all();
  }
  void OnAudio(std::span<const int16_t> pcm) override {
    if (!replied_) {
      replied_ = true;
      std::vector<int16_t> speech(reply_frames_ * kSamplesPerFrame);
      for (size_t i = 0; i < speech.size(); ++i) speech[i] = static_cast<int16_t>((i % 64) * 100);
      EXPECT_TRUE(output_->SendAudio(speech).ok());
      output_->SendMark("reply-done");
    }
    std::lock_guard lock(seen_->mutex);
    seen_->audio.insert(seen_->audio.end(), pcm.begin(), pcm.end());
    seen_->changed.notify_all();
  }
  void OnDtmf(char digit) override {
    if (digit == '#') output_->Clear();  // barge-in
    std::lock_guard lock(seen_->mutex);
    seen_->dtmf += digit;
    seen_->changed.notify_all();
  }
  void OnMark(std::string_view name) override {
    std::lock_guard lock(seen_->mutex);
    seen_->marks.emplace_back(name);
    seen_->changed.notify_all();
  }
  void OnStop(bool dropped) override {
    output_ = nullptr;
    std::lock_guard lock(seen_->mutex);
    ++seen_->stops;
    seen_->dropped = dropped;
    seen_->changed.notify_all();
  }

 private:
  std::shared_ptr<Seen> seen_;
  int reply_frames_;
  MediaOutput* output_ = nullptr;
  bool replied_ = false;
};

/// The carrier's side of the socket: records frames with their arrival times and echoes marks at once.
struct CarrierSide {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::string>> media;  // guarded by mutex
  std::vector<std::string> marks;                                                    // guarded by mutex
  int clears = 0;                                                                    // guarded by mutex
  int close_code = -1;                                                               // guarded by mutex
  template <class Predicate>
  bool Wait(Predicate predicate, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return predicate(); });
  }
};

class CarrierSocket final : public http::WebSocketHandler {
 public:
  CarrierSocket(std::shared_ptr<CarrierSide> side, bool twilio) : side_(std::move(side)), twilio_(twilio) {}
  void OnOpen(std::shared_ptr<http::WebSocketConnection> connection) override { connection_ = std::move(connection); }
  void OnText(std::string_view text) override {
    auto message = json::parse(text);
    std::string event = message["event"];
    if (twilio_) {
      EXPECT_EQ(message.value("streamSid", ""), "MZ0001");
    }
    std::lock_guard lock(side_->mutex);
    if (event == "media") {
      side_->media.emplace_back(std::chrono::steady_clock::now(), message["media"]["payload"].get<std::string>());
    } else if (event == "mark") {
      side_->marks.push_back(message["mark"]["name"]);
      connection_->SendText(std::string(text));  // played at once: echo it back
    } else if (event == "clear") {
      ++side_->clears;
    }
    side_->changed.notify_all();
  }
  void OnClose(uint16_t code, std::string_view) override {
    connection_.reset();
    std::lock_guard lock(side_->mutex);
    side_->close_code = code;
    side_->changed.notify_all();
  }

 private:
  std::shared_ptr<CarrierSide> side_;
  std::shared_ptr<http::WebSocketConnection> connection_;
  bool twilio_;
};

std::string Base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);
  return out;
}

class MediaEndpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    seen_ = std::make_shared<Seen>();
    endpoints_ = std::make_unique<MediaEndpoints>(
        tokens_, [this](const MediaStreamInfo&) { return std::make_unique<ScriptedHandler>(seen_, reply_frames_); },
        MediaSettings{.start_timeout = 2000ms});
    http::ServerOptions options;
    options.port = 0;
    options.handle_signals = false;
    options.websocket_routes = endpoints_->Routes();
    server_ = std::make_unique<http::Server>(options, [](http::Request&) { return http::Response::Text(404, ""); });
    ASSERT_TRUE(server_->Start().ok());
    run_ = std::async(std::launch::async, [this] { server_->Run(); });
    client_thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    server_->Shutdown();
    EXPECT_EQ(run_.wait_for(10s), std::future_status::ready);
    work_.reset();
    io_.stop();
    client_thread_.join();
  }
  std::string Url(const std::string& path) { return "ws://127.0.0.1:" + std::to_string(server_->port()) + path; }

  Result<std::shared_ptr<http::WebSocketConnection>> Connect(const std::string& path, bool twilio) {
    return http::WebSocketClient::Connect(io_.get_executor(), Url(path),
                                          std::make_unique<CarrierSocket>(carrier_, twilio));
  }

  static std::string TwilioStart(const std::string& token) {
    return json{{"event", "start"},
                {"sequenceNumber", "1"},
                {"streamSid", "MZ0001"},
                {"start",
                 {{"accountSid", "AC1"},
                  {"streamSid", "MZ0001"},
                  {"callSid", "CA0001"},
                  {"tracks", {"inbound"}},
                  {"customParameters", {{"token", token}, {"campaign", "c1"}}},
                  {"mediaFormat", {{"encoding", "audio/x-mulaw"}, {"sampleRate", 8000}, {"channels", 1}}}}}}
        .dump();
  }
  static std::string TwilioMedia(int n, const std::string& mulaw) {
    return json{{"event", "media"},
                {"sequenceNumber", std::to_string(n + 2)},
                {"streamSid", "MZ0001"},
                {"media",
                 {{"track", "inbound"},
                  {"chunk", std::to_string(n + 1)},
                  {"timestamp", std::to_string(n * 20)},
                  {"payload", Base64(mulaw)}}}}
        .dump();
  }

  ManualClock clock_{FromUnixMillis(1'700'000'000'000)};
  MediaTokens tokens_{"test-media-secret-0123456789", clock_};
  int reply_frames_ = 10;
  std::shared_ptr<Seen> seen_;
  std::shared_ptr<CarrierSide> carrier_ = std::make_shared<CarrierSide>();
  std::unique_ptr<MediaEndpoints> endpoints_;
  std::unique_ptr<http::Server> server_;
  std::future<void> run_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{io_.get_executor()};
  std::thread client_thread_;
};

TEST_F(MediaEndpointTest, TwilioStreamIsDecodedAndTheReplyIsPacedWithItsMarkReturned) {
  auto socket = Connect("/v1/media/twilio", true);
  ASSERT_TRUE(socket.ok()) << socket.error().message;
  auto& ws = *socket;
  ws->SendText(R"({"event":"connected","protocol":"Call","version":"1.0.0"})");
  ws->SendText(TwilioStart(tokens_.Issue("01JCALLTWILIO", 300s)));
  ASSERT_TRUE(seen_->Wait([&] { return seen_->info.has_value(); }));
  EXPECT_EQ(seen_->info->call_id, "01JCALLTWILIO");
  EXPECT_EQ(seen_->info->carrier_call_id, "CA0001");
  EXPECT_EQ(seen_->info->custom_parameters.count("token"), 0u);
  EXPECT_EQ(seen_->info->custom_parameters.at("campaign"), "c1");

  // One frame of a known µ-law pattern: it must arrive as the G.711 values.
  std::string mulaw(kSamplesPerFrame, '\0');
  for (size_t i = 0; i < mulaw.size(); ++i) mulaw[i] = static_cast<char>(i);
  ws->SendText(TwilioMedia(0, mulaw));
  ws->SendText(
      R"({"event":"dtmf","streamSid":"MZ0001","sequenceNumber":"3","dtmf":{"track":"inbound_track","digit":"5"}})");
  ASSERT_TRUE(seen_->Wait([&] { return seen_->audio.size() == kSamplesPerFrame && seen_->dtmf == "5"; }));
  for (size_t i = 0; i < kSamplesPerFrame; ++i) {
    ASSERT_EQ(seen_->audio[i], MulawDecode(static_cast<uint8_t>(i)));
  }

  // The handler's 10 frames come paced at 20 ms, then the mark, which the carrier echoes back.
  ASSERT_TRUE(seen_->Wait([&] { return !seen_->marks.empty(); }));
  EXPECT_EQ(seen_->marks.front(), "reply-done");
  std::lock_guard lock(carrier_->mutex);
  ASSERT_EQ(carrier_->media.size(), 10u);
  auto span = carrier_->media.back().first - carrier_->media.front().first;
  EXPECT_GE(span, 9 * 20ms - 5ms);  // not as fast as possible
  EXPECT_LE(span, 9 * 20ms + 100ms);
  // Each frame no earlier than its slot after the first. Arrival times, not send times: a busy machine can
  // hold the receiving thread back and hand it several frames at once (gaps of 1 ms were seen under a
  // parallel test run), so the bound leaves room for the first frame itself to have arrived late.
  for (size_t i = 1; i < carrier_->media.size(); ++i) {
    EXPECT_GE(carrier_->media[i].first - carrier_->media.front().first, static_cast<int>(i) * 20ms - 40ms)
        << "frame " << i;
  }
  std::string first;
  first.resize(kSamplesPerFrame);
  EXPECT_EQ(carrier_->media.front().second.size(), Base64(first).size());
}

TEST_F(MediaEndpointTest, ClearDropsTheQueuedAudioAndReturnsPendingMarks) {
  reply_frames_ = 250;  // 5 s of speech queued
  auto socket = Connect("/v1/media/twilio", true);
  ASSERT_TRUE(socket.ok());
  auto& ws = *socket;
  ws->SendText(TwilioStart(tokens_.Issue("01JCALLCLEAR", 300s)));
  ws->SendText(TwilioMedia(0, std::string(kSamplesPerFrame, '\xFF')));
  ASSERT_TRUE(carrier_->Wait([&] { return carrier_->media.size() >= 3; }));
  ws->SendText(R"({"event":"dtmf","streamSid":"MZ0001","sequenceNumber":"4","dtmf":{"digit":"#"}})");
  ASSERT_TRUE(carrier_->Wait([&] { return carrier_->clears == 1; }));
  ASSERT_TRUE(seen_->Wait([&] { return !seen_->marks.empty(); }, 2s)) << "the pending mark did not come back";
  size_t after_clear = 0;
  {
    std::lock_guard lock(carrier_->mutex);
    after_clear = carrier_->media.size();
  }
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock(carrier_->mutex);
  EXPECT_LE(carrier_->media.size(), after_clear + 1);  // at most the frame already in flight
  EXPECT_LT(carrier_->media.size(), 50u);
}

TEST_F(MediaEndpointTest, TwilioStopEndsTheStreamAndADroppedSocketIsReported) {
  {
    auto socket = Connect("/v1/media/twilio", true);
    ASSERT_TRUE(socket.ok());
    (*socket)->SendText(TwilioStart(tokens_.Issue("01JCALLSTOP", 300s)));
    (*socket)->SendText(
        R"({"event":"stop","sequenceNumber":"5","streamSid":"MZ0001","stop":{"accountSid":"AC1","callSid":"CA0001"}})");
    ASSERT_TRUE(seen_->Wait([&] { return seen_->stops == 1; }));
    EXPECT_FALSE(seen_->dropped);
    EXPECT_TRUE(carrier_->Wait([&] { return carrier_->close_code == 1000; }));
  }
  carrier_ = std::make_shared<CarrierSide>();
  auto socket = Connect("/v1/media/twilio", true);
  ASSERT_TRUE(socket.ok());
  (*socket)->SendText(TwilioStart(tokens_.Issue("01JCALLDROP", 300s)));
  ASSERT_TRUE(seen_->Wait([&] { return seen_->info && seen_->info->call_id == "01JCALLDROP"; }));
  (*socket)->Abort();  // the carrier's socket goes away mid-call, no stop
  ASSERT_TRUE(seen_->Wait([&] { return seen_->stops == 2; }));
  EXPECT_TRUE(seen_->dropped);
  EXPECT_EQ(endpoints_->stats().dropped.load(), 1);
}

TEST_F(MediaEndpointTest, MalformedFramesCloseTheStreamWithAProtocolError) {
  // A payload that is not base64, and a frame that is not JSON: each ends its stream, the handler told.
  for (std::string bad : {std::string(R"({"event":"media","streamSid":"MZ0001","media":{"payload":"not*base64"}})"),
                          std::string(R"({"event":"media","media":{"payload":)")}) {
    carrier_ = std::make_shared<CarrierSide>();
    int stops = 0;
    {
      std::lock_guard lock(seen_->mutex);
      stops = seen_->stops;
    }
    auto socket = Connect("/v1/media/twilio", true);
    ASSERT_TRUE(socket.ok());
    (*socket)->SendText(TwilioStart(tokens_.Issue("01JCALLBAD", 300s)));
    ASSERT_TRUE(seen_->Wait([&] { return seen_->info.has_value(); }));
    (*socket)->SendText(bad);
    ASSERT_TRUE(carrier_->Wait([&] { return carrier_->close_code != -1; })) << bad;
    EXPECT_EQ(carrier_->close_code, static_cast<int>(http::CloseCode::kProtocolError)) << bad;
    ASSERT_TRUE(seen_->Wait([&] { return seen_->stops == stops + 1; })) << bad;
    EXPECT_TRUE(seen_->dropped);
  }
  EXPECT_EQ(endpoints_->stats().malformed.load(), 2);
}

TEST_F(MediaEndpointTest, TwilioStartWithABadTokenIsClosedWithPolicyViolation) {
  auto socket = Connect("/v1/media/twilio", true);
  ASSERT_TRUE(socket.ok());
  MediaTokens forger("not-the-platform-secret-xx", clock_);
  (*socket)->SendText(TwilioStart(forger.Issue("01JCALLFORGED", 300s)));
  ASSERT_TRUE(carrier_->Wait([&] { return carrier_->close_code != -1; }));
  EXPECT_EQ(carrier_->close_code, static_cast<int>(http::CloseCode::kPolicyViolation));
  std::lock_guard lock(seen_->mutex);
  EXPECT_FALSE(seen_->info.has_value());
  EXPECT_EQ(endpoints_->stats().refused.load(), 1);
}

TEST_F(MediaEndpointTest, TwilioSocketWithoutStartIsClosedAfterTheStartTimeout) {
  auto socket = Connect("/v1/media/twilio", true);
  ASSERT_TRUE(socket.ok());
  (*socket)->SendText(R"({"event":"connected","protocol":"Call","version":"1.0.0"})");
  ASSERT_TRUE(carrier_->Wait([&] { return carrier_->close_code != -1; }, 5s));
  EXPECT_EQ(carrier_->close_code, static_cast<int>(http::CloseCode::kPolicyViolation));
}

TEST_F(MediaEndpointTest, TelnyxTokenIsCheckedBeforeTheUpgrade) {
  auto missing = Connect("/v1/media/telnyx", false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kUnauthenticated);
  MediaTokens forger("not-the-platform-secret-xx", clock_);
  auto forged = Connect("/v1/media/telnyx?token=" + forger.Issue("01JCALL", 300s), false);
  ASSERT_FALSE(forged.ok());
  EXPECT_EQ(forged.error().code, ErrorCode::kUnauthenticated);

  auto socket = Connect("/v1/media/telnyx?token=" + tokens_.Issue("01JCALLTELNYX", 300s), false);
  ASSERT_TRUE(socket.ok()) << socket.error().message;
  auto& ws = *socket;
  ws->SendText(R"({"event":"connected","version":"1.0.0"})");
  ws->SendText(json{{"event", "start"},
                    {"sequence_number", "1"},
                    {"stream_id", "32de0dea-53cb-4b21-89a4-9324f2af9e43"},
                    {"start",
                     {{"call_control_id", "v3:abc"},
                      {"client_state", "aGk="},
                      {"media_format", {{"encoding", "PCMU"}, {"sample_rate", 8000}, {"channels", 1}}}}}}
                   .dump());
  ws->SendText(json{{"event", "media"},
                    {"sequence_number", "2"},
                    {"stream_id", "32de0dea-53cb-4b21-89a4-9324f2af9e43"},
                    {"media",
                     {{"track", "inbound"},
                      {"chunk", "1"},
                      {"timestamp", "0"},
                      {"payload", Base64(std::string(kSamplesPerFrame, '\x80'))}}}}
                   .dump());
  ASSERT_TRUE(seen_->Wait([&] { return seen_->audio.size() == kSamplesPerFrame; }));
  EXPECT_EQ(seen_->info->call_id, "01JCALLTELNYX");
  EXPECT_EQ(seen_->info->carrier_call_id, "v3:abc");
  EXPECT_EQ(seen_->audio.front(), 32124);
  // Telnyx frames carry no streamSid; the reply and its mark come back the same way.
  ASSERT_TRUE(seen_->Wait([&] { return !seen_->marks.empty(); }));
  std::lock_guard lock(carrier_->mutex);
  EXPECT_EQ(carrier_->media.size(), 10u);
}

}  // namespace
}  // namespace clozit::telephony::media
