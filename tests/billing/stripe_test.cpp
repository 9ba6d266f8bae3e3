// The Stripe adapter against a local fake of api.stripe.com (fake_stripe.hpp),
// webhook signatures (correct, wrong, stale, future, several v1), and the
// webhook → checkout → purchase → refund paths on both database backends,
// with the real StripePaymentProvider doing the refunds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <optional>

#include "billing/billing.hpp"
#include "billing/billing_fixture.hpp"
#include "billing/fake_stripe.hpp"
#include "billing/jobs.hpp"
#include "billing/stripe/signature.hpp"
#include "billing/stripe/stripe_provider.hpp"
#include "billing/stripe/webhooks.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::Not;

constexpr const char* kSecretKey = "sk_test_51FakeSecretKeyForTests";
constexpr const char* kSigningSecret = "whsec_test_signing_secret";
const privacy::Actor kOperator{"operator", "opr_test"};
const privacy::Actor kTenantAdmin{"user", "usr_test"};

stripe::StripeSettings SettingsFor(const FakeStripe& fake, std::vector<std::chrono::milliseconds>* sleeps = nullptr) {
  stripe::StripeSettings settings;
  settings.secret_key = kSecretKey;
  settings.api_base = fake.origin();
  settings.sleep = [sleeps](std::chrono::milliseconds d) {
    if (sleeps) sleeps->push_back(d);
  };
  return settings;
}

int64_t Seconds(TimePoint t) { return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count(); }

// ---------------------------------------------------------------- signatures

TEST(StripeSignature, AcceptsTheSignatureStripeComputes) {
  const TimePoint now = FromUnixMillis(1'790'000'000'000);
  const std::string body = R"({"id":"evt_1","type":"charge.refunded"})";
  const std::string header = stripe::SignatureHeader(kSigningSecret, Seconds(now), body);
  EXPECT_TRUE(stripe::VerifySignature(kSigningSecret, header, body, now).ok());
  // HMAC-SHA256 over "t.body", computed independently:
  // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test_signing_secret",
  //   b"1790000000." + b"{\"id\":\"evt_1\",\"type\":\"charge.refunded\"}", hashlib.sha256).hexdigest())'
  EXPECT_EQ(stripe::SignatureV1(kSigningSecret, 1790000000, body),
            "e6ef8812232d9f798c4820dee4c747bdb4ea2d89eff4a3373338c599e613379f");
  EXPECT_EQ(header, "t=1790000000,v1=e6ef8812232d9f798c4820dee4c747bdb4ea2d89eff4a3373338c599e613379f");
}

TEST(StripeSignature, RefusesWrongTamperedStaleAndFutureSignatures) {
  const TimePoint now = FromUnixMillis(1'790'000'000'000);
  const std::string body = R"({"id":"evt_1"})";
  auto refused = [&](const std::string& header, const std::string& payload, const std::string& why) {
    auto result = stripe::VerifySignature(kSigningSecret, header, payload, now);
    ASSERT_FALSE(result.ok()) << why;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument) << why;
    EXPECT_EQ(result.error().field, "Stripe-Signature") << why;
    EXPECT_THAT(result.error().message, Not(HasSubstr(kSigningSecret))) << why;
  };
  refused(stripe::SignatureHeader("whsec_other", Seconds(now), body), body, "another secret");
  refused(stripe::SignatureHeader(kSigningSecret, Seconds(now), body), body + " ", "a changed body");
  refused(stripe::SignatureHeader(kSigningSecret, Seconds(now) - 301, body), body, "older than 300 s");
  refused(stripe::SignatureHeader(kSigningSecret, Seconds(now) + 301, body), body, "more than 300 s ahead");
  refused("v1=" + stripe::SignatureV1(kSigningSecret, Seconds(now), body), body, "no timestamp");
  refused("t=" + std::to_string(Seconds(now)), body, "no v1");
  refused("t=" + std::to_string(Seconds(now)) + ",v0=" + stripe::SignatureV1(kSigningSecret, Seconds(now), body), body,
          "only the v0 scheme");
  refused("t=12x," + stripe::SignatureV1(kSigningSecret, Seconds(now), body), body, "a malformed timestamp");
  refused("", body, "no header");
  // A signature made for another timestamp does not verify with this one.
  refused("t=" + std::to_string(Seconds(now)) + ",v1=" + stripe::SignatureV1(kSigningSecret, Seconds(now) - 1, body),
          body, "the timestamp swapped");
  // Within the tolerance either way is fine; the tolerance is configurable.
  EXPECT_TRUE(stripe::VerifySignature(kSigningSecret, stripe::SignatureHeader(kSigningSecret, Seconds(now) - 299, body),
                                      body, now)
                  .ok());
  EXPECT_FALSE(stripe::VerifySignature(kSigningSecret, stripe::SignatureHeader(kSigningSecret, Seconds(now) - 60, body),
                                       body, now, 30s)
                   .ok());
}

TEST(StripeSignature, AnyOfSeveralV1SignaturesMayMatch) {
  // While a signing secret is rolled, Stripe signs with the old and the new one.
  const TimePoint now = FromUnixMillis(1'790'000'000'000);
  const std::string body = R"({"id":"evt_2"})";
  const std::string t = std::to_string(Seconds(now));
  const std::string old_sig = stripe::SignatureV1("whsec_old", Seconds(now), body);
  const std::string new_sig = stripe::SignatureV1(kSigningSecret, Seconds(now), body);
  EXPECT_TRUE(stripe::VerifySignature(kSigningSecret, "t=" + t + ",v1=" + old_sig + ",v1=" + new_sig, body, now).ok());
  EXPECT_TRUE(
      stripe::VerifySignature(kSigningSecret, "t=" + t + ", v1=" + new_sig + ", v1=" + old_sig + ",v0=ab", body, now)
          .ok());
  EXPECT_FALSE(stripe::VerifySignature(kSigningSecret, "t=" + t + ",v1=" + old_sig + ",v1=" + old_sig, body, now).ok());
}

// ---------------------------------------------------------------- the provider against the fake

TEST(StripeProvider, RefundSpeaksStripesWireFormat) {
  FakeStripe fake(kSecretKey);
  fake.AddPayment("pi_123", 5000, "usd");
  stripe::StripePaymentProvider provider(SettingsFor(fake));
  auto receipt = provider.Refund({"pi_123", 1200, "USD", "rfd_01TEST/refund/1", "rfd_01TEST"});
  ASSERT_TRUE(receipt.ok()) << receipt.error().message;
  EXPECT_THAT(receipt->refund_id, testing::StartsWith("re_"));
  EXPECT_EQ(receipt->amount_minor, 1200);
  auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].path, "/v1/refunds");
  EXPECT_EQ(requests[0].authorization, std::string("Bearer ") + kSecretKey);
  EXPECT_EQ(requests[0].idempotency_key, "clozit-refund-rfd_01TEST/refund/1");
  EXPECT_EQ(requests[0].form.at("payment_intent"), "pi_123");
  EXPECT_EQ(requests[0].form.at("amount"), "1200");
  EXPECT_EQ(requests[0].form.at("metadata[clozit_refund_request_id]"), "rfd_01TEST");
  EXPECT_EQ(requests[0].form.at("metadata[clozit_refund_attempt]"), "rfd_01TEST/refund/1");
  EXPECT_EQ(fake.PaymentOf("pi_123").refunded, 1200);
}

