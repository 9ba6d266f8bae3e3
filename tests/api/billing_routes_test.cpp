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
  auto future = Send("GET", "/v1/credits/usage?from=2099-01-01", "", owner.Headers(false));
  EXPECT_EQ(future.status, 400) << future.body;
  EXPECT_EQ(future.data.value("field", ""), "from") << "the caller sent no to";
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
  // The operators' review queue shows it, across tenants and by status.
  auto queue = Send("GET", "/v1/admin/refund-requests?status=pending", "", ops);
  ASSERT_EQ(queue.status, 200) << queue.body;
  ASSERT_EQ(queue.data["data"].size(), 1u);
  EXPECT_EQ(queue.data["data"][0].value("id", ""), refund_id);
  EXPECT_EQ(Send("GET", "/v1/admin/refund-requests?status=approved", "", ops).data["data"].size(), 0u);
  EXPECT_EQ(Send("GET", "/v1/admin/refund-requests?tenant_id=" + tenant_id, "", ops).data["data"].size(), 1u);
  EXPECT_EQ(Send("GET", "/v1/admin/refund-requests/" + refund_id, "", ops).data.value("tenant_id", ""), tenant_id);
  auto bad_status = Send("GET", "/v1/admin/refund-requests?status=open", "", ops);
  EXPECT_EQ(bad_status.status, 400);
  EXPECT_EQ(bad_status.data.value("field", ""), "status");
  EXPECT_EQ(Send("GET", "/v1/admin/refund-requests", "", owner.Headers(false)).status, 401);
  EXPECT_EQ(Send("GET", "/v1/admin/adjustment-requests?status=pending", "", ops).status, 200);
  EXPECT_EQ(Send("GET", "/v1/admin/adjustment-requests/adj_01J0000000000000000000000", "", ops).status, 404);
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

TEST_F(BillingRoutesTest, TransactionsArePagedByTheCursorTheyHandOut) {
  auto owner = SignUp();
  const std::string tenant_id = Send("GET", "/v1/tenant", "", owner.Headers(false)).data.value("id", "");
  Headers ops = OperatorLogin();
  for (int i = 0; i < 3; ++i) {
    json grant = {{"credits", std::to_string(i + 1)},
                  {"price_minor", 100},
                  {"currency", "EUR"},
                  {"payment_reference", "ch_" + std::to_string(i)}};
    ASSERT_EQ(Send("POST", "/v1/admin/tenants/" + tenant_id + "/credit-grants", grant.dump(),
                   With(ops, "Idempotency-Key", "page-" + std::to_string(i)))
                  .status,
              201);
  }
  std::vector<std::string> seen;
  std::string cursor;
  for (int page = 0; page < 5; ++page) {
    auto got = Send("GET", "/v1/credits/transactions?limit=1" + (cursor.empty() ? "" : "&cursor=" + cursor), "",
                    owner.Headers(false));
    ASSERT_EQ(got.status, 200) << got.body;
    for (const auto& entry : got.data["data"]) seen.push_back(entry.value("amount", ""));
    if (got.data["next_cursor"].is_null()) break;
    cursor = got.data["next_cursor"].get<std::string>();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"3", "2", "1"}));

  for (const char* bad : {"not-a-cursor", "MTIzNA", "OTk5OTk5OTk5OTk5OTk5OTk5OTk5fnRyZl8x", "a~b"}) {
    auto got = Send("GET", std::string("/v1/credits/transactions?cursor=") + bad, "", owner.Headers(false));
    EXPECT_EQ(got.status, 400) << bad << " " << got.body;
    EXPECT_EQ(got.data.value("field", ""), "cursor") << bad;
  }
}

