#include "billing/price_book.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <utility>

#include "billing/detail/store.hpp"

namespace clozit::billing {
namespace {

using json = nlohmann::json;
using storage::Row;
using storage::Tx;

constexpr int64_t kMaxQuantity = int64_t{1} << 40;

Result<Credits> Money(const json& object, const std::string& path, const std::string& name) {
  const std::string field = path.empty() ? name : path + "." + name;
  if (!object.is_object() || !object.contains(name)) return Error::InvalidArgument(field, field + " is required");
  const json& value = object.at(name);
  if (!value.is_string()) return Error::InvalidArgument(field, field + " must be a decimal string of credits");
  auto parsed = Credits::Parse(value.get<std::string>());
  if (!parsed || parsed->micros() < 0) {
    return Error::InvalidArgument(field, field + " must be a non-negative decimal number of credits, e.g. \"0.02\"");
  }
  return *parsed;
}

Result<int64_t> Integer(const json& object, const std::string& path, const std::string& name, int64_t min,
                        int64_t max) {
  const std::string field = path + "." + name;
  if (!object.contains(name) || !object.at(name).is_number_integer()) {
    return Error::InvalidArgument(field, field + " must be an integer");
  }
  const int64_t value = object.at(name).get<int64_t>();
  if (value < min || value > max) {
    return Error::InvalidArgument(field, field + " must be " + std::to_string(min) + "-" + std::to_string(max));
  }
  return value;
}

Result<std::string> Text(const json& object, const std::string& path, const std::string& name, size_t max_length) {
  const std::string field = path + "." + name;
  if (!object.contains(name) || !object.at(name).is_string() || object.at(name).get<std::string>().empty() ||
      object.at(name).get<std::string>().size() > max_length) {
    return Error::InvalidArgument(field,
                                  field + " must be a string of 1-" + std::to_string(max_length) + " characters");
  }
  return object.at(name).get<std::string>();
}

bool Slug(const std::string& text) {
  return !text.empty() && text.size() <= 50 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

Result<const json*> ArrayField(const json& document, const std::string& name) {
  if (!document.contains(name) || !document.at(name).is_array()) {
    return Error::InvalidArgument(name, name + " must be an array");
  }
  return &document.at(name);
}

Result<const json*> ObjectField(const json& document, const std::string& name) {
  if (!document.contains(name) || !document.at(name).is_object()) {
    return Error::InvalidArgument(name, name + " must be an object");
  }
  return &document.at(name);
}

constexpr std::string_view kSelectVersion =
    "SELECT version, status, effective_from, note, created_by, created_at, published_at, published_by, document "
    "FROM billing_price_books ";

Result<PriceBookVersion> VersionFrom(const Row& row) {
  PriceBookVersion v;
  v.version = row.Int(0);
  v.status = row.Text(1) == "published" ? PriceBookStatus::kPublished : PriceBookStatus::kDraft;
  v.effective_from = detail::OptionalTime(row, 2);
  v.note = row.Text(3);
  v.created_by = row.Text(4);
  v.created_at = FromUnixMillis(row.Int(5));
  v.published_at = detail::OptionalTime(row, 6);
  v.published_by = row.Text(7);
  json document = json::parse(row.Text(8), nullptr, false);
  auto content = ParsePriceBook(document);
  if (!content) {
    return Error::Internal("stored price book version " + std::to_string(v.version) +
                           " is invalid: " + content.error().message);
  }
  v.content = std::move(content).value();
  return v;
}

Result<PriceBookVersion> RequireVersion(Tx& tx, int64_t version) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(std::string(kSelectVersion) + "WHERE version = $1", {version}));
  if (rows.empty()) return Error::NotFound("price book version " + std::to_string(version) + " not found");
  return VersionFrom(rows.front());
}

}  // namespace

const CallRate* PriceBookContent::FindCall(const std::string& destination_class) const {
  for (const CallRate& rate : calls) {
    if (rate.destination_class == destination_class) return &rate;
  }
  return nullptr;
}

