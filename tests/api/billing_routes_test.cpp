// The billing routes end to end through the pipeline: an operator grants a
// purchase, the tenant reads its balance and statements, asks for a refund and
// the operator approves it; every reply is checked against the OpenAPI document.
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api_fixture.hpp"
#include "billing/ledger_check.hpp"

namespace clozit::api::test {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

class BillingRoutesTest : public ApiTest {
 protected:
  static Headers With(Headers headers, const std::string& name, const std::string& value) {
    headers.emplace_back(name, value);
    return headers;
  }
};

TEST_F(BillingRoutesTest, GrantBalanceStatementsRefundAndAdjustment) {
  auto owner = SignUp();
  const std::string tenant_id = Send("GET", "/v1/tenant", "", owner.Headers(false)).data.value("id", "");
  ASSERT_FALSE(tenant_id.empty());
  Headers ops = OperatorLogin();

  // A grant moves money: it needs an Idempotency-Key, and a replay returns the same purchase.
  json grant = {{"credits", "100"}, {"price_minor", 4900}, {"currency", "EUR"}, {"payment_reference", "ch_123"}};
  auto no_key = Send("POST", "/v1/admin/tenants/" + tenant_id + "/credit-grants", grant.dump(), ops);
  EXPECT_EQ(no_key.status, 400) << no_key.body;
  auto granted = Send("POST", "/v1/admin/tenants/" + tenant_id + "/credit-grants", grant.dump(),
                      With(ops, "Idempotency-Key", "g1"));
  ASSERT_EQ(granted.status, 201) << granted.body;
  auto replay = Send("POST", "/v1/admin/tenants/" + tenant_id + "/credit-grants", grant.dump(),
                     With(ops, "Idempotency-Key", "g1"));
  EXPECT_EQ(replay.data.value("id", ""), granted.data.value("id", ""));
  const std::string purchase_id = granted.data.value("id", "");
  EXPECT_EQ(granted.data.value("credits", ""), "100");
  // Floats are never money.
  json floaty = grant;
  floaty["credits"] = 12.5;
  EXPECT_EQ(Send("POST", "/v1/admin/tenants/" + tenant_id + "/credit-grants", floaty.dump(),
                 With(ops, "Idempotency-Key", "g2"))
                .status,
            400);

  auto balance = Send("GET", "/v1/credits", "", owner.Headers(false));
  ASSERT_EQ(balance.status, 200) << balance.body;
  EXPECT_EQ(balance.data.value("available", ""), "100");
  ASSERT_EQ(balance.data["lots"].size(), 1u);
  EXPECT_EQ(balance.data["lots"][0].value("kind", ""), "purchase");

  auto purchases = Send("GET", "/v1/purchases", "", owner.Headers(false));
  ASSERT_EQ(purchases.status, 200) << purchases.body;
  ASSERT_EQ(purchases.data["data"].size(), 1u);

  auto threshold = Send("PUT", "/v1/credits/low-balance-threshold", json{{"threshold", "10"}}.dump(), owner.Headers());
  EXPECT_EQ(threshold.status, 200) << threshold.body;
  EXPECT_EQ(Send("GET", "/v1/credits", "", owner.Headers(false)).data.value("low_balance_threshold", ""), "10");

  auto transactions = Send("GET", "/v1/credits/transactions?category=purchase,usage&limit=1", "", owner.Headers(false));
  ASSERT_EQ(transactions.status, 200) << transactions.body;
  ASSERT_EQ(transactions.data["data"].size(), 1u);
  EXPECT_EQ(transactions.data["data"][0].value("category", ""), "purchase");
  EXPECT_EQ(Send("GET", "/v1/credits/transactions?category=nope", "", owner.Headers(false)).status, 400);
  auto csv = Send("GET", "/v1/credits/transactions.csv", "", owner.Headers(false));
  ASSERT_EQ(csv.status, 200);
  EXPECT_NE(csv.body.find("grant.purchase,100,"), std::string::npos) << csv.body;
  auto usage = Send("GET", "/v1/credits/usage?period=month", "", owner.Headers(false));
  EXPECT_EQ(usage.status, 200) << usage.body;

  // Refund: asked by the tenant, approved by the operator through the payment provider.
  auto asked = Send("POST", "/v1/refund-requests", json{{"purchase_id", purchase_id}, {"reason", "unused"}}.dump(),
                    owner.Headers());
  ASSERT_EQ(asked.status, 201) << asked.body;
  EXPECT_EQ(asked.data.value("status", ""), "pending");
  EXPECT_EQ(asked.data.value("refundable_credits", ""), "100");
  const std::string refund_id = asked.data.value("id", "");
  EXPECT_EQ(Send("GET", "/v1/refund-requests/" + refund_id, "", owner.Headers(false)).status, 200);
  // A tenant cannot approve its own refund.
  EXPECT_EQ(Send("POST", "/v1/admin/refund-requests/" + refund_id + "/approve", "", owner.Headers()).status, 401);
  auto approved = Send("POST", "/v1/admin/refund-requests/" + refund_id + "/approve", "", ops);
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(approved.data.value("status", ""), "approved");
  EXPECT_EQ(approved.data.value("refunded_minor", 0), 4900);
  ASSERT_EQ(payment_provider_.refunds().size(), 1u);
  EXPECT_EQ(payment_provider_.refunds()[0].payment_reference, "ch_123");
  EXPECT_EQ(Send("GET", "/v1/credits", "", owner.Headers(false)).data.value("available", ""), "0");
  auto rejected_again =
      Send("POST", "/v1/admin/refund-requests/" + refund_id + "/reject", json{{"reason", "too late"}}.dump(), ops);
  EXPECT_EQ(rejected_again.status, 409) << rejected_again.body;
  EXPECT_EQ(Send("GET", "/v1/refund-requests", "", owner.Headers(false)).data["data"].size(), 1u);

  // Adjustments name the tenant's own settled usage only.
  auto claim =
      Send("POST", "/v1/adjustment-requests",
           json{{"charge_ids", {"rsv_01J0000000000000000000000/usage/call_minutes"}}, {"description", "x"}}.dump(),
           owner.Headers());
  EXPECT_EQ(claim.status, 404) << claim.body;
  EXPECT_EQ(Send("GET", "/v1/adjustment-requests", "", owner.Headers(false)).status, 200);
  EXPECT_EQ(Send("POST", "/v1/admin/adjustment-requests/adj_01J0000000000000000000000/approve",
                 json{{"resolution", "credit_adjustment"}}.dump(), ops)
                .status,
            404);

  auto breaches = billing::CheckLedger(*db_);
  ASSERT_TRUE(breaches.ok());
  EXPECT_TRUE(breaches->empty());
}

}  // namespace
}  // namespace clozit::api::test