TEST_F(BillingRoutesTest, NumbersOutOfRangeAreRefusedNamingTheField) {
  auto owner = SignUp();
  const std::string tenant_id = Send("GET", "/v1/tenant", "", owner.Headers(false)).data.value("id", "");
  Headers ops = OperatorLogin();
  auto threshold =
      Send("PUT", "/v1/credits/low-balance-threshold", json{{"threshold", "9223372036854.9"}}.dump(), owner.Headers());
  EXPECT_EQ(threshold.status, 400) << threshold.body;
  EXPECT_EQ(threshold.data.value("field", ""), "threshold");

  const std::string grants = "/v1/admin/tenants/" + tenant_id + "/credit-grants";
  json grant = {{"credits", "1"}, {"price_minor", 100}, {"currency", "EUR"}, {"payment_reference", "ch_1"}};
  struct Case {
    const char* field;
    json value;
  };
  for (const Case& bad :
       {Case{"credits", "9223372036854.9"}, Case{"credits", json(18446744073709551615ULL)},
        Case{"price_minor", json(18446744073709551615ULL)}, Case{"price_minor", -1},
        Case{"expires_in_days", json(INT64_MAX)}, Case{"expires_in_days", 0}, Case{"expires_in_days", "30"}}) {
    json body = grant;
    body[bad.field] = bad.value;
    auto got = Send("POST", grants, body.dump(), With(ops, "Idempotency-Key", "range-" + body.dump()));
    EXPECT_EQ(got.status, 400) << bad.field << " " << bad.value.dump() << " " << got.body;
    EXPECT_EQ(got.data.value("field", ""), bad.field) << bad.value.dump();
  }

  // The key comes from the header, and errors about it name the header.
  auto long_key = Send("POST", grants, grant.dump(), With(ops, "Idempotency-Key", std::string(230, 'k')));
  EXPECT_EQ(long_key.status, 400) << long_key.body;
  EXPECT_EQ(long_key.data.value("field", ""), "Idempotency-Key");
  ASSERT_EQ(Send("POST", grants, grant.dump(), With(ops, "Idempotency-Key", "grant-ok")).status, 201);
  const std::string reserve = "/v1/admin/tenants/" + tenant_id + "/reservations";
  json hold = {
      {"estimate", "0.5"}, {"purpose", "call"}, {"expires_at", FormatRfc3339(clock_.Now() + std::chrono::minutes(10))}};
  auto held = Send("POST", reserve, hold.dump(), With(ops, "Idempotency-Key", "r1"));
  ASSERT_EQ(held.status, 201) << held.body;
  hold["estimate"] = "0.75";
  auto reused = Send("POST", reserve, hold.dump(), With(ops, "Idempotency-Key", "r1"));
  EXPECT_EQ(reused.status, 422) << reused.body;
  EXPECT_EQ(reused.data.value("field", ""), "Idempotency-Key");
  // A bad usage item is named by its place in the body.
  const std::string settle = reserve + "/" + held.data.value("id", "") + "/settle";
  for (const auto& [usage, field] : std::vector<std::pair<json, std::string>>{
           {json::array(
                {{{"category", "call_minutes"}, {"amount", "0.1"}}, {{"category", "call_minutes"}, {"amount", 0.5}}}),
            "usage[1].amount"},
           {json::array({{{"category", "sms"}, {"amount", "0.1"}}}), "usage[0].category"},
           {json::array({{{"amount", "0.1"}}}), "usage[0].category"},
           {json::array({"call_minutes"}), "usage[0]"},
           {json::array({{{"category", "call_minutes"}, {"amount", "9223372036854"}},
                         {{"category", "ai_processing"}, {"amount", "9223372036854"}}}),
            "usage"}}) {
    auto got = Send("POST", settle, json{{"usage", usage}}.dump(), With(ops, "Idempotency-Key", "s-" + usage.dump()));
    EXPECT_EQ(got.status, 400) << usage.dump() << " " << got.body;
    EXPECT_EQ(got.data.value("field", ""), field) << usage.dump();
  }
  auto amounts = Send("POST", "/v1/admin/adjustment-requests/adj_01J0000000000000000000000/approve",
                      json{{"resolution", "credit_adjustment"}, {"amounts", {{"ch_x", 1.5}}}}.dump(), ops);
  EXPECT_EQ(amounts.status, 400) << amounts.body;
  EXPECT_EQ(amounts.data.value("field", ""), "amounts.ch_x");

  for (const char* date : {"2026-1-1", "-001-01-01", "2026-01-01x", "2026-02-30"}) {
    auto got = Send("GET", std::string("/v1/credits/transactions?from=") + date, "", owner.Headers(false));
    EXPECT_EQ(got.status, 400) << date;
    EXPECT_EQ(got.data.value("field", ""), "from") << date;
  }
  auto csv = Send("GET", "/v1/credits/transactions.csv", "", owner.Headers(false));
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(csv.Header("Content-Disposition"), "attachment; filename=\"clozit-transactions.csv\"");

  for (const json& days : {json(INT64_MAX), json("abc"), json(100000)}) {
    auto got = Send("POST", "/v1/admin/adjustment-requests/adj_01J0000000000000000000000/approve",
                    json{{"resolution", "replacement_credits"}, {"expires_in_days", days}}.dump(), ops);
    EXPECT_EQ(got.status, 400) << days.dump() << " " << got.body;
    EXPECT_EQ(got.data.value("field", ""), "expires_in_days");
  }
}

