#include "billing/charging.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <set>
#include <string>
#include <utility>
#include <variant>

#include "billing/detail/committed_facts.hpp"
#include "billing/detail/store.hpp"
#include "billing/statements.hpp"

namespace clozit::billing {
namespace detail {

// Reservation views as Reserve returned them, by reservation id.
class OpenReservations : public CommittedFacts<Reservation> {
 public:
  OpenReservations() : CommittedFacts<Reservation>(kCapacity) {}

 private:
  static constexpr size_t kCapacity = 20'000;  // as OpenPendings
};

}  // namespace detail
namespace {

using storage::Row;
using storage::Tx;

constexpr size_t kMaxText = 200;

// A reservation as stored, with the state of its current hold.
struct Stored {
  Reservation view;
  Credits estimate;            // as first requested
  TimePoint first_expires_at;  // as first requested
  int64_t version = 0;
  PendingState hold_state = PendingState::kPending;
  std::string resolved_by;
  // Read only when asked (LoadReservation's `balance_of`): the tenant's balance and settings as they were
  // before this write.
  std::optional<BalanceWatch> balance;
};

constexpr std::string_view kReservationColumns =
    "SELECT r.id, r.tenant_id, r.purpose, r.idempotency_key, r.estimate, r.first_expires_at, r.hold_transfer_id, "
    "r.version, r.created_at, h.amount, h.expires_at, p.state, p.resolved_by, r.price_version";
constexpr size_t kReservationColumnCount = 14;
constexpr std::string_view kReservationTables =
    " FROM billing_reservations r JOIN ledger_transfers h ON h.id = r.hold_transfer_id "
    "JOIN ledger_pending p ON p.transfer_id = r.hold_transfer_id ";

std::string UsageTransferId(const std::string& reservation_id, UsageCategory category) {
  return reservation_id + "/usage/" + std::string(UsageCategoryName(category));
}

std::string HoldTransferId(const std::string& reservation_id, int64_t version) {
  return reservation_id + "/hold/" + std::to_string(version);
}

// `balance_of`: a tenant whose balance and settings the same statement reads (a settle records balance events).
Result<std::optional<Stored>> LoadReservation(Tx& tx, std::string_view where, storage::Params params, TimePoint now,
                                              const std::string& balance_of = {}) {
  std::string sql(kReservationColumns);
  if (!balance_of.empty()) {
    params.emplace_back(TenantCreditsAccount(balance_of).id);
    sql += ", " + std::string(kBalanceWatchColumns) + std::string(kReservationTables) +
           "LEFT JOIN ledger_accounts a ON a.id = $" + std::to_string(params.size()) +
           " LEFT JOIN billing_balance_settings s ON s.tenant_id = r.tenant_id ";
  } else {
    sql += kReservationTables;
  }
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(sql + std::string(where), params));
  if (rows.empty()) return std::optional<Stored>();
  const Row& row = rows.front();
  Stored stored;
  if (!balance_of.empty() && !row.IsNull(kReservationColumnCount)) {
    stored.balance = BalanceWatchFromRow(row, kReservationColumnCount);
  }
  Reservation& view = stored.view;
  view.id = ReservationId(row.Text(0));
  view.tenant_id = TenantId(row.Text(1));
  view.purpose = row.Text(2);
  view.idempotency_key = row.Text(3);
  stored.estimate = Credits::FromMicros(row.Int(4));
  stored.first_expires_at = FromUnixMillis(row.Int(5));
  view.hold_transfer_id = row.Text(6);
  stored.version = row.Int(7);
  view.created_at = FromUnixMillis(row.Int(8));
  view.held = Credits::FromMicros(row.Int(9));
  view.expires_at = FromUnixMillis(row.Int(10));
  std::string state = row.Text(11);
  stored.resolved_by = row.Text(12);
  view.price_version = row.OptionalInt(13);
  if (state == "posted") {
    stored.hold_state = PendingState::kPosted;
    view.state = ReservationState::kSettled;
  } else if (state == "voided") {
    stored.hold_state = PendingState::kVoided;
    view.state = ReservationState::kVoided;
  } else if (state == "expired") {
    stored.hold_state = PendingState::kExpired;
    view.state = ReservationState::kExpired;
  } else {
    stored.hold_state = PendingState::kPending;
    // Past its expiry a hold can no longer be posted, even before the sweep releases it.
    view.state = view.expires_at <= now ? ReservationState::kExpired : ReservationState::kOpen;
  }
  if (view.state == ReservationState::kSettled) {
    CLOZIT_ASSIGN_OR_RETURN(auto posted, detail::FindTransfer(tx, stored.resolved_by));
    if (posted) view.charged = posted->amount;
    // Each item has its own id (UsageTransferId), read through the primary key: no index on references.
    storage::Params ids;
    std::string in;
    for (UsageCategory category : kUsageCategories) {
      ids.emplace_back(UsageTransferId(view.id.str(), category));
      in += (in.empty() ? "$" : ", $") + std::to_string(ids.size());
    }
    CLOZIT_ASSIGN_OR_RETURN(auto items,
                            tx.Query("SELECT id, amount FROM ledger_transfers WHERE id IN (" + in + ")", ids));
    for (size_t index = 0; index < kUsageCategories.size(); ++index) {
      for (const Row& item : items) {
        if (item.Text(0) == std::get<std::string>(ids[index])) {
          view.usage.push_back({kUsageCategories[index], Credits::FromMicros(item.Int(1))});
        }
      }
    }
  }
  return std::optional<Stored>(std::move(stored));
}

Result<std::optional<Stored>> LoadById(Tx& tx, const TenantId& tenant_id, const std::string& id, TimePoint now,
                                       bool with_balance = false) {
  return LoadReservation(tx, "WHERE r.id = $1 AND r.tenant_id = $2", {id, tenant_id.str()}, now,
                         with_balance ? tenant_id.str() : std::string());
}

Result<Stored> RequireById(Tx& tx, const TenantId& tenant_id, const std::string& id, TimePoint now,
                           bool with_balance = false) {
  CLOZIT_ASSIGN_OR_RETURN(auto stored, LoadById(tx, tenant_id, id, now, with_balance));
  if (!stored) return Error::NotFound("reservation " + id + " not found");
  return std::move(*stored);
}

// Names the request's own field in a refusal for want of credits.
Result<std::vector<Transfer>> InField(Result<std::vector<Transfer>> result, const char* field) {
  if (!result.ok() && result.error().code == ErrorCode::kInsufficientCredits) {
    Error error = result.error();
    error.field = field;
    return error;
  }
  return result;
}

Result<void> ValidateTenant(const TenantId& tenant_id) {
  if (!TenantId::Valid(tenant_id.str())) return Error::InvalidArgument("tenant_id", "not a tenant id");
  return Ok();
}

Result<void> ValidateKey(const std::string& key) {
  if (!detail::ValidKey(key)) {
    return Error::InvalidArgument("idempotency_key", "idempotency key must be 1-200 printable characters, no spaces");
  }
  return Ok();
}

Error StateConflict(const Reservation& view, std::string_view action) {
  std::string why;
  switch (view.state) {
    case ReservationState::kSettled:
      why = "was already settled";
      break;
    case ReservationState::kVoided:
      why = "was voided";
      break;
    case ReservationState::kExpired:
      why = "expired at " + FormatRfc3339(view.expires_at) + " and its credits were released";
      break;
    case ReservationState::kOpen:
      why = "is open";
      break;
  }
  return Error::Make(ErrorCode::kConflict,
                     "cannot " + std::string(action) + " reservation " + view.id.str() + ": it " + why);
}

// The outbox row that customer webhooks deliver (billing_events): a hold that lapsed gave its credits back
// without a settle, so the call it paid for may still need reconciling.
Result<void> RecordExpired(Tx& tx, const std::string& tenant, const std::string& reservation_id, Credits released,
                           TimePoint expired_at, TimePoint now, Random& random) {
  const std::string details =
      nlohmann::json{{"released", released.ToString()}, {"expired_at", FormatRfc3339(expired_at)}}.dump();
  return RecordBillingEvent(tx, tenant, "reservation.expired", reservation_id, details, now, random);
}

// One item per category with a non-zero amount, in category order.
Result<std::vector<UsageItem>> NormalizeUsage(const std::vector<UsageItem>& usage, Credits* total) {
  std::array<Credits, kUsageCategories.size()> sums{};
  *total = Credits();
  for (const UsageItem& item : usage) {
    if (item.amount.micros() < 0) return Error::InvalidArgument("usage", "usage amounts must not be negative");
    auto index = static_cast<size_t>(item.category);
    if (index >= sums.size()) return Error::InvalidArgument("usage", "unknown usage category");
    auto sum = sums[index].Add(item.amount);
    auto all = total->Add(item.amount);
    if (!sum || !all) return Error::InvalidArgument("usage", "usage amounts add up to more credits than can be held");
    sums[index] = *sum;
    *total = *all;
  }
  std::vector<UsageItem> normalized;
  for (UsageCategory category : kUsageCategories) {
    Credits amount = sums[static_cast<size_t>(category)];
    if (amount.micros() > 0) normalized.push_back({category, amount});
  }
  return normalized;
}

std::string UsageText(const std::vector<UsageItem>& usage) {
  std::string text;
  for (const UsageItem& item : usage) {
    if (!text.empty()) text += ", ";
    text += std::string(UsageCategoryName(item.category)) + " " + item.amount.ToString();
  }
  return text.empty() ? "nothing" : text;
}

}  // namespace

