// http: the HTTP/1.1 server (Boost.Beast on C++20 coroutines).
//
// Network I/O runs on `io_threads` threads, each with its own io_context; a connection lives on one of them;
// handlers run on a separate pool of `worker_threads` so that blocking work
// (SQLite, libpq, argon2) never stalls the event loop. Every socket has a body
// limit, a header timeout and an idle timeout. With a certificate and key the
// server speaks TLS 1.2+ only; without, it refuses to bind anything but
// loopback unless `allow_plaintext_public` is set.
//
// Shutdown() (also on SIGTERM/SIGINT inside Run) stops accepting, closes idle
// keep-alive connections, lets requests already read finish and answers them
// with `Connection: close`, and gives up after `shutdown_deadline`.
//
// Paths in `websocket_routes` are upgraded to WebSockets on the connection's own I/O thread
// (websocket.hpp); shutdown sends their connections a 1001 close frame.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "http/forwarded.hpp"
#include "http/router.hpp"
#include "http/websocket.hpp"

namespace clozit::http {

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: pick a free port
  int io_threads = 2;
  /// 1..99: the I/O threads (network and media) run SCHED_RR at this priority (common/realtime.hpp);
  /// 0: time-sharing like every other thread. Without the privilege the server logs it and runs on.
  int io_realtime_priority = 0;
  int worker_threads = 4;
  uint64_t body_limit = 1 << 20;
  // Uploads (multi-gigabyte CSV files) go to a file as they arrive, never into memory, for the requests this
  // predicate selects; the per-read idle timeout applies instead of the header timeout while they stream.
  std::function<bool(std::string_view method, std::string_view path)> streams_body;
  /// For the requests streams_body selects: called on a worker thread with the headers alone, before any of
  /// the body is read (and before a `100 Continue`). A response refuses the upload: it is sent at once and the
  /// connection closes, so a caller the route would refuse cannot make the server spool gigabytes first.
  std::function<std::optional<Response>(Request& headers_only)> admit_upload;
  uint64_t upload_limit = uint64_t{16} << 30;
  std::string upload_directory = "var/uploads";
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds shutdown_deadline{10'000};
  std::string tls_cert_file;
  std::string tls_key_file;
  bool allow_plaintext_public = false;
  /// Reverse proxies whose X-Forwarded-For names the client (forwarded.hpp); empty: the socket's peer, always.
  TrustedProxies trusted_proxies;
  bool handle_signals = true;
  /// Paths upgraded to WebSockets (see websocket.hpp); other requests to them reach `handler`.
  WebSocketRoutes websocket_routes;
  WebSocketOptions websocket;
};

namespace detail {
struct ServerState;
}

class Server {
 public:
  /// `handler` is called on worker threads, concurrently.
  Server(ServerOptions options, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds and listens. Errors: invalid_argument (bad address, plaintext on a
  /// public address, unreadable certificate), unavailable (port in use).
  Result<void> Start();
  /// The bound port (after Start).
  uint16_t port() const;
  /// Serves until Shutdown() or a signal; returns when every connection is closed.
  void Run();
  /// Begins a graceful shutdown. Thread-safe; idempotent.
  void Shutdown();

 private:
  std::unique_ptr<detail::ServerState> state_;
};

}  // namespace clozit::http
