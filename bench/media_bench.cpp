// media_bench: many concurrent two-way carrier media streams (Twilio Media
// Streams format, µ-law, 20 ms frames) against the platform's media endpoint.
//
//   media_bench serve --secret S [--handler echo] [--io-threads 2] [--realtime PRIORITY]
//       the platform side: http::Server + telephony::media::MediaEndpoints, exactly
//       what `clozit serve` mounts at /v1/media/*; prints {"port":…} and serves until SIGTERM.
//   media_bench drive --port P --secret S --streams 1000 --seconds 20 [--platform-pid PID] [--realtime PRIORITY]
//       the carrier side (one thread, epoll): opens the streams, sends one inbound frame per stream every 20 ms
//       on an absolute schedule, and records when each outbound (agent) frame arrives.
//
// Jitter is |inter-arrival − 20 ms| of consecutive outbound frames of one stream, over
// the measurement window (after every stream is up and a warm-up). With --platform-pid
// the driver also reads the platform's CPU time from /proc over the same window. --realtime runs the
// platform's I/O threads (server.io_realtime_priority) or the driver's thread SCHED_RR (ADR 0018).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <functional>
#include <iostream>
#include <random>
#include <vector>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "bench_stats.hpp"
#include "common/clock.hpp"
#include "common/realtime.hpp"
#include "http/server.hpp"
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

/// The measured span; frames before it are warm-up. The driver is one thread, so plain fields.
struct Window {
  Clock::time_point start = Clock::time_point::max();
  Clock::time_point end = Clock::time_point::max();
  bool Contains(Clock::time_point t) const { return t >= start && t < end; }
};

// The carrier side shares the machine's two cores with the platform, so it must cost little beside it: one
// thread, epoll and a 1 ms timerfd over plain non-blocking sockets. Beast performs each stream's upgrade
// handshake; after it, client frames are written pre-framed and masked (RFC 6455 §5.3, one random key per
// stream) and the server's frames are parsed from the byte stream. The platform side is exactly what
// `clozit serve` runs.

/// Appends one client frame (FIN set, masked) carrying `payload`.
void AppendClientFrame(std::string& out, uint8_t opcode, std::string_view payload, const std::array<char, 4>& key) {
  out.push_back(static_cast<char>(0x80 | opcode));
  size_t size = payload.size();
  if (size < 126) {
    out.push_back(static_cast<char>(0x80 | size));
  } else if (size < 65536) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(size >> 8));
    out.push_back(static_cast<char>(size & 0xFF));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((size >> shift) & 0xFF));
  }
  out.append(key.data(), key.size());
  size_t at = out.size();
  out.append(payload);
  for (size_t i = 0; i < size; ++i) out[at + i] = static_cast<char>(out[at + i] ^ key[i % 4]);
}

struct DriveStream {
  int fd = -1;
  std::array<char, 4> key{};
  std::string sid;
  std::string head, tail;  // the constant parts of every inbound media frame
  std::string out;         // bytes the socket would not take yet
  std::string in;          // received bytes not parsed yet
  std::string message;     // a fragmented server message being reassembled
  int64_t sequence = 1;
  Clock::time_point last{};
  bool have_last = false;
  bool want_write = false;
  bool stop_sent = false;
  bool close_sent = false;
  bool closed = false;
};

class Driver {
 public:
  Driver(int streams, const Window& window) : streams_(static_cast<size_t>(streams)), window_(window) {}
  ~Driver() {
    for (auto& stream : streams_)
      if (stream.fd >= 0) ::close(stream.fd);
    if (epoll_ >= 0) ::close(epoll_);
    if (timer_ >= 0) ::close(timer_);
  }