std::string_view ReservationStateName(ReservationState state) {
  switch (state) {
    case ReservationState::kOpen:
      return "open";
    case ReservationState::kSettled:
      return "settled";
    case ReservationState::kVoided:
      return "voided";
    case ReservationState::kExpired:
      return "expired";
  }
  return "unknown";
}

Charging::Charging(storage::Database& db, Ledger& ledger, privacy::AuditLog& audit, const Clock& clock, Random& random,
                   ChargingSettings settings)
    : db_(db),
      ledger_(ledger),
      audit_(audit),
      clock_(clock),
      random_(random),
      settings_(settings),
      open_(std::make_unique<detail::OpenReservations>()) {}

Charging::~Charging() = default;

Result<Reservation> Charging::Reserve(const ReserveRequest& request) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidateTenant(request.tenant_id));
  CLOZIT_TRY(ValidateKey(request.idempotency_key));
  if (request.estimate.micros() <= 0) return Error::InvalidArgument("estimate", "estimate must be positive");
  if (request.purpose.empty() || request.purpose.size() > kMaxText) {
    return Error::InvalidArgument("purpose", "purpose must be 1-200 characters");
  }
  const Error bad_expiry =
      Error::InvalidArgument("expires_at", "expiry must be in the future and within the longest hold");
  if (request.expires_at > now + settings_.max_hold) return bad_expiry;
  // A retry of a reservation made before its expiry passed gets that reservation back, not this error.
  const bool lapsed = request.expires_at <= now;
  const std::string tenant = request.tenant_id.str();
  Reservation result;
  CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
    // Optimistic (Tx::careful), the key is assumed new: a repeat fails the reservation's INSERT below, and
    // the careful run finds it here.
    std::optional<Stored> existing;
    if (tx.careful() || lapsed) {
      CLOZIT_ASSIGN_OR_RETURN(existing, LoadReservation(tx, "WHERE r.tenant_id = $1 AND r.idempotency_key = $2",
                                                        {tenant, request.idempotency_key}, now));
    }
    if (existing) {
      if (existing->estimate != request.estimate || existing->view.purpose != request.purpose ||
          existing->first_expires_at != detail::Truncate(request.expires_at)) {
        return Error::Make(ErrorCode::kIdempotencyMismatch,
                           "idempotency key " + request.idempotency_key +
                               " was used for a reservation with a different estimate, purpose or expiry",
                           "idempotency_key");
      }
      result = existing->view;
      return Ok();
    }
    if (lapsed) return bad_expiry;
    CLOZIT_ASSIGN_OR_RETURN(std::string holds, ledger_.EnsureAccount(tx, HoldsAccount(PlatformShard(tenant))));
    const std::string id = ReservationId::New(clock_, random_).str();
    TransferSpec hold;
    hold.id = HoldTransferId(id, 0);
    hold.kind = TransferKind::kPending;
    hold.debit_account_id = TenantCreditsAccount(tenant).id;
    hold.credit_account_id = holds;
    hold.amount = request.estimate;
    hold.expires_at = request.expires_at;
    hold.code = "reserve";
    hold.reference = id;
    auto held = ledger_.CreateTransfers(tx, {hold}, now);
    if (!held && held.error().code == ErrorCode::kNotFound && held.error().field == "debit_account_id") {
      // A tenant that was never granted credits has no account yet, and nothing to reserve.
      return Error::Make(ErrorCode::kInsufficientCredits,
                         "insufficient credits: 0 available, " + request.estimate.ToString() + " requested",
                         "estimate");
    }
    CLOZIT_TRY(InField(std::move(held), "estimate"));
    // The key was looked up above (when careful); only another node's reserve with the same key can still
    // take it, and that fails this write (kAlreadyExists) when the statement is sent.
    CLOZIT_TRY(tx.ExecLater(
        "INSERT INTO billing_reservations (id, tenant_id, idempotency_key, purpose, estimate, first_expires_at, "
        "hold_transfer_id, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8)",
        {id, tenant, request.idempotency_key, request.purpose, request.estimate.micros(),
         detail::Ms(request.expires_at), hold.id, detail::Ms(now)},
        1));
    // The answer is what was just written: reading it back would cost a statement per reserve.
    result = Reservation{};
    result.id = ReservationId(id);
    result.tenant_id = request.tenant_id;
    result.purpose = request.purpose;
    result.idempotency_key = request.idempotency_key;
    result.held = request.estimate;
    result.expires_at = detail::Truncate(request.expires_at);
    result.created_at = detail::Truncate(now);
    result.hold_transfer_id = hold.id;
    open_->RememberAfterCommit(tx, id, result);
    return Ok();
  }));
  return result;
}