TEST(StripeProvider, FindRefundsListsThePaymentsRefundsForOneRequestOldestFirst) {
  FakeStripe fake(kSecretKey);
  fake.AddPayment("pi_123", 5000, "usd");
  fake.AddPayment("pi_456", 5000, "usd");
  stripe::StripePaymentProvider provider(SettingsFor(fake));
  ASSERT_TRUE(provider.Refund({"pi_123", 1000, "USD", "rfd_A/refund/1", "rfd_A"}).ok());
  ASSERT_TRUE(provider.Refund({"pi_123", 700, "USD", "rfd_B/refund/1", "rfd_B"}).ok());
  fake.SetRefundStatus("pending");
  ASSERT_TRUE(provider.Refund({"pi_123", 300, "USD", "rfd_A/refund/2", "rfd_A"}).ok());
  ASSERT_TRUE(provider.Refund({"pi_456", 300, "USD", "rfd_A/refund/3", "rfd_A"}).ok());
  auto found = provider.FindRefunds("pi_123", "rfd_A");
  ASSERT_TRUE(found.ok()) << found.error().message;
  ASSERT_EQ(found->size(), 2u);
  EXPECT_EQ((*found)[0].amount_minor, 1000);
  EXPECT_EQ((*found)[0].status, "succeeded");
  EXPECT_EQ((*found)[0].attempt, "rfd_A/refund/1");
  EXPECT_EQ((*found)[1].amount_minor, 300);
  EXPECT_EQ((*found)[1].status, "pending");
  EXPECT_EQ((*found)[1].attempt, "rfd_A/refund/2");
  const auto lookup = fake.requests().back();
  EXPECT_EQ(lookup.path, "/v1/refunds");
  EXPECT_EQ(lookup.authorization, std::string("Bearer ") + kSecretKey);
  EXPECT_TRUE(lookup.idempotency_key.empty()) << "a read carries no idempotency key";
  auto none = provider.FindRefunds("pi_123", "rfd_C");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto grant = provider.FindRefunds("wire-42", "rfd_A");
  ASSERT_TRUE(grant.ok());
  EXPECT_TRUE(grant->empty()) << "a payment taken elsewhere has no refunds at Stripe";
  fake.FailNext(10, 500, "api_error");
  auto down = provider.FindRefunds("pi_123", "rfd_A");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
}

TEST(StripeProvider, ALostResponseIsRetriedWithTheSameKeyAndRefundsOnce) {
  FakeStripe fake(kSecretKey);
  fake.AddPayment("pi_lost", 5000, "usd");
  std::vector<std::chrono::milliseconds> sleeps;
  stripe::StripePaymentProvider provider(SettingsFor(fake, &sleeps));
  // Stripe refunds, then the answer is lost (a 500 after processing).
  fake.FailNext(1, 500, "api_error", "", /*after_processing=*/true);
  auto receipt = provider.Refund({"pi_lost", 5000, "USD", "rfd_01LOST"});
  ASSERT_TRUE(receipt.ok()) << receipt.error().message;
  EXPECT_EQ(fake.refunds().size(), 1u);
  EXPECT_EQ(fake.PaymentOf("pi_lost").refunded, 5000);
  auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].idempotency_key, requests[1].idempotency_key);
  EXPECT_EQ(sleeps.size(), 1u);
  // And the caller retrying the whole refund later gets the same refund back, not a second one.
  auto again = provider.Refund({"pi_lost", 5000, "USD", "rfd_01LOST"});
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->refund_id, receipt->refund_id);
  EXPECT_EQ(fake.refunds().size(), 1u);
}

TEST(StripeProvider, RateLimitsAndOutagesAreRetriedThenReported) {
  FakeStripe fake(kSecretKey);
  fake.AddPayment("pi_busy", 5000, "usd");
  std::vector<std::chrono::milliseconds> sleeps;
  stripe::StripePaymentProvider provider(SettingsFor(fake, &sleeps));
  fake.FailNext(2, 429, "invalid_request_error", "rate_limit");
  auto receipt = provider.Refund({"pi_busy", 100, "USD", "rfd_01BUSY"});
  ASSERT_TRUE(receipt.ok()) << receipt.error().message;
  EXPECT_EQ(sleeps, (std::vector<std::chrono::milliseconds>{250ms, 500ms}));

  sleeps.clear();
  fake.FailNext(10, 503, "api_error");
  auto down = provider.Refund({"pi_busy", 100, "USD", "rfd_01DOWN"});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(sleeps.size(), 3u) << "max_retries = 3";

  // Stripe-Should-Retry: false wins over the status.
  sleeps.clear();
  fake.FailNext(1, 500, "api_error", "", false, false);
  auto final_error = provider.Refund({"pi_busy", 100, "USD", "rfd_01FINAL"});
  ASSERT_FALSE(final_error.ok());
  EXPECT_EQ(final_error.error().code, ErrorCode::kUnavailable);
  EXPECT_TRUE(sleeps.empty());
  EXPECT_EQ(fake.PaymentOf("pi_busy").refunded, 100);
}

TEST(StripeProvider, StripesErrorsMapToStableCodesWithoutRetrying) {
  FakeStripe fake(kSecretKey);
  fake.AddPayment("pi_small", 1000, "usd");
  std::vector<std::chrono::milliseconds> sleeps;
  stripe::StripePaymentProvider provider(SettingsFor(fake, &sleeps));

  auto too_much = provider.Refund({"pi_small", 1001, "USD", "rfd_01A"});
  ASSERT_FALSE(too_much.ok());
  EXPECT_EQ(too_much.error().code, ErrorCode::kConflict);
  EXPECT_THAT(too_much.error().message, HasSubstr("amount_too_large"));

  const size_t before = fake.requests().size();
  auto granted_elsewhere = provider.Refund({"wire-42", 100, "USD", "rfd_01G"});
  ASSERT_FALSE(granted_elsewhere.ok());
  EXPECT_EQ(granted_elsewhere.error().code, ErrorCode::kConflict);
  EXPECT_EQ(fake.requests().size(), before) << "Stripe is not asked about payments it never took";

  auto missing = provider.Refund({"pi_nope", 100, "USD", "rfd_01B"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  ASSERT_TRUE(provider.Refund({"pi_small", 1000, "USD", "rfd_01C"}).ok());
  auto twice = provider.Refund({"pi_small", 10, "USD", "rfd_01D"});
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ErrorCode::kConflict);
  EXPECT_THAT(twice.error().message, HasSubstr("charge_already_refunded"));

  // The same key with other parameters: Stripe keeps the first outcome.
  auto reused = provider.Refund({"pi_small", 999, "USD", "rfd_01C"});
  ASSERT_FALSE(reused.ok());
  EXPECT_EQ(reused.error().code, ErrorCode::kIdempotencyMismatch);

  stripe::StripeSettings wrong = SettingsFor(fake, &sleeps);
  wrong.secret_key = "sk_test_wrong_key_123";
  stripe::StripePaymentProvider unauthorised(wrong);
  auto refused = unauthorised.Refund({"pi_small", 1, "USD", "rfd_01E"});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnauthenticated);
  EXPECT_THAT(refused.error().message, Not(HasSubstr("sk_test_wrong_key_123")));
  EXPECT_TRUE(sleeps.empty()) << "none of these is worth repeating";
}

TEST(StripeProvider, CheckoutSessionCarriesThePackAndOurIds) {
  FakeStripe fake(kSecretKey);
  stripe::StripePaymentProvider provider(SettingsFor(fake));
  CheckoutCall call{"pur_01ABC",
                    "ten_01XYZ",
                    "starter",
                    "100 Clozit credits (starter)",
                    1000,
                    "USD",
                    "https://app.example/ok",
                    "https://app.example/cancel",
                    "pur_01ABC"};
  auto session = provider.CreateCheckoutSession(call);
  ASSERT_TRUE(session.ok()) << session.error().message;
  EXPECT_THAT(session->session_id, testing::StartsWith("cs_test_"));
  EXPECT_THAT(session->url, testing::StartsWith("https://checkout.stripe.com/"));
  auto again = provider.CreateCheckoutSession(call);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->session_id, session->session_id) << "the same key: the same session";
  const auto form = fake.requests().front().form;
  EXPECT_EQ(form.at("mode"), "payment");
  EXPECT_EQ(form.at("client_reference_id"), "pur_01ABC");
  EXPECT_EQ(form.at("line_items[0][price_data][currency]"), "usd");
  EXPECT_EQ(form.at("line_items[0][price_data][unit_amount]"), "1000");
  EXPECT_EQ(form.at("line_items[0][quantity]"), "1");
  EXPECT_EQ(form.at("metadata[clozit_tenant_id]"), "ten_01XYZ");
  EXPECT_EQ(form.at("metadata[clozit_pack_id]"), "starter");
  EXPECT_EQ(form.at("metadata[clozit_purchase_id]"), "pur_01ABC");
  EXPECT_EQ(form.at("success_url"), "https://app.example/ok");
  EXPECT_EQ(fake.requests().front().idempotency_key, "clozit-checkout-pur_01ABC");
}

