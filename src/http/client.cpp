#include "http/client.hpp"

#include <utility>

#include <optional>

#include <openssl/ssl.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace clozit::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

struct Client::Impl {
  ClientOptions options;
  bool tls = false;
  std::string host;
  std::string port;
  asio::io_context io;
  std::optional<asio::ssl::context> tls_context;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;

  bool connected() const { return plain.has_value() || secure.has_value(); }

  Result<void> Connect() {
    boost::system::error_code ec;
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return Error::Make(ErrorCode::kUnavailable, "cannot resolve " + host + ": " + ec.message());
    beast::tcp_stream stream(io);
    stream.expires_after(options.timeout);
    stream.connect(endpoints, ec);
    if (ec) return Error::Make(ErrorCode::kUnavailable, "cannot connect to " + host + ":" + port + ": " + ec.message());
    stream.socket().set_option(tcp::no_delay(true), ec);
    buffer.clear();
    if (!tls) {
      plain.emplace(std::move(stream));
      return Ok();
    }
    secure.emplace(std::move(stream), *tls_context);
    if (!SSL_set_tlsext_host_name(secure->native_handle(), host.c_str())) {
      secure.reset();
      return Error::Make(ErrorCode::kUnavailable, "cannot set TLS server name");
    }
    secure->set_verify_callback(asio::ssl::host_name_verification(host));
    secure->handshake(asio::ssl::stream_base::client, ec);
    if (ec) {
      secure.reset();
      return Error::Make(ErrorCode::kUnavailable, "TLS handshake with " + host + " failed: " + ec.message());
    }
    return Ok();
  }

  template <class Stream>
  Result<ClientResponse> Exchange(Stream& stream, bhttp::request<bhttp::string_body>& request) {
    boost::system::error_code ec;
    beast::get_lowest_layer(stream).expires_after(options.timeout);
    bhttp::write(stream, request, ec);
    if (ec) return Error::Make(ErrorCode::kUnavailable, "write failed: " + ec.message());
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    bhttp::read(stream, buffer, parser, ec);
    if (ec) return Error::Make(ErrorCode::kUnavailable, "read failed: " + ec.message());
    auto& response = parser.get();
    ClientResponse out;
    out.status = static_cast<int>(response.result_int());
    for (const auto& field : response) out.headers.Add(std::string(field.name_string()), std::string(field.value()));
    out.body = std::move(response.body());
    if (!response.keep_alive()) Disconnect();
    return out;
  }

  void Disconnect() {
    boost::system::error_code ec;
    if (plain) plain->socket().close(ec);
    if (secure) beast::get_lowest_layer(*secure).socket().close(ec);
    plain.reset();
    secure.reset();
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() {
  if (impl_) impl_->Disconnect();
}

Result<std::unique_ptr<Client>> Client::Create(const std::string& origin, ClientOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::string_view rest = origin;
  if (rest.starts_with("https://")) {
    impl->tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return Error::InvalidArgument("url", "expected http:// or https://");
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  impl->host = std::string(rest.substr(0, colon));
  impl->port = colon == std::string_view::npos ? (impl->tls ? "443" : "80") : std::string(rest.substr(colon + 1));
  if (impl->host.empty()) return Error::InvalidArgument("url", "missing host");
  if (impl->tls) {
    impl->tls_context.emplace(asio::ssl::context::tls_client);
    auto& context = *impl->tls_context;
    context.set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    context.set_default_verify_paths(ec);
    if (!options.ca_file.empty()) {
      context.load_verify_file(options.ca_file, ec);
      if (ec) return Error::InvalidArgument("ca_file", "cannot load " + options.ca_file + ": " + ec.message());
    }
    context.set_verify_mode(options.verify_peer ? asio::ssl::verify_peer : asio::ssl::verify_none);
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Result<ClientResponse> Client::Send(const std::string& method, const std::string& target, const Headers& headers,
                                    const std::string& body) {
  bhttp::request<bhttp::string_body> request{bhttp::string_to_verb(method), target, 11};
  if (request.method() == bhttp::verb::unknown) request.method_string(method);
  request.set(bhttp::field::host, impl_->host + ":" + impl_->port);
  for (const auto& [name, value] : headers.all()) request.insert(name, value);
  request.body() = body;
  request.prepare_payload();
  request.keep_alive(true);
  // A kept-alive connection may have been closed by the server meanwhile: retry once on a fresh one, but
  // only when repeating the request is harmless (the server may have acted on the first copy).
  bool safe_to_repeat = method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
                        method == "OPTIONS" || headers.Get("Idempotency-Key").has_value();
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = impl_->connected();
    if (!reused) CLOZIT_TRY(impl_->Connect());
    auto result = impl_->plain ? impl_->Exchange(*impl_->plain, request) : impl_->Exchange(*impl_->secure, request);
    if (result.ok() || !reused || !safe_to_repeat) return result;
    impl_->Disconnect();
  }
  return Error::Make(ErrorCode::kUnavailable, "request failed");
}

void Client::Close() { impl_->Disconnect(); }

}  // namespace clozit::http
