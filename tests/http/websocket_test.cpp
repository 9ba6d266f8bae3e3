// WebSocket routes of http::Server against WebSocketClient and a raw Beast
// peer: echo, refused upgrades, slow peers, idle peers, server shutdown.
#include "http/websocket.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "http/client.hpp"
#include "http/server.hpp"

namespace clozit::http {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
namespace beast = boost::beast;

/// What a handler saw, readable from the test thread.
struct Transcript {
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<std::string> messages;  // guarded by mutex
  bool opened = false;               // guarded by mutex
  int close_code = -1;               // guarded by mutex; -1 while open

  void Add(std::string message) {
    std::lock_guard lock(mutex);
    messages.push_back(std::move(message));
    changed.notify_all();
  }
  std::optional<std::string> Next(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex);
    if (!changed.wait_for(lock, timeout, [&] { return !messages.empty(); })) return std::nullopt;
    auto message = std::move(messages.front());
    messages.pop_front();
    return message;
  }
  int WaitClosed(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex);
    changed.wait_for(lock, timeout, [&] { return close_code != -1; });
    return close_code;
  }
};

/// Records messages; optionally echoes them, or floods the peer on open.
class RecordingHandler : public WebSocketHandler {
 public:
  RecordingHandler(std::shared_ptr<Transcript> transcript, bool echo, int flood = 0)
      : transcript_(std::move(transcript)), echo_(echo), flood_(flood) {}
  void OnOpen(std::shared_ptr<WebSocketConnection> connection) override {
    connection_ = std::move(connection);
    {
      std::lock_guard lock(transcript_->mutex);
      transcript_->opened = true;
    }
    for (int i = 0; i < flood_; ++i) connection_->SendBinary(std::string(64 * 1024, 'x'));
  }
  void OnText(std::string_view message) override {
    transcript_->Add(std::string(message));
    if (echo_) connection_->SendText("echo:" + std::string(message));
  }
  void OnBinary(std::string_view message) override { transcript_->Add("binary:" + std::to_string(message.size())); }
  void OnClose(uint16_t code, std::string_view) override {
    connection_.reset();
    std::lock_guard lock(transcript_->mutex);
    transcript_->close_code = code;
    transcript_->changed.notify_all();
  }

 private:
  std::shared_ptr<Transcript> transcript_;
  std::shared_ptr<WebSocketConnection> connection_;
  bool echo_;
  int flood_;
};

class WebSocketTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options) {
    options.address = "127.0.0.1";
    options.port = 0;
    options.handle_signals = false;
    server_ = std::make_unique<Server>(std::move(options), [](Request&) { return Response::Text(200, "plain"); });
    ASSERT_TRUE(server_->Start().ok());
    run_ = std::async(std::launch::async, [this] { server_->Run(); });
  }
  void TearDown() override {
    if (server_) {
      server_->Shutdown();
      EXPECT_EQ(run_.wait_for(10s), std::future_status::ready);
      server_.reset();
    }
    client_work_.reset();
    client_io_.stop();
    if (client_thread_.joinable()) client_thread_.join();
  }
  void StartClientLoop() {
    client_thread_ = std::thread([this] { client_io_.run(); });
  }
  std::string Url(const std::string& path) { return "ws://127.0.0.1:" + std::to_string(server_->port()) + path; }

  std::unique_ptr<Server> server_;
  std::future<void> run_;
  asio::io_context client_io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> client_work_{client_io_.get_executor()};
  std::thread client_thread_;
};

TEST_F(WebSocketTest, EchoesTextBothWaysAndClosesCleanly) {
  auto server_side = std::make_shared<Transcript>();
  ServerOptions options;
  options.websocket_routes["/echo"] =
      [server_side](const Request& request) -> Result<std::unique_ptr<WebSocketHandler>> {
    EXPECT_EQ(request.QueryParam("token").value_or(""), "abc");
    return std::unique_ptr<WebSocketHandler>(std::make_unique<RecordingHandler>(server_side, true));
  };
  StartServer(options);
  StartClientLoop();
  auto client_side = std::make_shared<Transcript>();
  auto connection = WebSocketClient::Connect(client_io_.get_executor(), Url("/echo?token=abc"),
                                             std::make_unique<RecordingHandler>(client_side, false));
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  for (int i = 0; i < 100; ++i) (*connection)->SendText("hello " + std::to_string(i));
  for (int i = 0; i < 100; ++i) {
    auto message = client_side->Next();
    ASSERT_TRUE(message);
    EXPECT_EQ(*message, "echo:hello " + std::to_string(i));  // order kept
  }
  (*connection)->SendBinary(std::string(1000, '\0'));
  (*connection)->Close(CloseCode::kNormal, "bye");
  EXPECT_EQ(client_side->WaitClosed(), 1000);
  EXPECT_EQ(server_side->WaitClosed(), 1000);
  std::lock_guard lock(server_side->mutex);
  ASSERT_EQ(server_side->messages.size(), 101u);  // 100 texts, then the binary message
  EXPECT_EQ(server_side->messages.back(), "binary:1000");
}

