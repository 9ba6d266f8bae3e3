// In-process tests of http::Server: a real socket on 127.0.0.1 and a port
// picked by the kernel, a trivial handler, and http::Client as the peer.
#include "http/server.hpp"

#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/realtime.hpp"
#include "http/client.hpp"

namespace clozit::http {
namespace {

using namespace std::chrono_literals;

/// Remote ports of the established server-side TCP connections to `port`
/// (Linux /proc/net/tcp): how the test sees whether a client reused its
/// connection without the server exposing its sockets.
std::set<int> ServerSideConnections(uint16_t port) {
  std::set<int> remote_ports;
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    int local_port = std::stoi(local.substr(local.find(':') + 1), nullptr, 16);
    int remote_port = std::stoi(remote.substr(remote.find(':') + 1), nullptr, 16);
    if (local_port == port && state == "01") remote_ports.insert(remote_port);  // 01 = ESTABLISHED
  }
  return remote_ports;
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options, Handler handler) {
    options.address = "127.0.0.1";
    options.port = 0;
    options.handle_signals = false;
    server_ = std::make_unique<Server>(options, std::move(handler));
    auto started = server_->Start();
    ASSERT_TRUE(started.ok()) << started.error().message;
    ASSERT_NE(server_->port(), 0);
    run_ = std::async(std::launch::async, [this] { server_->Run(); });
  }

  void TearDown() override {
    if (server_) {
      server_->Shutdown();
      if (run_.valid()) {
        EXPECT_EQ(run_.wait_for(10s), std::future_status::ready) << "Run() did not return";
      }
      server_.reset();
    }
  }

  std::unique_ptr<Client> Connect() {
    auto client = Client::Create("http://127.0.0.1:" + std::to_string(server_->port()), {.timeout = 5000ms});
    EXPECT_TRUE(client.ok());
    return client.ok() ? std::move(client).value() : nullptr;
  }

  std::unique_ptr<Server> server_;
  std::future<void> run_;
};

Handler Echo() {
  return [](Request& request) {
    nlohmann::json body = {{"method", request.method}, {"path", request.path}, {"target", request.target},
                           {"query", request.query},   {"body", request.body}, {"remote_ip", request.remote_ip},
                           {"tls", request.tls}};
    return Response::Json(200, body.dump());
  };
}

TEST_F(ServerTest, ServesRequestsAndDecodesThePath) {
  StartServer({}, Echo());
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto response = client->Send("POST", "/v1/a%20b?x=1&y=z%26w", {}, "hello");
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  auto body = nlohmann::json::parse(response->body);
  EXPECT_EQ(body["method"], "POST");
  EXPECT_EQ(body["path"], "/v1/a b");
  EXPECT_EQ(body["target"], "/v1/a%20b?x=1&y=z%26w");
  EXPECT_EQ(body["query"], nlohmann::json::parse(R"([["x","1"],["y","z&w"]])"));
  EXPECT_EQ(body["body"], "hello");
  EXPECT_EQ(body["remote_ip"], "127.0.0.1");
  EXPECT_EQ(body["tls"], false);
}

/// How many of this process's threads run SCHED_RR (Linux /proc/self/task).
int RealtimeThreads() {
  int count = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    pid_t tid = std::stoi(task.path().filename().string());
    if ((sched_getscheduler(tid) & ~SCHED_RESET_ON_FORK) == SCHED_RR) ++count;
  }
  return count;
}

TEST_F(ServerTest, IoThreadsRunRealTimeWhenAskedAndAllowed) {
  // Whether this process may use SCHED_RR (root, CAP_SYS_NICE or RLIMIT_RTPRIO) decides what to expect.
  std::promise<bool> probe;
  std::thread([&probe] {
    auto previous = SetRealtimePriority(1);
    if (previous) RestoreScheduling(*previous);
    probe.set_value(previous.ok());
  }).join();
  const bool allowed = probe.get_future().get();
  ASSERT_EQ(RealtimeThreads(), 0);

  ServerOptions options;
  options.io_threads = 3;
  options.io_realtime_priority = 1;
  StartServer(options, Echo());
  // Every I/O thread serves: enough connections that the round robin hands one to each.
  for (int i = 0; i < 3; ++i) {
    auto client = Connect();
    ASSERT_NE(client, nullptr);
    auto response = client->Send("GET", "/x", {}, "");
    ASSERT_TRUE(response.ok()) << response.error().message;
    EXPECT_EQ(response->status, 200);
  }
  EXPECT_EQ(RealtimeThreads(), allowed ? 3 : 0);
  server_->Shutdown();
  ASSERT_EQ(run_.wait_for(10s), std::future_status::ready);
  // The thread that called Run() gets its own scheduling back; the others have ended.
  EXPECT_EQ(RealtimeThreads(), 0);
}