Result<Reservation> Charging::Extend(const ExtendRequest& request) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidateTenant(request.tenant_id));
  CLOZIT_TRY(ValidateKey(request.idempotency_key));
  if (request.additional.micros() < 0) return Error::InvalidArgument("additional", "additional must not be negative");
  if (request.expires_at && (*request.expires_at <= now || *request.expires_at > now + settings_.max_hold)) {
    return Error::InvalidArgument("expires_at", "expiry must be in the future and within the longest hold");
  }
  Reservation result;
  CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
    open_->Forget(request.reservation_id);  // it gets a new hold
    CLOZIT_ASSIGN_OR_RETURN(Stored stored, RequireById(tx, request.tenant_id, request.reservation_id, now));
    const std::string& id = request.reservation_id;
    CLOZIT_ASSIGN_OR_RETURN(auto done, tx.Query("SELECT additional, expires_at FROM billing_reservation_extensions "
                                                "WHERE reservation_id = $1 AND idempotency_key = $2",
                                                {id, request.idempotency_key}));
    if (!done.empty()) {
      std::optional<TimePoint> requested;
      if (request.expires_at) requested = detail::Truncate(*request.expires_at);
      if (done.front().Int(0) != request.additional.micros() || detail::OptionalTime(done.front(), 1) != requested) {
        return Error::Make(
            ErrorCode::kIdempotencyMismatch,
            "idempotency key " + request.idempotency_key + " was used for a different extension of reservation " + id,
            "idempotency_key");
      }
      result = std::move(stored.view);
      return Ok();
    }
    if (stored.view.state != ReservationState::kOpen) return StateConflict(stored.view, "extend");

    const TimePoint expires_at = request.expires_at ? detail::Truncate(*request.expires_at) : stored.view.expires_at;
    std::string hold_id = stored.view.hold_transfer_id;
    if (request.additional.micros() > 0 || expires_at != stored.view.expires_at) {
      CLOZIT_ASSIGN_OR_RETURN(Credits total, stored.view.held.Add(request.additional));
      // Void and re-place in one linked batch: the credits are never free in between.
      TransferSpec release;
      release.id = stored.view.hold_transfer_id + "/void";
      release.kind = TransferKind::kVoidPending;
      release.pending_id = stored.view.hold_transfer_id;
      release.code = "extend";
      TransferSpec hold;
      hold_id = HoldTransferId(id, stored.version + 1);
      hold.id = hold_id;
      hold.kind = TransferKind::kPending;
      hold.debit_account_id = TenantCreditsAccount(request.tenant_id.str()).id;
      hold.credit_account_id = HoldsAccount(PlatformShard(request.tenant_id.str())).id;
      hold.amount = total;
      hold.expires_at = expires_at;
      hold.code = "reserve";
      hold.reference = id;
      CLOZIT_TRY(InField(ledger_.CreateTransfers(tx, {release, hold}, now), "additional"));
      CLOZIT_TRY(
          tx.Exec("UPDATE billing_reservations SET hold_transfer_id = $2, version = $3, updated_at = $4 "
                  "WHERE id = $1",
                  {id, hold_id, stored.version + 1, detail::Ms(now)}));
    }
    CLOZIT_TRY(
        tx.Exec("INSERT INTO billing_reservation_extensions (reservation_id, idempotency_key, additional, "
                "expires_at, hold_transfer_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                {id, request.idempotency_key, request.additional.micros(), detail::MsOrNull(request.expires_at),
                 hold_id, detail::Ms(now)}));
    CLOZIT_ASSIGN_OR_RETURN(Stored extended, RequireById(tx, request.tenant_id, id, now));
    result = std::move(extended.view);
    return Ok();
  }));
  return result;
}