TEST_F(WebSocketTest, RefusedUpgradeGetsTheErrorStatusAndNoHandler) {
  ServerOptions options;
  options.websocket_routes["/guarded"] = [](const Request&) -> Result<std::unique_ptr<WebSocketHandler>> {
    return Error::Make(ErrorCode::kUnauthenticated, "bad media token", "token");
  };
  StartServer(options);
  StartClientLoop();
  auto transcript = std::make_shared<Transcript>();
  auto connection = WebSocketClient::Connect(client_io_.get_executor(), Url("/guarded"),
                                             std::make_unique<RecordingHandler>(transcript, false));
  ASSERT_FALSE(connection.ok());
  EXPECT_EQ(connection.error().code, ErrorCode::kUnauthenticated);
  EXPECT_NE(connection.error().message.find("401"), std::string::npos);
  // A path that is not a WebSocket route refuses the upgrade too (the HTTP handler answers 200, no 101).
  auto plain = WebSocketClient::Connect(client_io_.get_executor(), Url("/other"),
                                        std::make_unique<RecordingHandler>(transcript, false));
  EXPECT_FALSE(plain.ok());
  // Plain HTTP still works beside the WebSocket routes.
  auto http = Client::Create("http://127.0.0.1:" + std::to_string(server_->port()));
  ASSERT_TRUE(http.ok());
  auto response = (*http)->Send("GET", "/guarded");
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->status, 200);
}

// A raw peer that completes the handshake and then never reads: the server's queue fills and it gives up.
TEST_F(WebSocketTest, SlowPeerIsDisconnectedInsteadOfBufferingWithoutBound) {
  auto server_side = std::make_shared<Transcript>();
  ServerOptions options;
  options.websocket.queue_limit = 16;
  options.websocket_routes["/flood"] = [server_side](const Request&) -> Result<std::unique_ptr<WebSocketHandler>> {
    // 2000 × 64 KiB = 128 MiB offered
    return std::unique_ptr<WebSocketHandler>(std::make_unique<RecordingHandler>(server_side, false, 2000));
  };
  StartServer(options);
  asio::io_context io;
  beast::websocket::stream<asio::ip::tcp::socket> ws(io);
  ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  ws.handshake("127.0.0.1", "/flood");
  EXPECT_EQ(server_side->WaitClosed(), static_cast<int>(CloseCode::kTryAgainLater));
}

TEST_F(WebSocketTest, SilentPeerTimesOutAfterTheIdleTimeout) {
  auto server_side = std::make_shared<Transcript>();
  ServerOptions options;
  options.websocket.idle_timeout = 300ms;
  options.websocket_routes["/idle"] = [server_side](const Request&) -> Result<std::unique_ptr<WebSocketHandler>> {
    return std::unique_ptr<WebSocketHandler>(std::make_unique<RecordingHandler>(server_side, false));
  };
  StartServer(options);
  asio::io_context io;
  beast::websocket::stream<asio::ip::tcp::socket> ws(io);
  ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  ws.handshake("127.0.0.1", "/idle");
  auto started = std::chrono::steady_clock::now();
  // Never reading means never answering the keep-alive ping.
  EXPECT_NE(server_side->WaitClosed(3s), -1);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 250ms);
}

TEST_F(WebSocketTest, ShutdownSendsGoingAwayToOpenConnections) {
  auto server_side = std::make_shared<Transcript>();
  ServerOptions options;
  options.websocket_routes["/stay"] = [server_side](const Request&) -> Result<std::unique_ptr<WebSocketHandler>> {
    return std::unique_ptr<WebSocketHandler>(std::make_unique<RecordingHandler>(server_side, true));
  };
  StartServer(options);
  StartClientLoop();
  auto client_side = std::make_shared<Transcript>();
  auto connection = WebSocketClient::Connect(client_io_.get_executor(), Url("/stay"),
                                             std::make_unique<RecordingHandler>(client_side, false));
  ASSERT_TRUE(connection.ok());
  (*connection)->SendText("ping");
  ASSERT_TRUE(client_side->Next());
  server_->Shutdown();
  EXPECT_EQ(run_.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(client_side->WaitClosed(), static_cast<int>(CloseCode::kGoingAway));
  EXPECT_EQ(server_side->WaitClosed(), static_cast<int>(CloseCode::kGoingAway));
}

TEST_F(WebSocketTest, AbortDropsTheConnectionWithoutACloseFrame) {
  auto server_side = std::make_shared<Transcript>();
  ServerOptions options;
  options.websocket_routes["/drop"] = [server_side](const Request&) -> Result<std::unique_ptr<WebSocketHandler>> {
    return std::unique_ptr<WebSocketHandler>(std::make_unique<RecordingHandler>(server_side, true));
  };
  StartServer(options);
  StartClientLoop();
  auto client_side = std::make_shared<Transcript>();
  auto connection = WebSocketClient::Connect(client_io_.get_executor(), Url("/drop"),
                                             std::make_unique<RecordingHandler>(client_side, false));
  ASSERT_TRUE(connection.ok());
  (*connection)->Abort();
  EXPECT_EQ(server_side->WaitClosed(), 1006);
  (*connection)->SendText("after the end");  // ignored, no crash
}

}  // namespace
}  // namespace clozit::http