const NumberPrice* PriceBookContent::FindNumber(const std::string& country, const std::string& number_type) const {
  for (const NumberPrice& price : numbers) {
    if (price.country == country && price.number_type == number_type) return &price;
  }
  return nullptr;
}

const PlanPrice* PriceBookContent::FindPlan(const std::string& code) const {
  for (const PlanPrice& plan : plans) {
    if (plan.code == code) return &plan;
  }
  return nullptr;
}

Result<PriceBookContent> ParsePriceBook(const json& document) {
  if (!document.is_object()) return Error::InvalidArgument("body", "a price book is a JSON object");
  PriceBookContent book;
  CLOZIT_ASSIGN_OR_RETURN(const json* calls, ArrayField(document, "calls"));
  std::set<std::string> seen;
  for (size_t i = 0; i < calls->size(); ++i) {
    const json& entry = calls->at(i);
    const std::string path = "calls[" + std::to_string(i) + "]";
    if (!entry.is_object()) return Error::InvalidArgument(path, path + " must be an object");
    CallRate rate;
    CLOZIT_ASSIGN_OR_RETURN(rate.destination_class, Text(entry, path, "destination_class", 50));
    if (!Slug(rate.destination_class)) {
      return Error::InvalidArgument(path + ".destination_class", "destination classes are lower-case slugs");
    }
    if (!seen.insert(rate.destination_class).second) {
      return Error::InvalidArgument(path + ".destination_class", "destination class listed twice");
    }
    CLOZIT_ASSIGN_OR_RETURN(rate.per_minute, Money(entry, path, "per_minute"));
    CLOZIT_ASSIGN_OR_RETURN(rate.minimum_seconds, Integer(entry, path, "minimum_seconds", 0, 3600));
    CLOZIT_ASSIGN_OR_RETURN(rate.increment_seconds, Integer(entry, path, "increment_seconds", 1, 3600));
    book.calls.push_back(std::move(rate));
  }
  CLOZIT_ASSIGN_OR_RETURN(const json* ai, ObjectField(document, "ai"));
  CLOZIT_ASSIGN_OR_RETURN(book.ai_per_conversation_minute, Money(*ai, "ai", "per_conversation_minute"));
  CLOZIT_ASSIGN_OR_RETURN(book.ai_per_1k_llm_tokens, Money(*ai, "ai", "per_1k_llm_tokens"));
  CLOZIT_ASSIGN_OR_RETURN(book.ai_per_stt_second, Money(*ai, "ai", "per_stt_second"));
  CLOZIT_ASSIGN_OR_RETURN(const json* voice, ObjectField(document, "voice"));
  CLOZIT_ASSIGN_OR_RETURN(book.voice_per_1k_characters, Money(*voice, "voice", "per_1k_characters"));
  CLOZIT_ASSIGN_OR_RETURN(const json* campaign, ObjectField(document, "campaign"));
  CLOZIT_ASSIGN_OR_RETURN(book.campaign_per_dial_attempt, Money(*campaign, "campaign", "per_dial_attempt"));

  CLOZIT_ASSIGN_OR_RETURN(const json* numbers, ArrayField(document, "numbers"));
  seen.clear();
  for (size_t i = 0; i < numbers->size(); ++i) {
    const json& entry = numbers->at(i);
    const std::string path = "numbers[" + std::to_string(i) + "]";
    if (!entry.is_object()) return Error::InvalidArgument(path, path + " must be an object");
    NumberPrice price;
    CLOZIT_ASSIGN_OR_RETURN(price.country, Text(entry, path, "country", 2));
    if (price.country.size() != 2 ||
        !std::all_of(price.country.begin(), price.country.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
      return Error::InvalidArgument(path + ".country", "country must be an ISO 3166-1 alpha-2 code in upper case");
    }
    CLOZIT_ASSIGN_OR_RETURN(price.number_type, Text(entry, path, "number_type", 20));
    if (price.number_type != "local" && price.number_type != "toll_free" && price.number_type != "mobile") {
      return Error::InvalidArgument(path + ".number_type", "number_type must be local, toll_free or mobile");
    }
    if (!seen.insert(price.country + "/" + price.number_type).second) {
      return Error::InvalidArgument(path, "country and number type listed twice");
    }
    CLOZIT_ASSIGN_OR_RETURN(price.monthly, Money(entry, path, "monthly"));
    CLOZIT_ASSIGN_OR_RETURN(price.regulatory, Money(entry, path, "regulatory"));
    book.numbers.push_back(std::move(price));
  }

  CLOZIT_ASSIGN_OR_RETURN(const json* plans, ArrayField(document, "plans"));
  seen.clear();
  for (size_t i = 0; i < plans->size(); ++i) {
    const json& entry = plans->at(i);
    const std::string path = "plans[" + std::to_string(i) + "]";
    if (!entry.is_object()) return Error::InvalidArgument(path, path + " must be an object");
    PlanPrice plan;
    CLOZIT_ASSIGN_OR_RETURN(plan.code, Text(entry, path, "code", 50));
    if (!Slug(plan.code)) return Error::InvalidArgument(path + ".code", "plan codes are lower-case slugs");
    if (!seen.insert(plan.code).second) return Error::InvalidArgument(path + ".code", "plan listed twice");
    CLOZIT_ASSIGN_OR_RETURN(plan.name, Text(entry, path, "name", 100));
    CLOZIT_ASSIGN_OR_RETURN(plan.price_per_cycle, Money(entry, path, "price_per_cycle"));
    CLOZIT_ASSIGN_OR_RETURN(plan.included_credits, Money(entry, path, "included_credits"));
    if (plan.price_per_cycle.micros() == 0) {
      return Error::InvalidArgument(path + ".price_per_cycle", "a plan's price must be positive");
    }
    book.plans.push_back(std::move(plan));
  }
  return book;
}

json PriceBookJson(const PriceBookContent& book) {
  json calls = json::array();
  for (const CallRate& rate : book.calls) {
    calls.push_back({{"destination_class", rate.destination_class},
                     {"per_minute", rate.per_minute.ToString()},
                     {"minimum_seconds", rate.minimum_seconds},
                     {"increment_seconds", rate.increment_seconds}});
  }
  json numbers = json::array();
  for (const NumberPrice& price : book.numbers) {
    numbers.push_back({{"country", price.country},
                       {"number_type", price.number_type},
                       {"monthly", price.monthly.ToString()},
                       {"regulatory", price.regulatory.ToString()}});
  }
  json plans = json::array();
  for (const PlanPrice& plan : book.plans) {
    plans.push_back({{"code", plan.code},
                     {"name", plan.name},
                     {"price_per_cycle", plan.price_per_cycle.ToString()},
                     {"included_credits", plan.included_credits.ToString()}});
  }
  return {{"calls", calls},
          {"ai",
           {{"per_conversation_minute", book.ai_per_conversation_minute.ToString()},
            {"per_1k_llm_tokens", book.ai_per_1k_llm_tokens.ToString()},
            {"per_stt_second", book.ai_per_stt_second.ToString()}}},
          {"voice", {{"per_1k_characters", book.voice_per_1k_characters.ToString()}}},
          {"campaign", {{"per_dial_attempt", book.campaign_per_dial_attempt.ToString()}}},
          {"numbers", numbers},
          {"plans", plans}};
}

std::string_view PriceBookStatusName(PriceBookStatus status) {
  return status == PriceBookStatus::kPublished ? "published" : "draft";
}

int64_t BilledSeconds(int64_t seconds, int64_t minimum_seconds, int64_t increment_seconds) {
  if (seconds <= 0) return 0;
  const int64_t increment = std::max<int64_t>(1, increment_seconds);
  const int64_t rounded = (seconds + increment - 1) / increment * increment;
  return std::max(minimum_seconds, rounded);
}

Result<Credits> PriceUnits(Credits rate, int64_t quantity, int64_t per) {
  if (quantity < 0 || per <= 0) return Error::InvalidArgument("quantity", "quantities must not be negative");
  const __int128 scaled = static_cast<__int128>(rate.micros()) * quantity;
  const __int128 micros = (scaled + per - 1) / per;  // rounded up: a started unit is billed
  if (micros > INT64_MAX) return Error::InvalidArgument("quantity", "the amount is out of range");
  return Credits::FromMicros(static_cast<int64_t>(micros));
}

Result<PriceQuote> QuoteWith(const PriceBookContent& book, int64_t version, const UsageQuantities& usage) {
  for (int64_t quantity : {usage.call_seconds, usage.conversation_seconds, usage.llm_tokens, usage.stt_seconds,
                           usage.tts_characters, usage.dial_attempts}) {
    if (quantity < 0 || quantity > kMaxQuantity) {
      return Error::InvalidArgument("usage", "usage quantities must be between 0 and 2^40");
    }
  }
  PriceQuote quote;
  quote.price_version = version;
  Credits calls;
  if (usage.call_seconds > 0) {
    const CallRate* rate = book.FindCall(usage.destination_class);
    if (rate == nullptr) {
      return Error::Make(ErrorCode::kInvalidArgument,
                         "price book version " + std::to_string(version) + " has no rate for destination class \"" +
                             usage.destination_class + "\"",
                         "destination_class");
    }
    quote.billed_call_seconds = BilledSeconds(usage.call_seconds, rate->minimum_seconds, rate->increment_seconds);
    CLOZIT_ASSIGN_OR_RETURN(calls, PriceUnits(rate->per_minute, quote.billed_call_seconds, 60));
  }
  CLOZIT_ASSIGN_OR_RETURN(Credits conversation,
                          PriceUnits(book.ai_per_conversation_minute, usage.conversation_seconds, 60));
  CLOZIT_ASSIGN_OR_RETURN(Credits tokens, PriceUnits(book.ai_per_1k_llm_tokens, usage.llm_tokens, 1000));
  CLOZIT_ASSIGN_OR_RETURN(Credits stt, PriceUnits(book.ai_per_stt_second, usage.stt_seconds, 1));
  CLOZIT_ASSIGN_OR_RETURN(Credits ai, conversation.Add(tokens));
  CLOZIT_ASSIGN_OR_RETURN(ai, ai.Add(stt));
  CLOZIT_ASSIGN_OR_RETURN(Credits voice, PriceUnits(book.voice_per_1k_characters, usage.tts_characters, 1000));
  CLOZIT_ASSIGN_OR_RETURN(Credits campaign, PriceUnits(book.campaign_per_dial_attempt, usage.dial_attempts, 1));
  for (auto [category, amount] :
       {std::pair{UsageCategory::kCallMinutes, calls}, std::pair{UsageCategory::kAiProcessing, ai},
        std::pair{UsageCategory::kVoiceGeneration, voice}, std::pair{UsageCategory::kCampaignExecution, campaign}}) {
    if (amount.micros() == 0) continue;
    quote.items.push_back({category, amount});
    CLOZIT_ASSIGN_OR_RETURN(quote.total, quote.total.Add(amount));
  }
  return quote;
}

Result<PriceBookVersion> PriceBook::Effective(Tx& tx, TimePoint at) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          tx.Query(std::string(kSelectVersion) + "WHERE status = 'published' AND effective_from <= $1 "
                                                                 "ORDER BY effective_from DESC, version DESC LIMIT 1",
                                   {detail::Ms(at)}));
  if (rows.empty()) return Error::Make(ErrorCode::kUnavailable, "no price book is in effect");
  return VersionFrom(rows.front());
}