Result<Reservation> Charging::Settle(const TenantId& tenant_id, const std::string& reservation_id,
                                     const std::vector<UsageItem>& usage, std::optional<int64_t> price_version) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidateTenant(tenant_id));
  Credits total;
  CLOZIT_ASSIGN_OR_RETURN(auto items, NormalizeUsage(usage, &total));
  const std::string tenant = tenant_id.str();
  Reservation result;
  CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
    // Optimistic, a reservation this process made and still knows open is settled without reading it: that it
    // is still open is a condition of the hold's status UPDATE (the ledger's), which fails the write if not.
    // Anything the known view would refuse is decided from the database instead.
    // Not for a settle without usage: it writes no transfer of its own whose id would collide with another
    // node's settle of the reservation, so only a read can tell that one happened.
    Stored stored;
    bool known = false;
    if (auto open = open_->Take(reservation_id); open && !tx.careful() && !items.empty() &&
                                                 open->tenant_id == tenant_id && open->expires_at > now &&
                                                 total <= open->held) {
      stored.view = std::move(*open);
      known = true;
    }
    if (!known) {
      CLOZIT_ASSIGN_OR_RETURN(stored, RequireById(tx, tenant_id, reservation_id, now, true));
    }
    const Reservation& view = stored.view;
    if (view.state == ReservationState::kSettled) {
      if (view.usage != items) {
        return Error::Make(ErrorCode::kConflict, "reservation " + reservation_id + " was already settled for " +
                                                     UsageText(view.usage) + ", not " + UsageText(items));
      }
      result = view;
      return Ok();
    }
    if (view.state != ReservationState::kOpen) return StateConflict(view, "settle");
    if (total > view.held) {
      return Error::InvalidArgument("usage", "usage " + total.ToString() + " exceeds the reservation's hold " +
                                                 view.held.ToString() + "; extend the reservation first");
    }
    const int shard = PlatformShard(tenant);
    const std::string holds = HoldsAccount(shard).id;
    std::vector<TransferSpec> batch;
    TransferSpec post;
    post.id = view.hold_transfer_id + "/post";
    post.kind = TransferKind::kPostPending;
    post.pending_id = view.hold_transfer_id;
    post.amount = total;
    post.code = "settle";
    batch.push_back(post);
    // The usage items debit the holds exactly what the post above credits them, in this one linked batch, and
    // nothing else debits the holds: their limit holds after every write, which is what lets an optimistic batch
    // check it on its net change only (ADR 0025). Keep it so.
    for (const UsageItem& item : items) {
      CLOZIT_ASSIGN_OR_RETURN(std::string revenue, ledger_.EnsureAccount(tx, RevenueAccount(item.category, shard)));
      TransferSpec charge;
      charge.id = UsageTransferId(reservation_id, item.category);
      charge.debit_account_id = holds;
      charge.credit_account_id = revenue;
      charge.amount = item.amount;
      charge.code = "usage." + std::string(UsageCategoryName(item.category));
      charge.reference = reservation_id;
      charge.tenant_id = tenant;
      batch.push_back(std::move(charge));
    }
    CLOZIT_TRY(ledger_.CreateTransfers(tx, batch, now));
    if (price_version) {
      CLOZIT_TRY(tx.Exec("UPDATE billing_reservations SET price_version = $2 WHERE id = $1",
                         {reservation_id, *price_version}));
    }
    // The balance was read with the reservation and this write's own transfers moved it since (the post
    // releases the hold and spends `total`; the usage items move credits between platform accounts): the
    // balance after is known without reading it again.
    if (stored.balance) {
      BalanceWatch after = *stored.balance;
      CLOZIT_ASSIGN_OR_RETURN(after.available, after.available.Add(view.held));
      CLOZIT_ASSIGN_OR_RETURN(after.available, after.available.Subtract(total));
      CLOZIT_TRY(RecordBalanceEvents(tx, tenant, after, now, random_));
    } else if (known) {
      // Read after this write's statements, so as they leave it: the settle's one round trip.
      CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
    }
    result = view;
    result.state = ReservationState::kSettled;
    result.charged = total;
    result.usage = items;
    if (price_version) result.price_version = price_version;
    return Ok();
  }));
  return result;
}

