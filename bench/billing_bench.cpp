// Reserve + settle pairs from concurrent clients over many tenants, beside the
// raw single-row INSERT rate of the same database through the same write path,
// in one run. Prints a JSON line per phase for bench/billing_bench.sh.
//
//   billing_bench URL [--tenants N] [--clients N] [--seconds S] [--warmup S] [--pool N] [--batch N]
//
// Each client thread loops: pick a tenant at random, Reserve 1 credit with a
// fresh idempotency key, Settle 0.25–1 credit of call minutes. The ledger is
// checked (CheckLedger) at the end, so the figures are for correct work only.
//
// The pairs are timed after a warm-up (2 s by default), so a run measures the steady state, not the first
// batches' cold caches and plan choices.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

#include "billing/charging.hpp"
#include "billing/ledger.hpp"
#include "billing/ledger_check.hpp"
#include "common/clock.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"
#include "storage/migrations.hpp"

namespace {

using namespace clozit;
using Steady = std::chrono::steady_clock;

struct Options {
  std::string url;
  int tenants = 1000;
  int clients = 64;
  double seconds = 10;
  double warmup = 2;
  int pool = 8;
  int batch = 64;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "billing_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(Result<T> result, const char* what) {
  if (!result) Die(std::string(what) + ": " + result.error().message);
  return std::move(result).value();
}

void Must(Result<void> result, const char* what) {
  if (!result) Die(std::string(what) + ": " + result.error().message);
}

// User + system CPU of the whole process: what a pair costs, whatever else runs on the machine.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  size_t index = std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

// Runs `body(client, i)` on `clients` threads until `seconds` pass; returns completed operations and the
// per-operation latencies (ms) of the first timed step each body reports.
template <typename Body>
std::pair<int64_t, double> RunClients(int clients, double seconds, Body body) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> done{0};
  std::vector<std::thread> threads;
  auto start = Steady::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        body(c, i);
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& thread : threads) thread.join();
  double elapsed = std::chrono::duration<double>(Steady::now() - start).count();
  return {done.load(), elapsed};
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (argc < 2) {
    Die("usage: billing_bench URL [--tenants N] [--clients N] [--seconds S] [--warmup S] [--pool N] [--batch N]");
  }
  options.url = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--tenants")
      options.tenants = std::atoi(argv[i + 1]);
    else if (flag == "--clients")
      options.clients = std::atoi(argv[i + 1]);
    else if (flag == "--seconds")
      options.seconds = std::atof(argv[i + 1]);
    else if (flag == "--warmup")
      options.warmup = std::atof(argv[i + 1]);
    else if (flag == "--pool")
      options.pool = std::atoi(argv[i + 1]);
    else if (flag == "--batch")
      options.batch = std::atoi(argv[i + 1]);
    else
      Die("unknown flag " + flag);
  }

  storage::OpenOptions open;
  open.url = options.url;
  open.pool_size = options.pool;
  open.write_batch_max = options.batch;
  auto db = Must(storage::Open(open), "open");
  SystemClock clock;
  SystemRandom random;
  Must(storage::Migrate(*db, clock), "migrate");
  if (const char* pragmas = std::getenv("BENCH_PRAGMAS")) {
    Must(db->Write([&](storage::Tx& tx) -> Result<void> {
      std::string all = pragmas;
      size_t start = 0;
      while (start < all.size()) {
        size_t end = all.find(';', start);
        if (end == std::string::npos) end = all.size();
        CLOZIT_TRY(tx.Query(all.substr(start, end - start)));
        start = end + 1;
      }
      return Ok();
    }),
         "pragmas");
  }
  privacy::AuditLog audit(clock, random);
  billing::Ledger ledger(*db, clock, random);
  billing::Charging charging(*db, ledger, audit, clock, random);

  // Tenants, each with one large purchased lot.
  std::vector<TenantId> tenants;
  for (int t = 0; t < options.tenants; ++t) tenants.push_back(TenantId::New(clock, random));
  Must(db->Write([&](storage::Tx& tx) -> Result<void> {
    for (const auto& tenant : tenants) {
      CLOZIT_TRY(
          tx.Exec("INSERT INTO tenants (id, name, status, created_at, updated_at) "
                  "VALUES ($1, 'Bench', 'active', 0, 0)",
                  {tenant.str()}));
    }
    return Ok();
  }),
       "tenants");
  for (const auto& tenant : tenants) {
    billing::GrantRequest grant;
    grant.tenant_id = tenant;
    grant.amount = Credits::FromMicros(int64_t{1'000'000} * 1'000'000);
    grant.idempotency_key = "bench-grant";
    Must(charging.Grant(grant), "grant");
  }

  // Phase 1: the raw single-row INSERT rate through the same Database::Write path.
  Must(db->Write([](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("CREATE TABLE IF NOT EXISTS bench_raw (id TEXT PRIMARY KEY, tenant_id TEXT, amount BIGINT)"));
    return Ok();
  }),
       "create bench_raw");
  auto [inserts, insert_seconds] = RunClients(options.clients, options.seconds / 2, [&](int client, int64_t i) {
    std::string id = std::to_string(client) + "-" + std::to_string(i);
    Must(db->Write([&](storage::Tx& tx) -> Result<void> {
      CLOZIT_TRY(tx.Exec("INSERT INTO bench_raw (id, tenant_id, amount) VALUES ($1, $2, $3)",
                         {id, tenants[static_cast<size_t>(i) % tenants.size()].str(), int64_t{1}}));
      return Ok();
    }),
         "insert");
  });

  // Phase 2: reserve + settle pairs.
  std::vector<std::vector<double>> reserve_ms(static_cast<size_t>(options.clients));
  std::vector<std::vector<double>> settle_ms(static_cast<size_t>(options.clients));
  std::atomic<int64_t> failures{0};
  const auto run_id = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  std::atomic<bool> timing{false};
  auto pair = [&](int client, int64_t i) {
    thread_local std::mt19937_64 rng(static_cast<uint64_t>(client) * 7919 + 1);
    const TenantId& tenant = tenants[rng() % tenants.size()];
    billing::ReserveRequest reserve;
    reserve.tenant_id = tenant;
    reserve.estimate = Credits::FromMicros(1'000'000);
    reserve.purpose = "bench call";
    reserve.idempotency_key = run_id + (timing ? "-" : "-warm-") + std::to_string(client) + "-" + std::to_string(i);
    reserve.expires_at = clock.Now() + std::chrono::hours(1);
    auto t0 = Steady::now();
    auto reservation = charging.Reserve(reserve);
    auto t1 = Steady::now();
    if (!reservation) {
      if (failures++ < 3) std::fprintf(stderr, "reserve: %s\n", reservation.error().message.c_str());
      return;
    }
    std::vector<billing::UsageItem> usage = {
        {billing::UsageCategory::kCallMinutes, Credits::FromMicros(250'000 + static_cast<int64_t>(rng() % 750'000))}};
    auto settled = charging.Settle(tenant, reservation->id.str(), usage);
    auto t2 = Steady::now();
    if (!settled) {
      if (failures++ < 3) std::fprintf(stderr, "settle: %s\n", settled.error().message.c_str());
      return;
    }
    if (!timing) return;
    reserve_ms[static_cast<size_t>(client)].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    settle_ms[static_cast<size_t>(client)].push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  };
  if (options.warmup > 0) {
    RunClients(options.clients, options.warmup, pair);
  }
  timing = true;
  const double cpu_before = ProcessCpuSeconds();
  auto [pairs, pair_seconds] = RunClients(options.clients, options.seconds, pair);
  const double cpu_seconds = ProcessCpuSeconds() - cpu_before;
  std::vector<double> reserves, settles;
  for (auto& v : reserve_ms) reserves.insert(reserves.end(), v.begin(), v.end());
  for (auto& v : settle_ms) settles.insert(settles.end(), v.begin(), v.end());
  const int64_t settled = static_cast<int64_t>(settles.size());

  auto problems = Must(billing::CheckLedger(*db), "ledger check");
  std::printf(
      "{\"backend\":\"%s\",\"tenants\":%d,\"clients\":%d,\"raw_inserts_per_s\":%.0f,"
      "\"settled_per_s\":%.0f,\"settled\":%lld,\"failures\":%lld,\"reserve_p50_ms\":%.2f,\"reserve_p99_ms\":%.2f,"
      "\"settle_p50_ms\":%.2f,\"settle_p99_ms\":%.2f,\"cpu_us_per_pair\":%.0f,\"ledger_problems\":%zu}\n",
      options.url.rfind("sqlite:", 0) == 0 ? "sqlite" : "postgresql", options.tenants, options.clients,
      static_cast<double>(inserts) / insert_seconds, static_cast<double>(settled) / pair_seconds,
      static_cast<long long>(settled), static_cast<long long>(failures.load()), Percentile(reserves, 0.50),
      Percentile(reserves, 0.99), Percentile(settles, 0.50), Percentile(settles, 0.99),
      settled > 0 ? cpu_seconds * 1e6 / static_cast<double>(settled) : 0.0, problems.size());
  for (const auto& problem : problems) std::fprintf(stderr, "ledger: %s\n", problem.c_str());
  (void)pairs;
  return problems.empty() && failures.load() == 0 ? 0 : 2;
}