TEST(CreditPacks, ParseTheOperatorsListAndNameTheKey) {
  auto packs = ParseCreditPacks(" starter:100:1000:USD, pro:1200.5:10000:EUR ");
  ASSERT_TRUE(packs.ok()) << packs.error().message;
  ASSERT_EQ(packs->size(), 2u);
  EXPECT_EQ((*packs)[1].id, "pro");
  EXPECT_EQ((*packs)[1].credits, Credits::FromMicros(1'200'500'000));
  EXPECT_EQ((*packs)[1].price_minor, 10000);
  EXPECT_TRUE(ParseCreditPacks("").ok());
  for (const char* bad : {"starter:100:1000", "Starter:100:1000:USD", "s:0:1000:USD", "s:10:-1:USD", "s:10:100:usd",
                          "s:10:100:USD,s:20:200:USD"}) {
    auto parsed = ParseCreditPacks(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().field, "billing.credit_packs") << bad;
  }
}

// ---------------------------------------------------------------- webhooks, checkouts, refunds (both backends)

class StripeFlowTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    fake_ = std::make_unique<FakeStripe>(kSecretKey);
    stripe::StripeSettings settings_for_fake = SettingsFor(*fake_);
    // Runs between the provider's retries: while a refund is in flight.
    settings_for_fake.sleep = [this](std::chrono::milliseconds) {
      if (between_retries_) between_retries_();
    };
    provider_ = std::make_unique<stripe::StripePaymentProvider>(settings_for_fake);
    BillingSettings settings;
    settings.checkout.packs = {{"starter", Cr(100), 1000, "USD"}, {"pro", Cr(1000), 9000, "USD"}};
    billing_ = std::make_unique<Billing>(*db_, *audit_, clock_, random_, *provider_, settings);
    webhooks_ = std::make_unique<stripe::StripeWebhooks>(*db_, billing_->checkouts, clock_,
                                                         stripe::WebhookSettings{kSigningSecret});
  }

  void TearDown() override {
    webhooks_.reset();
    billing_.reset();
    provider_.reset();
    fake_.reset();
    BillingTest::TearDown();
  }

  Result<stripe::WebhookResult> Deliver(const std::string& body) {
    return webhooks_->Handle(stripe::SignatureHeader(kSigningSecret, Seconds(clock_.Now()), body), body);
  }

  std::string DeliverOk(const std::string& body) {
    auto result = Deliver(body);
    EXPECT_TRUE(result.ok()) << result.error().message;
    return result.ok() ? result->outcome : "";
  }

  /// Opens a checkout for `pack` and pays it at the fake; the purchase id and the payment intent.
  std::pair<std::string, std::string> BuyPack(const TenantId& tenant, const std::string& pack, const std::string& key) {
    auto checkout = billing_->checkouts.Start(tenant, pack, key, kTenantAdmin);
    EXPECT_TRUE(checkout.ok()) << checkout.error().message;
    if (!checkout.ok()) return {};
    EXPECT_EQ(DeliverOk(fake_->Pay(checkout->session_id, "evt_paid_" + key)), "processed");
    return {checkout->purchase_id.str(), fake_->Session(checkout->session_id)["payment_intent"].get<std::string>()};
  }

  void Spend(const TenantId& tenant, Credits amount, const std::string& key) {
    auto reservation = Reserve(tenant, amount, key);
    ASSERT_TRUE(reservation.ok()) << reservation.error().message;
    auto settled = charging_->Settle(tenant, reservation->id.str(), {{UsageCategory::kCallMinutes, amount}});
    ASSERT_TRUE(settled.ok()) << settled.error().message;
  }

  /// Asks for a refund of the purchase and approves it while every answer from Stripe is lost after it refunded:
  /// the request stays pending with its earmark, the outcome unknown to Clozit. The request's id.
  std::string RefundInDoubt(const TenantId& tenant, const std::string& purchase_id) {
    auto request = billing_->purchases.RequestRefund(tenant, purchase_id, "", kTenantAdmin);
    EXPECT_TRUE(request.ok()) << request.error().message;
    if (!request.ok()) return "";
    const size_t refunds_before = fake_->refunds().size();
    fake_->FailNext(100, 502, "api_error", "", /*after_processing=*/true);
    auto lost = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
    fake_->FailNext(0, 200, "");
    EXPECT_FALSE(lost.ok());
    if (!lost.ok()) {
      EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable);
    }
    EXPECT_EQ(fake_->refunds().size(), refunds_before + 1) << "Stripe refunded; Clozit does not know";
    return request->id.str();
  }

  /// Asks for a refund of the purchase and approves it while Stripe holds refunds pending: the approval waits
  /// (unavailable) for Stripe to pay it out. The request as asked; Stripe answers `succeeded` again after.
  Result<RefundRequest> RefundPendingAtStripe(const TenantId& tenant, const std::string& purchase_id) {
    auto request = billing_->purchases.RequestRefund(tenant, purchase_id, "", kTenantAdmin);
    if (!request.ok()) return request;
    fake_->SetRefundStatus("pending");
    auto accepted = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
    fake_->SetRefundStatus("succeeded");
    EXPECT_FALSE(accepted.ok());
    if (!accepted.ok()) {
      EXPECT_EQ(accepted.error().code, ErrorCode::kUnavailable);
      EXPECT_NE(accepted.error().message.find("pending"), std::string::npos) << accepted.error().message;
    }
    return request;
  }

  size_t RefundLookups() const {
    size_t count = 0;
    for (const auto& request : fake_->requests()) count += request.path == "/v1/refunds" && request.form.empty();
    return count;
  }

  std::function<void()> between_retries_;
  std::unique_ptr<FakeStripe> fake_;
  std::unique_ptr<stripe::StripePaymentProvider> provider_;
  std::unique_ptr<Billing> billing_;
  std::unique_ptr<stripe::StripeWebhooks> webhooks_;
};

TEST_P(StripeFlowTest, APaidCheckoutGrantsItsLotExactlyOnce) {
  TenantId tenant = NewTenant();
  auto checkout = billing_->checkouts.Start(tenant, "starter", "buy-1", kTenantAdmin);
  ASSERT_TRUE(checkout.ok()) << checkout.error().message;
  EXPECT_EQ(checkout->status, "pending");
  EXPECT_THAT(checkout->url, testing::StartsWith("https://checkout.stripe.com/"));
  // The same key: the same checkout and session, no second session at Stripe.
  auto again = billing_->checkouts.Start(tenant, "starter", "buy-1", kTenantAdmin);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->purchase_id, checkout->purchase_id);
  EXPECT_EQ(again->session_id, checkout->session_id);
  EXPECT_EQ(fake_->requests().size(), 1u);
  auto other_pack = billing_->checkouts.Start(tenant, "pro", "buy-1", kTenantAdmin);
  ASSERT_FALSE(other_pack.ok());
  EXPECT_EQ(other_pack.error().code, ErrorCode::kIdempotencyMismatch);
  auto unknown = billing_->checkouts.Start(tenant, "gold", "buy-2", kTenantAdmin);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().field, "pack_id");
  EXPECT_EQ(Available(tenant), Credits()) << "nothing before the payment";

  const std::string completed = fake_->Pay(checkout->session_id, "evt_completed_1");
  EXPECT_EQ(DeliverOk(completed), "processed");
  EXPECT_EQ(Available(tenant), Cr(100));
  auto purchase = billing_->purchases.GetPurchase(tenant, checkout->purchase_id.str());
  ASSERT_TRUE(purchase.ok()) << purchase.error().message;
  EXPECT_EQ(purchase->provider, "stripe");
  EXPECT_THAT(purchase->payment_reference, testing::StartsWith("pi_"));
  EXPECT_EQ(purchase->price_minor, 1000);

  // Redelivery, and a second event for the same payment: nothing more.
  EXPECT_EQ(DeliverOk(completed), "duplicate");
  auto session = fake_->Session(checkout->session_id);
  nlohmann::json async = {
      {"id", "evt_async_1"}, {"type", "checkout.session.async_payment_succeeded"}, {"data", {{"object", session}}}};
  EXPECT_EQ(DeliverOk(async.dump()), "ignored");
  EXPECT_EQ(Available(tenant), Cr(100));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_purchases"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_provider_events"), 2) << "both events kept for audit";
  auto retried = billing_->checkouts.Start(tenant, "starter", "buy-1", kTenantAdmin);
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->status, "completed");
  ExpectClean();
}

