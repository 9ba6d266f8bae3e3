// One HTTP/1.1 connection: read a request, hand it to a worker, write the
// response, repeat while keep-alive. Plain TCP and TLS share one coroutine.
// Bodies of streamed routes (uploads) are written to a file as they arrive.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>

#include "http/detail/server_state.hpp"
#include "http/detail/websocket_peer.hpp"

namespace clozit::http::detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr uint32_t kHeaderLimit = 16 * 1024;

Request ToRequest(const bhttp::request_header<>& in, const std::string& remote_ip, bool tls) {
  Request out;
  out.method = std::string(in.method_string());
  out.target = std::string(in.target());
  std::string_view target = in.target();
  auto question = target.find('?');
  out.path = PercentDecode(target.substr(0, question), false);
  if (question != std::string_view::npos) out.query = ParseQuery(target.substr(question + 1));
  for (const auto& field : in) out.headers.Add(std::string(field.name_string()), std::string(field.value()));
  out.remote_ip = remote_ip;
  out.tls = tls;
  return out;
}

/// As ToRequest, with the client's address as the trusted proxies in front of the server report it.
Request ToRequest(const ServerState& state, const bhttp::request_header<>& in, const std::string& peer, bool tls) {
  Request out = ToRequest(in, peer, tls);
  if (!state.options.trusted_proxies.empty()) {
    // Every line, in order, as one list (RFC 9110 §5.3): a proxy that adds its own line after the client's would
    // otherwise leave the client's line, which it chose freely, as the one read.
    std::optional<std::string> forwarded;
    auto [first, last] = in.equal_range("X-Forwarded-For");
    for (auto field = first; field != last; ++field) {
      forwarded = forwarded ? *forwarded + ", " + std::string(field->value()) : std::string(field->value());
    }
    out.remote_ip = state.options.trusted_proxies.ClientAddress(
        peer, forwarded ? std::optional<std::string_view>(*forwarded) : std::nullopt);
  }
  return out;
}

bhttp::response<bhttp::string_body> ToBeast(Response&& in, unsigned version, bool keep_alive) {
  bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(in.status), version};
  for (auto& [name, value] : in.headers.all()) out.insert(name, value);
  out.body() = std::move(in.body);
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

Error BodyTooLarge(uint64_t limit) {
  return Error::Make(ErrorCode::kPayloadTooLarge, "request body exceeds " + std::to_string(limit) + " bytes", "body");
}

