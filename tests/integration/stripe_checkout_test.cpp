// Buying credits through Stripe, black-box: the real `clozit` binary
// configured with [billing.stripe] against a fake api.stripe.com on 127.0.0.1
// (tests/billing/fake_stripe.hpp). A tenant lists the packs and opens a
// checkout; the fake "pays" it and the test delivers Stripe's signed event to
// /v1/webhooks/stripe; the credits arrive once; a bad signature is a 400
// problem and a log line; an operator-approved refund goes out through the
// Stripe adapter; the secret key never reaches the log.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "billing/fake_stripe.hpp"
#include "billing/stripe/signature.hpp"
#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::Not;

constexpr const char* kSecretKey = "sk_test_51IntegrationSecretKey";
constexpr const char* kSigningSecret = "whsec_integration_secret";

class StripeCheckoutTest : public ServerTest {};

TEST_P(StripeCheckoutTest, ACheckoutPaidAtStripeGrantsCreditsOnceAndRefundsGoBackThroughStripe) {
  billing::test::FakeStripe fake(kSecretKey);
  ServerProcess* server = StartServer({{"CLOZIT_BILLING__CREDIT_PACKS", "starter:100:1000:USD, pro:1000:9000:USD"},
                                       {"CLOZIT_BILLING__STRIPE__SECRET_KEY", kSecretKey},
                                       {"CLOZIT_BILLING__STRIPE__WEBHOOK_SECRET", kSigningSecret},
                                       {"CLOZIT_BILLING__STRIPE__API_BASE", fake.origin()}});
  ASSERT_NE(server, nullptr);
  auto client = Client();
  Account owner = SignUp(*client, "buyer");

  auto packs = client->Get("/v1/credit-packs", &owner.cookie);
  ASSERT_EQ(packs.status, 200) << packs;
  ASSERT_EQ(packs.Json()["data"].size(), 2u);
  EXPECT_EQ(packs.Json()["data"][0].value("id", ""), "starter");
  EXPECT_EQ(packs.Json()["data"][0].value("credits", ""), "100");

  http::Headers key;
  key.Set("Idempotency-Key", "checkout-1");
  auto no_key = client->Post("/v1/purchases/checkout", {{"pack_id", "starter"}}, &owner.cookie);
  ExpectProblem(no_key, 400, "invalid_argument", "Idempotency-Key");
  auto checkout = client->Post("/v1/purchases/checkout", {{"pack_id", "starter"}}, &owner.cookie, key);
  ASSERT_EQ(checkout.status, 201) << checkout;
  const std::string session_id = checkout.Json().value("checkout_session_id", "");
  const std::string purchase_id = checkout.Json().value("purchase_id", "");
  EXPECT_THAT(checkout.Json().value("checkout_url", ""), testing::StartsWith("https://checkout.stripe.com/"));
  EXPECT_EQ(checkout.Json().value("status", ""), "pending");
  auto retried = client->Post("/v1/purchases/checkout", {{"pack_id", "starter"}}, &owner.cookie, key);
  ASSERT_EQ(retried.status, 201) << retried;
  EXPECT_EQ(retried.Json().value("checkout_session_id", ""), session_id);
  EXPECT_EQ(fake.requests().size(), 1u) << "one session at Stripe";
  EXPECT_EQ(fake.Session(session_id)["metadata"].value("clozit_tenant_id", ""), owner.tenant_id);

  // Stripe's event, signed as Stripe signs it.
  const std::string event = fake.Pay(session_id, "evt_it_completed");
  auto deliver = [&](const std::string& body, const std::string& signature) {
    http::Headers headers;
    headers.Set("Content-Type", "application/json");
    headers.Set("Stripe-Signature", signature);
    return client->SendRaw("POST", "/v1/webhooks/stripe", body, headers);
  };
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto forged = deliver(event, billing::stripe::SignatureHeader("whsec_not_it", now, event));
  ExpectProblem(forged, 400, "invalid_argument", "Stripe-Signature");
  auto stale = deliver(event, billing::stripe::SignatureHeader(kSigningSecret, now - 600, event));
  ExpectProblem(stale, 400, "invalid_argument", "Stripe-Signature");
  auto credits = client->Get("/v1/credits", &owner.cookie);
  EXPECT_EQ(credits.Json().value("available", ""), "0") << "nothing for a forged or stale event";

  auto delivered = deliver(event, billing::stripe::SignatureHeader(kSigningSecret, now, event));
  ASSERT_EQ(delivered.status, 200) << delivered;
  EXPECT_EQ(delivered.Json().value("outcome", ""), "processed");
  auto again = deliver(event, billing::stripe::SignatureHeader(kSigningSecret, now, event));
  ASSERT_EQ(again.status, 200) << again;
  EXPECT_EQ(again.Json().value("outcome", ""), "duplicate");
  credits = client->Get("/v1/credits", &owner.cookie);
  EXPECT_EQ(credits.Json().value("available", ""), "100") << credits;
  auto purchases = client->Get("/v1/purchases", &owner.cookie);
  ASSERT_EQ(purchases.Json()["data"].size(), 1u);
  EXPECT_EQ(purchases.Json()["data"][0].value("id", ""), purchase_id);
  EXPECT_EQ(purchases.Json()["data"][0].value("provider", ""), "stripe");

  // A refund request, approved by an operator: the money goes back through Stripe.
  auto asked = client->Post("/v1/refund-requests", {{"purchase_id", purchase_id}}, &owner.cookie);
  ASSERT_EQ(asked.status, 201) << asked;
  ASSERT_EQ(asked.Json().value("status", ""), "pending") << asked;
  auto created = RunClozit({"admin", "create-operator", "--email", "ops@example.com", "--name", "Olga Ops"},
                           {{"CLOZIT_DATABASE__URL", database().url()},
                            {"CLOZIT_ACCOUNTS__ARGON2_OPSLIMIT", "1"},
                            {"CLOZIT_ACCOUNTS__ARGON2_MEMLIMIT_KIB", "8192"},
                            {"CLOZIT_OPERATOR_PASSWORD", "Night-Shift-2048"}},
                           dir(), 30s);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  auto login = client->Post("/v1/admin/login", {{"email", "ops@example.com"}, {"password", "Night-Shift-2048"}});
  ASSERT_EQ(login.status, 200) << login;
  const Credentials op =
      Credentials::Operator(login.Cookie("clozit_operator_session").value_or(""), login.Json().value("csrf_token", ""));
  auto approved =
      client->Post("/v1/admin/refund-requests/" + asked.Json().value("id", "") + "/approve", json::object(), &op);
  ASSERT_EQ(approved.status, 200) << approved;
  EXPECT_EQ(approved.Json().value("status", ""), "approved");
  EXPECT_EQ(approved.Json().value("refunded_minor", 0), 1000);
  ASSERT_EQ(fake.refunds().size(), 1u);
  EXPECT_EQ(fake.refunds()[0].value("amount", 0), 1000);
  credits = client->Get("/v1/credits", &owner.cookie);
  EXPECT_EQ(credits.Json().value("available", ""), "0") << credits;

  // Stripe's report of that refund is recognised as Clozit's own.
  const std::string payment_intent = fake.Session(session_id).value("payment_intent", "");
  const std::string refunded = fake.ChargeRefundedEvent(payment_intent, "evt_it_refunded");
  auto report = deliver(refunded, billing::stripe::SignatureHeader(kSigningSecret, now, refunded));
  ASSERT_EQ(report.status, 200) << report;
  EXPECT_EQ(report.Json().value("outcome", ""), "ignored");
  auto shortfalls = client->Get("/v1/admin/stripe/refund-shortfalls", &op);
  ASSERT_EQ(shortfalls.status, 200) << shortfalls;
  EXPECT_TRUE(shortfalls.Json()["data"].empty());

  const std::string log = server->Log();
  EXPECT_THAT(log, HasSubstr("stripe webhook refused"));
  EXPECT_THAT(log, Not(HasSubstr(kSecretKey)));
  EXPECT_THAT(log, Not(HasSubstr(kSigningSecret)));
}

CLOZIT_INSTANTIATE_BACKENDS(StripeCheckoutTest);

}  // namespace
}  // namespace clozit::itest