// P7 counts from the payment, not from when its event got through: Stripe retries a delivery for days.
TEST_P(StripeFlowTest, TheRefundWindowRunsFromThePaymentNotFromItsLateEvent) {
  TenantId tenant = NewTenant();
  auto checkout = billing_->checkouts.Start(tenant, "starter", "buy-1", kTenantAdmin);
  ASSERT_TRUE(checkout.ok()) << checkout.error().message;
  clock_.Advance(1min);
  fake_->SetEventTime(Seconds(clock_.Now()));  // paid now; the event arrives three days later
  const std::string completed = fake_->Pay(checkout->session_id, "evt_completed_late");
  clock_.Advance(24h * 3);
  EXPECT_EQ(DeliverOk(completed), "processed");
  auto purchase = billing_->purchases.GetPurchase(tenant, checkout->purchase_id.str());
  ASSERT_TRUE(purchase.ok());
  EXPECT_GE(purchase->created_at, checkout->created_at) << "the payment's time, to the second";
  EXPECT_LE(purchase->created_at, checkout->created_at + 1min);
  clock_.Advance(24h * 4 + 1h);  // 7 days and an hour after the payment, 4 days after the event
  auto late = billing_->purchases.RequestRefund(tenant, checkout->purchase_id.str(), "", kTenantAdmin);
  ASSERT_TRUE(late.ok()) << late.error().message;
  EXPECT_EQ(late->status, RequestStatus::kRefused);
  EXPECT_EQ(late->reason_code, RefundReason::kRefundWindowExpired);

  // An event that claims a payment before its checkout was opened counts from the checkout.
  auto second = billing_->checkouts.Start(tenant, "starter", "buy-2", kTenantAdmin);
  ASSERT_TRUE(second.ok());
  fake_->SetEventTime(Seconds(clock_.Now()) - 86400 * 30);
  EXPECT_EQ(DeliverOk(fake_->Pay(second->session_id, "evt_completed_backdated")), "processed");
  auto backdated = billing_->purchases.GetPurchase(tenant, second->purchase_id.str());
  ASSERT_TRUE(backdated.ok());
  EXPECT_EQ(backdated->created_at, second->created_at);
  ExpectClean();
}

TEST_P(StripeFlowTest, BadSignaturesAndForgedAmountsChangeNothing) {
  TenantId tenant = NewTenant();
  auto checkout = billing_->checkouts.Start(tenant, "starter", "buy-1", kTenantAdmin);
  ASSERT_TRUE(checkout.ok());
  const std::string body = fake_->Pay(checkout->session_id, "evt_sig");
  const int64_t now = Seconds(clock_.Now());
  for (const std::string& header :
       {stripe::SignatureHeader("whsec_wrong", now, body), stripe::SignatureHeader(kSigningSecret, now - 301, body),
        std::string("t=1,v1=00")}) {
    auto result = webhooks_->Handle(header, body);
    ASSERT_FALSE(result.ok()) << header;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  }
  auto tampered = webhooks_->Handle(stripe::SignatureHeader(kSigningSecret, now, body), body + "\n");
  EXPECT_FALSE(tampered.ok());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_provider_events"), 0) << "nothing is stored before the signature";

  // Correctly signed but not what was offered: kept for the operator, never granted.
  auto forged = nlohmann::json::parse(body);
  forged["id"] = "evt_forged";
  forged["data"]["object"]["amount_total"] = 1;
  EXPECT_EQ(DeliverOk(forged.dump()), "rejected");
  EXPECT_EQ(Available(tenant), Credits());
  // The genuine event still completes it.
  EXPECT_EQ(DeliverOk(body), "processed");
  EXPECT_EQ(Available(tenant), Cr(100));
  ExpectClean();
}

TEST_P(StripeFlowTest, ARefundOutsideClozitTakesBackWhatIsLeftAndRecordsTheShortfall) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  Spend(tenant, Cr(70), "call-1");
  ASSERT_EQ(Available(tenant), Cr(30));

  // Half refunded in the dashboard: 50 credits are due back, all 30 left are taken, 20 are short.
  fake_->RefundOutside(payment_intent, 500);
  const std::string half = fake_->ChargeRefundedEvent(payment_intent, "evt_refund_half");
  EXPECT_EQ(DeliverOk(half), "processed");
  EXPECT_EQ(Available(tenant), Credits());
  auto shortfalls = billing_->checkouts.ListShortfalls({});
  ASSERT_TRUE(shortfalls.ok());
  ASSERT_EQ(shortfalls->items.size(), 1u);
  EXPECT_EQ(shortfalls->items[0].purchase_id, purchase_id);
  EXPECT_EQ(shortfalls->items[0].credits_due, Cr(50));
  EXPECT_EQ(shortfalls->items[0].removed, Cr(30));
  EXPECT_EQ(shortfalls->items[0].shortfall, Cr(20));
  EXPECT_EQ(shortfalls->items[0].refunded_minor, 500);
  // The tenant's statement shows it as a refund, and the refund filter finds it.
  StatementFilter refunds;
  refunds.categories = {"refund"};
  auto shown = billing_->statements.Transactions(tenant, refunds, {});
  ASSERT_TRUE(shown.ok()) << shown.error().message;
  ASSERT_EQ(shown->items.size(), 1u);
  EXPECT_EQ(shown->items[0].category, "refund");
  EXPECT_EQ(shown->items[0].code, "refund.provider");
  EXPECT_EQ(shown->items[0].amount, Cr(-30));

  // Redelivered, and a stale copy under another id: nothing twice.
  EXPECT_EQ(DeliverOk(half), "duplicate");
  auto stale = nlohmann::json::parse(half);
  stale["id"] = "evt_refund_stale";
  stale["data"]["object"]["amount_refunded"] = 300;
  EXPECT_EQ(DeliverOk(stale.dump()), "ignored");
  EXPECT_EQ(billing_->checkouts.ListShortfalls({})->items.size(), 1u);

  // The rest refunded later: 50 more due, nothing left to take, all short.
  clock_.Advance(1h);
  fake_->RefundOutside(payment_intent, 500);
  EXPECT_EQ(DeliverOk(fake_->ChargeRefundedEvent(payment_intent, "evt_refund_rest")), "processed");
  shortfalls = billing_->checkouts.ListShortfalls({});
  ASSERT_EQ(shortfalls->items.size(), 2u);
  EXPECT_EQ(shortfalls->items[0].shortfall, Cr(50));
  ExpectClean();
}

TEST_P(StripeFlowTest, ARefundEventBeforeThePaymentCompletesIsAppliedOnCompletion) {
  TenantId tenant = NewTenant();
  auto checkout = billing_->checkouts.Start(tenant, "starter", "buy-1", kTenantAdmin);
  ASSERT_TRUE(checkout.ok());
  const std::string completed = fake_->Pay(checkout->session_id, "evt_completed_late");
  const std::string payment_intent = fake_->Session(checkout->session_id)["payment_intent"].get<std::string>();
  fake_->RefundOutside(payment_intent, 250);
  EXPECT_EQ(DeliverOk(fake_->ChargeRefundedEvent(payment_intent, "evt_refund_early")), "deferred");
  EXPECT_EQ(Available(tenant), Credits());
  EXPECT_EQ(DeliverOk(completed), "processed");
  EXPECT_EQ(Available(tenant), Cr(75)) << "a quarter of the price was refunded before the lot existed";
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_provider_events WHERE outcome = 'deferred'"), 0);
  ExpectClean();
}

TEST_P(StripeFlowTest, RefundApprovalGoesThroughStripeAndItsEventIsNotCountedTwice) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  Spend(tenant, Cr(40), "call-1");
  clock_.Advance(2 * 24h);
  auto request = billing_->purchases.RequestRefund(tenant, purchase_id, "not needed", kTenantAdmin);
  ASSERT_TRUE(request.ok()) << request.error().message;
  ASSERT_EQ(request->status, RequestStatus::kPending) << RefundReasonName(request->reason_code);

  // Stripe fails once after refunding (lost answer); the provider's retry gets the same refund back.
  fake_->FailNext(1, 502, "api_error", "", /*after_processing=*/true);
  auto approved = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->status, RequestStatus::kApproved);
  EXPECT_EQ(approved->refunded_credits, Cr(60));
  EXPECT_EQ(approved->refunded_minor, 600);
  ASSERT_EQ(fake_->refunds().size(), 1u);
  EXPECT_EQ(fake_->refunds()[0]["payment_intent"], payment_intent);
  EXPECT_EQ(fake_->refunds()[0]["amount"], 600);
  EXPECT_EQ(fake_->refunds()[0]["metadata"]["clozit_refund_request_id"], request->id.str());
  EXPECT_EQ(approved->provider_refund_id, fake_->refunds()[0]["id"].get<std::string>());
  EXPECT_EQ(Available(tenant), Credits());

  // Stripe then reports the refund Clozit made: recognised, nothing taken twice, no shortfall.
  EXPECT_EQ(DeliverOk(fake_->ChargeRefundedEvent(payment_intent, "evt_our_refund")), "ignored");
  EXPECT_TRUE(billing_->checkouts.ListShortfalls({})->items.empty());
  ExpectClean();
}

