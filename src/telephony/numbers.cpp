#include "telephony/numbers.hpp"

#include <regex>

#include "telephony/detail/values.hpp"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/phone_number.hpp"

namespace clozit::telephony {
namespace {

using detail::IsE164;
using detail::OptionalTime;

constexpr std::string_view kNumberSelect =
    "SELECT id, tenant_id, account_id, provider, provider_number_id, e164, country, number_type, capabilities, "
    "source, status, error_code, purchased_at, next_fee_at, released_at, created_at, updated_at "
    "FROM telephony_numbers ";

storage::Value Millis(const std::optional<TimePoint>& at) {
  return at ? storage::Value(ToUnixMillis(*at)) : storage::Value(nullptr);
}

PhoneNumber NumberFromRow(const storage::Row& row) {
  PhoneNumber number;
  number.id = PhoneNumberId(row.Text(0));
  number.tenant_id = row.Text(1);
  number.account_id = row.Text(2);
  number.provider = row.Text(3) == "telnyx" ? ProviderKind::kTelnyx : ProviderKind::kTwilio;
  number.provider_number_id = row.Text(4);
  number.e164 = row.Text(5);
  number.country = row.Text(6);
  number.number_type = row.Text(7);
  auto capabilities = nlohmann::json::parse(row.Text(8), nullptr, false);
  if (capabilities.is_array()) {
    for (const auto& capability : capabilities) {
      if (capability.is_string()) number.capabilities.push_back(capability.get<std::string>());
    }
  }
  number.source = row.Text(9);
  number.status = row.Text(10);
  number.error_code = row.Text(11);
  number.purchased_at = OptionalTime(row, 12);
  number.next_fee_at = OptionalTime(row, 13);
  number.released_at = OptionalTime(row, 14);
  number.created_at = FromUnixMillis(row.Int(15));
  number.updated_at = FromUnixMillis(row.Int(16));
  return number;
}

// The region libphonenumber assigns; emulator and test inventories use 555 numbers it calls invalid, which are
// still NANP, hence the fallback.
std::string CountryOf(const std::string& e164) {
  auto parsed = ParsePhoneNumber(e164, "US", "phone_number");
  if (parsed && !parsed->region.empty()) return parsed->region;
  return e164.starts_with("+1") ? "US" : "";
}

// The capabilities Clozit requires of every number it buys or imports (searches ask for voice).
constexpr const char* kCapabilities = R"(["voice"])";

}  // namespace

std::string NumberTypeOf(const std::string& e164) {
  static const std::regex toll_free(R"(\+18(00|33|44|55|66|77|88)[0-9]{7})");
  return std::regex_match(e164, toll_free) ? "toll_free" : "local";
}

PhoneNumbers::PhoneNumbers(storage::Database& db, ProviderAccounts& accounts, billing::NumberFees* fees,
                           privacy::AuditLog& audit, const Clock& clock, Random& random)
    : db_(db), accounts_(accounts), fees_(fees), audit_(audit), clock_(clock), random_(random) {}

Result<ProviderAccount> PhoneNumbers::AccountFor(const std::string& tenant_id, const std::string& account_id) {
  if (account_id.empty()) return accounts_.ForTenant(tenant_id);
  auto found = accounts_.Find(account_id);
  if (!found || (!found->tenant_id.empty() && found->tenant_id != tenant_id)) {
    return Error::Make(ErrorCode::kNotFound, "no such provider account", "account_id");
  }
  return found;
}

Result<std::vector<AvailableNumber>> PhoneNumbers::Search(const std::string& tenant_id,
                                                          const NumberSearchInput& input) {
  static const std::regex country(R"([A-Z]{2})");
  static const std::regex digits(R"([0-9]{0,10})");
  if (!std::regex_match(input.country, country)) {
    return Error::InvalidArgument("country", "country must be an ISO 3166-1 alpha-2 code such as US");
  }
  if (!std::regex_match(input.area_code, digits))
    return Error::InvalidArgument("area_code", "area_code must be digits");
  if (!std::regex_match(input.contains, digits)) return Error::InvalidArgument("contains", "contains must be digits");
  if (input.limit < 1 || input.limit > 50) return Error::InvalidArgument("limit", "limit must be between 1 and 50");
  CLOZIT_ASSIGN_OR_RETURN(auto account, AccountFor(tenant_id, input.account_id));
  CLOZIT_ASSIGN_OR_RETURN(auto provider, accounts_.ProviderFor(account));
  return provider->SearchNumbers({input.country, input.area_code, input.contains, input.limit});
}

Result<PhoneNumber> PhoneNumbers::Buy(const std::string& tenant_id, const BuyNumberInput& input,
                                      const privacy::Actor& actor) {
  if (!IsE164(input.phone_number)) {
    return Error::InvalidArgument("phone_number", "phone_number must be an E.164 number from a search");
  }
  if (fees_ == nullptr)
    return Error::Make(ErrorCode::kUnavailable, "billing is not configured: numbers cannot be bought");
  const std::string country = CountryOf(input.phone_number);
  if (country.empty()) return Error::InvalidArgument("phone_number", "phone_number has no known country");
  CLOZIT_ASSIGN_OR_RETURN(auto account, AccountFor(tenant_id, input.account_id));
  CLOZIT_ASSIGN_OR_RETURN(auto provider, accounts_.ProviderFor(account));

  const PhoneNumberId id = PhoneNumberId::New(clock_, random_);
  const int64_t now = ToUnixMillis(clock_.Now());
  const std::string type = NumberTypeOf(input.phone_number);
  // The row first, so a charge never exists without the number it pays for.
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    auto inserted = tx.Exec(
        "INSERT INTO telephony_numbers (id, tenant_id, account_id, provider, e164, country, number_type, "
        "capabilities, source, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'purchased', "
        "'purchasing', $9, $9)",
        {id.str(), tenant_id, account.id.str(), std::string(ProviderName(account.provider)), input.phone_number,
         country, type, std::string(kCapabilities), now});
    if (!inserted && inserted.error().code == ErrorCode::kAlreadyExists) {
      return Error::Make(ErrorCode::kConflict, "this number is already held", "phone_number");
    }
    return inserted ? Ok() : Result<void>(inserted.error());
  }));
  auto forget = [&]() {
    return db_.Write([&](storage::Tx& tx) -> Result<void> {
      CLOZIT_TRY(tx.Exec("DELETE FROM telephony_numbers WHERE id = $1 AND status = 'purchasing'", {id.str()}));
      return Ok();
    });
  };

  billing::NumberPurchase purchase{TenantId(tenant_id),
                                   id.str(),
                                   input.phone_number,
                                   country,
                                   type,
                                   input.idempotency_key.empty() ? id.str() : input.idempotency_key};
  auto holding = fees_->ChargeNumberPurchase(purchase);
  if (!holding) {
    // Refused: nothing was charged, and a leftover row would only block a retry until cleaned up. Unavailable may
    // be a charge that committed and lost its answer: the row stays `purchasing` for SweepPurchasing, which aborts
    // the charge if there is one (the carrier was never asked) or else deletes the row.
    if (holding.error().code != ErrorCode::kUnavailable) (void)forget();
    return holding.error();
  }

  auto bought = provider->BuyNumber(input.phone_number);
  if (!bought && bought.error().code == ErrorCode::kUnavailable) {
    // The carrier may have bought it and lost its answer: its number list says. Unknown either way, the charge
    // and the `purchasing` row stay for SweepPurchasing rather than refund a number the tenant may hold.
    auto held = provider->FindNumber(input.phone_number);
    if (!held) {
      spdlog::warn("number {}: the carrier's answer to the purchase was lost and its number list is unavailable",
                   id.str());
      return bought.error();
    }
    if (*held) bought = **held;
  }
  // What the row says so far; the steps below only need who holds what.
  PhoneNumber number;
  number.id = id;
  number.tenant_id = tenant_id;
  number.account_id = account.id.str();
  number.provider = account.provider;
  if (!bought) {
    CLOZIT_TRY(FailPurchase(number, bought.error().code));
    return bought.error();
  }
  CLOZIT_TRY(Activate(number, bought->id, *holding, actor));
  return Get(tenant_id, id.str());
}

