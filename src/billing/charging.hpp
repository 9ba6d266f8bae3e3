// billing/charging: how other modules spend a tenant's credits — reserve
// before the work, settle after it (telecom reserve-then-settle, billing.md).
//
//   Reserve  holds an estimate as a pending ledger transfer from the tenant's
//            credits to the platform's holds account (earmarking lots in
//            burn-down order), or fails with kInsufficientCredits. No
//            reservation, no call.
//   Extend   holds more and/or later: the hold is voided and re-placed for the
//            new total in one linked batch, so nothing is free in between.
//   Settle   posts the used total of the hold and routes each item to the
//            platform revenue account of its category (call_minutes,
//            ai_processing, voice_generation, campaign_execution); the rest of
//            the hold returns to the tenant. Usage above the hold is refused
//            (extend first).
//   Void     releases the hold.
//   Grant    adds a credit lot (purchase, subscription allowance, promotional,
//            replacement) from the platform's issuance account, audited.
//
// Every call is one database transaction and idempotent: Reserve, Extend and
// Grant by the caller's idempotency key (same key and fields: nothing new is
// done and the reservation or lot it made is returned as it stands now —
// settled, extended or partly spent since — so a replaying worker sees where
// things are; different fields: kIdempotencyMismatch); Settle and Void by the
// reservation (a repeat returns the settled/voided reservation; a different
// settlement is kConflict). So a worker that crashed may replay any call.
// Reservations that pass their expiry are released by ExpireStale (run it
// periodically) and cannot be settled afterwards.
//
// Every call is scoped by tenant: another tenant's reservation is not_found.
// Thread-safe; methods block on the database (call from worker threads).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "billing/chart.hpp"
#include "billing/ledger.hpp"
#include "common/clock.hpp"
#include "common/credits.hpp"
#include "common/ids.hpp"
#include "common/result.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::billing {
namespace detail {
class OpenReservations;
}  // namespace detail

struct ReservationTag {
  static constexpr const char* kPrefix = "rsv";
};
using ReservationId = TypedId<ReservationTag>;

struct ChargingSettings {
  /// The longest a reservation may be held before it lapses (a crashed worker strands nothing longer).
  std::chrono::milliseconds max_hold = std::chrono::hours(24);
};

struct ReserveRequest {
  TenantId tenant_id;
  Credits estimate;             // > 0
  std::string purpose;          // what for, e.g. "call cal_01J…"; 1..200 characters
  std::string idempotency_key;  // 1..200 printable characters, unique per tenant
  TimePoint expires_at;         // after now, within max_hold
};

struct ExtendRequest {
  TenantId tenant_id;
  std::string reservation_id;
  Credits additional;                   // >= 0: held on top of the current amount
  std::optional<TimePoint> expires_at;  // absent: keep the current expiry
  std::string idempotency_key;          // unique per reservation
};

struct UsageItem {
  UsageCategory category = UsageCategory::kCallMinutes;
  Credits amount;  // >= 0
  friend bool operator==(const UsageItem&, const UsageItem&) = default;
};

enum class ReservationState { kOpen, kSettled, kVoided, kExpired };
std::string_view ReservationStateName(ReservationState state);

struct Reservation {
  ReservationId id;
  TenantId tenant_id;
  std::string purpose;
  std::string idempotency_key;
  ReservationState state = ReservationState::kOpen;
  Credits held;     // the current hold (the last one, once resolved)
  Credits charged;  // settled: the total of usage
  /// Settled: what was charged, one item per category with a non-zero amount, in category order.
  std::vector<UsageItem> usage;
  TimePoint expires_at;
  TimePoint created_at;
  std::string hold_transfer_id;          // the ledger's pending transfer
  std::optional<int64_t> price_version;  // settled: the price-book version its usage was priced with
};

struct GrantRequest {
  TenantId tenant_id;
  Credits amount;  // > 0
  LotKind kind = LotKind::kPurchase;
  std::optional<TimePoint> expires_at;
  std::string idempotency_key;  // 1..200 printable characters, unique per tenant
  int64_t priority = 0;         // lower burns first
  std::string reference;        // e.g. the purchase or subscription period
  privacy::Actor actor{"system", "billing"};
};

struct LotBalance {
  std::string lot_id;
  LotKind kind = LotKind::kPurchase;
  int64_t priority = 0;
  Credits original;
  Credits remaining;  // reserved included
  Credits reserved;
  Credits available;  // remaining − reserved
  std::optional<TimePoint> expires_at;
  TimePoint created_at;
  std::string reference;
};

struct CreditBalance {
  TenantId tenant_id;
  Credits available;  // what a reservation may still take: Σ unexpired lots' available
  Credits reserved;   // held by open reservations
  /// Unexpired lots with credits remaining, in burn-down order.
  std::vector<LotBalance> lots;
};

struct ExpiredReservation {
  std::string reservation_id;
  TenantId tenant_id;
  Credits released;
  TimePoint expired_at;
};

struct ExpiredLot {
  std::string lot_id;
  TenantId tenant_id;
  Credits amount;  // moved to platform.expired
};

/// What one ExpireStale call released, for reporting.
struct ExpiryReport {
  std::vector<ExpiredReservation> reservations;
  std::vector<ExpiredLot> lots;
  /// Every pending transfer expired, reservations' holds or not (refund earmarks, …): a sweep that expired any
  /// may have left more due.
  size_t holds_expired = 0;
};

class Charging {
 public:
  Charging(storage::Database& db, Ledger& ledger, privacy::AuditLog& audit, const Clock& clock, Random& random,
           ChargingSettings settings = {});
  ~Charging();
  Charging(const Charging&) = delete;
  Charging& operator=(const Charging&) = delete;

  Result<Reservation> Reserve(const ReserveRequest& request);
  Result<Reservation> Extend(const ExtendRequest& request);
  /// `price_version`: the price-book version the usage was priced with (billing/price_book.hpp Quote), kept with
  /// the reservation so a later price change never re-prices it.
  Result<Reservation> Settle(const TenantId& tenant_id, const std::string& reservation_id,
                             const std::vector<UsageItem>& usage, std::optional<int64_t> price_version = std::nullopt);
  Result<Reservation> Void(const TenantId& tenant_id, const std::string& reservation_id);
  Result<Reservation> GetReservation(const TenantId& tenant_id, const std::string& reservation_id);

  Result<Lot> Grant(const GrantRequest& request);
  Result<CreditBalance> Balance(const TenantId& tenant_id);

  /// Expires up to `limit` lapsed reservations and up to `limit` expired lots
  /// at the clock's now. Call until both lists come back empty to catch up.
  Result<ExpiryReport> ExpireStale(int64_t limit = 500);

 private:
  storage::Database& db_;
  Ledger& ledger_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
  Random& random_;
  const ChargingSettings settings_;
  /// Reservations this process made and has not settled, voided or extended since: a settle of one reads
  /// nothing but the balance it leaves (detail/committed_facts.hpp).
  std::unique_ptr<detail::OpenReservations> open_;
};

}  // namespace clozit::billing
