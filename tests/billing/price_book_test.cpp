// The versioned price book: the seeded default, exact integer quotes with
// billing increments rounded up, draft → publish at a chosen instant, and
// charges that keep the version they were priced with.
#include <chrono>

#include <nlohmann/json.hpp>

#include "billing/number_fees.hpp"
#include "billing/price_book.hpp"
#include "billing_fixture.hpp"

namespace clozit::billing::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

const privacy::Actor kOperator{"operator", "op_test"};

Credits Micros(int64_t micros) { return Credits::FromMicros(micros); }

class PriceBookTest : public BillingTest {
 protected:
  void SetUp() override {
    BillingTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    book_ = std::make_unique<PriceBook>(*db_, *audit_, clock_);
  }
  void TearDown() override {
    book_.reset();
    BillingTest::TearDown();
  }

  // The default book with some prices changed.
  PriceBookContent Edited(Credits domestic_per_minute, Credits us_local_monthly) {
    auto current = book_->Effective(clock_.Now());
    EXPECT_TRUE(current.ok());
    PriceBookContent content = current->content;
    for (CallRate& rate : content.calls) {
      if (rate.destination_class == "domestic") rate.per_minute = domestic_per_minute;
    }
    for (NumberPrice& price : content.numbers) {
      if (price.country == "US" && price.number_type == "local") price.monthly = us_local_monthly;
    }
    return content;
  }

  std::unique_ptr<PriceBook> book_;
};

