// media_bench: many concurrent two-way carrier media streams (Twilio Media
// Streams format, µ-law, 20 ms frames) against the platform's media endpoint.
//
//   media_bench serve --secret S [--handler echo] [--io-threads 2]
//       the platform side: http::Server + telephony::media::MediaEndpoints, exactly
//       what `clozit serve` mounts at /v1/media/*; prints {"port":…} and serves until SIGTERM.
//   media_bench drive --port P --secret S --streams 1000 --seconds 20 [--platform-pid PID]
//       the carrier side: opens the streams, sends one inbound frame per stream every 20 ms
//       on an absolute schedule, and records when each outbound (agent) frame arrives.
//
// Jitter is |inter-arrival − 20 ms| of consecutive outbound frames of one stream, over
// the measurement window (after every stream is up and a warm-up). With --platform-pid
// the driver also reads the platform's CPU time from /proc over the same window.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

#include "bench_stats.hpp"
#include "common/clock.hpp"
#include "http/server.hpp"
#include "http/websocket.hpp"
#include "telephony/detail/rest.hpp"
#include "telephony/media/media_endpoints.hpp"
#include "telephony/media/mulaw.hpp"

namespace {

using namespace clozit;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr auto kFrame = std::chrono::milliseconds(20);

using bench::Percentile;
using bench::ProcessCpuSeconds;

double OwnCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// ---- drive ----

struct Window {
  std::atomic<int64_t> start_ns{INT64_MAX};  // steady clock; frames before it are warm-up
  std::atomic<int64_t> end_ns{INT64_MAX};
  bool Contains(Clock::time_point t) const {
    int64_t ns = t.time_since_epoch().count();
    return ns >= start_ns.load() && ns < end_ns.load();
  }
};

struct Results {
  std::mutex mutex;
  std::vector<double> jitter_ms;  // guarded by mutex
  int64_t received = 0;           // guarded by mutex
  int64_t sent = 0;               // guarded by mutex
  int64_t gaps = 0;               // guarded by mutex; inter-arrivals over 40 ms (a frame missing)
  int64_t closed_early = 0;       // guarded by mutex
};

/// The driver's one clock for all its streams: a 1 ms tick that, in turn, wakes the streams of one of 20
/// phase slots, so each stream still sends every 20 ms on an absolute schedule and the streams stay spread
/// over the frame, without one timer (and its timerfd re-arm) per stream.
class Pacer {
 public:
  using Wake = std::function<void()>;
  explicit Pacer(boost::asio::io_context& io) : timer_(io) {}
  /// `wake` runs on the pacer's thread every 20 ms from the next tick of `slot`'s phase.
  void Add(size_t slot, Wake wake) {
    std::lock_guard lock(mutex_);
    slots_[slot % kSlots].push_back(std::move(wake));
  }
  void Start() {
    next_ = Clock::now();
    Arm();
  }
  void Stop() { timer_.cancel(); }

 private:
  static constexpr size_t kSlots = 20;
  void Arm() {
    next_ += kFrame / kSlots;
    timer_.expires_at(next_);
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      {
        std::lock_guard lock(mutex_);
        for (auto& wake : slots_[tick_ % kSlots]) wake();
      }
      ++tick_;
      Arm();
    });
  }
  boost::asio::steady_timer timer_;
  std::mutex mutex_;
  std::array<std::vector<Wake>, kSlots> slots_;  // guarded by mutex_
  size_t tick_ = 0;                              // on the pacer's thread
  Clock::time_point next_;
};

/// One carrier-side stream: sends start, then a frame every 20 ms; times the frames that come back.
class Stream final : public http::WebSocketHandler {
 public:
  Stream(int index, std::string token, Window& window, Results& results, std::atomic<bool>& stopping, Pacer& pacer)
      : index_(index),
        token_(std::move(token)),
        window_(window),
        results_(results),
        stopping_(stopping),
        pacer_(pacer) {}