TEST(Realtime, ThreadsStartedFromARealTimeThreadAreTimeShared) {
  int parent_policy = -1, child_policy = -1;
  std::thread([&] {
    auto previous = SetRealtimePriority(1);
    if (!previous) GTEST_SKIP() << previous.error().message;  // no privilege here: nothing to inherit
    parent_policy = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
    std::thread([&] { child_policy = sched_getscheduler(0); }).join();
    RestoreScheduling(*previous);
  }).join();
  if (parent_policy == -1) return;
  EXPECT_EQ(parent_policy, SCHED_RR);
  EXPECT_EQ(child_policy, SCHED_OTHER) << "a thread the I/O thread starts (Asio's resolver) must not run real-time";
}

TEST(Realtime, RefusesAPriorityOutOfRange) {
  for (int priority : {0, -1, 100}) {
    auto set = SetRealtimePriority(priority);
    ASSERT_FALSE(set.ok()) << priority;
    EXPECT_EQ(set.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(set.error().field, "priority");
  }
  EXPECT_NE(sched_getscheduler(0), SCHED_RR);
}

TEST_F(ServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  std::mutex mutex;
  std::vector<std::set<int>> seen;  // guarded by mutex
  uint16_t port = 0;
  StartServer({}, [&](Request&) {
    std::lock_guard lock(mutex);
    seen.push_back(ServerSideConnections(port));
    return Response::Text(200, "ok");
  });
  port = server_->port();
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 2; ++i) {
    auto response = client->Send("GET", "/");
    ASSERT_TRUE(response.ok()) << response.error().message;
    EXPECT_EQ(response->status, 200);
    EXPECT_NE(response->headers.GetOr("Connection", ""), "close");
  }
  std::lock_guard lock(mutex);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].size(), 1u);
  EXPECT_EQ(seen[0], seen[1]) << "the second request came on a new connection";
}

TEST_F(ServerTest, BodyOverTheLimitIs413Problem) {
  std::atomic<int> handled{0};
  ServerOptions options;
  options.body_limit = 1024;
  StartServer(options, [&](Request&) {
    ++handled;
    return Response::Text(200, "ok");
  });
  auto client = Connect();
  ASSERT_NE(client, nullptr);

  auto small = client->Send("POST", "/upload", {}, std::string(1024, 'a'));
  ASSERT_TRUE(small.ok()) << small.error().message;
  EXPECT_EQ(small->status, 200);

  auto large = client->Send("POST", "/upload", {}, std::string(4096, 'a'));
  ASSERT_TRUE(large.ok()) << large.error().message;
  EXPECT_EQ(large->status, 413) << large->body;
  EXPECT_EQ(large->headers.GetOr("Content-Type", ""), "application/problem+json") << large->body;
  auto body = nlohmann::json::parse(large->body);
  EXPECT_EQ(body["code"], "payload_too_large");
  EXPECT_EQ(body["field"], "body");
  EXPECT_EQ(handled.load(), 1) << "the handler must not see an oversized body";
}