Result<Reservation> Charging::Void(const TenantId& tenant_id, const std::string& reservation_id) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidateTenant(tenant_id));
  Reservation result;
  CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
    open_->Forget(reservation_id);
    CLOZIT_ASSIGN_OR_RETURN(Stored stored, RequireById(tx, tenant_id, reservation_id, now));
    if (stored.view.state == ReservationState::kSettled) return StateConflict(stored.view, "void");
    if (stored.hold_state == PendingState::kPending) {
      TransferSpec release;
      if (stored.view.state == ReservationState::kExpired) {
        // Lapsed but not yet swept: expire it exactly as the sweep would, so the two cannot disagree.
        release = ExpiryOf(stored.view.hold_transfer_id);
        CLOZIT_TRY(
            RecordExpired(tx, tenant_id.str(), reservation_id, stored.view.held, stored.view.expires_at, now, random_));
      } else {
        release.pending_id = stored.view.hold_transfer_id;
        release.id = release.pending_id + "/void";
        release.kind = TransferKind::kVoidPending;
        release.code = "void";
      }
      CLOZIT_TRY(ledger_.CreateTransfers(tx, {release}, now));
      CLOZIT_TRY(RecordBalanceEvents(tx, tenant_id.str(), now, random_));  // the hold's credits are back
      CLOZIT_ASSIGN_OR_RETURN(stored, RequireById(tx, tenant_id, reservation_id, now));
    }
    result = std::move(stored.view);
    return Ok();
  }));
  return result;
}

