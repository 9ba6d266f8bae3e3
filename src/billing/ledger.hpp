// billing/ledger: the double-entry credit ledger, modelled on TigerBeetle.
//
// Every movement of credits is an immutable Transfer from a debit account to a
// credit account, in int64 micro-credits (Credits, never floating point).
// Account balances (debits/credits × pending/posted) change in the same
// database transaction as the transfer that moves them, so for every ledger
// Σ debits = Σ credits and each balance equals the sum of its transfers
// (billing/ledger_check.hpp re-derives both).
//
// - Idempotent by id: the client picks each transfer id before submitting; the
//   id is claimed in the same transaction as the write. A retry with the same
//   fields returns the original transfer; with different fields it fails with
//   kAlreadyExists naming the field.
// - Two-phase: a pending transfer counts against the debit account's limit at
//   once; it is later posted (for at most its amount; the rest returns),
//   voided, or, once its expiry has passed, expired by ExpirePending. It
//   resolves exactly once.
// - Linked: CreateTransfers applies a batch in order, all or nothing.
// - Corrections are new transfers whose `corrects` names the original.
// - A transfer touches at most one tenant's accounts and is stored with that
//   tenant's id, which is how statements find it.
// - Credit lots: an account flagged kLots (a tenant's credits) is divided into
//   lots. A credit to it opens a lot (TransferSpec::new_lot); a debit takes
//   from lots in burn-down order (priority, soonest expiry, granted before
//   paid, oldest) or from one named lot; a pending debit earmarks lot amounts,
//   which its post consumes in the same order and its void/expiry releases.
//   Every lot change is a history row linked to its transfer
//   (docs/adr/0004-ledger.md).
//
// Thread-safe: all state lives in the database; methods block on it, so call
// them from worker threads. The Tx overloads run inside a caller's
// transaction, so other billing components commit their own rows atomically
// with the transfers they cause.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/credits.hpp"
#include "common/result.hpp"
#include "storage/database.hpp"

namespace clozit::billing {
namespace detail {
class AccountDirectory;
class OpenPendings;
}  // namespace detail

/// The ledger of credits (TigerBeetle's `ledger`: one unit of account).
inline constexpr int64_t kCreditsLedger = 1;
/// The most transfers one linked batch may hold.
inline constexpr size_t kMaxBatchSize = 8190;

/// Account flags, combined as a bit set.
struct AccountFlags {
  /// Refuse a transfer that would take debits_pending + debits_posted above credits_posted.
  static constexpr uint32_t kDebitsMustNotExceedCredits = 1u << 0;
  /// Refuse a transfer that would take credits_pending + credits_posted above debits_posted.
  static constexpr uint32_t kCreditsMustNotExceedDebits = 1u << 1;
  /// The account's balance is divided into credit lots (see the file comment).
  static constexpr uint32_t kLots = 1u << 2;
};

struct AccountSpec {
  std::string id;  // chosen by the caller, e.g. billing/chart.hpp
  int64_t ledger = kCreditsLedger;
  std::string tenant_id;  // empty: a platform account
  std::string code;       // what the account is for, e.g. "tenant.credits"
  uint32_t flags = 0;
};

struct Account {
  std::string id;
  int64_t ledger = kCreditsLedger;
  std::string tenant_id;
  std::string code;
  uint32_t flags = 0;
  Credits debits_pending;
  Credits debits_posted;
  Credits credits_pending;
  Credits credits_posted;
  TimePoint created_at;

  /// credits_posted − debits_posted − debits_pending: what debits may still take
  /// under kDebitsMustNotExceedCredits. Saturates rather than overflowing.
  Credits Available() const;
};

enum class TransferKind { kSingle, kPending, kPostPending, kVoidPending, kExpirePending };
std::string_view TransferKindName(TransferKind kind);  // "single", "pending", "post_pending", ...
std::optional<TransferKind> ParseTransferKind(std::string_view text);

enum class LotKind { kPurchase, kSubscription, kPromotional, kReplacement };
std::string_view LotKindName(LotKind kind);  // "purchase", "subscription", "promotional", "replacement"
std::optional<LotKind> ParseLotKind(std::string_view text);
/// The burn-down rank after priority and expiry: granted credits (promotional,
/// replacement) burn before a subscription's included credits, which burn
/// before purchased ones.
int64_t LotKindRank(LotKind kind);

/// The lot a credit to a kLots account opens.
struct LotSpec {
  LotKind kind = LotKind::kPurchase;
  int64_t priority = 0;  // lower burns first
  std::optional<TimePoint> expires_at;
};

/// What the client asks for. For post/void/expire an empty account id,
/// reference or code means "as on the pending transfer"/"the default".
struct TransferSpec {
  std::string id;  // client-chosen, unique forever: 1..200 printable ASCII characters, no spaces
  TransferKind kind = TransferKind::kSingle;
  std::string debit_account_id;
  std::string credit_account_id;
  /// single, pending: > 0. post: 0..the pending amount (the rest returns).
  /// void, expire: 0 or the pending amount (the whole pending amount is released).
  Credits amount;
  std::string pending_id;               // post, void, expire: the pending transfer resolved
  std::optional<TimePoint> expires_at;  // pending only: when it lapses (absent: never)
  std::string code;                     // why, e.g. "reserve", "usage.call_minutes"; empty: the kind's name
  std::string corrects;                 // id of an earlier transfer this one corrects
  std::string reference;                // the business object: reservation, lot, purchase …
  std::string tenant_id;                // on whose behalf, when neither account is the tenant's
  std::optional<LotSpec> new_lot;       // required for (and only for) a credit to a kLots account
  std::string debit_lot_id;             // debit from a kLots account: take only from this lot
};

/// The expiry of pending transfer `pending_id`, under the one id every path uses (the sweep, a void or refund
/// that finds it lapsed but not yet swept), so that two of them cannot both expire it.
TransferSpec ExpiryOf(const std::string& pending_id);

/// A stored transfer. Never changes once written.
struct Transfer {
  std::string id;
  int64_t ledger = kCreditsLedger;
  TransferKind kind = TransferKind::kSingle;
  std::string debit_account_id;
  std::string credit_account_id;
  Credits amount;  // post: the amount posted; void/expire: the pending amount released
  std::string pending_id;
  std::optional<TimePoint> expires_at;
  std::string code;
  std::string corrects;
  std::string reference;
  std::string tenant_id;
  std::string debit_lot_id;
  std::optional<LotSpec> new_lot;
  TimePoint created_at;
};

enum class PendingState { kPending, kPosted, kVoided, kExpired };
std::string_view PendingStateName(PendingState state);

/// The resolution of one pending transfer.
struct PendingStatus {
  std::string transfer_id;
  PendingState state = PendingState::kPending;
  std::optional<TimePoint> expires_at;
  std::string resolved_by;  // the post/void/expire transfer; empty while pending
  std::optional<TimePoint> resolved_at;
};

struct Lot {
  std::string id;  // lot_<ULID>
  std::string account_id;
  std::string tenant_id;
  LotKind kind = LotKind::kPurchase;
  int64_t priority = 0;
  std::optional<TimePoint> expires_at;
  Credits original;
  Credits remaining;    // posted credits left, earmarked ones included
  Credits reserved;     // earmarked by pending transfers
  int64_t version = 0;  // number of history rows
  std::string source_transfer_id;
  std::string reference;
  TimePoint created_at;

