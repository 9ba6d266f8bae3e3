// Row mapping and the statements the ledger shares: one place that knows the
// ledger tables' columns. Functions take the caller's Tx; not thread-safe
// beyond it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "billing/detail/committed_facts.hpp"
#include "billing/ledger.hpp"
#include "storage/database.hpp"

namespace clozit::billing::detail {

/// Printable ASCII without spaces, 1..max_length characters: transfer, account and lot ids, idempotency keys.
bool ValidKey(std::string_view text, size_t max_length = 200);

/// Milliseconds as stored, and back; optional instants bind as NULL.
int64_t Ms(TimePoint t);
storage::Value MsOrNull(const std::optional<TimePoint>& t);
std::optional<TimePoint> OptionalTime(const storage::Row& row, size_t column);
/// Rounds to what a stored instant reads back as (milliseconds).
TimePoint Truncate(TimePoint t);
storage::Value TextOrNull(const std::string& text);

Result<std::optional<Account>> FindAccount(storage::Tx& tx, const std::string& id);

/// What a transfer adds to an account's four balances (negative to release a pending amount).
struct BalanceDelta {
  int64_t debits_pending = 0;
  int64_t debits_posted = 0;
  int64_t credits_pending = 0;
  int64_t credits_posted = 0;
};
/// Adds `delta` to the account's balances in one statement, without reading them first: the account's
/// limit flags and the pending balances' floor at zero are conditions of the UPDATE, so the row the
/// database holds (whatever other writes or nodes did to it) is what they are checked against. False when
/// no row changed: the account is missing or the change would breach a limit (read it to tell which).
Result<bool> AddToBalances(storage::Tx& tx, const Account& account, const BalanceDelta& delta);
/// The same UPDATE through Tx::ExecLater, for a change no limit can refuse (it releases or posts a pending
/// amount): a row left unchanged then means a broken invariant, and fails the write. A platform account without
/// a limit to check on the way (and the holds) goes through Tx::AddLater: one UPDATE per account per batch.
Result<void> AddToBalancesLater(storage::Tx& tx, const Account& account, const BalanceDelta& delta);

/// The immutable fields of ledger accounts (id, ledger, tenant, code, flags) that committed writes saw, so
/// a transfer need not read its accounts. Balances are never kept here (their `Account` copies are zero):
/// other writes and other nodes change them. An account, once created, is never deleted or altered, so
/// an entry stays true on every node and across restarts.
class AccountDirectory : public CommittedFacts<Account> {
 public:
  AccountDirectory() : CommittedFacts<Account>(kCapacity) {}
  /// Remembers `account` once `tx` commits (never if it rolls back, which would undo a creation).
  void RememberAfterCommit(storage::Tx& tx, const Account& account);

 private:
  static constexpr size_t kCapacity = 200'000;  // a tenant has one account; the platform's are a few dozen
};

Result<std::optional<Transfer>> FindTransfer(storage::Tx& tx, const std::string& id);
/// Inserts the transfer unless its id is taken; false when it was (the caller compares with the stored one).
Result<bool> ClaimTransfer(storage::Tx& tx, const Transfer& transfer);
/// The same INSERT through Tx::ExecLater, for an optimistic write (Tx::careful): a taken id fails the write.
Result<void> ClaimTransferLater(storage::Tx& tx, const Transfer& transfer);
/// A pending transfer with its status and its earmarks (history rows with a positive delta_reserved, in
/// order), in one statement: a resolution needs all three (nullopt status: no status row).
struct PendingWithStatus {
  Transfer transfer;
  std::optional<PendingStatus> status;
  std::vector<LotChange> earmarks;
};
Result<std::optional<PendingWithStatus>> FindPendingWithStatus(storage::Tx& tx, const std::string& transfer_id);

/// Marks a pending transfer's status resolved: $1 the pending transfer, $2 its new state, $3 the resolving
/// transfer, $4 when (ms); changes no row if it is resolved already. "Not resolved yet" is `resolved_by IS
/// NULL`, not `state = 'pending'`, which would match the predicate of the partial index of open statuses:
/// PostgreSQL then found the row by scanning that index, which keeps an entry for every status resolved since
/// the last VACUUM (≈ 200 µs a row and growing, against 12 through the primary key).
inline constexpr std::string_view kResolvePendingStatus =
    "UPDATE ledger_pending SET state = $2, resolved_by = $3, resolved_at = $4 "
    "WHERE transfer_id = $1 AND resolved_by IS NULL";

Result<std::optional<PendingStatus>> FindPending(storage::Tx& tx, const std::string& transfer_id);

Result<std::optional<Lot>> FindLot(storage::Tx& tx, const std::string& id);
/// The account's lots that still have unreserved credits and have not expired at `now`, in burn-down order.
Result<std::vector<Lot>> BurnDownCandidates(storage::Tx& tx, const std::string& account_id, TimePoint now);
/// All of the account's lots in burn-down order, optionally without the exhausted ones.
Result<std::vector<Lot>> AccountLots(storage::Tx& tx, const std::string& account_id, bool include_exhausted);
/// What a debit from the account may take at `now`: the unreserved credits of its unexpired lots.
Result<Credits> SpendableCredits(storage::Tx& tx, const std::string& account_id, TimePoint now);
Result<void> InsertLot(storage::Tx& tx, const Lot& lot);
/// Writes the lot's remaining, reserved and version (through Tx::ExecLater: the lot was just read), and marks
/// it exhausted when nothing remains (a lot's remaining never grows back).
Result<void> SaveLotAmounts(storage::Tx& tx, const Lot& lot);
/// Through Tx::ExecLater: history rows are only ever inserted.
Result<void> InsertLotChange(storage::Tx& tx, const LotChange& change);
/// Adds the change's deltas to its lot (bumping its version, marking it exhausted when nothing remains) and
/// records the change in the lot's history, without reading the lot: the history row's seq and amounts after
/// are the lot's own as the UPDATE leaves it (INSERT … SELECT), and the UPDATE changes no row rather than take
/// either amount below zero. Both through Tx::ExecLater, so that fails the write. Ignores `change.seq` and
/// its amounts after.
Result<void> AddToLotRecording(storage::Tx& tx, const LotChange& change);
Result<std::vector<LotChange>> LotChanges(storage::Tx& tx, const std::string& lot_id);

/// db.Write(work), run once more when it fails with kAlreadyExists. Another node can write the same row between
/// this write's reads and its INSERTs (a reserve with the same key; a settle, void or expiry of the same hold;
/// the same provider event): the unique key then fails this write, which is not an answer. Run again, the work
/// reads what the other node did and answers from it (a replay, a conflict), as it would have a moment later.
Result<void> WriteRacingOtherNodes(storage::Database& db, const std::function<Result<void>(storage::Tx&)>& work);

}  // namespace clozit::billing::detail