Result<void> PhoneNumbers::Activate(const PhoneNumber& number, const std::string& provider_number_id,
                                    const billing::NumberHolding& holding, const privacy::Actor& actor) {
  return db_.Write([&](storage::Tx& tx) -> Result<void> {
    // Only from `purchasing`: a sweep on another node may have settled it first, and its audit entry is the one.
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t updated,
        tx.Exec("UPDATE telephony_numbers SET status = 'active', provider_number_id = $2, purchased_at = $3, "
                "next_fee_at = $4, updated_at = $5 WHERE id = $1 AND status = 'purchasing'",
                {number.id.str(), provider_number_id, ToUnixMillis(holding.purchased_at), Millis(holding.next_fee_at),
                 ToUnixMillis(clock_.Now())}));
    if (updated == 0) return Ok();
    nlohmann::json details = {{"account_id", number.account_id}, {"provider", ProviderName(number.provider)}};
    return audit_.Record(tx, actor, {"phone_number.buy", "phone_number", number.id.str(), details.dump()},
                         number.tenant_id);
  });
}

Result<void> PhoneNumbers::FailPurchase(const PhoneNumber& number, ErrorCode why) {
  auto aborted = fees_->AbortNumberPurchase(TenantId(number.tenant_id), number.id.str());
  if (!aborted) {
    // The number stays `purchasing` with its charge; SweepPurchasing tries again. Logged by id only.
    spdlog::error("number {}: the carrier does not hold it and the fee charge could not be aborted: {}",
                  number.id.str(), aborted.error().message);
    return aborted.error();
  }
  return db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(
        tx.Exec("UPDATE telephony_numbers SET status = 'failed', error_code = $2, updated_at = $3 "
                "WHERE id = $1 AND status = 'purchasing'",
                {number.id.str(), std::string(CodeName(why)), ToUnixMillis(clock_.Now())}));
    return Ok();
  });
}

