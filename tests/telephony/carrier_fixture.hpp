// The platform's telephony against the real carrier emulator over loopback
// HTTP, on SQLite and PostgreSQL: billing (ledger, charging, number fees at
// 2.5 credits per number), the emulator serving Twilio and Telnyx, the
// platform's webhook routes, and one platform account at each carrier. For
// the failure matrix and the number-purchase sweep.
//
// Time is real (the emulator's calls ring and talk on it, and it signs Telnyx
// webhooks with it) plus an offset a test may move forward to reach a grace
// period without sleeping. Every member is used from the test's thread and the
// servers' threads; the clock and random are thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "billing/charging.hpp"
#include "billing/ledger.hpp"
#include "billing/ledger_check.hpp"
#include "billing/number_fees.hpp"
#include "emulator.hpp"
#include "emulator_harness.hpp"
#include "http/client.hpp"
#include "storage/backend_fixture.hpp"
#include "storage/migrations.hpp"
#include "telephony/telephony.hpp"

namespace clozit::telephony::test {

/// The system clock moved forward by what the test says. Thread-safe.
class OffsetClock final : public Clock {
 public:
  TimePoint Now() const override { return system_.Now() + std::chrono::microseconds(offset_us_.load()); }
  void Advance(std::chrono::microseconds by) { offset_us_.fetch_add(by.count()); }

 private:
  SystemClock system_;
  std::atomic<int64_t> offset_us_{0};
};

constexpr Credits kGrant = Credits::FromMicros(100'000'000);
constexpr Credits kNumberFees = Credits::FromMicros(2'500'000);  // first month + regulatory

// Callees by persona (time scale 0.01: rings and calls last tens of milliseconds).
constexpr const char* kScenario = R"({
  "default": {"persona": "answer", "talk_seconds": 20},
  "rules": [
    {"match": "+15550001001", "persona": "answer", "ring_seconds": 3, "talk_seconds": 30},
    {"match": "+15550001003", "persona": "busy"},
    {"match": "+15550001004", "persona": "no_answer"},
    {"match": "+15550001006", "persona": "reject"}
  ]
})";