Result<Reservation> Charging::GetReservation(const TenantId& tenant_id, const std::string& reservation_id) {
  const TimePoint now = clock_.Now();
  Reservation result;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(Stored stored, RequireById(tx, tenant_id, reservation_id, now));
    result = std::move(stored.view);
    return Ok();
  }));
  return result;
}

Result<Lot> Charging::Grant(const GrantRequest& request) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidateTenant(request.tenant_id));
  CLOZIT_TRY(ValidateKey(request.idempotency_key));
  if (request.amount.micros() <= 0) return Error::InvalidArgument("amount", "amount must be positive");
  if (request.reference.size() > kMaxText) return Error::InvalidArgument("reference", "reference is too long");
  const std::string tenant = request.tenant_id.str();
  Lot result;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto known, tx.Query("SELECT 1 FROM tenants WHERE id = $1", {tenant}));
    if (known.empty()) return Error::Make(ErrorCode::kNotFound, "tenant " + tenant + " not found", "tenant_id");
    CLOZIT_ASSIGN_OR_RETURN(Account credits, ledger_.OpenAccount(tx, TenantCreditsAccount(tenant)));
    CLOZIT_ASSIGN_OR_RETURN(Account issuance,
                            ledger_.OpenAccount(tx, IssuanceAccount(request.kind, PlatformShard(tenant))));
    TransferSpec grant;
    grant.id = "grant/" + tenant + "/" + request.idempotency_key;
    grant.debit_account_id = issuance.id;
    grant.credit_account_id = credits.id;
    grant.amount = request.amount;
    grant.code = "grant." + std::string(LotKindName(request.kind));
    grant.reference = request.reference;
    grant.new_lot = LotSpec{request.kind, request.priority, request.expires_at};
    CLOZIT_ASSIGN_OR_RETURN(auto before, detail::FindTransfer(tx, grant.id));
    // A replay of a grant whose lot has expired since gets that lot back; only a new grant must lie ahead.
    if (!before && request.expires_at && *request.expires_at <= now) {
      return Error::InvalidArgument("expires_at", "expiry must be in the future");
    }
    auto applied = ledger_.CreateTransfers(tx, {grant}, now);
    if (!applied) {
      Error error = applied.error();
      if (error.code == ErrorCode::kAlreadyExists) {
        return Error::Make(
            ErrorCode::kIdempotencyMismatch,
            "idempotency key " + request.idempotency_key + " was used for a different grant: " + error.message,
            "idempotency_key");
      }
      return error;
    }
    CLOZIT_ASSIGN_OR_RETURN(auto lot_rows,
                            tx.Query("SELECT id FROM ledger_lots WHERE source_transfer_id = $1", {grant.id}));
    if (lot_rows.empty()) return Error::Internal("grant " + grant.id + " opened no lot");
    CLOZIT_ASSIGN_OR_RETURN(auto lot, detail::FindLot(tx, lot_rows.front().Text(0)));
    result = *lot;
    if (!before) {
      const std::string details =
          nlohmann::json{{"amount", request.amount.ToString()},
                         {"kind", LotKindName(request.kind)},
                         {"transfer_id", grant.id},
                         {"expires_at", request.expires_at ? nlohmann::json(FormatRfc3339(*request.expires_at))
                                                           : nlohmann::json(nullptr)}}
              .dump();
      CLOZIT_TRY(audit_.Record(tx, request.actor, {"credits.grant", "credit_lot", result.id, details}, tenant));
      CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
    }
    return Ok();
  }));
  return result;
}