Result<PhoneNumber> PhoneNumbers::Import(const std::string& tenant_id, const std::string& phone_number,
                                         const std::string& account_id, const privacy::Actor& actor) {
  if (!IsE164(phone_number)) return Error::InvalidArgument("phone_number", "phone_number must be an E.164 number");
  if (account_id.empty()) {
    return Error::InvalidArgument("account_id", "account_id (the tenant's own provider account) is required");
  }
  auto account = accounts_.Find(account_id);
  // Platform numbers are bought, not imported: only the tenant's own accounts qualify.
  if (!account || account->tenant_id != tenant_id) {
    return Error::Make(ErrorCode::kNotFound, "no such provider account", "account_id");
  }
  CLOZIT_ASSIGN_OR_RETURN(auto provider, accounts_.ProviderFor(*account));
  CLOZIT_ASSIGN_OR_RETURN(auto held, provider->FindNumber(phone_number));
  if (!held) {
    return Error::Make(ErrorCode::kNotFound, "the carrier account does not hold this number", "phone_number");
  }
  const PhoneNumberId id = PhoneNumberId::New(clock_, random_);
  const int64_t now = ToUnixMillis(clock_.Now());
  const std::string country = CountryOf(phone_number);
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    auto inserted = tx.Exec(
        "INSERT INTO telephony_numbers (id, tenant_id, account_id, provider, provider_number_id, e164, country, "
        "number_type, capabilities, source, status, purchased_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, "
        "$6, $7, $8, $9, 'imported', 'active', NULL, $10, $10)",
        {id.str(), tenant_id, account->id.str(), std::string(ProviderName(account->provider)), held->id, phone_number,
         country, NumberTypeOf(phone_number), std::string(kCapabilities), now});
    if (!inserted && inserted.error().code == ErrorCode::kAlreadyExists) {
      return Error::Make(ErrorCode::kConflict, "this number is already held", "phone_number");
    }
    CLOZIT_TRY(inserted);
    return audit_.Record(tx, actor, {"phone_number.import", "phone_number", id.str(), "{}"}, tenant_id);
  }));
  return Get(tenant_id, id.str());
}

Result<Page<PhoneNumber>> PhoneNumbers::List(const std::string& tenant_id, const std::string& status,
                                             const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string(kNumberSelect) + "WHERE tenant_id = $1 AND ($2 = '' OR status = $2) AND "
                                                        "($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4",
                           {tenant_id, status, page.cursor, page.limit + 1}));
  Page<PhoneNumber> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
    out.items.push_back(NumberFromRow(rows[i]));
  }
  if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
  return out;
}

Result<PhoneNumber> PhoneNumbers::Get(const std::string& tenant_id, const std::string& id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          db_.Query(std::string(kNumberSelect) + "WHERE tenant_id = $1 AND id = $2", {tenant_id, id}));
  if (rows.empty()) return Error::NotFound("no such phone number");
  return NumberFromRow(rows[0]);
}

