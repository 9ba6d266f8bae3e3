// Internal state shared by the listener and the connection sessions.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include "http/server.hpp"

namespace clozit::http::detail {

/// Per-connection handle the shutdown path uses to close idle keep-alive
/// connections. Touched only on the connection's I/O thread.
struct SessionControl {
  boost::asio::any_io_executor executor;
  std::function<void()> cancel;  // cancels pending I/O; empty once the session ended
  bool idle = false;             // waiting for the first byte of a new request
};

struct ServerState {
  ServerState(ServerOptions opts, Handler h)
      : options(std::move(opts)),
        handler(std::move(h)),
        contexts(MakeContexts(options.io_threads)),
        io(*contexts.front()),
        workers(static_cast<size_t>(options.worker_threads)),
        acceptor(io) {
    for (auto& context : contexts) keep_running.push_back(boost::asio::make_work_guard(*context));
  }

  /// The context the next accepted connection lives on (round robin). On the listener's thread.
  boost::asio::io_context& NextContext() { return *contexts[next_context++ % contexts.size()]; }

  /// Ends every I/O thread's loop.
  void StopAll() {
    keep_running.clear();
    for (auto& context : contexts) context->stop();
  }

  static std::vector<std::unique_ptr<boost::asio::io_context>> MakeContexts(int threads) {
    std::vector<std::unique_ptr<boost::asio::io_context>> contexts;
    // Concurrency hint 1: each context is run by exactly one thread, so its scheduler skips cross-thread wake-ups.
    for (int i = 0; i < std::max(threads, 1); ++i) contexts.push_back(std::make_unique<boost::asio::io_context>(1));
    return contexts;
  }

  ServerOptions options;
  Handler handler;
  // One io_context per I/O thread, each connection pinned to one of them for its whole life: the context's
  // single thread serialises the connection's handlers (no strand, no lock hand-offs between threads), and a
  // thread can serve all its connections' timers from one timer queue.
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts;
  boost::asio::io_context& io;  // contexts[0]: also the listener's, the signals' and the shutdown's
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> keep_running;
  size_t next_context = 0;
  boost::asio::thread_pool workers;
  boost::asio::ip::tcp::acceptor acceptor;
  std::optional<boost::asio::ssl::context> tls;
  std::atomic<bool> stopping{false};
  std::atomic<int> open_sessions{0};

  std::mutex mutex;
  std::map<uint64_t, std::shared_ptr<SessionControl>> sessions;  // guarded by mutex
  uint64_t next_session_id = 0;                                  // guarded by mutex
};

/// Serves one accepted connection until it closes. Defined in session.cpp.
void StartSession(ServerState& state, boost::asio::ip::tcp::socket socket);

}  // namespace clozit::http::detail
