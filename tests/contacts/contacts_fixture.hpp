// A migrated database (SQLite, and PostgreSQL under scripts/with-postgres.sh)
// with two tenants, and the contacts module built on it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "contacts/contacts.hpp"
#include "contacts/dnc.hpp"
#include "contacts/phone_numbers.hpp"
#include "contacts/time_zones.hpp"
#include "privacy/audit_log.hpp"
#include "storage/backend_fixture.hpp"
#include "storage/migrations.hpp"

namespace clozit::contacts::test {

/// The time zone table and number parser are immutable and costly to build: one per test binary.
inline PhoneNumbers& SharedNumbers() {
  static TimeZoneTable* table = new TimeZoneTable();
  static PhoneNumbers* numbers = new PhoneNumbers(*table);
  return *numbers;
}

class ContactsTest : public storage::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto applied = storage::Migrate(*db_, clock_);
    ASSERT_TRUE(applied.ok()) << applied.error().message;
    for (const auto* id : {kTenantA, kTenantB}) {
      Script(std::string("INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ('") + id +
             "', 'Tenant', 'active', 0, 0)");
    }
    audit_ = std::make_unique<privacy::AuditLog>(clock_, random_);
    contacts_ = std::make_unique<Contacts>(*db_, clock_, random_, *audit_, SharedNumbers());
    dnc_ = std::make_unique<DoNotCall>(*db_, clock_, random_, *audit_, SharedNumbers());
  }

  void TearDown() override {
    dnc_.reset();
    contacts_.reset();
    BackendTest::TearDown();
  }

  ConsentInput Consent() const {
    ConsentInput consent;
    consent.type = "prior_express_written_consent";
    consent.obtained_where = "web form at example.com/quote";
    consent.obtained_at = clock_.Now() - std::chrono::hours(24 * 30);
    consent.evidence = "https://example.com/consents/123";
    consent.attested_by = "usr_01JDZ3ABCDEFGHJKMNPQRSTVWX";
    return consent;
  }

  privacy::Actor Actor(const char* tenant = kTenantA) const {
    return {"user", "usr_01JDZ3ABCDEFGHJKMNPQRSTVWX", tenant, "127.0.0.1", "req_test"};
  }

  static constexpr const char* kTenantA = "ten_01JDZ3AAAAAAAAAAAAAAAAAAAA";
  static constexpr const char* kTenantB = "ten_01JDZ3BBBBBBBBBBBBBBBBBBBB";
  TenantId tenant_a_{kTenantA};
  TenantId tenant_b_{kTenantB};
  ManualClock clock_{FromUnixMillis(1767225600000)};  // 2026-01-01
  SeededRandom random_{42};
  std::unique_ptr<privacy::AuditLog> audit_;
  std::unique_ptr<Contacts> contacts_;
  std::unique_ptr<DoNotCall> dnc_;
};

}  // namespace clozit::contacts::test