TEST_P(StripeFlowTest, ARefundEventWhileClozitsRefundIsInFlightIsSentBackForRedelivery) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  auto request = billing_->purchases.RequestRefund(tenant, purchase_id, "", kTenantAdmin);
  ASSERT_TRUE(request.ok()) << request.error().message;
  // Stripe is briefly unavailable; between the provider's attempts (the earmark placed, the outcome unknown) a
  // charge.refunded event arrives: it cannot yet tell Clozit's refund from another, so it is refused unstored.
  const std::string early = fake_->ChargeRefundedEvent(payment_intent, "evt_during");
  std::optional<Result<stripe::WebhookResult>> during;
  between_retries_ = [&] {
    if (!during) during = Deliver(early);
  };
  fake_->FailNext(1, 503, "api_error");
  auto approved = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  ASSERT_TRUE(during.has_value());
  ASSERT_FALSE(during->ok());
  EXPECT_EQ(during->error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_provider_events"), 1) << "only the completed checkout";
  // Stripe delivers the event again later; now the refund is settled and counted as Clozit's own.
  EXPECT_EQ(DeliverOk(fake_->ChargeRefundedEvent(payment_intent, "evt_during")), "ignored");
  EXPECT_EQ(Available(tenant), Credits());
  EXPECT_TRUE(billing_->checkouts.ListShortfalls({})->items.empty());
  ExpectClean();
}

TEST_P(StripeFlowTest, ARefundWhoseAnswerWasLostIsApprovedByItsRefundEvent) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  const std::string request_id = RefundInDoubt(tenant, purchase_id);
  ASSERT_FALSE(request_id.empty());
  EXPECT_EQ(Available(tenant), Credits()) << "the remainder stays earmarked while the outcome is unknown";

  // The charge's event cannot tell the refunds apart yet; the refund's own event settles the request.
  auto early = Deliver(fake_->ChargeRefundedEvent(payment_intent, "evt_charge"));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(DeliverOk(fake_->RefundEvent(0, "refund.created", "evt_refund")), "processed");
  auto approved = billing_->purchases.GetRefundRequest(tenant, request_id);
  ASSERT_TRUE(approved.ok());
  EXPECT_EQ(approved->status, RequestStatus::kApproved);
  EXPECT_EQ(approved->refunded_credits, Cr(100));
  EXPECT_EQ(approved->refunded_minor, 1000);
  EXPECT_EQ(approved->provider_refund_id, fake_->refunds()[0]["id"].get<std::string>());
  EXPECT_EQ(approved->decided_by, "system:payment_provider");
  EXPECT_EQ(Available(tenant), Credits());

  // Redeliveries and the charge's event change nothing more; the operator's retry answers without calling Stripe.
  EXPECT_EQ(DeliverOk(fake_->RefundEvent(0, "refund.updated", "evt_refund_again")), "ignored");
  EXPECT_EQ(DeliverOk(fake_->ChargeRefundedEvent(payment_intent, "evt_charge")), "ignored");
  const size_t requests = fake_->requests().size();
  auto replay = billing_->purchases.ApproveRefund(request_id, kOperator);
  ASSERT_TRUE(replay.ok()) << replay.error().message;
  EXPECT_EQ(replay->status, RequestStatus::kApproved);
  EXPECT_EQ(fake_->requests().size(), requests);
  EXPECT_EQ(fake_->refunds().size(), 1u);
  EXPECT_TRUE(billing_->checkouts.ListShortfalls({})->items.empty());
  ExpectClean();
}

TEST_P(StripeFlowTest, AChargeListingClozitsRefundSettlesItsRequest) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  Spend(tenant, Cr(40), "call-1");
  const std::string request_id = RefundInDoubt(tenant, purchase_id);
  ASSERT_FALSE(request_id.empty());
  // Older API versions list the charge's refunds on charge.refunded: Clozit's own is recognised there.
  EXPECT_EQ(DeliverOk(fake_->ChargeRefundedEvent(payment_intent, "evt_charge", /*list_refunds=*/true)), "processed");
  auto approved = billing_->purchases.GetRefundRequest(tenant, request_id);
  ASSERT_TRUE(approved.ok());
  EXPECT_EQ(approved->status, RequestStatus::kApproved);
  EXPECT_EQ(approved->refunded_credits, Cr(60));
  EXPECT_EQ(approved->refunded_minor, 600);
  EXPECT_EQ(Available(tenant), Credits());
  EXPECT_TRUE(billing_->checkouts.ListShortfalls({})->items.empty()) << "nothing counted as refunded outside";
  ExpectClean();
}

TEST_P(StripeFlowTest, ARefundReportedAfterItsEarmarkLapsedTakesWhatTheLotStillHas) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  const std::string request_id = RefundInDoubt(tenant, purchase_id);
  ASSERT_FALSE(request_id.empty());
  clock_.Advance(1min);
  TenantId unswept = NewTenant();
  auto [unswept_purchase, unswept_payment] = BuyPack(unswept, "starter", "buy-2");
  const std::string unswept_request = RefundInDoubt(unswept, unswept_purchase);
  ASSERT_FALSE(unswept_request.empty());

  // A day later both earmarks have lapsed; the sweep released the first one (the older), and its tenant spent
  // part of the credits. The second still counts against its lot until it is swept.
  clock_.Advance(25h);
  ASSERT_TRUE(charging_->ExpireStale(1).ok());
  ASSERT_EQ(Available(tenant), Cr(100));
  EXPECT_EQ(Available(unswept), Credits());
  Spend(tenant, Cr(30), "call-1");
  EXPECT_EQ(DeliverOk(fake_->RefundEvent(0, "refund.updated", "evt_refund")), "processed");
  auto approved = billing_->purchases.GetRefundRequest(tenant, request_id);
  ASSERT_TRUE(approved.ok());
  EXPECT_EQ(approved->status, RequestStatus::kApproved);
  EXPECT_EQ(approved->refunded_credits, Cr(70)) << "what the lot still had; 30 were used meanwhile";
  EXPECT_EQ(approved->refunded_minor, 1000);
  EXPECT_EQ(Available(tenant), Credits());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'refund_request.shortfall'"), 1);
  // The charge's event then finds the whole refund Clozit's own.
  EXPECT_EQ(DeliverOk(fake_->ChargeRefundedEvent(payment_intent, "evt_charge")), "ignored");

  // The unswept hold is expired as the sweep would, and the whole remainder leaves with the approval.
  EXPECT_EQ(DeliverOk(fake_->RefundEvent(1, "refund.created", "evt_refund_2")), "processed");
  auto second = billing_->purchases.GetRefundRequest(unswept, unswept_request);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->status, RequestStatus::kApproved);
  EXPECT_EQ(second->refunded_credits, Cr(100));
  EXPECT_EQ(Available(unswept), Credits());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'refund_request.shortfall'"), 1);
  ExpectClean();
}

TEST_P(StripeFlowTest, AFailedRefundReportReleasesTheEarmark) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  const std::string request_id = RefundInDoubt(tenant, purchase_id);
  ASSERT_FALSE(request_id.empty());
  EXPECT_FALSE(billing_->purchases.RejectRefund(request_id, "changed our mind", kOperator).ok())
      << "in doubt: cannot be rejected";
  EXPECT_EQ(DeliverOk(fake_->RefundEvent(0, "refund.updated", "evt_failed", "failed")), "processed");
  EXPECT_EQ(Available(tenant), Cr(100));
  auto pending = billing_->purchases.GetRefundRequest(tenant, request_id);
  ASSERT_TRUE(pending.ok());
  EXPECT_EQ(pending->status, RequestStatus::kPending);
  EXPECT_NE(pending->last_error.find("failed"), std::string::npos) << pending->last_error;
  auto rejected = billing_->purchases.RejectRefund(request_id, "the card refused the refund", kOperator);
  ASSERT_TRUE(rejected.ok()) << rejected.error().message;
  // A refund.* event for a refund Clozit did not ask for, or for another payment, changes nothing.
  auto foreign = nlohmann::json::parse(fake_->RefundEvent(0, "refund.created", "evt_foreign"));
  foreign["data"]["object"]["metadata"] = nlohmann::json::object();
  EXPECT_EQ(DeliverOk(foreign.dump()), "ignored");
  ExpectClean();
}