  void OnOpen(std::shared_ptr<http::WebSocketConnection> connection) override {
    connection_ = std::move(connection);
    stream_sid_ = "MZ" + std::to_string(1000000 + index_);
    connection_->SendText(R"({"event":"connected","protocol":"Call","version":"1.0.0"})");
    connection_->SendText(
        json{{"event", "start"},
             {"sequenceNumber", "1"},
             {"streamSid", stream_sid_},
             {"start",
              {{"accountSid", "ACbench"},
               {"streamSid", stream_sid_},
               {"callSid", "CA" + std::to_string(index_)},
               {"tracks", {"inbound"}},
               {"customParameters", {{"token", token_}}},
               {"mediaFormat", {{"encoding", "audio/x-mulaw"}, {"sampleRate", 8000}, {"channels", 1}}}}}}
            .dump());
    // A 440 Hz tone, so the echo carries real samples.
    std::vector<int16_t> tone(telephony::media::kSamplesPerFrame);
    for (size_t i = 0; i < tone.size(); ++i) tone[i] = static_cast<int16_t>(8000 * std::sin(i * 2 * M_PI * 440 / 8000));
    frame_head_ = R"(","streamSid":")" + stream_sid_ + R"(","media":{"track":"inbound","chunk":")";
    frame_tail_ = R"(","payload":")" + telephony::detail::Base64(telephony::media::MulawEncode(tone)) + "\"}}";
    Send();
    // The stream's own strand runs each send; a send woken after OnClose finds `alive` false and stops there.
    pacer_.Add(static_cast<size_t>(index_), [executor = connection_->executor(), this, alive = alive_] {
      boost::asio::post(executor, [this, alive] {
        if (*alive) Send();
      });
    });
  }
  void OnText(std::string_view text) override {
    auto now = Clock::now();
    if (text.find(R"("event":"media")") == std::string_view::npos) return;
    if (have_last_ && window_.Contains(last_) && window_.Contains(now)) {
      double interval = std::chrono::duration<double, std::milli>(now - last_).count();
      jitter_.push_back(std::abs(interval - 20.0));
      if (interval > 40.0) ++gaps_;
    }
    if (window_.Contains(now)) ++received_;
    last_ = now;
    have_last_ = true;
  }
  void OnClose(uint16_t, std::string_view) override {
    *alive_ = false;
    std::lock_guard lock(results_.mutex);
    if (!stopping_) ++results_.closed_early;
    results_.jitter_ms.insert(results_.jitter_ms.end(), jitter_.begin(), jitter_.end());
    results_.received += received_;
    results_.sent += sent_;
    results_.gaps += gaps_;
    connection_.reset();
  }

 private:
  void Send() {
    if (stop_sent_) return;
    if (stopping_) {
      stop_sent_ = true;
      connection_->SendText(json{{"event", "stop"}, {"streamSid", stream_sid_}, {"stop", {{"callSid", "CA"}}}}.dump());
      return;
    }
    ++sequence_;
    // The frame is the pre-encoded payload plus three counters: the driver must cost little beside the platform.
    char sequence[24], timestamp[24];
    std::string_view seq(sequence,
                         static_cast<size_t>(std::to_chars(sequence, sequence + 24, sequence_).ptr - sequence));
    std::string_view ts(timestamp,
                        static_cast<size_t>(std::to_chars(timestamp, timestamp + 24, sequence_ * 20).ptr - timestamp));
    std::string message;
    message.reserve(frame_head_.size() + frame_tail_.size() + 2 * seq.size() + ts.size() + 64);
    message += R"({"event":"media","sequenceNumber":")";
    message += seq;
    message += frame_head_;
    message += seq;
    message += R"(","timestamp":")";
    message += ts;
    message += frame_tail_;
    connection_->SendText(std::move(message));
    if (window_.Contains(Clock::now())) ++sent_;
  }

  int index_;
  std::string token_;
  Window& window_;
  Results& results_;
  std::atomic<bool>& stopping_;
  std::shared_ptr<http::WebSocketConnection> connection_;
  Pacer& pacer_;
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);  // wakes outlive OnClose
  bool stop_sent_ = false;
  std::string stream_sid_;
  std::string frame_head_, frame_tail_;  // the constant parts of every inbound frame
  Clock::time_point last_;
  bool have_last_ = false;
  int64_t sequence_ = 1;
  std::vector<double> jitter_;
  int64_t received_ = 0, sent_ = 0, gaps_ = 0;
};