TEST_F(BillingRoutesTest, ASuspendedTenantReadsButChangesNothingAndFraudForfeitsItsRefunds) {
  auto owner = SignUp();
  const std::string tenant_id = Send("GET", "/v1/tenant", "", owner.Headers(false)).data.value("id", "");
  Headers ops = OperatorLogin();
  json grant = {{"credits", "100"}, {"price_minor", 4900}, {"currency", "EUR"}, {"payment_reference", "ch_9"}};
  auto granted = Send("POST", "/v1/admin/tenants/" + tenant_id + "/credit-grants", grant.dump(),
                      With(ops, "Idempotency-Key", "s1"));
  ASSERT_EQ(granted.status, 201) << granted.body;
  const std::string purchase = json{{"purchase_id", granted.data.value("id", "")}}.dump();
  auto asked = Send("POST", "/v1/refund-requests", purchase, owner.Headers());
  ASSERT_EQ(asked.status, 201) << asked.body;
  const std::string approve = "/v1/admin/refund-requests/" + asked.data.value("id", "") + "/approve";
  const std::string suspension = "/v1/admin/tenants/" + tenant_id + "/suspension";
  auto key = Send("POST", "/v1/api-keys", json{{"name", "dialer"}, {"role", "admin"}}.dump(), owner.Headers());
  ASSERT_EQ(key.status, 201) << key.body;
  const Headers bearer = {{"Authorization", "Bearer " + key.data.value("secret", "")}};
  auto spare = Send("POST", "/v1/api-keys", json{{"name", "leaked"}}.dump(), owner.Headers());
  ASSERT_EQ(spare.status, 201) << spare.body;

  auto bad = Send("PUT", suspension, json{{"reason", "rude"}}.dump(), ops);
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.data.value("field", ""), "reason");
  EXPECT_EQ(
      Send("PUT", "/v1/admin/tenants/ten_01J0000000000000000000000/suspension", json{{"reason", "fraud"}}.dump(), ops)
          .status,
      404);
  auto suspended = Send("PUT", suspension, json{{"reason", "fraud"}, {"note", "chargebacks"}}.dump(), ops);
  ASSERT_EQ(suspended.status, 200) << suspended.body;
  EXPECT_EQ(suspended.data.value("status", ""), "suspended");
  EXPECT_EQ(suspended.data.value("suspension_reason", ""), "fraud");

  // Reading stays open; changes are refused, whoever asks and however it is signed.
  EXPECT_EQ(Send("GET", "/v1/credits", "", owner.Headers(false)).status, 200);
  EXPECT_EQ(Send("GET", "/v1/credits", "", bearer).status, 200);
  EXPECT_EQ(Send("POST", "/v1/refund-requests", purchase, owner.Headers()).status, 403);
  EXPECT_EQ(Send("PUT", "/v1/credits/low-balance-threshold", json{{"threshold", "5"}}.dump(), owner.Headers()).status,
            403);
  EXPECT_EQ(Send("PUT", "/v1/credits/low-balance-threshold", json{{"threshold", "5"}}.dump(), bearer).status, 403);
  // Except what contains a leak or honours the people it called.
  auto revoked = Send("DELETE", "/v1/api-keys/" + spare.data.value("id", ""), "", owner.Headers());
  EXPECT_LT(revoked.status, 300) << revoked.body;
  auto opt_out = Send("POST", "/v1/dnc", json{{"number", "+14155552671"}}.dump(), bearer);
  EXPECT_NE(opt_out.status, 403) << opt_out.body;
  // P5: fraud forfeits refunds, even one asked for before the suspension.
  auto refused = Send("POST", approve, "", ops);
  EXPECT_EQ(refused.status, 409) << refused.body;
  EXPECT_NE(refused.body.find("account_suspended_for_abuse"), std::string::npos) << refused.body;

  // A suspension for non-payment does not forfeit them; lifting it restores changes.
  ASSERT_EQ(Send("PUT", suspension, json{{"reason", "non_payment"}}.dump(), ops).status, 200);
  auto approved = Send("POST", approve, "", ops);
  EXPECT_EQ(approved.status, 200) << approved.body;
  auto lifted = Send("DELETE", suspension, "", ops);
  ASSERT_EQ(lifted.status, 200) << lifted.body;
  EXPECT_EQ(lifted.data.value("status", ""), "active");
  EXPECT_TRUE(lifted.data["suspension_reason"].is_null());
  EXPECT_EQ(Send("PUT", "/v1/credits/low-balance-threshold", json{{"threshold", "5"}}.dump(), owner.Headers()).status,
            200);
}