Result<PriceBookVersion> PriceBook::Effective(TimePoint at) {
  PriceBookVersion result;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(result, Effective(tx, at));
    return Ok();
  }));
  return result;
}

Result<PriceBookVersion> PriceBook::Get(int64_t version) {
  PriceBookVersion result;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(result, RequireVersion(tx, version));
    return Ok();
  }));
  return result;
}

Result<Page<PriceBookVersion>> PriceBook::List(const PageRequest& page) {
  int64_t before = INT64_MAX;
  if (!page.cursor.empty()) {
    before = 0;
    for (char c : page.cursor) {
      if (c < '0' || c > '9' || before > INT64_MAX / 10 - 10)
        return Error::InvalidArgument("cursor", "malformed cursor");
      before = before * 10 + (c - '0');
    }
  }
  Page<PriceBookVersion> out;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    out = {};
    CLOZIT_ASSIGN_OR_RETURN(auto rows,
                            tx.Query(std::string(kSelectVersion) + "WHERE version < $1 ORDER BY version DESC LIMIT $2",
                                     {before, page.limit + 1}));
    for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
      CLOZIT_ASSIGN_OR_RETURN(auto version, VersionFrom(rows[i]));
      out.items.push_back(std::move(version));
    }
    if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = std::to_string(out.items.back().version);
    return Ok();
  }));
  return out;
}

