// http: WebSocket connections (RFC 6455) on the same server and strand model
// as HTTP — for the carriers' media streams.
//
// A route declared in ServerOptions::websocket_routes is upgraded instead of
// being handed to the HTTP handler: its WebSocketAccept runs on a worker
// thread with the upgrade request and either refuses (the Error becomes a
// problem+json answer, e.g. 401, and no upgrade happens) or returns the
// WebSocketHandler that will own the connection.
//
// Threading: every handler callback runs on the connection's strand, one at a
// time, and must not block (post blocking work elsewhere). WebSocketConnection
// is what a handler talks back through; it is thread-safe (sends are posted to
// the strand). Outbound messages wait in a bounded queue behind the one write
// in flight: a peer that does not read fast enough to keep the queue under
// `queue_limit` is disconnected with a warning, so a slow peer never costs
// unbounded memory. Keep-alive pings go out after half the idle timeout of
// silence; a peer silent for the whole idle timeout is dropped. On server
// shutdown open connections get a close frame (1001 going away).
//
// WebSocketClient opens a plain ws:// connection (tests, the carrier
// emulator, benchmarks) and drives the same handler interface.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "common/result.hpp"
#include "http/message.hpp"

namespace clozit::http {

/// RFC 6455 close codes used here.
enum class CloseCode : uint16_t {
  kNormal = 1000,
  kGoingAway = 1001,
  kProtocolError = 1002,
  kPolicyViolation = 1008,  // e.g. a media stream with a bad token
  kTooBig = 1009,
  kTryAgainLater = 1013,  // the peer was too slow for the outbound queue
};

/// The sending side of one connection. Thread-safe; calls after the connection closed are ignored.
class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  virtual void SendText(std::string message) = 0;
  virtual void SendBinary(std::string message) = 0;
  /// Sends a close frame once the queued messages are written.
  virtual void Close(CloseCode code = CloseCode::kNormal, std::string reason = {}) = 0;
  /// Drops the TCP connection at once (no close frame): what a crashed peer looks like.
  virtual void Abort() = 0;
  /// The connection's strand: post here to run code in step with the callbacks (timers, state).
  virtual boost::asio::any_io_executor executor() const = 0;
};

/// One connection's behaviour. Callbacks run on the connection's strand.
class WebSocketHandler {
 public:
  virtual ~WebSocketHandler() = default;
  /// The connection is open; keep `connection` to send. Called before any message.
  virtual void OnOpen(std::shared_ptr<WebSocketConnection> connection) = 0;
  virtual void OnText(std::string_view message) = 0;
  virtual void OnBinary(std::string_view message) { (void)message; }
  /// The connection ended (close frame, error, timeout, slow peer, shutdown). The last callback;
  /// drop the WebSocketConnection here (the handler is destroyed right after).
  virtual void OnClose(uint16_t code, std::string_view reason) = 0;
};

/// Decides an upgrade request: a handler to accept it, or an Error to refuse it (no upgrade).
using WebSocketAccept = std::function<Result<std::unique_ptr<WebSocketHandler>>(const Request& request)>;
/// Exact paths (no parameters) → their acceptors.
using WebSocketRoutes = std::map<std::string, WebSocketAccept, std::less<>>;

struct WebSocketOptions {
  size_t message_limit = 64 * 1024;  // largest inbound message
  size_t queue_limit = 256;          // outbound messages waiting behind the write in flight
  std::chrono::milliseconds idle_timeout{30'000};
  std::chrono::milliseconds handshake_timeout{10'000};
};

struct WebSocketClientOptions {
  WebSocketOptions socket;
  Headers headers;  // extra headers on the upgrade request
};

class WebSocketClient {
 public:
  /// Connects to `url` ("ws://127.0.0.1:8080/path?query") on `executor`'s context and runs `handler`
  /// there; blocks the caller until the handshake is done. Never call it from a thread of that context.
  /// Errors: invalid_argument (bad URL), unavailable (no connection), or the refusal as
  /// unauthenticated/permission_denied/not_found/… with the HTTP status in the message.
  static Result<std::shared_ptr<WebSocketConnection>> Connect(boost::asio::any_io_executor executor,
                                                              const std::string& url,
                                                              std::unique_ptr<WebSocketHandler> handler,
                                                              WebSocketClientOptions options = {});
  /// The same without blocking: `done` runs on the connection's strand after OnOpen; on failure the
  /// handler is destroyed without any callback.
  static void AsyncConnect(boost::asio::any_io_executor executor, const std::string& url,
                           std::unique_ptr<WebSocketHandler> handler, WebSocketClientOptions options,
                           std::function<void(Result<std::shared_ptr<WebSocketConnection>>)> done);
};

}  // namespace clozit::http