  /// Upgrades every stream and sends its `connected` and `start` frames; the failures, if any, on stderr.
  int Connect(int port, const telephony::media::MediaTokens& tokens) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    boost::asio::io_context io;
    boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port));
    std::mt19937 random(12345);
    // A 440 Hz tone, so the echo carries real samples.
    std::vector<int16_t> tone(telephony::media::kSamplesPerFrame);
    for (size_t i = 0; i < tone.size(); ++i) tone[i] = static_cast<int16_t>(8000 * std::sin(i * 2 * M_PI * 440 / 8000));
    const std::string payload = telephony::detail::Base64(telephony::media::MulawEncode(tone));
    int failed = 0;
    for (size_t i = 0; i < streams_.size(); ++i) {
      DriveStream& stream = streams_[i];
      try {
        boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws(io);
        ws.next_layer().connect(endpoint);
        ws.handshake("127.0.0.1:" + std::to_string(port), "/v1/media/twilio");
        stream.fd = ::dup(ws.next_layer().native_handle());  // the handshake's socket closes with `ws`
      } catch (const std::exception& error) {
        std::cerr << "stream " << i << ": " << error.what() << "\n";
        ++failed;
        continue;
      }
      int one = 1;
      setsockopt(stream.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fcntl(stream.fd, F_SETFL, fcntl(stream.fd, F_GETFL) | O_NONBLOCK);
      for (auto& byte : stream.key) byte = static_cast<char>(random());
      stream.sid = "MZ" + std::to_string(1000000 + i);
      stream.head = R"(","streamSid":")" + stream.sid + R"(","media":{"track":"inbound","chunk":")";
      stream.tail = R"(","payload":")" + payload + "\"}}";
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u64 = i;
      epoll_ctl(epoll_, EPOLL_CTL_ADD, stream.fd, &event);
      std::string token = tokens.Issue("bench" + std::to_string(i), std::chrono::hours(1));
      Send(stream, R"({"event":"connected","protocol":"Call","version":"1.0.0"})");
      Send(stream, json{{"event", "start"},
                        {"sequenceNumber", "1"},
                        {"streamSid", stream.sid},
                        {"start",
                         {{"accountSid", "ACbench"},
                          {"streamSid", stream.sid},
                          {"callSid", "CA" + std::to_string(i)},
                          {"tracks", {"inbound"}},
                          {"customParameters", {{"token", token}}},
                          {"mediaFormat", {{"encoding", "audio/x-mulaw"}, {"sampleRate", 8000}, {"channels", 1}}}}}}
                       .dump());
    }
    return failed;
  }

  /// Runs the streams until `until`: every 1 ms tick sends the media frame of the streams in that tick's
  /// phase slot (stream i in slot i mod 20), so each stream sends every 20 ms on an absolute schedule and
  /// the streams stay spread over the frame. `stopping` from `stop_at` on: each stream sends `stop`, then
  /// closes 200 ms later.
  void Run(Clock::time_point stop_at, Clock::time_point until, const std::function<void(Clock::time_point)>& on_tick) {
    timer_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    itimerspec spec{};
    spec.it_interval.tv_nsec = 1'000'000;
    spec.it_value.tv_nsec = 1'000'000;
    timerfd_settime(timer_, 0, &spec, nullptr);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = kTimerKey;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, timer_, &event);
    std::array<epoll_event, 256> events{};
    for (;;) {
      int ready = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 100);
      for (int e = 0; e < ready; ++e) {
        if (events[e].data.u64 == kTimerKey) {
          uint64_t expirations = 0;
          if (::read(timer_, &expirations, sizeof expirations) != sizeof expirations) continue;
          auto now = Clock::now();
          if (now >= until) return;
          on_tick(now);
          // A late wake-up sends the missed slots too: the schedule is absolute.
          for (uint64_t k = 0; k < expirations; ++k, ++tick_) {
            for (size_t i = tick_ % kSlots; i < streams_.size(); i += kSlots) {
              Tick(streams_[i], now >= stop_at, now >= stop_at + std::chrono::milliseconds(200));
            }
          }
          continue;
        }
        DriveStream& stream = streams_[events[e].data.u64];
        if (events[e].events & EPOLLOUT) Flush(stream);
        if (events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) Receive(stream, stop_at);
      }
    }
  }

  int64_t sent = 0, received = 0, gaps = 0, closed_early = 0, send_backlogged = 0;
  std::vector<double> jitter_ms;

 private:
  static constexpr size_t kSlots = 20;
  static constexpr uint64_t kTimerKey = UINT64_MAX;

  void Tick(DriveStream& stream, bool stopping, bool closing) {
    if (stream.closed || stream.close_sent) return;
    if (closing) {
      stream.close_sent = true;
      const char normal[2] = {0x03, static_cast<char>(0xE8)};  // 1000
      AppendClientFrame(stream.out, 0x8, std::string_view(normal, 2), stream.key);
      Flush(stream);
      return;
    }
    if (stopping) {
      if (!stream.stop_sent) {
        stream.stop_sent = true;
        Send(stream, R"({"event":"stop","streamSid":")" + stream.sid + R"(","stop":{"callSid":"CA"}})");
      }
      return;
    }
    ++stream.sequence;
    // The frame is the pre-encoded payload plus three counters.
    char sequence[24], timestamp[24];
    std::string_view seq(sequence,
                         static_cast<size_t>(std::to_chars(sequence, sequence + 24, stream.sequence).ptr - sequence));
    std::string_view ts(
        timestamp, static_cast<size_t>(std::to_chars(timestamp, timestamp + 24, stream.sequence * 20).ptr - timestamp));
    message_.clear();
    message_ += R"({"event":"media","sequenceNumber":")";
    message_ += seq;
    message_ += stream.head;
    message_ += seq;
    message_ += R"(","timestamp":")";
    message_ += ts;
    message_ += stream.tail;
    Send(stream, message_);
    if (window_.Contains(Clock::now())) ++sent;
  }

  void Send(DriveStream& stream, std::string_view text) {
    AppendClientFrame(stream.out, 0x1, text, stream.key);
    Flush(stream);
  }

  void Flush(DriveStream& stream) {
    while (!stream.out.empty()) {
      ssize_t n = ::send(stream.fd, stream.out.data(), stream.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        stream.out.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // The platform is not reading: keep the bytes and wait for room.
        ++send_backlogged;
        Watch(stream, true);
      } else {
        stream.out.clear();  // reset by the peer: Receive sees the end
      }
      return;
    }
    Watch(stream, false);
  }

  void Watch(DriveStream& stream, bool write) {
    if (stream.want_write == write) return;
    stream.want_write = write;
    epoll_event event{};
    event.events = write ? uint32_t{EPOLLIN | EPOLLOUT} : uint32_t{EPOLLIN};
    event.data.u64 = static_cast<uint64_t>(&stream - streams_.data());
    epoll_ctl(epoll_, EPOLL_CTL_MOD, stream.fd, &event);
  }

  void Receive(DriveStream& stream, Clock::time_point stop_at) {
    char buffer[16384];
    for (;;) {
      ssize_t n = ::recv(stream.fd, buffer, sizeof buffer, 0);
      if (n > 0) {
        stream.in.append(buffer, static_cast<size_t>(n));
        // A short read emptied the socket: epoll is level-triggered, so asking again only to hear EAGAIN
        // would cost a system call per frame.
        if (static_cast<size_t>(n) < sizeof buffer) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      End(stream, stop_at);  // EOF or reset
      return;
    }
    auto now = Clock::now();
    size_t at = 0;
    while (!stream.closed) {
      std::string_view rest(stream.in.data() + at, stream.in.size() - at);
      if (rest.size() < 2) break;
      auto byte0 = static_cast<uint8_t>(rest[0]), byte1 = static_cast<uint8_t>(rest[1]);
      size_t header = 2;
      uint64_t size = byte1 & 0x7F;
      if (size == 126) {
        if (rest.size() < 4) break;
        size = (static_cast<uint64_t>(static_cast<uint8_t>(rest[2])) << 8) | static_cast<uint8_t>(rest[3]);
        header = 4;
      } else if (size == 127) {
        if (rest.size() < 10) break;
        size = 0;
        for (int k = 2; k < 10; ++k) size = (size << 8) | static_cast<uint8_t>(rest[static_cast<size_t>(k)]);
        header = 10;
      }
      if (byte1 & 0x80) header += 4;  // a server must not mask; tolerated
      if (rest.size() < header + size) break;
      std::string_view payload = rest.substr(header, size);
      at += header + size;
      uint8_t opcode = byte0 & 0x0F;
      bool fin = (byte0 & 0x80) != 0;
      if (opcode == 0x8) {
        End(stream, stop_at);
        return;
      }
      if (opcode == 0x9) {
        AppendClientFrame(stream.out, 0xA, payload, stream.key);
        Flush(stream);
        continue;
      }
      if (opcode == 0xA) continue;
      if (!fin || opcode == 0x0) {
        stream.message.append(payload);
        if (!fin) continue;
        payload = stream.message;
      }
      OnMessage(stream, payload, now);
      stream.message.clear();
    }
    stream.in.erase(0, at);
  }

  void OnMessage(DriveStream& stream, std::string_view text, Clock::time_point now) {
    if (text.find(R"("event":"media")") == std::string_view::npos) return;
    if (stream.have_last && window_.Contains(stream.last) && window_.Contains(now)) {
      double interval = std::chrono::duration<double, std::milli>(now - stream.last).count();
      jitter_ms.push_back(std::abs(interval - 20.0));
      if (interval > 40.0) ++gaps;
    }
    if (window_.Contains(now)) ++received;
    stream.last = now;
    stream.have_last = true;
  }

  void End(DriveStream& stream, Clock::time_point stop_at) {
    if (stream.closed) return;
    stream.closed = true;
    if (Clock::now() < stop_at) ++closed_early;
    epoll_ctl(epoll_, EPOLL_CTL_DEL, stream.fd, nullptr);
    ::close(stream.fd);
    stream.fd = -1;
  }

  std::vector<DriveStream> streams_;
  const Window& window_;
  int epoll_ = -1;
  int timer_ = -1;
  uint64_t tick_ = 0;
  std::string message_;  // reused for every media frame
};