TEST_F(BillingRoutesTest, PriceBookIsReadByTenantsAndVersionedByOperators) {
  auto owner = SignUp();
  Headers ops = OperatorLogin();

  auto prices = Send("GET", "/v1/prices", "", owner.Headers(false));
  ASSERT_EQ(prices.status, 200) << prices.body;
  EXPECT_EQ(prices.data.value("version", 0), 1);
  EXPECT_EQ(prices.data.value("status", ""), "published");
  ASSERT_FALSE(prices.data["calls"].empty());
  // Tenants cannot edit prices.
  EXPECT_EQ(Send("GET", "/v1/admin/price-books", "", owner.Headers(false)).status, 401);

  // An edit: the current book with a dearer domestic rate, as a draft.
  json edited = prices.data;
  for (const char* meta : {"version", "status", "effective_from", "created_at", "published_at", "note"}) {
    edited.erase(meta);
  }
  for (auto& rate : edited["calls"]) {
    if (rate["destination_class"] == "domestic") rate["per_minute"] = "0.05";
  }
  edited["note"] = "domestic up";
  json bad = edited;
  bad["calls"][0]["increment_seconds"] = 0;
  auto refused = Send("POST", "/v1/admin/price-books", bad.dump(), ops);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.data.value("field", ""), "calls[0].increment_seconds");
  auto draft = Send("POST", "/v1/admin/price-books", edited.dump(), ops);
  ASSERT_EQ(draft.status, 201) << draft.body;
  EXPECT_EQ(draft.data.value("version", 0), 2);
  EXPECT_EQ(draft.data.value("status", ""), "draft");
  EXPECT_EQ(Send("GET", "/v1/prices", "", owner.Headers(false)).data.value("version", 0), 1);

  auto list = Send("GET", "/v1/admin/price-books?limit=1", "", ops);
  ASSERT_EQ(list.status, 200) << list.body;
  ASSERT_EQ(list.data["data"].size(), 1u);
  EXPECT_TRUE(list.data.value("has_more", false));
  EXPECT_EQ(Send("GET", "/v1/admin/price-books/2", "", ops).data.value("note", ""), "domestic up");
  EXPECT_EQ(Send("GET", "/v1/admin/price-books/9", "", ops).status, 404);
  EXPECT_EQ(Send("GET", "/v1/admin/price-books/x", "", ops).status, 404);

  auto past =
      Send("POST", "/v1/admin/price-books/2/publish", json{{"effective_from", "2020-01-01T00:00:00Z"}}.dump(), ops);
  EXPECT_EQ(past.status, 400) << past.body;
  auto published = Send("POST", "/v1/admin/price-books/2/publish", "{}", ops);
  ASSERT_EQ(published.status, 200) << published.body;
  EXPECT_EQ(published.data.value("status", ""), "published");
  EXPECT_EQ(Send("POST", "/v1/admin/price-books/2/publish", "{}", ops).status, 409);
  auto now_prices = Send("GET", "/v1/prices", "", owner.Headers(false));
  EXPECT_EQ(now_prices.data.value("version", 0), 2);
}