TEST_P(StripeFlowTest, ARefundStripeHoldsPendingIsApprovedWhenItIsPaidOut) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  auto request = RefundPendingAtStripe(tenant, purchase_id);
  ASSERT_TRUE(request.ok()) << request.error().message;
  auto waiting = billing_->purchases.GetRefundRequest(tenant, request->id.str());
  EXPECT_EQ(waiting->status, RequestStatus::kPending) << "not approved before the money went back";
  EXPECT_EQ(Available(tenant), Credits()) << "earmarked meanwhile";
  EXPECT_EQ(DeliverOk(fake_->RefundEvent(0, "refund.updated", "evt_paid_out")), "processed");
  auto approved = billing_->purchases.GetRefundRequest(tenant, request->id.str());
  EXPECT_EQ(approved->status, RequestStatus::kApproved);
  EXPECT_EQ(approved->refunded_credits, Cr(100));
  ExpectClean();
}

TEST_P(StripeFlowTest, AnAttemptAfterARefusalAsksUnderAKeyOfItsOwn) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  auto request = billing_->purchases.RequestRefund(tenant, purchase_id, "", kTenantAdmin);
  ASSERT_TRUE(request.ok()) << request.error().message;
  // Stripe answers the first attempt with a failed refund (stored under its key): a definite no.
  fake_->SetRefundStatus("failed");
  auto refused = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(Available(tenant), Cr(100)) << "a refusal releases the earmark";
  // The tenant spends meanwhile; the next attempt asks for less. Under the first key Stripe would refuse it as a
  // reused key, and Clozit took that for an unknown outcome.
  Spend(tenant, Cr(30), "call-1");
  fake_->SetRefundStatus("succeeded");
  auto approved = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->refunded_credits, Cr(70));
  EXPECT_EQ(approved->refunded_minor, 700);
  auto requests = fake_->requests();
  ASSERT_EQ(requests.size(), 2u + 1u) << "the checkout, then one request per attempt";
  EXPECT_NE(requests[1].idempotency_key, requests[2].idempotency_key);
  EXPECT_EQ(requests[2].form.at("metadata[clozit_refund_request_id]"), request->id.str());
  ExpectClean();
}

// The card issuer returns the money to the operator days after the approval (a closed card account): the tenant
// paid and got nothing back, so the credits the refund removed come back, as they were, and can be asked for again.
TEST_P(StripeFlowTest, ARefundThatFailsAfterItsApprovalGivesTheCreditsBack) {
  fake_->SetEventTime(Seconds(clock_.Now()));
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  Spend(tenant, Cr(30), "call-1");
  auto before = billing_->purchases.GetPurchase(tenant, purchase_id);
  ASSERT_TRUE(before.ok()) << before.error().message;
  auto request = billing_->purchases.RequestRefund(tenant, purchase_id, "", kTenantAdmin);
  ASSERT_TRUE(request.ok()) << request.error().message;
  auto approved = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->refunded_credits, Cr(70));
  EXPECT_EQ(Available(tenant), Cr(0));
  const std::string stale_charge_refunded = fake_->ChargeRefundedEvent(payment_intent, "evt_charge_refunded");

  clock_.Advance(1h);
  fake_->SetEventTime(Seconds(clock_.Now()));
  const std::string failed = fake_->FailRefund(0, "evt_failed_later");
  EXPECT_EQ(DeliverOk(failed), "processed");
  auto reversed = billing_->purchases.GetRefundRequest(tenant, request->id.str());
  ASSERT_TRUE(reversed.ok());
  EXPECT_EQ(reversed->status, RequestStatus::kReversed);
  EXPECT_NE(reversed->last_error.find("70 credits restored"), std::string::npos) << reversed->last_error;
  EXPECT_EQ(Available(tenant), Cr(70));
  auto after = billing_->purchases.GetPurchase(tenant, purchase_id);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->lot_id, before->lot_id) << "the purchase refers to the restored lot";
  EXPECT_EQ(after->lot_remaining, Cr(70));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM ledger_transfers WHERE code = 'refund.reversed'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'refund_request.reverse'"), 1);

  // Stripe's charge.refunded from before the failure, delivered late: its amount still counts the refund that
  // failed since, which is Clozit's own, not one made outside Clozit — the restored credits stay.
  EXPECT_EQ(DeliverOk(stale_charge_refunded), "ignored");
  EXPECT_EQ(Available(tenant), Cr(70));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_refund_shortfalls"), 0);

  // Told again (redelivered, or as another event): nothing more comes back.
  EXPECT_EQ(DeliverOk(failed), "duplicate");
  EXPECT_EQ(DeliverOk(fake_->RefundEvent(0, "refund.updated", "evt_failed_again", "failed")), "ignored");
  EXPECT_EQ(Available(tenant), Cr(70));

  // The remainder is the tenant's to ask for again, within the purchase's refund window — also when named by
  // the purchase's first lot, or by the lot the reversal made.
  auto again = billing_->purchases.RequestRefund(tenant, before->lot_id, "", kTenantAdmin);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->status, RequestStatus::kPending) << RefundReasonName(again->reason_code);
  EXPECT_EQ(again->purchase_id, purchase_id);
  EXPECT_EQ(again->requested_credits, Cr(70));
  auto twice = billing_->purchases.RequestRefund(tenant, after->lot_id, "", kTenantAdmin);
  ASSERT_TRUE(twice.ok()) << twice.error().message;
  EXPECT_EQ(twice->purchase_id, purchase_id);
  EXPECT_EQ(twice->reason_code, RefundReason::kAlreadyRequested);
  auto paid = billing_->purchases.ApproveRefund(again->id.str(), kOperator);
  ASSERT_TRUE(paid.ok()) << paid.error().message;
  EXPECT_EQ(paid->refunded_credits, Cr(70));
  EXPECT_EQ(Available(tenant), Cr(0));
  ExpectClean();
}

// An attempt whose answer was lost and whose earmark then lapsed: the charge's refund event waits (it cannot tell
// that refund from one made outside Clozit) until the billing job asks Stripe what became of the attempt; the
// credits leave once, whatever order the rest comes in.
TEST_P(StripeFlowTest, ARefundInDoubtWhoseEarmarkLapsedIsSettledWithStripeNotTakenTwice) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  Spend(tenant, Cr(20), "call-1");
  const std::string request_id = RefundInDoubt(tenant, purchase_id);
  ASSERT_FALSE(request_id.empty());
  EXPECT_EQ(Available(tenant), Cr(0)) << "the 80 unused are earmarked";
  clock_.Advance(25h);
  ASSERT_TRUE(charging_->ExpireStale(100).ok());
  EXPECT_EQ(Available(tenant), Cr(80)) << "the earmark lapsed";
  const std::string refunded = fake_->ChargeRefundedEvent(payment_intent, "evt_charge_refunded");
  auto waiting = Deliver(refunded);
  ASSERT_FALSE(waiting.ok()) << "taken as a refund outside Clozit, then again when the attempt's outcome is learned";
  EXPECT_EQ(waiting.error().code, ErrorCode::kUnavailable);

  BillingJobs jobs(*billing_, clock_);
  auto run = jobs.RunOnce(clock_.Now());
  EXPECT_TRUE(run.errors.empty()) << run.errors.front();
  ASSERT_EQ(run.refunds.approved.size(), 1u);
  EXPECT_EQ(run.refunds.approved[0], request_id);
  auto approved = billing_->purchases.GetRefundRequest(tenant, request_id);
  ASSERT_TRUE(approved.ok());
  EXPECT_EQ(approved->status, RequestStatus::kApproved);
  EXPECT_EQ(approved->refunded_credits, Cr(80));
  EXPECT_EQ(Available(tenant), Cr(0));
  EXPECT_EQ(DeliverOk(refunded), "ignored") << "all of it was Clozit's own refund";
  EXPECT_EQ(DeliverOk(fake_->RefundEvent(0, "refund.updated", "evt_refund_late")), "ignored");
  EXPECT_EQ(Available(tenant), Cr(0));
  EXPECT_EQ(fake_->refunds().size(), 1u);
  EXPECT_TRUE(jobs.RunOnce(clock_.Now()).refunds.approved.empty()) << "nothing left in doubt";
  ExpectClean();
}

