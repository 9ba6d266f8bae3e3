// Internal state shared by the listener and the connection sessions.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>

#include "http/server.hpp"

namespace clozit::http::detail {

/// Per-connection handle the shutdown path uses to close idle keep-alive
/// connections. Touched only on the connection's strand.
struct SessionControl {
  boost::asio::any_io_executor executor;
  std::function<void()> cancel;  // cancels pending I/O; empty once the session ended
  bool idle = false;             // waiting for the first byte of a new request
};

struct ServerState {
  ServerState(ServerOptions opts, Handler h)
      : options(std::move(opts)),
        handler(std::move(h)),
        io(options.io_threads),
        workers(static_cast<size_t>(options.worker_threads)),
        acceptor(boost::asio::make_strand(io)) {}

  ServerOptions options;
  Handler handler;
  boost::asio::io_context io;
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