class CarrierFixture : public storage::test::BackendTest {
 protected:
  void SetUp() override {
    BackendTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(storage::Migrate(*db_, clock_).ok());
    ledger_ = std::make_unique<billing::Ledger>(*db_, clock_, random_);
    charging_ = std::make_unique<billing::Charging>(*db_, *ledger_, audit_, clock_, random_);
    fees_ = std::make_unique<billing::NumberFees>(
        *db_, *ledger_, audit_, clock_, random_,
        [](storage::Tx&, const std::string&, const std::string&, TimePoint) -> Result<billing::NumberFeeQuote> {
          return billing::NumberFeeQuote{Credits::FromMicros(2'000'000), Credits::FromMicros(500'000), 0};
        });

    emulator::EmulatorOptions options;
    options.time_scale = 0.01;
    options.twilio_calls_per_second = 1000;  // no queueing: these tests are about faults, not rates
    options.telnyx_calls_per_second = 1000;
    auto scenario = emulator::Scenario::FromJson(kScenario);
    ASSERT_TRUE(scenario.ok()) << scenario.error().message;
    auto created = emulator::Emulator::Create(options, *scenario, clock_);
    ASSERT_TRUE(created.ok()) << created.error().message;
    emulator_ = std::move(created).value();
    carrier_ = std::make_unique<RunningServer>([this](http::Request& r) { return emulator_->Handle(r); });

    auto box = CredentialBox::FromKeyText(std::string(64, 'b'));
    ASSERT_TRUE(box.ok());
    telephony_ =
        std::make_unique<Telephony>(*db_, audit_, clock_, random_, *box, ProviderAccountSettings{}, fees_.get());
    platform_ = std::make_unique<RunningServer>([this](http::Request& r) { return Webhook(r); });
    telephony_->SetPublicBaseUrl(platform_->origin());

    ProviderAccountInput twilio;
    twilio.provider = ProviderKind::kTwilio;
    twilio.name = "fixture twilio";
    twilio.api_base = carrier_->origin();
    twilio.account_sid = "AC" + std::string(32, '7');
    twilio.secret = "emulator-twilio-auth-token";
    auto twilio_account = telephony_->accounts.Create("", twilio, privacy::Actor{});
    ASSERT_TRUE(twilio_account.ok()) << twilio_account.error().message;
    accounts_[ProviderKind::kTwilio] = *twilio_account;

    ProviderAccountInput telnyx;
    telnyx.provider = ProviderKind::kTelnyx;
    telnyx.name = "fixture telnyx";
    telnyx.api_base = carrier_->origin();
    telnyx.connection_id = "fixture-connection";
    telnyx.public_key = emulator_->telnyx_public_key_base64();
    telnyx.secret = "KEY-fixture-0123456789";
    auto telnyx_account = telephony_->accounts.Create("", telnyx, privacy::Actor{});
    ASSERT_TRUE(telnyx_account.ok()) << telnyx_account.error().message;
    accounts_[ProviderKind::kTelnyx] = *telnyx_account;
  }

  void TearDown() override {
    platform_.reset();
    telephony_.reset();
    carrier_.reset();
    emulator_.reset();
    fees_.reset();
    charging_.reset();
    ledger_.reset();
    BackendTest::TearDown();
  }

  // The platform's webhook routes (src/api/telephony_routes.cpp), without the rest of the API.
  http::Response Webhook(http::Request& request) {
    const std::string url = platform_->origin() + request.target;
    const std::string twilio_prefix = "/v1/webhooks/twilio/";
    const std::string telnyx_prefix = "/v1/webhooks/telnyx/";
    Result<EventEffect> received = Error::NotFound("no such route");
    if (request.path.starts_with(twilio_prefix) && request.path.ends_with("/status")) {
      std::string account = request.path.substr(twilio_prefix.size());
      account = account.substr(0, account.size() - std::string("/status").size());
      received = telephony_->webhooks.Receive(ProviderKind::kTwilio, account, url, request);
    } else if (request.path.starts_with(telnyx_prefix)) {
      received =
          telephony_->webhooks.Receive(ProviderKind::kTelnyx, request.path.substr(telnyx_prefix.size()), url, request);
    }
    if (received) return http::Response::Json(200, R"({"received":true})");
    return http::Response::Text(received.error().code == ErrorCode::kPermissionDenied ? 403 : 500,
                                received.error().message);
  }

  /// A new tenant holding kGrant credits.
  std::string NewTenant() {
    const std::string tenant = TenantId::New(clock_, random_).str();
    EXPECT_TRUE(db_->Write([&](storage::Tx& tx) -> Result<void> {
                     CLOZIT_TRY(
                         tx.Exec("INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ($1, "
                                 "'T', 'active', 0, 0)",
                                 {tenant}));
                     return Ok();
                   })
                    .ok());
    billing::GrantRequest grant;
    grant.tenant_id = TenantId(tenant);
    grant.amount = kGrant;
    grant.idempotency_key = "grant-" + tenant;
    EXPECT_TRUE(charging_->Grant(grant).ok());
    return tenant;
  }

  /// The emulator's record of what it did (`calls`, `events`, `requests`).
  nlohmann::json EmulatorGet(const std::string& what) {
    auto client = http::Client::Create(carrier_->origin(), {});
    if (!client) return nlohmann::json::array();
    auto response = (*client)->Send("GET", "/_emulator/" + what, {}, "");
    if (!response || response->status != 200) return nlohmann::json::array();
    return nlohmann::json::parse(response->body, nullptr, false);
  }

  /// CheckLedger finds nothing wrong.
  void ExpectLedgerClean() {
    auto breaches = billing::CheckLedger(*db_);
    ASSERT_TRUE(breaches.ok()) << breaches.error().message;
    for (const auto& breach : *breaches) ADD_FAILURE() << "ledger-check: " << breach;
  }

  OffsetClock clock_;
  SeededRandom random_{5};
  privacy::AuditLog audit_{clock_, random_};
  std::unique_ptr<billing::Ledger> ledger_;
  std::unique_ptr<billing::Charging> charging_;
  std::unique_ptr<billing::NumberFees> fees_;
  std::unique_ptr<emulator::Emulator> emulator_;
  std::unique_ptr<RunningServer> carrier_;
  std::unique_ptr<Telephony> telephony_;
  std::unique_ptr<RunningServer> platform_;
  std::map<ProviderKind, ProviderAccount> accounts_;
};

}  // namespace clozit::telephony::test