// Approving again once the attempt's earmark lapsed would send a new attempt under a new key: Stripe is asked
// first. Paid → approved with no second refund; never made → a new attempt refunds once.
TEST_P(StripeFlowTest, ApprovingAgainAfterTheEarmarkLapsedAsksStripeBeforeRefundingAgain) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  const std::string paid = RefundInDoubt(tenant, purchase_id);
  ASSERT_FALSE(paid.empty());
  clock_.Advance(25h);
  ASSERT_TRUE(charging_->ExpireStale(100).ok());
  auto approved = billing_->purchases.ApproveRefund(paid, kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(approved->status, RequestStatus::kApproved);
  EXPECT_EQ(approved->refunded_credits, Cr(100));
  EXPECT_EQ(fake_->refunds().size(), 1u) << "refunded twice for one request";
  EXPECT_EQ(RefundLookups(), 1u);
  EXPECT_EQ(Available(tenant), Cr(0));
  ExpectClean();

  // The first attempt never reached Stripe; its earmark lapsed (not yet swept) before the operator tried again.
  auto [second, second_intent] = BuyPack(tenant, "starter", "buy-2");
  auto request = billing_->purchases.RequestRefund(tenant, second, "", kTenantAdmin);
  ASSERT_TRUE(request.ok()) << request.error().message;
  fake_->FailNext(100, 502, "api_error");
  EXPECT_FALSE(billing_->purchases.ApproveRefund(request->id.str(), kOperator).ok());
  fake_->FailNext(0, 200, "");
  EXPECT_EQ(fake_->refunds().size(), 1u);
  clock_.Advance(23h + 30min);  // inside the earmark's 24 h, but too close to its end to ask again under its key
  auto retried = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  ASSERT_TRUE(retried.ok()) << retried.error().message;
  EXPECT_EQ(retried->status, RequestStatus::kApproved);
  EXPECT_EQ(retried->refunded_credits, Cr(100));
  EXPECT_EQ(fake_->refunds().size(), 2u);
  EXPECT_EQ(fake_->PaymentOf(second_intent).refunded, 1000);
  EXPECT_EQ(Available(tenant), Cr(0));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'refund_request.attempt_unpaid'"), 1);
  ExpectClean();
}

// P5 holds for an attempt in doubt too: once the tenant is suspended for fraud nothing new is sent; what Stripe
// had already paid is accounted for, and an attempt that never reached it is dropped with its earmark.
TEST_P(StripeFlowTest, AnAttemptInDoubtIsNotSentAgainForATenantSuspendedForFraud) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  auto request = billing_->purchases.RequestRefund(tenant, purchase_id, "", kTenantAdmin);
  ASSERT_TRUE(request.ok()) << request.error().message;
  fake_->FailNext(100, 502, "api_error");
  EXPECT_FALSE(billing_->purchases.ApproveRefund(request->id.str(), kOperator).ok());
  fake_->FailNext(0, 200, "");
  Suspend(tenant, "fraud");
  const size_t posts = fake_->requests().size() - RefundLookups();
  auto refused = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict) << refused.error().message;
  EXPECT_THAT(refused.error().message, testing::HasSubstr("suspended"));
  EXPECT_EQ(fake_->requests().size() - RefundLookups(), posts) << "a refund was sent for a fraud-suspended tenant";
  EXPECT_TRUE(fake_->refunds().empty());
  EXPECT_EQ(Available(tenant), Cr(100)) << "the dropped attempt's earmark is released";
  ExpectClean();

  // Paid before the suspension, answer lost: the approval learns it and takes the credits, sending nothing.
  TenantId other = NewTenant();
  auto [other_purchase, other_intent] = BuyPack(other, "starter", "buy-2");
  const std::string in_doubt = RefundInDoubt(other, other_purchase);
  ASSERT_FALSE(in_doubt.empty());
  Suspend(other, "fraud");
  auto learned = billing_->purchases.ApproveRefund(in_doubt, kOperator);
  ASSERT_TRUE(learned.ok()) << learned.error().message;
  EXPECT_EQ(learned->status, RequestStatus::kApproved);
  EXPECT_EQ(fake_->refunds().size(), 1u);
  EXPECT_EQ(Available(other), Cr(0));
  ExpectClean();
}

// A failure reported for an earlier attempt's refund says nothing about the current attempt, which may still pay.
TEST_P(StripeFlowTest, AnEarlierAttemptsFailureKeepsTheCurrentAttemptsEarmark) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  auto request = RefundPendingAtStripe(tenant, purchase_id);
  ASSERT_TRUE(request.ok()) << request.error().message;
  const std::string failed = fake_->FailRefund(0, "evt_first_failed");
  EXPECT_EQ(DeliverOk(failed), "processed");
  EXPECT_EQ(Available(tenant), Cr(100)) << "the first attempt's earmark is released";

  const size_t before = fake_->refunds().size();
  fake_->FailNext(100, 502, "api_error", "", /*after_processing=*/true);
  auto lost = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  fake_->FailNext(0, 200, "");
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, ErrorCode::kUnavailable) << lost.error().message;
  ASSERT_EQ(fake_->refunds().size(), before + 1);
  EXPECT_EQ(Available(tenant), Cr(0));
  auto again = nlohmann::json::parse(failed);
  again["id"] = "evt_first_failed_again";
  EXPECT_EQ(DeliverOk(again.dump()), "ignored");
  EXPECT_EQ(Available(tenant), Cr(0)) << "the second attempt's earmark was released by the first's failure";
  auto settled = billing_->purchases.ApproveRefund(request->id.str(), kOperator);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(settled->status, RequestStatus::kApproved);
  EXPECT_EQ(fake_->refunds().size(), before + 1);
  ExpectClean();
}

// A refund that fails while the purchase is disputed is not reversed by itself: the card network holds the money.
// And a dispute opened while a refund is in doubt waits for its outcome (the lot's credits are earmarked for it).
TEST_P(StripeFlowTest, DisputesAndRefundsInDoubtOrFailedWaitForEachOther) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  const std::string request_id = RefundInDoubt(tenant, purchase_id);
  ASSERT_FALSE(request_id.empty());
  const std::string opened =
      fake_->DisputeEvent(payment_intent, "dp_1", "charge.dispute.created", "needs_response", "evt_dp_open");
  auto waiting = Deliver(opened);
  ASSERT_FALSE(waiting.ok());
  EXPECT_EQ(waiting.error().code, ErrorCode::kUnavailable) << waiting.error().message;

  auto approved = billing_->purchases.ApproveRefund(request_id, kOperator);
  ASSERT_TRUE(approved.ok()) << approved.error().message;
  EXPECT_EQ(DeliverOk(opened), "processed");  // nothing left to freeze: the refund took the lot's credits
  EXPECT_EQ(DeliverOk(fake_->FailRefund(0, "evt_failed_later")), "rejected");
  auto kept = billing_->purchases.GetRefundRequest(tenant, request_id);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->status, RequestStatus::kApproved);
  EXPECT_EQ(Available(tenant), Cr(0));
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action = 'refund_request.failed_after_approval'"), 1);
  ExpectClean();
}