TEST(PriceRounding, BilledSecondsFollowMinimumAndIncrement) {
  EXPECT_EQ(BilledSeconds(0, 60, 6), 0);
  EXPECT_EQ(BilledSeconds(1, 60, 6), 60);
  EXPECT_EQ(BilledSeconds(60, 60, 6), 60);
  EXPECT_EQ(BilledSeconds(61, 60, 6), 66);
  EXPECT_EQ(BilledSeconds(66, 60, 6), 66);
  EXPECT_EQ(BilledSeconds(1, 6, 6), 6);
  EXPECT_EQ(BilledSeconds(7, 6, 6), 12);
  EXPECT_EQ(BilledSeconds(61, 60, 60), 120);
  EXPECT_EQ(BilledSeconds(1, 1, 1), 1);
  // A started unit is billed: amounts round up to the micro-credit, never down.
  EXPECT_EQ(*PriceUnits(Micros(1), 1, 3), Micros(1));
  EXPECT_EQ(*PriceUnits(Micros(30'000), 66, 60), Micros(33'000));
  EXPECT_EQ(*PriceUnits(Micros(30'000), 1001, 1000), Micros(30'030));
  EXPECT_EQ(*PriceUnits(Micros(7), 1, 60), Micros(1));
  EXPECT_EQ(*PriceUnits(Micros(0), 1000, 60), Micros(0));
  EXPECT_FALSE(PriceUnits(Micros(INT64_MAX), INT64_MAX, 1).ok());
}

TEST_P(PriceBookTest, TheDefaultBookIsSeededAndQuotesExactly) {
  auto book = book_->Effective(clock_.Now());
  ASSERT_TRUE(book.ok()) << book.error().message;
  EXPECT_EQ(book->version, 1);
  EXPECT_EQ(book->status, PriceBookStatus::kPublished);
  ASSERT_NE(book->content.FindCall("domestic"), nullptr);
  ASSERT_NE(book->content.FindNumber("US", "local"), nullptr);
  ASSERT_NE(book->content.FindPlan("starter"), nullptr);

  // 61 s domestic (60/6 at 0.03/min) = 66 s = 0.033; 1,500 tokens at 0.002/1k = 0.003; 90 s conversation at
  // 0.04/min = 0.06; 10 STT seconds at 0.0003 = 0.003; 1,001 characters at 0.03/1k = 0.03003; 1 attempt 0.005.
  UsageQuantities usage;
  usage.destination_class = "domestic";
  usage.call_seconds = 61;
  usage.llm_tokens = 1500;
  usage.conversation_seconds = 90;
  usage.stt_seconds = 10;
  usage.tts_characters = 1001;
  usage.dial_attempts = 1;
  auto quote = book_->Quote(usage, clock_.Now());
  ASSERT_TRUE(quote.ok()) << quote.error().message;
  EXPECT_EQ(quote->price_version, 1);
  EXPECT_EQ(quote->billed_call_seconds, 66);
  ASSERT_EQ(quote->items.size(), 4u);
  EXPECT_EQ(quote->items[0].category, UsageCategory::kCallMinutes);
  EXPECT_EQ(quote->items[0].amount, Micros(33'000));
  EXPECT_EQ(quote->items[1].category, UsageCategory::kAiProcessing);
  EXPECT_EQ(quote->items[1].amount, Micros(60'000 + 3'000 + 3'000));
  EXPECT_EQ(quote->items[2].amount, Micros(30'030));
  EXPECT_EQ(quote->items[3].amount, Micros(5'000));
  EXPECT_EQ(quote->total, Micros(33'000 + 66'000 + 30'030 + 5'000));

  // A 6/6 toll-free call: 7 s bill as 12 s.
  UsageQuantities toll_free;
  toll_free.destination_class = "toll_free";
  toll_free.call_seconds = 7;
  quote = book_->Quote(toll_free, clock_.Now());
  ASSERT_TRUE(quote.ok());
  EXPECT_EQ(quote->billed_call_seconds, 12);
  EXPECT_EQ(quote->total, Micros(4'000));

  UsageQuantities unknown;
  unknown.destination_class = "mars";
  unknown.call_seconds = 5;
  EXPECT_EQ(book_->Quote(unknown, clock_.Now()).error().field, "destination_class");
  UsageQuantities negative;
  negative.llm_tokens = -1;
  EXPECT_EQ(book_->Quote(negative, clock_.Now()).error().code, ErrorCode::kInvalidArgument);
}

TEST_P(PriceBookTest, AnEditIsADraftUntilPublishedAndAppliesFromItsEffectiveInstant) {
  const TimePoint start = clock_.Now();
  auto draft = book_->CreateDraft(Edited(Micros(40'000), Credits::FromMicros(2'500'000)), "domestic +1/3", kOperator);
  ASSERT_TRUE(draft.ok()) << draft.error().message;
  EXPECT_EQ(draft->version, 2);
  EXPECT_EQ(draft->status, PriceBookStatus::kDraft);
  EXPECT_EQ(book_->Effective(start)->version, 1);  // a draft prices nothing

  // Never back-dated; effective from a day later.
  EXPECT_EQ(book_->Publish(2, start - 1h, kOperator).error().field, "effective_from");
  auto published = book_->Publish(2, start + 24h, kOperator);
  ASSERT_TRUE(published.ok()) << published.error().message;
  EXPECT_EQ(published->status, PriceBookStatus::kPublished);
  EXPECT_EQ(*published->effective_from, start + 24h);
  EXPECT_EQ(book_->Publish(2, std::nullopt, kOperator).error().code, ErrorCode::kConflict);
  EXPECT_EQ(book_->Publish(99, std::nullopt, kOperator).error().code, ErrorCode::kNotFound);

  UsageQuantities minute;
  minute.destination_class = "domestic";
  minute.call_seconds = 60;
  auto before = book_->Quote(minute, start + 23h);
  auto after = book_->Quote(minute, start + 24h);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ(before->price_version, 1);
  EXPECT_EQ(before->total, Micros(30'000));
  EXPECT_EQ(after->price_version, 2);
  EXPECT_EQ(after->total, Micros(40'000));

  auto list = book_->List({1, ""});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].version, 2);
  auto rest = book_->List({10, list->next_cursor});
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].version, 1);
  EXPECT_TRUE(rest->next_cursor.empty());
  auto audits = db_->Query("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'price_book.%'");
  ASSERT_TRUE(audits.ok());
  EXPECT_EQ(audits->front().Int(0), 2);
}

TEST_P(PriceBookTest, ASettledReservationKeepsThePriceVersionItWasPricedWith) {
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(10));
  UsageQuantities call;
  call.destination_class = "domestic";
  call.call_seconds = 125;
  auto quote = book_->Quote(call, clock_.Now());
  ASSERT_TRUE(quote.ok());
  auto reservation = Reserve(tenant, Cr(1), "call-1");
  ASSERT_TRUE(reservation.ok());
  auto settled = charging_->Settle(tenant, reservation->id.str(), quote->items, quote->price_version);
  ASSERT_TRUE(settled.ok()) << settled.error().message;
  EXPECT_EQ(settled->price_version, std::optional<int64_t>(1));
  EXPECT_EQ(settled->charged, Micros(63'000));  // 126 s at 0.03/min

  // A new version later does not touch what was charged.
  ASSERT_TRUE(book_->CreateDraft(Edited(Micros(90'000), Cr(3)), "", kOperator).ok());
  ASSERT_TRUE(book_->Publish(2, std::nullopt, kOperator).ok());
  auto again = charging_->GetReservation(tenant, reservation->id.str());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->price_version, std::optional<int64_t>(1));
  EXPECT_EQ(again->charged, Micros(63'000));
  ExpectClean();
}

TEST_P(PriceBookTest, NumberFeesComeFromTheBookInEffectAtEachPeriod) {
  NumberFees fees(*db_, *ledger_, *audit_, clock_, random_,
                  [this](storage::Tx& tx, const std::string& country, const std::string& type, TimePoint at) {
                    return book_->NumberFees(tx, country, type, at);
                  });
  TenantId tenant = NewTenant();
  GrantOk(tenant, Cr(50));
  const TimePoint start = clock_.Now();
  auto holding = fees.ChargeNumberPurchase({tenant, "num_gb", "+442071838750", "GB", "local", "k1"});
  ASSERT_TRUE(holding.ok()) << holding.error().message;
  EXPECT_EQ(holding->monthly_fee, Credits::FromMicros(2'500'000));
  EXPECT_EQ(holding->regulatory_fee, Credits::FromMicros(750'000));
  EXPECT_EQ(holding->price_version, 1);
  // No price for the country: refused, nothing charged.
  auto unpriced = fees.ChargeNumberPurchase({tenant, "num_fr", "+33142685300", "FR", "local", "k2"});
  ASSERT_FALSE(unpriced.ok());
  EXPECT_EQ(unpriced.error().field, "country");

  // A price change published mid-period applies from the next anniversary on.
  ASSERT_TRUE(book_->CreateDraft(Edited(Micros(30'000), Cr(3)), "", kOperator).ok());
  auto us = fees.ChargeNumberPurchase({tenant, "num_us", "+14155550100", "US", "local", "k3"});
  ASSERT_TRUE(us.ok());
  EXPECT_EQ(us->monthly_fee, Cr(2));
  ASSERT_TRUE(book_->Publish(2, start + 24h * 10, kOperator).ok());
  clock_.Set(start + 24h * 40);
  auto run = fees.ChargeDueFees();
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_EQ(run->charged.size(), 2u);
  auto renewed = fees.GetHolding(tenant, "num_us");
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->monthly_fee, Cr(3));
  EXPECT_EQ(renewed->price_version, 2);
  auto versions = db_->Query(
      "SELECT period, price_version FROM billing_number_fee_charges WHERE number_id = 'num_us' "
      "ORDER BY period");
  ASSERT_TRUE(versions.ok());
  ASSERT_EQ(versions->size(), 2u);
  EXPECT_EQ((*versions)[0].Int(1), 1);
  EXPECT_EQ((*versions)[1].Int(1), 2);
  ExpectClean();
}

TEST(PriceBookDocument, ValidationNamesTheField) {
  json document = json::parse(R"({
    "calls": [{"destination_class": "domestic", "per_minute": "0.03", "minimum_seconds": 60, "increment_seconds": 6}],
    "ai": {"per_conversation_minute": "0.04", "per_1k_llm_tokens": "0.002", "per_stt_second": "0.0003"},
    "voice": {"per_1k_characters": "0.03"},
    "campaign": {"per_dial_attempt": "0.005"},
    "numbers": [{"country": "US", "number_type": "local", "monthly": "2", "regulatory": "0.5"}],
    "plans": [{"code": "starter", "name": "Starter", "price_per_cycle": "49", "included_credits": "60"}]
  })");
  auto parsed = ParsePriceBook(document);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(PriceBookJson(*parsed), document);

  auto broken = [&](const std::string& pointer, const json& value) {
    json copy = document;
    copy[json::json_pointer(pointer)] = value;
    auto result = ParsePriceBook(copy);
    return result.ok() ? std::string("accepted") : result.error().field;
  };
  EXPECT_EQ(broken("/calls/0/increment_seconds", 0), "calls[0].increment_seconds");
  EXPECT_EQ(broken("/calls/0/per_minute", 0.03), "calls[0].per_minute");  // floats are never money
  EXPECT_EQ(broken("/calls/0/per_minute", "-1"), "calls[0].per_minute");
  EXPECT_EQ(broken("/ai/per_1k_llm_tokens", "x"), "ai.per_1k_llm_tokens");
  EXPECT_EQ(broken("/numbers/0/country", "usa"), "numbers[0].country");
  EXPECT_EQ(broken("/numbers/0/number_type", "landline"), "numbers[0].number_type");
  EXPECT_EQ(broken("/plans/0/price_per_cycle", "0"), "plans[0].price_per_cycle");
  EXPECT_EQ(broken("/plans/0/code", "Big Plan"), "plans[0].code");
  EXPECT_EQ(broken("/voice", "cheap"), "voice");
  json duplicate = document;
  duplicate["calls"].push_back(document["calls"][0]);
  EXPECT_EQ(ParsePriceBook(duplicate).error().field, "calls[1].destination_class");
}

CLOZIT_INSTANTIATE_BACKENDS(PriceBookTest);

}  // namespace
}  // namespace clozit::billing::test