Result<PhoneNumber> PhoneNumbers::Release(const std::string& tenant_id, const std::string& id,
                                          const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(auto number, Get(tenant_id, id));
  if (number.status != "active") {
    return Error::Make(ErrorCode::kConflict,
                       "only an active number can be released (this one is " + number.status + ")");
  }
  return FinishRelease(number, actor);
}

Result<PhoneNumber> PhoneNumbers::FinishRelease(const PhoneNumber& number, const privacy::Actor& actor) {
  if (number.source == "purchased") {
    CLOZIT_ASSIGN_OR_RETURN(auto account, accounts_.Find(number.account_id));
    CLOZIT_ASSIGN_OR_RETURN(auto provider, accounts_.ProviderFor(account));
    auto released = provider->ReleaseNumber(number.provider_number_id);
    if (!released && released.error().code == ErrorCode::kUnavailable) {
      // The carrier may have released it and lost its answer; left active here, its fees would go on being
      // charged for a number the tenant no longer holds.
      auto held = provider->FindNumber(number.e164);
      if (held && !*held) released = Ok();
    }
    // Already gone at the carrier is what we wanted.
    if (!released && released.error().code != ErrorCode::kNotFound) return released.error();
    if (fees_ == nullptr) return Error::Make(ErrorCode::kUnavailable, "billing is not configured");
    CLOZIT_TRY(fees_->ReleaseNumber(TenantId(number.tenant_id), number.id.str()));
  }
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    const int64_t now = ToUnixMillis(clock_.Now());
    CLOZIT_TRY(
        tx.Exec("UPDATE telephony_numbers SET status = 'released', released_at = $2, next_fee_at = NULL, "
                "updated_at = $2 WHERE id = $1",
                {number.id.str(), now}));
    CLOZIT_TRY(tx.Exec("DELETE FROM telephony_caller_id_pool_numbers WHERE number_id = $1", {number.id.str()}));
    return audit_.Record(tx, actor, {"phone_number.release", "phone_number", number.id.str(), "{}"}, number.tenant_id);
  }));
  return Get(number.tenant_id, number.id.str());
}

Result<int64_t> PhoneNumbers::ReleaseDue(int64_t limit) {
  if (fees_ == nullptr) return int64_t{0};
  CLOZIT_ASSIGN_OR_RETURN(auto due, fees_->ReleaseDue(limit));
  privacy::Actor system{"system", "number-release-job", "", "local", "job"};
  int64_t released = 0;
  for (const auto& holding : due) {
    auto number = Get(holding.tenant_id.str(), holding.number_id);
    if (!number) {
      spdlog::warn("number release job: {} is flagged by billing but unknown here", holding.number_id);
      continue;
    }
    if (number->status != "active") continue;
    system.tenant_id = number->tenant_id;
    auto done = FinishRelease(*number, system);
    if (!done) {
      // Retried on the next run: billing keeps it flagged until ReleaseNumber succeeds.
      spdlog::warn("number release job: {} not released yet: {}", holding.number_id, done.error().message);
      continue;
    }
    ++released;
  }
  return released;
}

Result<int64_t> PhoneNumbers::SweepPurchasing(std::chrono::milliseconds grace, int64_t limit) {
  if (fees_ == nullptr) return int64_t{0};
  // Buy holds a row `purchasing` for as long as its carrier requests take (seconds); past the grace nobody does.
  const int64_t before = ToUnixMillis(clock_.Now()) - grace.count();
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string(kNumberSelect) + "WHERE status = 'purchasing' AND source = 'purchased' AND "
                                                        "updated_at <= $1 ORDER BY id LIMIT $2",
                           {before, limit}));
  privacy::Actor system{"system", "number-purchase-sweep", "", "local", "job"};
  int64_t settled = 0;
  for (const auto& row : rows) {
    const PhoneNumber number = NumberFromRow(row);
    auto holding = fees_->GetHolding(TenantId(number.tenant_id), number.id.str());
    if (!holding && holding.error().code == ErrorCode::kNotFound) {
      // Buy asks the carrier only after the charge: no charge, so the carrier was never asked.
      auto deleted = db_.Write([&](storage::Tx& tx) -> Result<void> {
        CLOZIT_TRY(tx.Exec("DELETE FROM telephony_numbers WHERE id = $1 AND status = 'purchasing'", {number.id.str()}));
        return Ok();
      });
      if (deleted) ++settled;
      continue;
    }
    if (!holding) continue;
    auto account = accounts_.Find(number.account_id);
    if (!account) continue;
    auto provider = accounts_.ProviderFor(*account);
    if (!provider) continue;
    auto held = (*provider)->FindNumber(number.e164);
    if (!held) {
      spdlog::warn("number purchase sweep: {} not settled, the carrier's number list is unavailable: {}",
                   number.id.str(), held.error().message);
      continue;
    }
    Result<void> done = Ok();
    if (!*held) {
      done = FailPurchase(number, ErrorCode::kUnavailable);
    } else if (holding->status == billing::HoldingStatus::kAborted) {
      // Its charge was already returned, yet the carrier holds it: only an operator can say who pays for it.
      spdlog::error("number {}: held at the carrier but its purchase charge was aborted", number.id.str());
      continue;
    } else {
      system.tenant_id = number.tenant_id;
      done = Activate(number, (*held)->id, *holding, system);
    }
    if (!done) {
      spdlog::warn("number purchase sweep: {} not settled: {}", number.id.str(), done.error().message);
      continue;
    }
    ++settled;
  }
  return settled;
}