Result<CreditBalance> Charging::Balance(const TenantId& tenant_id) {
  const TimePoint now = clock_.Now();
  CLOZIT_TRY(ValidateTenant(tenant_id));
  CreditBalance balance;
  balance.tenant_id = tenant_id;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    const std::string account_id = TenantCreditsAccount(tenant_id.str()).id;
    CLOZIT_ASSIGN_OR_RETURN(auto account, detail::FindAccount(tx, account_id));
    if (!account) return Ok();
    balance.reserved = account->debits_pending;
    CLOZIT_ASSIGN_OR_RETURN(auto lots, detail::AccountLots(tx, account_id, false));
    for (const Lot& lot : lots) {
      if (lot.ExpiredAt(now)) continue;  // expired lots stop counting, swept or not
      LotBalance entry{lot.id,       lot.kind,         lot.priority,   lot.original,   lot.remaining,
                       lot.reserved, lot.Unreserved(), lot.expires_at, lot.created_at, lot.reference};
      CLOZIT_ASSIGN_OR_RETURN(balance.available, balance.available.Add(entry.available));
      balance.lots.push_back(std::move(entry));
    }
    return Ok();
  }));
  return balance;
}

Result<ExpiryReport> Charging::ExpireStale(int64_t limit) {
  const TimePoint now = clock_.Now();
  ExpiryReport report;
  CLOZIT_TRY(detail::WriteRacingOtherNodes(db_, [&](Tx& tx) -> Result<void> {
    report = {};
    CLOZIT_ASSIGN_OR_RETURN(auto holds, ledger_.ExpirePending(tx, now, limit));
    report.holds_expired = holds.size();
    for (const Transfer& expired : holds) {
      CLOZIT_ASSIGN_OR_RETURN(
          auto rows, tx.Query("SELECT r.id, r.tenant_id, h.expires_at FROM billing_reservations r "
                              "JOIN ledger_transfers h ON h.id = r.hold_transfer_id WHERE r.hold_transfer_id = $1",
                              {expired.pending_id}));
      if (rows.empty()) continue;  // a pending transfer that is not a reservation's hold
      report.reservations.push_back(
          {rows.front().Text(0), TenantId(rows.front().Text(1)), expired.amount, FromUnixMillis(rows.front().Int(2))});
      const ExpiredReservation& last = report.reservations.back();
      CLOZIT_TRY(
          RecordExpired(tx, last.tenant_id.str(), last.reservation_id, last.released, last.expired_at, now, random_));
    }
    CLOZIT_ASSIGN_OR_RETURN(auto lots, ledger_.ExpireLots(tx, now, limit));
    for (const Transfer& expired : lots) {
      report.lots.push_back({expired.reference, TenantId(expired.tenant_id), expired.amount});
    }
    // Released holds re-arm the balance events, expired lots may cross the threshold or deplete.
    std::set<std::string> tenants;
    for (const Transfer& expired : holds) {
      if (!expired.tenant_id.empty()) tenants.insert(expired.tenant_id);  // reservations' and refunds' holds
    }
    for (const auto& reservation : report.reservations) tenants.insert(reservation.tenant_id.str());
    for (const auto& lot : report.lots) tenants.insert(lot.tenant_id.str());
    for (const std::string& tenant : tenants) CLOZIT_TRY(RecordBalanceEvents(tx, tenant, now, random_));
    return Ok();
  }));
  return report;
}

}  // namespace clozit::billing