template <class Stream>
asio::awaitable<void> WriteProblem(Stream& stream, const Error& error, unsigned version) {
  auto response = ToBeast(Problem(error), version, false);
  boost::system::error_code ec;
  co_await bhttp::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

// A fresh, exclusive file name for one upload; uniqueness is all that matters (the file is opened O_EXCL).
std::string NewUploadPath(const std::string& directory) {
  static std::atomic<uint64_t> counter{0};
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  return directory + "/upload-" + std::to_string(::getpid()) + "-" + std::to_string(now) + "-" +
         std::to_string(counter.fetch_add(1)) + ".part";
}

// Upgrades a request on a WebSocket route: the route's acceptor decides on a worker (it may refuse with a
// problem+json answer), then the connection becomes a WebSocketPeer until it closes. True once the stream
// has been handed over (the caller must not touch it again).
template <class Stream>
asio::awaitable<bool> ServeWebSocket(ServerState& state, Stream& stream, SessionControl& control,
                                     bhttp::request<bhttp::string_body> beast_request, const WebSocketAccept& accept,
                                     std::shared_ptr<Request> request) {
  std::optional<Result<std::unique_ptr<WebSocketHandler>>> accepted;
  auto work = [&accepted, &accept, request]() -> asio::awaitable<void> {
    accepted.emplace(accept(*request));
    co_return;
  };
  co_await asio::co_spawn(state.workers.get_executor(), std::move(work), asio::use_awaitable);
  if (!*accepted) {
    spdlog::info("websocket upgrade refused on {}: {}", request->path, accepted->error().message);
    co_await WriteProblem(stream, accepted->error(), beast_request.version());
    co_return false;
  }
  websocket::stream<Stream> ws(std::move(stream));
  beast::get_lowest_layer(ws).expires_never();
  ws.set_option(websocket::stream_base::timeout{state.options.websocket.handshake_timeout,
                                                state.options.websocket.idle_timeout, true});
  boost::system::error_code ec;
  co_await ws.async_accept(beast_request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return true;
  auto peer = std::make_shared<WebSocketPeer<Stream>>(std::move(ws), std::move(accepted->value()),
                                                      state.options.websocket, request->path);
  control.cancel = [peer] { peer->Close(CloseCode::kGoingAway, "server shutting down"); };
  control.idle = true;  // a shutdown closes it at once instead of waiting for it to finish
  peer->Open();
  if (state.stopping) peer->Close(CloseCode::kGoingAway, "server shutting down");
  co_await peer->ReadLoop();
  control.idle = false;
  co_return true;
}

template <class Stream>
asio::awaitable<bool> ServeRequests(ServerState& state, Stream& stream, SessionControl& control,
                                    const std::string& remote_ip, bool tls) {
  beast::flat_buffer buffer;
  auto& socket_layer = beast::get_lowest_layer(stream);
  bool first = true;
  for (;;) {
    if (state.stopping) co_return false;
    bhttp::request_parser<bhttp::string_body> parser;
    // Streamed routes take up to upload_limit; the others are held to body_limit once the route is known.
    parser.body_limit(std::max(state.options.body_limit, state.options.upload_limit));
    parser.header_limit(kHeaderLimit);
    socket_layer.expires_after(first ? state.options.header_timeout : state.options.idle_timeout);
    first = false;
    boost::system::error_code ec;
    control.idle = buffer.size() == 0;
    co_await bhttp::async_read_header(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    control.idle = false;
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      co_return false;
    }
    if (ec == bhttp::error::header_limit) {
      co_await WriteProblem(stream, Error::Make(ErrorCode::kPayloadTooLarge, "request headers too large"), 11);
      co_return false;
    }
    // Beast already refuses a Content-Length over the body limit while parsing the header.
    if (ec == bhttp::error::body_limit) {
      co_await WriteProblem(stream, BodyTooLarge(state.options.body_limit), parser.get().version());
      co_return false;
    }
    if (ec) {
      co_await WriteProblem(stream, Error::InvalidArgument("request", "malformed HTTP request: " + ec.message()), 11);
      co_return false;
    }
    unsigned version = parser.get().version();
    const bool streamed =
        state.options.streams_body &&
        state.options.streams_body(parser.get().method_string(), PercentDecode(PathOf(parser.get().target()), false));
    const uint64_t limit = streamed ? state.options.upload_limit : state.options.body_limit;
    if (parser.content_length() && *parser.content_length() > limit) {
      co_await WriteProblem(stream, BodyTooLarge(limit), version);
      co_return false;
    }
    if (streamed && state.options.admit_upload) {
      auto headers_only = std::make_shared<Request>(ToRequest(state, parser.get(), remote_ip, tls));
      // Named, not a temporary inside the co_await (see the handler's below).
      auto admit = [&state, headers_only]() -> asio::awaitable<std::optional<Response>> {
        try {
          co_return state.options.admit_upload(*headers_only);
        } catch (const std::exception& e) {
          spdlog::error("upload admission failed with exception: {}", e.what());
          co_return Problem(Error::Internal("upload admission failed"), headers_only->request_id);
        }
      };
      std::optional<Response> refusal =
          co_await asio::co_spawn(state.workers.get_executor(), std::move(admit), asio::use_awaitable);
      if (refusal) {
        auto beast_response = ToBeast(std::move(*refusal), version, false);
        socket_layer.expires_after(state.options.idle_timeout);
        co_await bhttp::async_write(stream, beast_response, asio::redirect_error(asio::use_awaitable, ec));
        co_return false;
      }
    }
    if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> proceed{bhttp::status::continue_, version};
      co_await bhttp::async_write(stream, proceed, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return false;
    }
    std::shared_ptr<Request> request;
    bool keep_alive = false;
    if (!streamed) {
      parser.body_limit(limit);
      socket_layer.expires_after(state.options.header_timeout);
      co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == bhttp::error::body_limit) {
        co_await WriteProblem(stream, BodyTooLarge(limit), version);
        co_return false;
      }
      if (ec) {
        if (ec != beast::error::timeout && ec != asio::error::operation_aborted) {
          co_await WriteProblem(
              stream, Error::InvalidArgument("request", "malformed HTTP request body: " + ec.message()), version);
        }
        co_return false;
      }
      auto beast_request = parser.release();
      keep_alive = beast_request.keep_alive();
      request = std::make_shared<Request>(ToRequest(state, beast_request, remote_ip, tls));
      if (websocket::is_upgrade(beast_request)) {
        auto route = state.options.websocket_routes.find(request->path);
        if (route != state.options.websocket_routes.end()) {
          co_return co_await ServeWebSocket(state, stream, control, std::move(beast_request), route->second,
                                            std::move(request));
        }
      }
      request->body = std::move(beast_request.body());
    } else {
      // Same parser state, a body that writes each chunk to disk as it is parsed.
      bhttp::request_parser<bhttp::file_body> file_parser(std::move(parser));
      file_parser.body_limit(limit);
      const std::string path = NewUploadPath(state.options.upload_directory);
      file_parser.get().body().open(path.c_str(), beast::file_mode::write_new, ec);
      if (ec) {
        co_await WriteProblem(stream, Error::Make(ErrorCode::kUnavailable, "cannot store the upload"), version);
        co_return false;
      }
      while (!ec && !file_parser.is_done()) {
        // A slow but steady upload may take as long as it needs; a stalled one times out.
        socket_layer.expires_after(state.options.idle_timeout);
        co_await bhttp::async_read_some(stream, buffer, file_parser, asio::redirect_error(asio::use_awaitable, ec));
      }
      auto beast_request = file_parser.release();
      beast_request.body().close();
      if (ec) {
        std::error_code ignored;
        std::filesystem::remove(path, ignored);
        if (ec == bhttp::error::body_limit) {
          co_await WriteProblem(stream, BodyTooLarge(limit), version);
        } else if (ec != beast::error::timeout && ec != asio::error::operation_aborted) {
          co_await WriteProblem(
              stream, Error::InvalidArgument("request", "malformed HTTP request body: " + ec.message()), version);
        }
        co_return false;
      }
      keep_alive = beast_request.keep_alive();
      request = std::make_shared<Request>(ToRequest(state, beast_request, remote_ip, tls));
      request->body_file = path;
    }
    socket_layer.expires_never();

    // The handler may block (database, argon2): run it on the worker pool and resume here on our I/O thread.
    // A named lambda, not a temporary inside the co_await: GCC 12 destroys such a temporary twice, which
    // released `request` one time too many (heap corruption under load).
    auto work = [&state, request]() -> asio::awaitable<Response> { co_return state.handler(*request); };
    Response response = co_await asio::co_spawn(state.workers.get_executor(), std::move(work), asio::use_awaitable);
    if (!request->body_file.empty()) {
      std::error_code ignored;  // gone already when the handler kept (moved) it
      std::filesystem::remove(request->body_file, ignored);
    }
    keep_alive = keep_alive && !state.stopping;
    auto beast_response = ToBeast(std::move(response), version, keep_alive);
    socket_layer.expires_after(state.options.idle_timeout);
    co_await bhttp::async_write(stream, beast_response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep_alive) co_return false;
  }
}

asio::awaitable<void> RunSession(ServerState& state, tcp::socket socket, std::shared_ptr<SessionControl> control) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  std::string remote_ip = ec ? "" : endpoint.address().to_string();
  if (state.tls) {
    beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *state.tls);
    control->cancel = [&stream] { beast::get_lowest_layer(stream).cancel(); };
    beast::get_lowest_layer(stream).expires_after(state.options.header_timeout);
    co_await stream.async_handshake(asio::ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && !co_await ServeRequests(state, stream, *control, remote_ip, true)) {
      // A polite close_notify exchange; most clients never answer it, so do not let it hold up a shutdown.
      beast::get_lowest_layer(stream).expires_after(state.stopping ? std::chrono::milliseconds(100)
                                                                   : std::chrono::milliseconds(2000));
      co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }
    control->cancel = nullptr;
  } else {
    beast::tcp_stream stream(std::move(socket));
    control->cancel = [&stream] { stream.cancel(); };
    if (!co_await ServeRequests(state, stream, *control, remote_ip, false)) {
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
    control->cancel = nullptr;
  }
}

}  // namespace

void StartSession(ServerState& state, tcp::socket socket) {
  auto control = std::make_shared<SessionControl>();
  control->executor = socket.get_executor();
  uint64_t id = 0;
  {
    std::lock_guard lock(state.mutex);
    id = state.next_session_id++;
    state.sessions.emplace(id, control);
  }
  ++state.open_sessions;
  auto executor = socket.get_executor();
  asio::co_spawn(executor, RunSession(state, std::move(socket), control), [&state, id](std::exception_ptr error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        spdlog::error("http session ended by exception: {}", e.what());
      }
    }
    {
      std::lock_guard lock(state.mutex);
      state.sessions.erase(id);
    }
    --state.open_sessions;
  });
}

}  // namespace clozit::http::detail