int Drive(int port, const std::string& secret, int streams, int seconds, int platform_pid, int realtime) {
  if (realtime > 0) {
    // The driver stands in for the carrier's machines: it should not time-share with the platform it measures.
    if (auto set = SetRealtimePriority(realtime); !set) std::cerr << set.error().message << "\n";
  }
  SystemClock clock;
  telephony::media::MediaTokens tokens(secret, clock);
  Window window;
  Driver driver(streams, window);
  int failed = driver.Connect(port, tokens);
  int connected = streams - failed;
  // Warm-up: every stream started and the platform's queues settled before measuring.
  auto window_start = Clock::now() + std::chrono::seconds(2);
  auto window_end = window_start + std::chrono::seconds(seconds);
  window.start = window_start;
  window.end = window_end;
  double platform_cpu_start = 0, own_cpu_start = 0, platform_cpu = 0, own_cpu = 0;
  bool started = false, ended = false;
  driver.Run(window_end, window_end + std::chrono::milliseconds(1500), [&](Clock::time_point now) {
    if (!started && now >= window_start) {
      started = true;
      platform_cpu_start = platform_pid > 0 ? ProcessCpuSeconds(platform_pid) : 0;
      own_cpu_start = OwnCpuSeconds();
    }
    if (started && !ended && now >= window_end) {
      ended = true;
      platform_cpu = platform_pid > 0 ? ProcessCpuSeconds(platform_pid) - platform_cpu_start : 0;
      own_cpu = OwnCpuSeconds() - own_cpu_start;
    }
  });

  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  auto& jitter = driver.jitter_ms;
  json out = {
      {"streams", streams},
      {"connected", connected},
      {"failed", failed},
      {"closed_early", driver.closed_early},
      {"seconds", seconds},
      {"inbound_frames_sent", driver.sent},
      {"inbound_sends_backlogged", driver.send_backlogged},
      {"outbound_frames_received", driver.received},
      {"outbound_frames_expected", static_cast<int64_t>(streams) * seconds * 50},
      {"gaps_over_40ms", driver.gaps},
      {"jitter_ms",
       {{"p50", Percentile(jitter, 0.50)},
        {"p99", Percentile(jitter, 0.99)},
        {"max", jitter.empty() ? 0.0 : *std::max_element(jitter.begin(), jitter.end())},
        {"samples", jitter.size()}}},
      {"platform_cpu_percent", 100.0 * platform_cpu / seconds},
      {"platform_cpu_ms_per_stream_second", 1000.0 * platform_cpu / seconds / std::max(streams, 1)},
      {"driver_cpu_percent", 100.0 * own_cpu / seconds},
      {"driver_cpu_ms_per_stream_second", 1000.0 * own_cpu / seconds / std::max(streams, 1)},
      // Per frame pair handled (one in, one out): comparable across runs where a starved process fell behind.
      {"platform_cpu_us_per_frame_pair",
       driver.received > 0 ? 1e6 * platform_cpu / static_cast<double>(driver.received) : 0.0},
      {"driver_cpu_us_per_frame_pair", driver.sent > 0 ? 1e6 * own_cpu / static_cast<double>(driver.sent) : 0.0},
      {"load_average_1m", load[0]},
      {"realtime_priority", realtime}};
  std::cout << out.dump() << std::endl;
  return failed == 0 ? 0 : 1;
}

// ---- serve ----

std::atomic<http::Server*> g_server{nullptr};

int Serve(const std::string& secret, const std::string& handler_name, int io_threads, int realtime) {
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
  options.io_realtime_priority = realtime;
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
  int io_threads = 2, port = 0, streams = 1000, seconds = 20, platform_pid = 0, realtime = 0;
  auto* serve = app.add_subcommand("serve", "the platform side");
  serve->add_option("--secret", secret);
  serve->add_option("--handler", handler);
  serve->add_option("--io-threads", io_threads);
  serve->add_option("--realtime", realtime, "SCHED_RR priority of the I/O threads (0: time-shared)");
  auto* drive = app.add_subcommand("drive", "the carrier side");
  drive->add_option("--port", port)->required();
  drive->add_option("--secret", secret);
  drive->add_option("--streams", streams);
  drive->add_option("--seconds", seconds);
  drive->add_option("--platform-pid", platform_pid);
  drive->add_option("--realtime", realtime, "SCHED_RR priority of the driver's thread (0: time-shared)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);
  if (serve->parsed()) return Serve(secret, handler, io_threads, realtime);
  return Drive(port, secret, streams, seconds, platform_pid, realtime);
}
