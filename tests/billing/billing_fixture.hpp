// Billing tests run on SQLite and on PostgreSQL (when CLOZIT_TEST_PG_URL is
// set; scripts/with-postgres.sh sets it), each against a fresh, migrated
// database, with a ManualClock and SeededRandom so every run is repeatable.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "billing/charging.hpp"
#include "billing/ledger.hpp"
#include "billing/ledger_check.hpp"
#include "common/clock.hpp"
#include "privacy/audit_log.hpp"
#include "storage/backend_fixture.hpp"
#include "storage/migrations.hpp"

namespace clozit::billing::test {

using storage::Dialect;

/// Whole credits.
inline Credits Cr(int64_t whole) { return Credits::FromMicros(whole * Credits::kMicrosPerCredit); }

inline std::string Join(const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& line : lines) text += "\n  " + line;
  return text;
}

// A second node: its own connection(s) to the same database, its own ledger and charging, so none of the
// first node's in-memory facts and none of its write batches.
struct OtherNode {
  OtherNode(std::unique_ptr<storage::Database> opened, const Clock& clock, Random& random, privacy::AuditLog& audit)
      : db(std::move(opened)), ledger(*db, clock, random), charging(*db, ledger, audit, clock, random) {}
  std::unique_ptr<storage::Database> db;
  Ledger ledger;
  Charging charging;
};

class BillingTest : public storage::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto applied = storage::Migrate(*db_, clock_);
    ASSERT_TRUE(applied.ok()) << applied.error().message;
    ledger_ = std::make_unique<Ledger>(*db_, clock_, random_);
    audit_ = std::make_unique<privacy::AuditLog>(clock_, random_);
    charging_ = std::make_unique<Charging>(*db_, *ledger_, *audit_, clock_, random_);
  }

  void TearDown() override {
    charging_.reset();
    audit_.reset();
    ledger_.reset();
    BackendTest::TearDown();
  }

  /// Opens the database again with every write careful (OpenOptions::careful_writes), and the services on it.
  void ReopenWithCarefulWrites() {
    charging_.reset();
    audit_.reset();
    ledger_.reset();
    db_.reset();
    auto options = Options();
    options.careful_writes = true;
    db_ = OpenDatabase(options);
    ASSERT_NE(db_, nullptr);
    ledger_ = std::make_unique<Ledger>(*db_, clock_, random_);
    audit_ = std::make_unique<privacy::AuditLog>(clock_, random_);
    charging_ = std::make_unique<Charging>(*db_, *ledger_, *audit_, clock_, random_);
  }

  /// A tenant row (billing tables reference tenants).
  TenantId NewTenant() {
    TenantId id = TenantId::New(clock_, random_);
    auto created = db_->Write([&](storage::Tx& tx) -> Result<void> {
      CLOZIT_TRY(
          tx.Exec("INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ($1, $2, 'active', 0, 0)",
                  {id.str(), "Tenant " + id.str()}));
      return Ok();
    });
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    return id;
  }

  /// Fails the test with the list of breaches unless the books are clean.
  void ExpectClean() {
    auto breaches = CheckLedger(*db_);
    ASSERT_TRUE(breaches.ok()) << breaches.error().message;
    EXPECT_TRUE(breaches->empty()) << "ledger-check found:" << Join(*breaches);
  }

  Account AccountNow(const std::string& id) {
    auto account = ledger_->GetAccount(id);
    EXPECT_TRUE(account.ok()) << (account.ok() ? "" : account.error().message);
    return account.ok() ? *account : Account{};
  }

  /// Opens a plain account with the given flags.
  std::string OpenPlain(const std::string& id, uint32_t flags = 0, const std::string& tenant = {}) {
    auto opened = ledger_->OpenAccount({id, kCreditsLedger, tenant, "test." + id, flags});
    EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
    return id;
  }

  Lot GrantOk(const TenantId& tenant, Credits amount, LotKind kind = LotKind::kPurchase,
              std::optional<TimePoint> expires_at = std::nullopt, int64_t priority = 0) {
    GrantRequest request;
    request.tenant_id = tenant;
    request.amount = amount;
    request.kind = kind;
    request.expires_at = expires_at;
    request.priority = priority;
    request.idempotency_key = "grant-" + std::to_string(++grant_counter_);
    auto lot = charging_->Grant(request);
    EXPECT_TRUE(lot.ok()) << (lot.ok() ? "" : lot.error().message);
    return lot.ok() ? *lot : Lot{};
  }

  Result<Reservation> Reserve(const TenantId& tenant, Credits estimate, const std::string& key,
                              std::chrono::milliseconds ttl = std::chrono::minutes(10)) {
    return charging_->Reserve({tenant, estimate, "test call", key, clock_.Now() + ttl});
  }

  /// What a reservation may take now.
  Credits Available(const TenantId& tenant) {
    auto balance = charging_->Balance(tenant);
    EXPECT_TRUE(balance.ok());
    return balance.ok() ? balance->available : Credits();
  }

  /// Runs one statement in a write of its own (setting up or tampering with rows); the test fails if it does.
  void ExecOk(const std::string& sql, const storage::Params& params = {}) {
    auto done = db_->Write([&](storage::Tx& tx) -> Result<void> {
      CLOZIT_TRY(tx.Exec(sql, params));
      return Ok();
    });
    ASSERT_TRUE(done.ok()) << done.error().message;
  }

  /// Suspends the tenant as trust and safety would (spam, illegal_calling, fraud, nonpayment, …).
  void Suspend(const TenantId& tenant, const std::string& reason) {
    ExecOk("UPDATE tenants SET status = 'suspended', suspension_reason = $2 WHERE id = $1", {tenant.str(), reason});
  }

  /// The first column of the first row, e.g. of a COUNT(*); -1 when the query fails.
  int64_t Count(const std::string& sql, const storage::Params& params = {}) {
    auto rows = db_->Query(sql, params);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    return rows.ok() && !rows->empty() ? rows->front().Int(0) : -1;
  }

  ManualClock clock_{FromUnixMillis(1'790'000'000'000)};
  SeededRandom random_{20261126};
  std::unique_ptr<Ledger> ledger_;
  std::unique_ptr<privacy::AuditLog> audit_;
  std::unique_ptr<Charging> charging_;
  int grant_counter_ = 0;
};

}  // namespace clozit::billing::test