Result<PriceBookVersion> PriceBook::CreateDraft(const PriceBookContent& content, const std::string& note,
                                                const privacy::Actor& actor) {
  if (note.size() > 1000) return Error::InvalidArgument("note", "note must be at most 1000 characters");
  const std::string document = PriceBookJson(content).dump();
  PriceBookVersion result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = clock_.Now();
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT COALESCE(MAX(version), 0) + 1 FROM billing_price_books"));
    const int64_t version = rows.front().Int(0);
    CLOZIT_TRY(
        tx.Exec("INSERT INTO billing_price_books (version, status, note, document, created_by, created_at) "
                "VALUES ($1, 'draft', $2, $3, $4, $5)",
                {version, note, document, actor.Label(), detail::Ms(now)}));
    CLOZIT_TRY(audit_.Record(tx, actor,
                             {"price_book.create", "price_book", std::to_string(version),
                              json{{"version", version}, {"note", note}}.dump()}));
    CLOZIT_ASSIGN_OR_RETURN(result, RequireVersion(tx, version));
    return Ok();
  }));
  return result;
}

Result<PriceBookVersion> PriceBook::Publish(int64_t version, std::optional<TimePoint> effective_from,
                                            const privacy::Actor& actor) {
  PriceBookVersion result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    const TimePoint now = detail::Truncate(clock_.Now());
    CLOZIT_ASSIGN_OR_RETURN(PriceBookVersion stored, RequireVersion(tx, version));
    if (stored.status == PriceBookStatus::kPublished) {
      return Error::Make(ErrorCode::kConflict, "price book version " + std::to_string(version) +
                                                   " is already published (effective from " +
                                                   FormatRfc3339(*stored.effective_from) + ")");
    }
    // Never back-dated: a charge already made must keep the version it was priced with.
    const TimePoint from = effective_from ? detail::Truncate(*effective_from) : now;
    if (from < now) return Error::InvalidArgument("effective_from", "effective_from must not be in the past");
    CLOZIT_TRY(
        tx.Exec("UPDATE billing_price_books SET status = 'published', effective_from = $2, published_by = $3, "
                "published_at = $4 WHERE version = $1 AND status = 'draft'",
                {version, detail::Ms(from), actor.Label(), detail::Ms(now)}));
    CLOZIT_TRY(audit_.Record(tx, actor,
                             {"price_book.publish", "price_book", std::to_string(version),
                              json{{"version", version}, {"effective_from", FormatRfc3339(from)}}.dump()}));
    CLOZIT_ASSIGN_OR_RETURN(result, RequireVersion(tx, version));
    return Ok();
  }));
  return result;
}

Result<PriceQuote> PriceBook::Quote(const UsageQuantities& usage, TimePoint at) {
  CLOZIT_ASSIGN_OR_RETURN(PriceBookVersion book, Effective(at));
  return QuoteWith(book.content, book.version, usage);
}

Result<NumberFeeQuote> PriceBook::NumberFees(Tx& tx, const std::string& country, const std::string& number_type,
                                             TimePoint at) {
  CLOZIT_ASSIGN_OR_RETURN(PriceBookVersion book, Effective(tx, at));
  const NumberPrice* price = book.content.FindNumber(country, number_type);
  if (price == nullptr) {
    return Error::Make(ErrorCode::kNotFound,
                       "price book version " + std::to_string(book.version) + " has no price for " + number_type +
                           " numbers in " + country,
                       "country");
  }
  return NumberFeeQuote{price->monthly, price->regulatory, book.version};
}

}  // namespace clozit::billing