// Uploads to streamed routes reach the handler as a file with exactly the bytes sent, the file is gone after
// the response, and each route keeps its own limit.
TEST_F(ServerTest, StreamedRoutesSpoolTheBodyToAFile) {
  const std::string directory = ::testing::TempDir() + "/uploads-" + std::to_string(::getpid());
  std::filesystem::remove_all(directory);
  ServerOptions options;
  options.body_limit = 1024;
  options.upload_limit = 3 << 20;
  options.upload_directory = directory;
  options.streams_body = [](std::string_view method, std::string_view path) {
    return method == "POST" && path == "/upload file";
  };
  std::mutex mutex;
  std::vector<std::string> files;     // guarded by mutex
  std::vector<std::string> contents;  // guarded by mutex
  StartServer(options, [&](Request& request) {
    std::ifstream in(request.body_file, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::lock_guard lock(mutex);
    files.push_back(request.body_file);
    contents.push_back(content);
    return Response::Json(200, nlohmann::json{{"in_memory", request.body.size()}, {"bytes", content.size()}}.dump());
  });
  auto client = Connect();
  ASSERT_NE(client, nullptr);

  std::string payload(2 << 20, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + (i * 7919) % 26);
  auto streamed = client->Send("POST", "/upload%20file?x=1", {}, payload);
  ASSERT_TRUE(streamed.ok()) << streamed.error().message;
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  EXPECT_EQ(nlohmann::json::parse(streamed->body)["in_memory"], 0);
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(files.size(), 1u);
    EXPECT_TRUE(files[0].starts_with(directory + "/")) << files[0];
    EXPECT_TRUE(contents[0] == payload) << "the spooled file differs from what was sent";
    EXPECT_FALSE(std::filesystem::exists(files[0])) << "the spooled file outlived its response";
  }

  // Over the upload limit: 413 before the handler, nothing left on disk.
  auto too_large = client->Send("POST", "/upload%20file", {}, std::string((3 << 20) + 1, 'x'));
  ASSERT_TRUE(too_large.ok()) << too_large.error().message;
  EXPECT_EQ(too_large->status, 413) << too_large->body;
  // Another route keeps the small in-memory limit.
  auto client2 = Connect();
  ASSERT_NE(client2, nullptr);
  auto other = client2->Send("POST", "/other", {}, std::string(4096, 'a'));
  ASSERT_TRUE(other.ok()) << other.error().message;
  EXPECT_EQ(other->status, 413);
  {
    std::lock_guard lock(mutex);
    EXPECT_EQ(files.size(), 1u) << "an oversized upload reached the handler";
  }
  EXPECT_TRUE(std::filesystem::is_empty(directory)) << "an upload was left behind";
  std::filesystem::remove_all(directory);
}

// An upload the route would refuse is refused on its headers: nothing is spooled, the handler never runs, and a
// client that asked `Expect: 100-continue` gets the refusal instead of an invitation to send the body.
TEST_F(ServerTest, AStreamedRouteRefusesAnUploadBeforeReadingItsBody) {
  const std::string directory = ::testing::TempDir() + "/uploads-admit-" + std::to_string(::getpid());
  std::filesystem::remove_all(directory);
  ServerOptions options;
  options.upload_directory = directory;
  options.streams_body = [](std::string_view, std::string_view path) { return path == "/upload"; };
  std::atomic<int> admitted{0};
  options.admit_upload = [&](Request& headers_only) -> std::optional<Response> {
    EXPECT_TRUE(headers_only.body.empty());
    EXPECT_TRUE(headers_only.body_file.empty());
    if (headers_only.headers.Get("Authorization")) {
      ++admitted;
      return std::nullopt;
    }
    return Response::Json(401, R"({"code":"unauthenticated"})");
  };
  std::atomic<int> handled{0};
  StartServer(options, [&](Request& request) {
    ++handled;
    return Response::Json(200, nlohmann::json{{"spooled", std::filesystem::file_size(request.body_file)}}.dump());
  });
  const std::string payload(256 << 10, 'u');
  for (const bool expect_continue : {false, true}) {
    auto client = Connect();
    ASSERT_NE(client, nullptr);
    Headers headers;
    if (expect_continue) headers.Set("Expect", "100-continue");
    auto refused = client->Send("POST", "/upload", headers, payload);
    ASSERT_TRUE(refused.ok()) << refused.error().message;
    EXPECT_EQ(refused->status, 401) << "Expect: 100-continue " << expect_continue;
  }
  EXPECT_EQ(handled.load(), 0);
  EXPECT_TRUE(!std::filesystem::exists(directory) || std::filesystem::is_empty(directory));

  auto client = Connect();
  ASSERT_NE(client, nullptr);
  Headers headers;
  headers.Set("Authorization", "Bearer x");
  auto accepted = client->Send("POST", "/upload", headers, payload);
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_EQ(accepted->status, 200) << accepted->body;
  EXPECT_EQ(nlohmann::json::parse(accepted->body)["spooled"], payload.size());
  EXPECT_EQ(admitted.load(), 1);
  EXPECT_EQ(handled.load(), 1);
  std::filesystem::remove_all(directory);
}

