#include "http/server.hpp"

#include <filesystem>

#include <utility>

#include <csignal>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>

#include "common/realtime.hpp"
#include "http/detail/server_state.hpp"

namespace clozit::http {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

asio::awaitable<void> Listen(detail::ServerState& state) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await state.acceptor.async_accept(state.NextContext(), asio::redirect_error(asio::use_awaitable, ec));
    if (state.stopping || ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // Out of descriptors and the like: back off instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      asio::steady_timer pause(state.acceptor.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    detail::StartSession(state, std::move(socket));
  }
}

asio::awaitable<void> DrainThenStop(detail::ServerState& state) {
  auto deadline = std::chrono::steady_clock::now() + state.options.shutdown_deadline;
  asio::steady_timer timer(state.io);
  while (state.open_sessions > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(asio::use_awaitable);
  }
  if (state.open_sessions > 0) {
    spdlog::warn("shutdown deadline passed with {} connection(s) still open", state.open_sessions.load());
  }
  state.StopAll();
}

bool IsLoopback(const asio::ip::address& address) { return address.is_loopback(); }

}  // namespace

Server::Server(ServerOptions options, Handler handler)
    : state_(std::make_unique<detail::ServerState>(std::move(options), std::move(handler))) {}

Server::~Server() {
  state_->StopAll();
  state_->workers.join();
}

Result<void> Server::Start() {
  auto& options = state_->options;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(options.address, ec);
  if (ec) return Error::InvalidArgument("server.listen_address", "not an IP address: " + options.address);

  if (!options.tls_cert_file.empty()) {
    state_->tls.emplace(asio::ssl::context::tls_server);
    auto& tls = *state_->tls;
    tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                    asio::ssl::context::single_dh_use);
    tls.use_certificate_chain_file(options.tls_cert_file, ec);
    if (ec) return Error::InvalidArgument("server.tls_cert_file", "cannot load certificate: " + ec.message());
    tls.use_private_key_file(options.tls_key_file, asio::ssl::context::pem, ec);
    if (ec) return Error::InvalidArgument("server.tls_key_file", "cannot load private key: " + ec.message());
  } else if (!IsLoopback(address) && !options.allow_plaintext_public) {
    return Error::InvalidArgument("server.listen_address",
                                  "refusing to serve plaintext HTTP on a non-loopback address; configure "
                                  "server.tls_cert_file/tls_key_file or set server.allow_plaintext_public");
  }

  if (options.streams_body) {
    std::error_code error;
    std::filesystem::create_directories(options.upload_directory, error);
    if (error) {
      return Error::InvalidArgument("server.upload_directory",
                                    "cannot create " + options.upload_directory + ": " + error.message());
    }
  }

  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Error::Make(ErrorCode::kUnavailable,
                       "cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " + ec.message(),
                       "server.port");
  }
  asio::co_spawn(acceptor.get_executor(), Listen(*state_), asio::detached);
  return Ok();
}

uint16_t Server::port() const {
  boost::system::error_code ec;
  auto endpoint = state_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void Server::Run() {
  std::optional<asio::signal_set> signals;
  if (state_->options.handle_signals) {
    signals.emplace(state_->io, SIGTERM, SIGINT);
    signals->async_wait([this](const boost::system::error_code& ec, int signal_number) {
      if (ec) return;
      spdlog::info("signal {} received: shutting down gracefully", signal_number);
      Shutdown();
    });
  }
  const int priority = state_->options.io_realtime_priority;
  // Each I/O thread asks for itself; the calling thread gets its own scheduling back when it returns.
  auto realtime = [priority]() -> std::optional<ThreadScheduling> {
    if (priority == 0) return std::nullopt;
    auto previous = SetRealtimePriority(priority);
    if (previous) return *previous;
    spdlog::warn("I/O thread stays time-shared: {}", previous.error().message);
    return std::nullopt;
  };
  std::vector<std::thread> threads;
  for (size_t i = 1; i < state_->contexts.size(); ++i) {
    threads.emplace_back([context = state_->contexts[i].get(), realtime] {
      realtime();
      context->run();
    });
  }
  struct Restore {  // also when a handler's exception leaves run()
    std::optional<ThreadScheduling> previous;
    ~Restore() {
      if (previous) RestoreScheduling(*previous);
    }
  } restore{realtime()};
  state_->io.run();
  for (auto& thread : threads) thread.join();
  state_->workers.join();
}

void Server::Shutdown() {
  if (state_->stopping.exchange(true)) return;
  asio::post(state_->acceptor.get_executor(), [this] {
    boost::system::error_code ec;
    state_->acceptor.close(ec);
  });
  std::vector<std::shared_ptr<detail::SessionControl>> sessions;
  {
    std::lock_guard lock(state_->mutex);
    for (auto& [id, control] : state_->sessions) sessions.push_back(control);
  }
  for (auto& control : sessions) {
    asio::post(control->executor, [control] {
      if (control->cancel && control->idle) control->cancel();
    });
  }
  asio::co_spawn(state_->io, DrainThenStop(*state_), asio::detached);
}

}  // namespace clozit::http
