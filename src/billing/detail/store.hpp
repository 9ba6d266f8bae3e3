// Row mapping and the statements the ledger shares: one place that knows the
// ledger tables' columns. Functions take the caller's Tx; not thread-safe
// beyond it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
Result<void> SaveBalances(storage::Tx& tx, const Account& account);

Result<std::optional<Transfer>> FindTransfer(storage::Tx& tx, const std::string& id);
Result<void> InsertTransfer(storage::Tx& tx, const Transfer& transfer);

Result<std::optional<PendingStatus>> FindPending(storage::Tx& tx, const std::string& transfer_id);

Result<std::optional<Lot>> FindLot(storage::Tx& tx, const std::string& id);
/// The account's lots that still have unreserved credits and have not expired at `now`, in burn-down order.
Result<std::vector<Lot>> BurnDownCandidates(storage::Tx& tx, const std::string& account_id, TimePoint now);
/// All of the account's lots in burn-down order, optionally without the exhausted ones.
Result<std::vector<Lot>> AccountLots(storage::Tx& tx, const std::string& account_id, bool include_exhausted);
/// What a debit from the account may take at `now`: the unreserved credits of its unexpired lots.
Result<Credits> SpendableCredits(storage::Tx& tx, const std::string& account_id, TimePoint now);
Result<void> InsertLot(storage::Tx& tx, const Lot& lot);
Result<void> SaveLotAmounts(storage::Tx& tx, const Lot& lot);
Result<void> InsertLotChange(storage::Tx& tx, const LotChange& change);
Result<std::vector<LotChange>> LotChanges(storage::Tx& tx, const std::string& lot_id);
/// The earmarks a pending transfer made (history rows with a positive delta_reserved), in order.
Result<std::vector<LotChange>> Earmarks(storage::Tx& tx, const std::string& pending_transfer_id);

}  // namespace clozit::billing::detail
