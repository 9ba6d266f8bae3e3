// The crash test of the billing issue: the real server is SIGKILLed at seeded
// points of the clients' progress while concurrent clients stream reserve → settle/void
// requests through the operator reservation routes; it is restarted on the
// same database each time, and every client retries whatever got no answer
// with the same Idempotency-Key (reserve) or against the same reservation
// (settle, void). Afterwards: each tenant's balance is exactly its grant minus
// what its settlements charged (no double charge, nothing lost), nothing is
// still held (no stranded credit), each operation made exactly one
// reservation, and `clozit admin ledger-check` exits 0.
//
// CLOZIT_CRASH_SEED picks the seed (printed on failure); CLOZIT_CRASH_KILLS the
// number of kills.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>

#include "common/clock.hpp"
#include "common/credits.hpp"
#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using namespace std::chrono_literals;

constexpr int kTenants = 3;
constexpr int kClientsPerTenant = 2;
constexpr int kOpsPerClient = 30;
constexpr int64_t kGrantCredits = 10'000;

uint64_t SeedFromEnv() {
  if (const char* text = std::getenv("CLOZIT_CRASH_SEED")) return std::strtoull(text, nullptr, 10);
  return 20261127;
}

int KillsFromEnv() {
  if (const char* text = std::getenv("CLOZIT_CRASH_KILLS")) return std::atoi(text);
  return 6;
}

/// One planned operation: reserve `estimate`, then settle `usage` (or void when empty and `settle` is false).
struct PlannedOp {
  std::string key;
  int64_t estimate_micros = 0;
  bool settle = false;
  std::vector<std::pair<std::string, int64_t>> usage;  // category → micros
};

std::string CreditsText(int64_t micros) { return Credits::FromMicros(micros).ToString(); }

class BillingCrashTest : public ServerTest {
 protected:
  /// The origin of the server currently running (changes at every restart).
  std::string Origin() {
    std::lock_guard lock(origin_mutex_);
    return origin_;
  }
  void SetOrigin(std::string origin) {
    std::lock_guard lock(origin_mutex_);
    origin_ = std::move(origin);
  }

