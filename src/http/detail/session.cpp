// One HTTP/1.1 connection: read a request, hand it to a worker, write the
// response, repeat while keep-alive. Plain TCP and TLS share one coroutine.
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "http/detail/server_state.hpp"

namespace clozit::http::detail {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr uint32_t kHeaderLimit = 16 * 1024;

Request ToRequest(const bhttp::request<bhttp::string_body>& in, const std::string& remote_ip, bool tls) {
  Request out;
  out.method = std::string(in.method_string());
  out.target = std::string(in.target());
  std::string_view target = in.target();
  auto question = target.find('?');
  out.path = PercentDecode(target.substr(0, question), false);
  if (question != std::string_view::npos) out.query = ParseQuery(target.substr(question + 1));
  for (const auto& field : in) out.headers.Add(std::string(field.name_string()), std::string(field.value()));
  out.body = in.body();
  out.remote_ip = remote_ip;
  out.tls = tls;
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

template <class Stream>
asio::awaitable<void> ServeRequests(ServerState& state, Stream& stream, SessionControl& control,
                                    const std::string& remote_ip, bool tls) {
  beast::flat_buffer buffer;
  auto& socket_layer = beast::get_lowest_layer(stream);
  bool first = true;
  for (;;) {
    if (state.stopping) co_return;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(state.options.body_limit);
    parser.header_limit(kHeaderLimit);
    socket_layer.expires_after(first ? state.options.header_timeout : state.options.idle_timeout);
    first = false;
    boost::system::error_code ec;
    control.idle = buffer.size() == 0;
    co_await bhttp::async_read_header(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    control.idle = false;
    if (ec == bhttp::error::end_of_stream || ec == asio::error::operation_aborted || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::eof) {
      co_return;
    }
    if (ec == bhttp::error::header_limit) {
      co_await WriteProblem(stream, Error::Make(ErrorCode::kPayloadTooLarge, "request headers too large"), 11);
      co_return;
    }
    // Beast already refuses a Content-Length over the body limit while parsing the header.
    if (ec == bhttp::error::body_limit) {
      co_await WriteProblem(stream, BodyTooLarge(state.options.body_limit), parser.get().version());
      co_return;
    }
    if (ec) {
      co_await WriteProblem(stream, Error::InvalidArgument("request", "malformed HTTP request: " + ec.message()), 11);
      co_return;
    }
    unsigned version = parser.get().version();
    if (beast::iequals(parser.get()[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> proceed{bhttp::status::continue_, version};
      co_await bhttp::async_write(stream, proceed, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
    socket_layer.expires_after(state.options.header_timeout);
    co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == bhttp::error::body_limit) {
      co_await WriteProblem(stream, BodyTooLarge(state.options.body_limit), version);
      co_return;
    }
    if (ec) {
      if (ec != beast::error::timeout && ec != asio::error::operation_aborted) {
        co_await WriteProblem(stream, Error::InvalidArgument("request", "malformed HTTP request body: " + ec.message()),
                              version);
      }
      co_return;
    }
    socket_layer.expires_never();

    auto beast_request = parser.release();
    bool keep_alive = beast_request.keep_alive();
    auto request = std::make_shared<Request>(ToRequest(beast_request, remote_ip, tls));
    // The handler may block (database, argon2): run it on the worker pool and resume here on our strand.
    // A named lambda, not a temporary inside the co_await: GCC 12 destroys such a temporary twice, which
    // released `request` one time too many (heap corruption under load).
    auto work = [&state, request]() -> asio::awaitable<Response> { co_return state.handler(*request); };
    Response response = co_await asio::co_spawn(state.workers.get_executor(), std::move(work), asio::use_awaitable);
    keep_alive = keep_alive && !state.stopping;
    auto beast_response = ToBeast(std::move(response), version, keep_alive);
    socket_layer.expires_after(state.options.idle_timeout);
    co_await bhttp::async_write(stream, beast_response, asio::redirect_error(asio::use_awaitable, ec));
    if (ec || !keep_alive) co_return;
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
    if (!ec) {
      co_await ServeRequests(state, stream, *control, remote_ip, true);
      // A polite close_notify exchange; most clients never answer it, so do not let it hold up a shutdown.
      beast::get_lowest_layer(stream).expires_after(state.stopping ? std::chrono::milliseconds(100)
                                                                   : std::chrono::milliseconds(2000));
      co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }
    control->cancel = nullptr;
  } else {
    beast::tcp_stream stream(std::move(socket));
    control->cancel = [&stream] { stream.cancel(); };
    co_await ServeRequests(state, stream, *control, remote_ip, false);
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
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