// ---- caller-id pools

Result<CallerIdPool> PhoneNumbers::CreatePool(const std::string& tenant_id, const std::string& name,
                                              const privacy::Actor& actor) {
  if (name.empty() || name.size() > 100) return Error::InvalidArgument("name", "name is required (at most 100 chars)");
  const CallerIdPoolId id = CallerIdPoolId::New(clock_, random_);
  const int64_t now = ToUnixMillis(clock_.Now());
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(int64_t inserted,
                            tx.Exec("INSERT INTO telephony_caller_id_pools (id, tenant_id, name, created_at, "
                                    "updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, name) DO NOTHING",
                                    {id.str(), tenant_id, name, now}));
    if (inserted == 0) return Error::Make(ErrorCode::kConflict, "a pool with this name exists", "name");
    return audit_.Record(tx, actor, {"caller_id_pool.create", "caller_id_pool", id.str(), "{}"}, tenant_id);
  }));
  return GetPool(tenant_id, id.str());
}

Result<Page<CallerIdPool>> PhoneNumbers::ListPools(const std::string& tenant_id, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT id FROM telephony_caller_id_pools WHERE tenant_id = $1 AND "
                                               "($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
                                               {tenant_id, page.cursor, page.limit + 1}));
  Page<CallerIdPool> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
    CLOZIT_ASSIGN_OR_RETURN(auto pool, GetPool(tenant_id, rows[i].Text(0)));
    out.items.push_back(std::move(pool));
  }
  if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
  return out;
}

Result<CallerIdPool> PhoneNumbers::GetPool(const std::string& tenant_id, const std::string& id) {
  CallerIdPool pool;
  CLOZIT_TRY(db_.Read([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT id, tenant_id, name, created_at, updated_at FROM "
                                                "telephony_caller_id_pools WHERE tenant_id = $1 AND id = $2",
                                                {tenant_id, id}));
    if (rows.empty()) return Error::NotFound("no such caller-id pool");
    pool.id = CallerIdPoolId(rows[0].Text(0));
    pool.tenant_id = rows[0].Text(1);
    pool.name = rows[0].Text(2);
    pool.created_at = FromUnixMillis(rows[0].Int(3));
    pool.updated_at = FromUnixMillis(rows[0].Int(4));
    CLOZIT_ASSIGN_OR_RETURN(auto members, tx.Query("SELECT number_id FROM telephony_caller_id_pool_numbers WHERE "
                                                   "pool_id = $1 ORDER BY number_id",
                                                   {id}));
    pool.number_ids.clear();
    for (const auto& member : members) pool.number_ids.push_back(member.Text(0));
    return Ok();
  }));
  return pool;
}

Result<void> PhoneNumbers::DeletePool(const std::string& tenant_id, const std::string& id,
                                      const privacy::Actor& actor) {
  return db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT id FROM telephony_caller_id_pools WHERE tenant_id = $1 AND "
                                                "id = $2",
                                                {tenant_id, id}));
    if (rows.empty()) return Error::NotFound("no such caller-id pool");
    CLOZIT_TRY(tx.Exec("DELETE FROM telephony_caller_id_pool_numbers WHERE pool_id = $1", {id}));
    CLOZIT_TRY(tx.Exec("DELETE FROM telephony_caller_id_pools WHERE id = $1", {id}));
    return audit_.Record(tx, actor, {"caller_id_pool.delete", "caller_id_pool", id, "{}"}, tenant_id);
  });
}