int Drive(int port, const std::string& secret, int streams, int seconds, int threads, int platform_pid) {
  SystemClock clock;
  telephony::media::MediaTokens tokens(secret, clock);
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back([&] { io.run(); });
  Window window;
  Results results;
  Pacer pacer(io);
  boost::asio::post(io, [&] { pacer.Start(); });
  std::atomic<bool> stopping{false};
  std::atomic<int> connected{0}, failed{0};
  std::vector<std::shared_ptr<http::WebSocketConnection>> connections(static_cast<size_t>(streams));
  std::mutex connections_mutex;
  std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/v1/media/twilio";
  auto began = Clock::now();
  for (int i = 0; i < streams; ++i) {
    http::WebSocketClientOptions options;
    options.socket.idle_timeout = std::chrono::seconds(60);
    http::WebSocketClient::AsyncConnect(
        io.get_executor(), url,
        std::make_unique<Stream>(i, tokens.Issue("bench" + std::to_string(i), std::chrono::hours(1)), window, results,
                                 stopping, pacer),
        options, [&, i](Result<std::shared_ptr<http::WebSocketConnection>> result) {
          if (!result) {
            ++failed;
            std::cerr << "stream " << i << ": " << result.error().message << "\n";
            return;
          }
          std::lock_guard lock(connections_mutex);
          connections[static_cast<size_t>(i)] = *result;
          ++connected;
        });
    // Spread the start-up over ~1 s so that the frame schedules of the streams are spread too.
    std::this_thread::sleep_for(std::chrono::microseconds(1'000'000 / std::max(streams, 1)));
  }
  while (connected + failed < streams && Clock::now() - began < std::chrono::seconds(30)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // warm-up
  double platform_cpu_start = platform_pid > 0 ? ProcessCpuSeconds(platform_pid) : 0;
  double own_cpu_start = OwnCpuSeconds();
  auto window_start = Clock::now();
  window.start_ns = window_start.time_since_epoch().count();
  window.end_ns = (window_start + std::chrono::seconds(seconds)).time_since_epoch().count();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  double platform_cpu = platform_pid > 0 ? ProcessCpuSeconds(platform_pid) - platform_cpu_start : 0;
  double own_cpu = OwnCpuSeconds() - own_cpu_start;
  stopping = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // every stream sends its stop
  {
    std::lock_guard lock(connections_mutex);
    for (auto& connection : connections)
      if (connection) connection->Close(http::CloseCode::kNormal, "done");
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  boost::asio::post(io, [&] { pacer.Stop(); });
  work.reset();
  io.stop();
  for (auto& thread : pool) thread.join();

  std::lock_guard lock(results.mutex);
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  json out = {
      {"streams", streams},
      {"connected", connected.load()},
      {"failed", failed.load()},
      {"closed_early", results.closed_early},
      {"seconds", seconds},
      {"inbound_frames_sent", results.sent},
      {"outbound_frames_received", results.received},
      {"outbound_frames_expected", static_cast<int64_t>(streams) * seconds * 50},
      {"gaps_over_40ms", results.gaps},
      {"jitter_ms",
       {{"p50", Percentile(results.jitter_ms, 0.50)},
        {"p99", Percentile(results.jitter_ms, 0.99)},
        {"max",
         results.jitter_ms.empty() ? 0.0 : *std::max_element(results.jitter_ms.begin(), results.jitter_ms.end())},
        {"samples", results.jitter_ms.size()}}},
      {"platform_cpu_percent", 100.0 * platform_cpu / seconds},
      {"platform_cpu_ms_per_stream_second", 1000.0 * platform_cpu / seconds / std::max(streams, 1)},
      {"driver_cpu_percent", 100.0 * own_cpu / seconds},
      {"driver_cpu_ms_per_stream_second", 1000.0 * own_cpu / seconds / std::max(streams, 1)},
      // Per frame pair handled (one in, one out): comparable across runs where a starved process fell behind.
      {"platform_cpu_us_per_frame_pair",
       results.received > 0 ? 1e6 * platform_cpu / static_cast<double>(results.received) : 0.0},
      {"driver_cpu_us_per_frame_pair", results.sent > 0 ? 1e6 * own_cpu / static_cast<double>(results.sent) : 0.0},
      {"load_average_1m", load[0]}};
  std::cout << out.dump() << std::endl;
  return 0;
}

// ---- serve ----

std::atomic<http::Server*> g_server{nullptr};

int Serve(const std::string& secret, const std::string& handler_name, int io_threads) {
  SystemClock clock;
  telephony::media::MediaTokens tokens(secret, clock);
  auto factory = telephony::media::BuiltInHandler(handler_name);
  if (!factory) {
    std::cerr << factory.error().message << "\n";
    return 2;
  }
  telephony::media::MediaEndpoints endpoints(tokens, std::move(factory).value());
  http::ServerOptions options;
  options.port = 0;
  options.io_threads = io_threads;
  options.worker_threads = 2;
  options.websocket_routes = endpoints.Routes();
  http::Server server(options, [](http::Request&) { return http::Response::Text(404, "not found"); });
  if (auto started = server.Start(); !started) {
    std::cerr << started.error().message << "\n";
    return 1;
  }
  std::cout << json{{"port", server.port()}, {"pid", ::getpid()}}.dump() << std::endl;
  server.Run();
  const auto& stats = endpoints.stats();
  std::cerr << json{{"started", stats.started.load()},       {"refused", stats.refused.load()},
                    {"dropped", stats.dropped.load()},       {"frames_in", stats.frames_in.load()},
                    {"frames_out", stats.frames_out.load()}, {"malformed", stats.malformed.load()}}
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Concurrent two-way media streams against the platform's media endpoint"};
  app.require_subcommand(1);
  std::string secret = "media-bench-secret-0123456789";
  std::string handler = "echo";
  int io_threads = 2, port = 0, streams = 1000, seconds = 20, threads = 2, platform_pid = 0;
  auto* serve = app.add_subcommand("serve", "the platform side");
  serve->add_option("--secret", secret);
  serve->add_option("--handler", handler);
  serve->add_option("--io-threads", io_threads);
  auto* drive = app.add_subcommand("drive", "the carrier side");
  drive->add_option("--port", port)->required();
  drive->add_option("--secret", secret);
  drive->add_option("--streams", streams);
  drive->add_option("--seconds", seconds);
  drive->add_option("--threads", threads);
  drive->add_option("--platform-pid", platform_pid);
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  if (serve->parsed()) return Serve(secret, handler, io_threads);
  return Drive(port, secret, streams, seconds, threads, platform_pid);
}