  /// Sends until an answer that is not "try again" arrives: no response (the server is down or was killed
  /// mid-request), 5xx, or 409 for a request still in flight. The same body and headers every time.
  Response SendUntilAnswered(std::unique_ptr<TestClient>& client, std::string& client_origin, const std::string& target,
                             const json& body, const Credentials& operator_credentials,
                             const std::string& idempotency_key, std::atomic<int>& retries) {
    http::Headers headers;
    headers.Set("Idempotency-Key", idempotency_key);
    for (int attempt = 0; attempt < 20'000; ++attempt) {
      if (!client || client_origin != Origin()) {
        client_origin = Origin();
        client = std::make_unique<TestClient>(client_origin);
      }
      Response response = client->Post(target, body, &operator_credentials, headers);
      const bool again = !response.ok() || response.status >= 500 ||
                         (response.status == 409 && response.body.find("in progress") != std::string::npos);
      if (!again) return response;
      ++retries;
      client.reset();  // the connection may be dead: reconnect, possibly to the restarted server
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "no answer for " << target << " after 20000 attempts";
    return {};
  }

  std::mutex origin_mutex_;
  std::string origin_;  // guarded by origin_mutex_
};

TEST_P(BillingCrashTest, SigkillDuringReserveAndSettleLosesAndDoublesNothing) {
  const uint64_t seed = SeedFromEnv();
  const int kills = KillsFromEnv();
  SCOPED_TRACE("CLOZIT_CRASH_SEED=" + std::to_string(seed));
  std::mt19937_64 plan_random(seed);

  const Env command_env = {{"CLOZIT_DATABASE__URL", database().url()},
                           {"CLOZIT_ACCOUNTS__ARGON2_OPSLIMIT", "1"},
                           {"CLOZIT_ACCOUNTS__ARGON2_MEMLIMIT_KIB", "8192"}};
  const std::string operator_password = "Night-Shift-2048";
  ServerProcess* server = StartServer();
  ASSERT_NE(server, nullptr);
  SetOrigin(server->origin());
  auto created = RunClozit(
      {"admin", "create-operator", "--email", "ops@example.com", "--name", "Olga Ops"},
      [&] {
        Env env = command_env;
        env["CLOZIT_OPERATOR_PASSWORD"] = operator_password;
        return env;
      }(),
      dir(), 30s);
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
  auto setup = Client();
  auto login = setup->Post("/v1/admin/login", {{"email", "ops@example.com"}, {"password", operator_password}});
  ASSERT_EQ(login.status, 200) << login;
  const Credentials op =
      Credentials::Operator(login.Cookie("clozit_operator_session").value_or(""), login.Json().value("csrf_token", ""));

  // Tenants, each granted the same credits.
  std::vector<Account> tenants;
  for (int t = 0; t < kTenants; ++t) {
    tenants.push_back(SignUp(*setup, "crash-" + std::to_string(t)));
    ASSERT_FALSE(tenants.back().tenant_id.empty());
    http::Headers key;
    key.Set("Idempotency-Key", "grant-" + std::to_string(t));
    auto granted = setup->Post("/v1/admin/tenants/" + tenants.back().tenant_id + "/credit-grants",
                               {{"credits", std::to_string(kGrantCredits)},
                                {"price_minor", 10'000},
                                {"currency", "USD"},
                                {"payment_reference", "wire-" + std::to_string(t)}},
                               &op, key);
    ASSERT_EQ(granted.status, 201) << granted;
  }

  // The plan, fixed by the seed: what each client reserves and settles.
  static const char* kCategories[] = {"call_minutes", "ai_processing", "voice_generation", "campaign_execution"};
  const int clients = kTenants * kClientsPerTenant;
  std::vector<std::vector<PlannedOp>> plans(clients);
  std::vector<int64_t> expected_charged(kTenants, 0);
  for (int c = 0; c < clients; ++c) {
    for (int k = 0; k < kOpsPerClient; ++k) {
      PlannedOp planned;
      planned.key = "crash-" + std::to_string(seed) + "-c" + std::to_string(c) + "-op" + std::to_string(k);
      planned.estimate_micros = static_cast<int64_t>(1 + plan_random() % 40) * 250'000;  // 0.25 … 10 credits
      planned.settle = plan_random() % 4 != 0;
      if (planned.settle) {
        int64_t left = planned.estimate_micros;
        for (const char* category : kCategories) {
          if (plan_random() % 2 == 0 || left == 0) continue;
          int64_t amount = static_cast<int64_t>(plan_random() % static_cast<uint64_t>(left + 1));
          left -= amount;
          planned.usage.emplace_back(category, amount);
          expected_charged[c % kTenants] += amount;
        }
      }
      plans[c].push_back(std::move(planned));
    }
  }

  // The clients.
  const std::string expires_at =
      FormatRfc3339(std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()) +
                    std::chrono::hours(6));
  std::atomic<int> retries{0};
  std::atomic<int> finished{0};
  std::atomic<int> completed_ops{0};
  std::vector<std::thread> threads;
  std::vector<std::string> failures(clients);
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      std::unique_ptr<TestClient> client;
      std::string client_origin;
      const std::string tenant = tenants[c % kTenants].tenant_id;
      for (const PlannedOp& planned : plans[c]) {
        Response reserved = SendUntilAnswered(client, client_origin, "/v1/admin/tenants/" + tenant + "/reservations",
                                              {{"estimate", CreditsText(planned.estimate_micros)},
                                               {"purpose", "crash test " + planned.key},
                                               {"expires_at", expires_at}},
                                              op, planned.key, retries);
        if (reserved.status != 201) {
          failures[c] = "reserve " + planned.key + ": " + reserved.body;
          break;
        }
        const std::string reservation_id = reserved.Json().value("id", "");
        const std::string base = "/v1/admin/tenants/" + tenant + "/reservations/" + reservation_id;
        Response resolved;
        if (planned.settle) {
          json usage = json::array();
          for (const auto& [category, micros] : planned.usage) {
            usage.push_back({{"category", category}, {"amount", CreditsText(micros)}});
          }
          resolved = SendUntilAnswered(client, client_origin, base + "/settle", {{"usage", usage}}, op,
                                       planned.key + "/settle", retries);
        } else {
          resolved = SendUntilAnswered(client, client_origin, base + "/void", json::object(), op, planned.key + "/void",
                                       retries);
        }
        if (resolved.status != 200) {
          failures[c] = "resolve " + planned.key + ": " + resolved.body;
          break;
        }
        const std::string state = resolved.Json().value("state", "");
        if (state != (planned.settle ? "settled" : "voided")) {
          failures[c] = "resolve " + planned.key + " left state " + state;
          break;
        }
        ++completed_ops;
      }
      ++finished;
    });
  }

  // The killer: SIGKILL at seeded points of the clients' progress (so however fast the server is, the kills
  // land while they run), a few ms after the chosen operation completed so that others are in flight;
  // restart on the same database.
  std::mt19937_64 kill_random(seed ^ 0x5eed);
  const int total_ops = clients * kOpsPerClient;
  std::vector<int> kill_after;  // completed operations before each kill
  for (int k = 0; k < kills; ++k) kill_after.push_back(1 + static_cast<int>(kill_random() % (total_ops - 1)));
  std::sort(kill_after.begin(), kill_after.end());
  int killed = 0;
  for (; killed < kills && finished.load() < clients; ++killed) {
    while (completed_ops.load() < kill_after[killed] && finished.load() < clients) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_random() % 20));
    if (finished.load() == clients) break;
    ASSERT_EQ(::kill(server->pid(), SIGKILL), 0);
    server->Wait(10s);
    ASSERT_TRUE(server->exited());
    server = StartServer();
    ASSERT_NE(server, nullptr) << "restart " << killed + 1 << " failed";
    SetOrigin(server->origin());
  }
  for (auto& thread : threads) thread.join();
  for (int c = 0; c < clients; ++c) EXPECT_EQ(failures[c], "") << "client " << c;
  EXPECT_GT(killed, 0) << "the clients finished before the first kill";
  std::cerr << "[ crash ] seed " << seed << ": " << killed << " kills, " << retries.load() << " retries\n";

  // Balances: grant − settled usage, nothing held, one reservation per operation.
  auto check = Client(server);
  for (int t = 0; t < kTenants; ++t) {
    SCOPED_TRACE("tenant " + std::to_string(t));
    auto balance = check->Get("/v1/credits", &tenants[t].cookie);
    ASSERT_EQ(balance.status, 200) << balance;
    const int64_t expected = kGrantCredits * 1'000'000 - expected_charged[t];
    EXPECT_EQ(balance.Json().value("available", ""), CreditsText(expected)) << balance;
    EXPECT_EQ(balance.Json().value("reserved", ""), "0") << balance;
    auto rows = database().Direct().Query("SELECT count(*) FROM billing_reservations WHERE tenant_id = $1",
                                          {tenants[t].tenant_id});
    ASSERT_TRUE(rows.ok()) << rows.error().message;
    EXPECT_EQ((*rows)[0].Int(0), kClientsPerTenant * kOpsPerClient);
  }
  auto open_holds = database().Direct().Query("SELECT count(*) FROM ledger_pending WHERE state = 'pending'");
  ASSERT_TRUE(open_holds.ok()) << open_holds.error().message;
  EXPECT_EQ((*open_holds)[0].Int(0), 0) << "stranded holds";

  // And a last kill with nothing in flight, then the offline invariant check.
  ASSERT_EQ(::kill(server->pid(), SIGKILL), 0);
  server->Wait(10s);
  auto ledger_check = RunClozit({"admin", "ledger-check"}, command_env, dir(), 120s);
  EXPECT_EQ(ledger_check.exit_code, 0) << ledger_check.out << ledger_check.err;
}

CLOZIT_INSTANTIATE_BACKENDS(BillingCrashTest);

}  // namespace
}  // namespace clozit::itest
