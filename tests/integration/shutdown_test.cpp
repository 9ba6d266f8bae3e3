// Graceful shutdown under load: SIGTERM in the middle of a burst of writes
// loses no acknowledged write, acknowledges nothing it did not do, answers no
// request with a 5xx, and exits 0 within the shutdown deadline.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using namespace std::chrono_literals;

class ShutdownTest : public ServerTest {};

struct BurstOutcome {
  std::vector<std::string> created_ids;  // 201s
  std::vector<std::string> unexpected;   // any other response, or a failure before SIGTERM
  int connection_failures = 0;           // no response at all, after SIGTERM
};

TEST_P(ShutdownTest, SigtermDuringBurstLosesNoAcknowledgedWrite) {
  constexpr int kThreads = 8;
  auto* server = StartServer();
  ASSERT_NE(server, nullptr);
  auto setup = Client();
  Account owner = SignUp(*setup, "burst");
  json key = CreateApiKey(*setup, owner.cookie, "burst-driver", "admin");
  const Credentials bearer = Credentials::Bearer(key.value("secret", ""));
  ASSERT_FALSE(bearer.bearer.empty());
  setup.reset();

  std::atomic<bool> terminated{false};
  std::atomic<int> responses_before_term{0};
  std::vector<BurstOutcome> outcomes(kThreads);
  std::vector<std::thread> threads;
  const std::string origin = server->origin();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      BurstOutcome& out = outcomes[t];
      // Half the threads use the cookie session with CSRF, half the API key.
      const Credentials& creds = t % 2 == 0 ? owner.cookie : bearer;
      TestClient client(origin, http::ClientOptions{.timeout = 15s});
      auto deadline = std::chrono::steady_clock::now() + 30s;
      for (int n = 0; std::chrono::steady_clock::now() < deadline; ++n) {
        bool after_term = terminated.load();
        std::string name = "burst-" + std::to_string(t) + "-" + std::to_string(n);
        auto response = client.Post("/v1/api-keys", {{"name", name}, {"role", "viewer"}}, &creds);
        if (!response.ok()) {
          if (!terminated.load()) {
            out.unexpected.push_back(name + ": connection failed before SIGTERM: " + response.transport_error);
          } else {
            ++out.connection_failures;
          }
          // Once the server is going away, stop after the first request it does not answer.
          if (terminated.load()) return;
          continue;
        }
        if (!after_term) ++responses_before_term;
        if (response.status == 201) {
          auto body = json::parse(response.body, nullptr, false);
          std::string id = body.is_object() ? body.value("id", "") : "";
          if (id.empty() || body.value("name", "") != name) {
            out.unexpected.push_back(name + ": 201 without the key: " + response.body);
          } else {
            out.created_ids.push_back(id);
          }
        } else {
          out.unexpected.push_back(name + ": HTTP " + std::to_string(response.status) + " " + response.body);
        }
      }
      out.unexpected.push_back("thread " + std::to_string(t) + " never saw the server go away");
    });
  }

  std::this_thread::sleep_for(300ms);
  ASSERT_GT(responses_before_term.load(), kThreads) << "the burst did not get going";
  auto term_sent = std::chrono::steady_clock::now();
  terminated = true;
  server->Terminate();
  auto exit_code = server->Wait(11s);
  auto exit_after = std::chrono::steady_clock::now() - term_sent;
  for (auto& thread : threads) thread.join();

  ASSERT_TRUE(server->exited()) << "the server did not exit within 11 s of SIGTERM";
  EXPECT_EQ(exit_code, 0);
  EXPECT_LT(exit_after, 11s);
  EXPECT_THAT(server->Log(), testing::HasSubstr("server stopped"));

  std::set<std::string> acknowledged;
  int failures = 0;
  for (const auto& out : outcomes) {
    for (const auto& problem : out.unexpected) ADD_FAILURE() << problem;
    acknowledged.insert(out.created_ids.begin(), out.created_ids.end());
    failures += out.connection_failures;
  }
  EXPECT_GT(acknowledged.size(), 0u);
  EXPECT_GE(failures, kThreads) << "every thread should end on a request the stopped server did not answer";

  // Restart on the same database: exactly the acknowledged keys exist.
  ASSERT_NE(StartServer(), nullptr);
  auto client = Client();
  std::set<std::string> stored;
  for (const auto& item : ListAll(*client, "/v1/api-keys", owner.cookie)) {
    if (item.value("name", "").starts_with("burst-") && item.value("name", "") != "burst-driver") {
      stored.insert(item.value("id", ""));
    }
  }
  for (const auto& id : acknowledged) EXPECT_TRUE(stored.count(id)) << "acknowledged key " << id << " was lost";
  for (const auto& id : stored) {
    EXPECT_TRUE(acknowledged.count(id)) << "key " << id << " was created but its creation never acknowledged";
  }
  EXPECT_EQ(stored.size(), acknowledged.size());
  auto counted =
      database().Direct().Query("SELECT COUNT(*) FROM api_keys WHERE name LIKE 'burst-%' AND name <> 'burst-driver'");
  ASSERT_TRUE(counted.ok()) << counted.error().message;
  EXPECT_EQ((*counted)[0].Int(0), static_cast<int64_t>(acknowledged.size()));
  std::cout << "[burst] " << acknowledged.size() << " keys acknowledged and stored, " << failures
            << " requests unanswered after SIGTERM, exit after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(exit_after).count() << " ms\n";
}

CLOZIT_INSTANTIATE_BACKENDS(ShutdownTest);

}  // namespace
}  // namespace clozit::itest
