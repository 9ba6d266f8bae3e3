// WebSocketClient: resolve, connect, handshake, then the shared WebSocketPeer.
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <future>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "http/detail/websocket_peer.hpp"
#include "http/websocket.hpp"

namespace clozit::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

struct WsUrl {
  std::string host;
  std::string port;
  std::string target;
};

Result<WsUrl> ParseWsUrl(const std::string& url) {
  constexpr std::string_view kScheme = "ws://";
  if (!url.starts_with(kScheme)) return Error::InvalidArgument("url", "only ws:// URLs are supported: " + url);
  std::string rest = url.substr(kScheme.size());
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  WsUrl out;
  out.target = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = authority.rfind(':');
  out.host = authority.substr(0, colon);
  out.port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  if (out.host.empty() || out.port.empty()) return Error::InvalidArgument("url", "no host in " + url);
  return out;
}

Error Refused(int status) {
  std::string message = "websocket handshake refused with HTTP " + std::to_string(status);
  switch (status) {
    case 401:
      return Error::Make(ErrorCode::kUnauthenticated, message);
    case 403:
      return Error::Make(ErrorCode::kPermissionDenied, message);
    case 404:
      return Error::Make(ErrorCode::kNotFound, message);
    default:
      return Error::Make(ErrorCode::kUnavailable, message);
  }
}

using Done = std::function<void(Result<std::shared_ptr<WebSocketConnection>>)>;

asio::awaitable<void> ConnectAndRun(WsUrl url, std::unique_ptr<WebSocketHandler> handler,
                                    WebSocketClientOptions options, Done done) {
  auto executor = co_await asio::this_coro::executor;
  boost::system::error_code ec;
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(url.host, url.port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    done(Error::Make(ErrorCode::kUnavailable, "cannot resolve " + url.host + ": " + ec.message()));
    co_return;
  }
  beast::tcp_stream tcp_stream(executor);
  tcp_stream.expires_after(options.socket.handshake_timeout);
  co_await tcp_stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    done(Error::Make(ErrorCode::kUnavailable, "cannot connect to " + url.host + ":" + url.port + ": " + ec.message()));
    co_return;
  }
  tcp_stream.socket().set_option(tcp::no_delay(true), ec);
  tcp_stream.expires_never();
  websocket::stream<beast::tcp_stream> ws(std::move(tcp_stream));
  ws.set_option(websocket::stream_base::timeout{options.socket.handshake_timeout, options.socket.idle_timeout, true});
  ws.set_option(websocket::stream_base::decorator([headers = options.headers](websocket::request_type& request) {
    for (const auto& [name, value] : headers.all()) request.set(name, value);
  }));
  websocket::response_type response;
  co_await ws.async_handshake(response, url.host + ":" + url.port, url.target,
                              asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    int status = static_cast<int>(response.result_int());
    if (status != 0 && status != 101) {
      done(Refused(status));
    } else {
      done(Error::Make(ErrorCode::kUnavailable, "websocket handshake failed: " + ec.message()));
    }
    co_return;
  }
  auto peer = std::make_shared<detail::WebSocketPeer<beast::tcp_stream>>(std::move(ws), std::move(handler),
                                                                         options.socket, url.target);
  peer->Open();
  done(std::shared_ptr<WebSocketConnection>(peer));
  co_await peer->ReadLoop();
}

}  // namespace

void WebSocketClient::AsyncConnect(asio::any_io_executor executor, const std::string& url,
                                   std::unique_ptr<WebSocketHandler> handler, WebSocketClientOptions options,
                                   Done done) {
  auto parsed = ParseWsUrl(url);
  if (!parsed) {
    // Never call back from inside AsyncConnect: the caller may hold a lock its callback takes.
    asio::post(executor, [done = std::move(done), error = parsed.error()] { done(error); });
    return;
  }
  auto strand = asio::make_strand(executor);
  asio::co_spawn(strand,
                 ConnectAndRun(std::move(parsed).value(), std::move(handler), std::move(options), std::move(done)),
                 asio::detached);
}

Result<std::shared_ptr<WebSocketConnection>> WebSocketClient::Connect(asio::any_io_executor executor,
                                                                      const std::string& url,
                                                                      std::unique_ptr<WebSocketHandler> handler,
                                                                      WebSocketClientOptions options) {
  auto promise = std::make_shared<std::promise<Result<std::shared_ptr<WebSocketConnection>>>>();
  auto future = promise->get_future();
  AsyncConnect(
      std::move(executor), url, std::move(handler), std::move(options),
      [promise](Result<std::shared_ptr<WebSocketConnection>> result) { promise->set_value(std::move(result)); });
  return future.get();
}

}  // namespace clozit::http