// A chargeback: the disputed credits are frozen while the card network decides, and given back when it is won.
TEST_P(StripeFlowTest, ADisputeFreezesThePurchasesCreditsUntilItIsWon) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  Spend(tenant, Cr(30), "call-1");
  const std::string opened =
      fake_->DisputeEvent(payment_intent, "dp_1", "charge.dispute.created", "needs_response", "evt_dp_open");
  EXPECT_EQ(DeliverOk(opened), "processed");
  EXPECT_EQ(Available(tenant), Credits()) << "all 70 left are frozen; 30 were spent before";
  EXPECT_EQ(DeliverOk(opened), "duplicate");
  auto again = nlohmann::json::parse(opened);
  again["id"] = "evt_dp_open_again";
  EXPECT_EQ(DeliverOk(again.dump()), "ignored");
  auto refund = billing_->purchases.RequestRefund(tenant, purchase_id, "", kTenantAdmin);
  ASSERT_TRUE(refund.ok()) << refund.error().message;
  EXPECT_EQ(refund->status, RequestStatus::kRefused);
  EXPECT_EQ(refund->reason_code, RefundReason::kPurchaseDisputed);
  auto reservation = Reserve(tenant, Cr(1), "call-2");
  EXPECT_FALSE(reservation.ok()) << "frozen credits cannot be spent";
  ExpectClean();

  clock_.Advance(24h * 40);
  const std::string won = fake_->DisputeEvent(payment_intent, "dp_1", "charge.dispute.closed", "won", "evt_dp_won");
  EXPECT_EQ(DeliverOk(won), "processed");
  EXPECT_EQ(Available(tenant), Cr(70));
  auto late = nlohmann::json::parse(won);
  late["id"] = "evt_dp_won_again";
  EXPECT_EQ(DeliverOk(late.dump()), "ignored");
  EXPECT_EQ(Available(tenant), Cr(70));
  EXPECT_TRUE(billing_->checkouts.ListShortfalls({})->items.empty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM audit_log WHERE action IN ('purchase.disputed', 'purchase.dispute_closed')"),
            2);
  ExpectClean();
}

// Lost: the frozen credits go for good, what was spent before is a shortfall for operators, and the tenant's
// statement shows it as a refund. A close reported first opens and closes the dispute in one go.
TEST_P(StripeFlowTest, ALostDisputeRemovesTheFrozenCreditsAndRecordsWhatWasSpent) {
  TenantId tenant = NewTenant();
  auto [purchase_id, payment_intent] = BuyPack(tenant, "starter", "buy-1");
  Spend(tenant, Cr(30), "call-1");
  EXPECT_EQ(
      DeliverOk(fake_->DisputeEvent(payment_intent, "dp_1", "charge.dispute.created", "needs_response", "evt_dp_open")),
      "processed");
  EXPECT_EQ(DeliverOk(fake_->DisputeEvent(payment_intent, "dp_1", "charge.dispute.closed", "lost", "evt_dp_lost")),
            "processed");
  EXPECT_EQ(Available(tenant), Credits());
  auto shortfalls = billing_->checkouts.ListShortfalls({});
  ASSERT_TRUE(shortfalls.ok());
  ASSERT_EQ(shortfalls->items.size(), 1u);
  EXPECT_EQ(shortfalls->items[0].purchase_id, purchase_id);
  EXPECT_EQ(shortfalls->items[0].credits_due, Cr(100));
  EXPECT_EQ(shortfalls->items[0].removed, Cr(70));
  EXPECT_EQ(shortfalls->items[0].shortfall, Cr(30));
  StatementFilter refunds;
  refunds.categories = {"refund"};
  auto shown = billing_->statements.Transactions(tenant, refunds, {});
  ASSERT_TRUE(shown.ok()) << shown.error().message;
  bool removal_shown = false;
  for (const auto& item : shown->items) removal_shown |= item.code == "refund.dispute_lost" && item.amount == Cr(-70);
  EXPECT_TRUE(removal_shown);
  ExpectClean();

  // Another purchase, half of it disputed, reported only when lost: 50 credits go at once.
  auto [second, second_intent] = BuyPack(tenant, "starter", "buy-2");
  EXPECT_EQ(Available(tenant), Cr(100));
  EXPECT_EQ(DeliverOk(fake_->DisputeEvent(second_intent, "dp_2", "charge.dispute.closed", "lost", "evt_dp2", 500)),
            "processed");
  EXPECT_EQ(Available(tenant), Cr(50));
  EXPECT_EQ(billing_->checkouts.ListShortfalls({})->items.size(), 1u) << "nothing of it was spent";
  // A dispute for a payment Clozit does not know (kept in case it completes later), or closed with a status that
  // does not close it.
  EXPECT_EQ(DeliverOk(R"({"id":"evt_dp3","type":"charge.dispute.created","data":{"object":{"id":"dp_3",)"
                      R"("amount":100,"currency":"usd","payment_intent":"pi_elsewhere","status":"needs_response"}}})"),
            "deferred");
  EXPECT_EQ(DeliverOk(fake_->DisputeEvent(second_intent, "dp_4", "charge.dispute.closed", "under_review", "evt_dp4")),
            "rejected");
  EXPECT_EQ(Available(tenant), Cr(50));
  ExpectClean();
}

// Stripe does not order its deliveries: a dispute (opened, even closed) can arrive before the payment's completion,
// which then grants the lot with the dispute already applied — never spendable in between.
TEST_P(StripeFlowTest, DisputesBeforeThePaymentCompletesApplyOnCompletion) {
  TenantId tenant = NewTenant();
  auto checkout = billing_->checkouts.Start(tenant, "starter", "buy-1", kTenantAdmin);
  ASSERT_TRUE(checkout.ok()) << checkout.error().message;
  const std::string completed = fake_->Pay(checkout->session_id, "evt_completed_late");
  const std::string payment_intent = fake_->Session(checkout->session_id)["payment_intent"].get<std::string>();
  const std::string opened =
      fake_->DisputeEvent(payment_intent, "dp_1", "charge.dispute.created", "needs_response", "evt_dp_open", 400);
  EXPECT_EQ(DeliverOk(opened), "deferred");
  EXPECT_EQ(DeliverOk(opened), "duplicate");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_disputes"), 0);
  EXPECT_EQ(DeliverOk(completed), "processed");
  EXPECT_EQ(Available(tenant), Cr(60)) << "40 % of the price is disputed: 40 of its 100 credits frozen at once";
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_provider_events WHERE outcome = 'deferred'"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_disputes WHERE status = 'open' AND held = 40000000"), 1);
  EXPECT_EQ(DeliverOk(fake_->DisputeEvent(payment_intent, "dp_1", "charge.dispute.closed", "won", "evt_dp_won", 400)),
            "processed");
  EXPECT_EQ(Available(tenant), Cr(100));
  ExpectClean();

  // Opened and lost before the completion of another purchase: applied in the order they came.
  auto second = billing_->checkouts.Start(tenant, "starter", "buy-2", kTenantAdmin);
  ASSERT_TRUE(second.ok());
  const std::string second_completed = fake_->Pay(second->session_id, "evt_completed_2");
  const std::string second_intent = fake_->Session(second->session_id)["payment_intent"].get<std::string>();
  EXPECT_EQ(
      DeliverOk(fake_->DisputeEvent(second_intent, "dp_2", "charge.dispute.created", "needs_response", "evt_dp2_open")),
      "deferred");
  clock_.Advance(1s);
  EXPECT_EQ(DeliverOk(fake_->DisputeEvent(second_intent, "dp_2", "charge.dispute.closed", "lost", "evt_dp2_lost")),
            "deferred");
  EXPECT_EQ(DeliverOk(second_completed), "processed");
  EXPECT_EQ(Available(tenant), Cr(100)) << "the second pack's credits went with the lost dispute";
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_disputes WHERE id = 'dp_2' AND status = 'lost'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_provider_events WHERE event_id LIKE 'evt_dp2_%' AND "
                  "outcome = 'processed'"),
            2);
  EXPECT_TRUE(billing_->checkouts.ListShortfalls({})->items.empty()) << "nothing of it was spent";
  ExpectClean();
}

TEST_P(StripeFlowTest, UnhandledAndForeignEventsAreStoredAndIgnored) {
  EXPECT_EQ(DeliverOk(R"({"id":"evt_x","type":"customer.created","data":{"object":{"id":"cus_1"}}})"), "ignored");
  EXPECT_EQ(
      DeliverOk(
          R"({"id":"evt_y","type":"checkout.session.completed","data":{"object":{"id":"cs_other","payment_status":"paid","amount_total":5,"currency":"usd","payment_intent":"pi_x"}}})"),
      "ignored");
  auto malformed = Deliver(R"({"id":"evt_z","type":"charge.refunded"})");
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.error().field, "body");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM billing_provider_events"), 2);
}

CLOZIT_INSTANTIATE_BACKENDS(StripeFlowTest);

}  // namespace
}  // namespace clozit::billing::test
