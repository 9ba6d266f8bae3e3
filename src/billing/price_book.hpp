// billing/price_book: what everything costs, in credits, versioned.
//
// A price book version holds call rates by destination class (per minute,
// with a minimum and a billing increment in seconds: 60/6, 6/6, ...), AI
// processing (per conversation minute, per 1,000 LLM tokens, per STT second),
// voice generation (per 1,000 characters), campaign execution (per dial
// attempt), phone numbers (monthly + regulatory fee by country and type) and
// subscription plans (price per cycle, included credits).
//
// Versions are immutable once published. An operator edit creates a new
// draft version (the whole book); publishing it makes it effective from a
// chosen instant (now or later). The effective book at an instant is the
// published version with the latest effective_from at or before it (the
// higher version on a tie). Version 1, the default book, is seeded by the
// migration. Whatever is priced records the version it used (reservations'
// price_version, number fee periods, subscription periods).
//
// Quote turns usage quantities into credits with exact integer arithmetic:
// billed call seconds = max(minimum, ceil(seconds / increment) × increment),
// and every amount is rounded up to the micro-credit.
// Thread-safe; methods block on the database.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "billing/charging.hpp"
#include "billing/number_fees.hpp"
#include "common/clock.hpp"
#include "common/credits.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::billing {

struct CallRate {
  std::string destination_class;  // e.g. "domestic", "international_1"
  Credits per_minute;
  int64_t minimum_seconds = 60;
  int64_t increment_seconds = 6;
};

struct NumberPrice {
  std::string country;      // ISO 3166-1 alpha-2
  std::string number_type;  // local | toll_free | mobile
  Credits monthly;
  Credits regulatory;
};

struct PlanPrice {
  std::string code;  // e.g. "starter"
  std::string name;
  Credits price_per_cycle;   // charged from credits at the start of each monthly cycle
  Credits included_credits;  // granted as a subscription lot expiring at the cycle's end
};

struct PriceBookContent {
  std::vector<CallRate> calls;
  Credits ai_per_conversation_minute;
  Credits ai_per_1k_llm_tokens;
  Credits ai_per_stt_second;
  Credits voice_per_1k_characters;
  Credits campaign_per_dial_attempt;
  std::vector<NumberPrice> numbers;
  std::vector<PlanPrice> plans;

  const CallRate* FindCall(const std::string& destination_class) const;
  const NumberPrice* FindNumber(const std::string& country, const std::string& number_type) const;
  const PlanPrice* FindPlan(const std::string& code) const;
};

/// Parses and validates a price book document (errors name the field, e.g. "calls[2].increment_seconds").
Result<PriceBookContent> ParsePriceBook(const nlohmann::json& document);
nlohmann::json PriceBookJson(const PriceBookContent& content);

enum class PriceBookStatus { kDraft, kPublished };
std::string_view PriceBookStatusName(PriceBookStatus status);

struct PriceBookVersion {
  int64_t version = 0;
  PriceBookStatus status = PriceBookStatus::kDraft;
  std::optional<TimePoint> effective_from;  // published only
  std::string note;
  std::string created_by;
  TimePoint created_at;
  std::optional<TimePoint> published_at;
  std::string published_by;
  PriceBookContent content;
};

/// Usage to price. A call's seconds are billed by its destination class's minimum and increment.
struct UsageQuantities {
  std::string destination_class;  // required when call_seconds > 0
  int64_t call_seconds = 0;
  int64_t conversation_seconds = 0;  // AI processing, per conversation minute (pro rata per second)
  int64_t llm_tokens = 0;
  int64_t stt_seconds = 0;
  int64_t tts_characters = 0;
  int64_t dial_attempts = 0;
};

struct PriceQuote {
  int64_t price_version = 0;
  int64_t billed_call_seconds = 0;
  std::vector<UsageItem> items;  // one per category with a non-zero amount, in category order
  Credits total;
};

/// The billed seconds of a call: 0 for 0, else max(minimum, ceil(seconds / increment) × increment).
int64_t BilledSeconds(int64_t seconds, int64_t minimum_seconds, int64_t increment_seconds);
/// ceil(rate × quantity / per), in micro-credits, overflow-checked.
Result<Credits> PriceUnits(Credits rate, int64_t quantity, int64_t per);

/// Prices `usage` with `book` (pure).
Result<PriceQuote> QuoteWith(const PriceBookContent& book, int64_t version, const UsageQuantities& usage);

class PriceBook {
 public:
  PriceBook(storage::Database& db, privacy::AuditLog& audit, const Clock& clock)
      : db_(db), audit_(audit), clock_(clock) {}

  /// The version in effect at `at`.
  Result<PriceBookVersion> Effective(TimePoint at);
  Result<PriceBookVersion> Effective(storage::Tx& tx, TimePoint at);
  Result<PriceBookVersion> Get(int64_t version);
  /// Newest first; the cursor is the last version returned.
  Result<Page<PriceBookVersion>> List(const PageRequest& page);
  /// A new draft version holding `content`.
  Result<PriceBookVersion> CreateDraft(const PriceBookContent& content, const std::string& note,
                                       const privacy::Actor& actor);
  /// Publishes a draft, effective from `effective_from` (absent: now; never in the past).
  Result<PriceBookVersion> Publish(int64_t version, std::optional<TimePoint> effective_from,
                                   const privacy::Actor& actor);

  /// Prices usage with the book in effect at `at`.
  Result<PriceQuote> Quote(const UsageQuantities& usage, TimePoint at);
  /// A phone number's fees at `at` (kNotFound, field "country", when the book has no price for it).
  Result<NumberFeeQuote> NumberFees(storage::Tx& tx, const std::string& country, const std::string& number_type,
                                    TimePoint at);

 private:
  storage::Database& db_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
};

}  // namespace clozit::billing