// Behind a trusted proxy the handler sees the client X-Forwarded-For names (forwarded_test.cpp covers the rest).
TEST_F(ServerTest, ARequestFromATrustedProxyCarriesTheForwardedClientAddress) {
  ServerOptions options;
  auto proxies = TrustedProxies::Parse("127.0.0.1");
  ASSERT_TRUE(proxies.ok());
  options.trusted_proxies = *proxies;
  StartServer(options, [](Request& request) { return Response::Text(200, request.remote_ip); });
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  Headers headers;
  headers.Set("X-Forwarded-For", "198.51.100.9, 203.0.113.5");
  auto forwarded = client->Send("GET", "/", headers);
  ASSERT_TRUE(forwarded.ok()) << forwarded.error().message;
  EXPECT_EQ(forwarded->body, "203.0.113.5");
  // A proxy that adds a line of its own: the client's line, whatever it says, comes first and is not believed.
  Headers two_lines;
  two_lines.Add("X-Forwarded-For", "127.0.0.1");
  two_lines.Add("X-Forwarded-For", "203.0.113.7");
  auto appended = client->Send("GET", "/", two_lines);
  ASSERT_TRUE(appended.ok()) << appended.error().message;
  EXPECT_EQ(appended->body, "203.0.113.7");
  auto direct = client->Send("GET", "/");
  ASSERT_TRUE(direct.ok()) << direct.error().message;
  EXPECT_EQ(direct->body, "127.0.0.1");
}

TEST_F(ServerTest, ShutdownLetsInFlightRequestFinish) {
  std::promise<void> entered;
  auto entered_future = entered.get_future();
  std::atomic<bool> finished{false};
  ServerOptions options;
  options.shutdown_deadline = 5000ms;
  StartServer(options, [&](Request& request) {
    if (request.path == "/slow") {
      entered.set_value();
      std::this_thread::sleep_for(300ms);
      finished = true;
    }
    return Response::Text(200, "done");
  });
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  auto idle = Connect();  // an idle keep-alive connection must not hold the shutdown up
  ASSERT_TRUE(idle->Send("GET", "/").ok());

  auto in_flight = std::async(std::launch::async, [&] { return client->Send("GET", "/slow"); });
  ASSERT_EQ(entered_future.wait_for(5s), std::future_status::ready);
  auto shutdown_started = std::chrono::steady_clock::now();
  server_->Shutdown();
  server_->Shutdown();  // idempotent

  auto response = in_flight.get();
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "done");
  EXPECT_TRUE(finished.load());
  EXPECT_EQ(response->headers.GetOr("Connection", ""), "close");

  ASSERT_EQ(run_.wait_for(5s), std::future_status::ready) << "Run() did not return after the drain";
  EXPECT_LT(std::chrono::steady_clock::now() - shutdown_started, 4s) << "the idle connection held shutdown up";

  // Nothing listens any more.
  auto late = Connect();
  auto refused = late->Send("GET", "/");
  EXPECT_FALSE(refused.ok());
}

TEST_F(ServerTest, ShutdownWithoutConnectionsReturnsPromptly) {
  StartServer({}, Echo());
  server_->Shutdown();
  EXPECT_EQ(run_.wait_for(5s), std::future_status::ready);
}

TEST(Server, RefusesPlaintextOnAPublicAddress) {
  ServerOptions options;
  options.address = "0.0.0.0";
  options.handle_signals = false;
  Server server(options, Echo());
  auto started = server.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(started.error().field, "server.listen_address");
}

TEST(Server, RefusesABadAddress) {
  ServerOptions options;
  options.address = "not-an-ip";
  options.handle_signals = false;
  Server server(options, Echo());
  auto started = server.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().field, "server.listen_address");
}

}  // namespace
}  // namespace clozit::http