TEST_F(BillingRoutesTest, SubscriptionIsBoughtWithCreditsChangedAndCancelledAtPeriodEnd) {
  auto owner = SignUp();
  const std::string tenant_id = Send("GET", "/v1/tenant", "", owner.Headers(false)).data.value("id", "");
  Headers ops = OperatorLogin();

  auto none = Send("GET", "/v1/subscription", "", owner.Headers(false));
  ASSERT_EQ(none.status, 200) << none.body;
  EXPECT_EQ(none.data.value("status", ""), "none");
  // Without credits: 402, and the key is required.
  EXPECT_EQ(Send("POST", "/v1/subscription", json{{"plan", "starter"}}.dump(), owner.Headers()).status, 400);
  auto broke = Send("POST", "/v1/subscription", json{{"plan", "starter"}}.dump(),
                    With(owner.Headers(), "Idempotency-Key", "s0"));
  EXPECT_EQ(broke.status, 402) << broke.body;

  json grant = {{"credits", "500"}, {"price_minor", 24500}, {"currency", "EUR"}, {"payment_reference", "ch_9"}};
  ASSERT_EQ(Send("POST", "/v1/admin/tenants/" + tenant_id + "/credit-grants", grant.dump(),
                 With(ops, "Idempotency-Key", "g1"))
                .status,
            201);
  auto subscribed = Send("POST", "/v1/subscription", json{{"plan", "starter"}}.dump(),
                         With(owner.Headers(), "Idempotency-Key", "s1"));
  ASSERT_EQ(subscribed.status, 201) << subscribed.body;
  EXPECT_EQ(subscribed.data.value("plan", ""), "starter");
  EXPECT_EQ(subscribed.data.value("price", ""), "49");
  auto replayed = Send("POST", "/v1/subscription", json{{"plan", "starter"}}.dump(),
                       With(owner.Headers(), "Idempotency-Key", "s1"));
  EXPECT_EQ(replayed.data.value("id", ""), subscribed.data.value("id", ""));
  EXPECT_EQ(Send("GET", "/v1/credits", "", owner.Headers(false)).data.value("available", ""), "511");

  auto upgraded = Send("POST", "/v1/subscription/change", json{{"plan", "growth"}}.dump(),
                       With(owner.Headers(), "Idempotency-Key", "c1"));
  ASSERT_EQ(upgraded.status, 200) << upgraded.body;
  EXPECT_EQ(upgraded.data.value("plan", ""), "growth");
  auto unknown = Send("POST", "/v1/subscription/change", json{{"plan", "platinum"}}.dump(),
                      With(owner.Headers(), "Idempotency-Key", "c2"));
  EXPECT_EQ(unknown.status, 400) << unknown.body;
  EXPECT_EQ(unknown.data.value("field", ""), "plan");

  auto canceled = Send("POST", "/v1/subscription/cancel", "", owner.Headers());
  ASSERT_EQ(canceled.status, 200) << canceled.body;
  EXPECT_TRUE(canceled.data.value("cancel_at_period_end", false));
  EXPECT_EQ(canceled.data.value("status", ""), "active");
  auto shown = Send("GET", "/v1/subscription", "", owner.Headers(false));
  EXPECT_EQ(shown.data.value("status", ""), "active");
  EXPECT_FALSE(shown.data["current_period_end"].is_null());

  // A subscription charge is refused as a refund subject.
  auto refund = Send("POST", "/v1/refund-requests", json{{"purchase_id", subscribed.data.value("id", "")}}.dump(),
                     owner.Headers());
  ASSERT_EQ(refund.status, 201) << refund.body;
  EXPECT_EQ(refund.data.value("reason_code", ""), "subscription_not_refundable");
  auto breaches = billing::CheckLedger(*db_);
  ASSERT_TRUE(breaches.ok());
  EXPECT_TRUE(breaches->empty());
}

}  // namespace
}  // namespace clozit::api::test