  Credits Unreserved() const { return Credits::FromMicros(remaining.micros() - reserved.micros()); }
  bool ExpiredAt(TimePoint now) const { return expires_at && *expires_at <= now; }
};

/// One row of a lot's history.
struct LotChange {
  std::string lot_id;
  int64_t seq = 0;  // 1, 2, ... within the lot
  std::string transfer_id;
  int64_t ordinal = 0;  // position within the transfer
  std::string change;   // grant | debit | earmark | post | release
  Credits delta_remaining;
  Credits delta_reserved;
  Credits remaining_after;
  Credits reserved_after;
  TimePoint at;
};

class Ledger {
 public:
  /// `clock` stamps transfers; `random` makes lot ids. Both outlive the Ledger.
  Ledger(storage::Database& db, const Clock& clock, Random& random);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  /// Creates the account, or returns it when it exists with the same fields
  /// (kAlreadyExists when the fields differ).
  Result<Account> OpenAccount(const AccountSpec& spec);
  Result<Account> GetAccount(const std::string& account_id);

  /// Applies `batch` in order, all or nothing. On failure the error message
  /// names the transfer by position and id and nothing is written.
  Result<std::vector<Transfer>> CreateTransfers(const std::vector<TransferSpec>& batch);
  Result<Transfer> CreateTransfer(const TransferSpec& spec);

  Result<Transfer> LookupTransfer(const std::string& transfer_id);
  Result<PendingStatus> LookupPending(const std::string& transfer_id);
  /// The account's lots in burn-down order; exhausted lots (nothing remaining) only when asked.
  Result<std::vector<Lot>> ListLots(const std::string& account_id, bool include_exhausted = false);
  Result<std::vector<LotChange>> LotHistory(const std::string& lot_id);

  /// Expires up to `limit` pending transfers whose expiry is at or before
  /// `now` (each by an expire_pending transfer with id "<pending id>/expire");
  /// returns those expire transfers, oldest expiry first.
  Result<std::vector<Transfer>> ExpirePending(TimePoint now, int64_t limit = 500);
  /// Moves the unreserved remainder of up to `limit` lots whose expiry is at or
  /// before `now` to the platform's expired-credits account; returns those
  /// transfers (reference = the lot id). Earmarked amounts follow when released.
  Result<std::vector<Transfer>> ExpireLots(TimePoint now, int64_t limit = 500);

  // The same inside a caller's transaction.
  Result<Account> OpenAccount(storage::Tx& tx, const AccountSpec& spec);
  /// OpenAccount for the hot paths: returns only the id, and asks the database nothing once a committed
  /// write of this process saw the account with these fields (accounts are never altered or deleted).
  Result<std::string> EnsureAccount(storage::Tx& tx, const AccountSpec& spec);
  Result<Account> GetAccount(storage::Tx& tx, const std::string& account_id);
  Result<std::vector<Transfer>> CreateTransfers(storage::Tx& tx, const std::vector<TransferSpec>& batch, TimePoint now);
  Result<Transfer> LookupTransfer(storage::Tx& tx, const std::string& transfer_id);
  Result<PendingStatus> LookupPending(storage::Tx& tx, const std::string& transfer_id);
  Result<std::vector<Lot>> ListLots(storage::Tx& tx, const std::string& account_id, bool include_exhausted);
  Result<std::vector<Transfer>> ExpirePending(storage::Tx& tx, TimePoint now, int64_t limit);
  Result<std::vector<Transfer>> ExpireLots(storage::Tx& tx, TimePoint now, int64_t limit);

 private:
  storage::Database& db_;
  const Clock& clock_;
  Random& random_;
  std::unique_ptr<detail::AccountDirectory> directory_;
  std::unique_ptr<detail::OpenPendings> pendings_;
};

}  // namespace clozit::billing