Result<CallerIdPool> PhoneNumbers::AddToPool(const std::string& tenant_id, const std::string& pool_id,
                                             const std::string& number_id, const privacy::Actor& actor) {
  const int64_t now = ToUnixMillis(clock_.Now());
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto pools, tx.Query("SELECT id FROM telephony_caller_id_pools WHERE tenant_id = $1 AND "
                                                 "id = $2",
                                                 {tenant_id, pool_id}));
    if (pools.empty()) return Error::NotFound("no such caller-id pool");
    CLOZIT_ASSIGN_OR_RETURN(auto numbers, tx.Query("SELECT status FROM telephony_numbers WHERE tenant_id = $1 AND "
                                                   "id = $2",
                                                   {tenant_id, number_id}));
    if (numbers.empty()) return Error::Make(ErrorCode::kNotFound, "no such phone number", "number_id");
    if (numbers[0].Text(0) != "active") {
      return Error::Make(ErrorCode::kConflict, "only active numbers can present caller id", "number_id");
    }
    CLOZIT_TRY(
        tx.Exec("INSERT INTO telephony_caller_id_pool_numbers (pool_id, number_id, tenant_id, last_used_at, "
                "added_at) VALUES ($1, $2, $3, 0, $4) ON CONFLICT (pool_id, number_id) DO NOTHING",
                {pool_id, number_id, tenant_id, now}));
    CLOZIT_TRY(tx.Exec("UPDATE telephony_caller_id_pools SET updated_at = $2 WHERE id = $1", {pool_id, now}));
    nlohmann::json details = {{"number_id", number_id}};
    return audit_.Record(tx, actor, {"caller_id_pool.add_number", "caller_id_pool", pool_id, details.dump()},
                         tenant_id);
  }));
  return GetPool(tenant_id, pool_id);
}

Result<CallerIdPool> PhoneNumbers::RemoveFromPool(const std::string& tenant_id, const std::string& pool_id,
                                                  const std::string& number_id, const privacy::Actor& actor) {
  const int64_t now = ToUnixMillis(clock_.Now());
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(int64_t removed,
                            tx.Exec("DELETE FROM telephony_caller_id_pool_numbers WHERE tenant_id = $1 AND "
                                    "pool_id = $2 AND number_id = $3",
                                    {tenant_id, pool_id, number_id}));
    if (removed == 0) return Error::NotFound("no such number in this caller-id pool");
    CLOZIT_TRY(tx.Exec("UPDATE telephony_caller_id_pools SET updated_at = $2 WHERE id = $1", {pool_id, now}));
    nlohmann::json details = {{"number_id", number_id}};
    return audit_.Record(tx, actor, {"caller_id_pool.remove_number", "caller_id_pool", pool_id, details.dump()},
                         tenant_id);
  }));
  return GetPool(tenant_id, pool_id);
}

Result<CallerId> PhoneNumbers::PickFromPool(const std::string& tenant_id, const std::string& pool_id) {
  CallerId picked;
  const int64_t now = ToUnixMillis(clock_.Now());
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(
        auto rows, tx.Query("SELECT n.id, n.e164, n.account_id FROM telephony_caller_id_pool_numbers m JOIN "
                            "telephony_numbers n ON n.id = m.number_id JOIN telephony_caller_id_pools p ON p.id = "
                            "m.pool_id WHERE p.tenant_id = $1 AND m.pool_id = $2 AND n.status = 'active' ORDER BY "
                            "m.last_used_at, n.id LIMIT 1",
                            {tenant_id, pool_id}));
    if (rows.empty()) {
      return Error::Make(ErrorCode::kNotFound, "no such caller-id pool, or it has no active number", "from_pool_id");
    }
    picked.e164 = rows[0].Text(1);
    picked.account_id = rows[0].Text(2);
    CLOZIT_TRY(
        tx.Exec("UPDATE telephony_caller_id_pool_numbers SET last_used_at = $3 WHERE pool_id = $1 AND "
                "number_id = $2",
                {pool_id, rows[0].Text(0), now}));
    return Ok();
  }));
  return picked;
}

}  // namespace clozit::telephony
