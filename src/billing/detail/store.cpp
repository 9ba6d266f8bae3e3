#include "billing/detail/store.hpp"

#include <algorithm>
#include <chrono>
#include <limits>

#include "billing/chart.hpp"

namespace clozit::billing::detail {
namespace {

using storage::Row;
using storage::Tx;
using storage::Value;

constexpr std::string_view kAccountColumns =
    "id, ledger, tenant_id, code, flags, debits_pending, debits_posted, credits_pending, credits_posted, created_at";

constexpr std::string_view kTransferColumns =
    "id, ledger, kind, debit_account_id, credit_account_id, amount, pending_id, expires_at, code, corrects_id, "
    "reference, tenant_id, debit_lot_id, lot_kind, lot_priority, lot_expires_at, created_at";

constexpr std::string_view kLotColumns =
    "id, account_id, tenant_id, kind, priority, expires_at, original, remaining, reserved, version, "
    "source_transfer_id, reference, created_at";

constexpr std::string_view kLotChangeColumns =
    "lot_id, seq, transfer_id, ordinal, change, delta_remaining, delta_reserved, remaining_after, reserved_after, at";

// Burn-down order (billing.md): priority, soonest expiry (none last), granted before paid, oldest.
constexpr std::string_view kBurnDownOrder =
    " ORDER BY priority, COALESCE(expires_at, 9223372036854775807), kind_rank, created_at, id";

std::string Sql(std::string_view head, std::string_view columns, std::string_view tail) {
  std::string sql(head);
  sql += columns;
  sql += tail;
  return sql;
}

// "a, b" -> "t.a, t.b": names the columns with their table where a JOIN has two of the same name.
std::string Qualified(std::string_view columns, std::string_view table) {
  std::string out;
  for (size_t start = 0; start < columns.size();) {
    size_t end = std::min(columns.find(',', start), columns.size());
    while (columns[start] == ' ') ++start;
    if (!out.empty()) out += ", ";
    out += std::string(table) + "." + std::string(columns.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Credits C(const Row& row, size_t column) { return Credits::FromMicros(row.Int(column)); }

Account AccountFromRow(const Row& row) {
  Account account;
  account.id = row.Text(0);
  account.ledger = row.Int(1);
  account.tenant_id = row.Text(2);
  account.code = row.Text(3);
  account.flags = static_cast<uint32_t>(row.Int(4));
  account.debits_pending = C(row, 5);
  account.debits_posted = C(row, 6);
  account.credits_pending = C(row, 7);
  account.credits_posted = C(row, 8);
  account.created_at = FromUnixMillis(row.Int(9));
  return account;
}

Transfer TransferFromRow(const Row& row) {
  Transfer transfer;
  transfer.id = row.Text(0);
  transfer.ledger = row.Int(1);
  transfer.kind = ParseTransferKind(row.Text(2)).value_or(TransferKind::kSingle);
  transfer.debit_account_id = row.Text(3);
  transfer.credit_account_id = row.Text(4);
  transfer.amount = C(row, 5);
  transfer.pending_id = row.Text(6);
  transfer.expires_at = OptionalTime(row, 7);
  transfer.code = row.Text(8);
  transfer.corrects = row.Text(9);
  transfer.reference = row.Text(10);
  transfer.tenant_id = row.Text(11);
  transfer.debit_lot_id = row.Text(12);
  if (!row.IsNull(13)) {
    LotSpec lot;
    lot.kind = ParseLotKind(row.Text(13)).value_or(LotKind::kPurchase);
    lot.priority = row.Int(14);
    lot.expires_at = OptionalTime(row, 15);
    transfer.new_lot = lot;
  }
  transfer.created_at = FromUnixMillis(row.Int(16));
  return transfer;
}

Lot LotFromRow(const Row& row) {
  Lot lot;
  lot.id = row.Text(0);
  lot.account_id = row.Text(1);
  lot.tenant_id = row.Text(2);
  lot.kind = ParseLotKind(row.Text(3)).value_or(LotKind::kPurchase);
  lot.priority = row.Int(4);
  lot.expires_at = OptionalTime(row, 5);
  lot.original = C(row, 6);
  lot.remaining = C(row, 7);
  lot.reserved = C(row, 8);
  lot.version = row.Int(9);
  lot.source_transfer_id = row.Text(10);
  lot.reference = row.Text(11);
  lot.created_at = FromUnixMillis(row.Int(12));
  return lot;
}

// The ten history columns from `first` on.
LotChange LotChangeFromRow(const Row& row, size_t first = 0) {
  LotChange change;
  change.lot_id = row.Text(first);
  change.seq = row.Int(first + 1);
  change.transfer_id = row.Text(first + 2);
  change.ordinal = row.Int(first + 3);
  change.change = row.Text(first + 4);
  change.delta_remaining = C(row, first + 5);
  change.delta_reserved = C(row, first + 6);
  change.remaining_after = C(row, first + 7);
  change.reserved_after = C(row, first + 8);
  change.at = FromUnixMillis(row.Int(first + 9));
  return change;
}

std::vector<Lot> LotsFromRows(const storage::Rows& rows) {
  std::vector<Lot> lots;
  lots.reserve(rows.size());
  for (const Row& row : rows) lots.push_back(LotFromRow(row));
  return lots;
}

}  // namespace

bool ValidKey(std::string_view text, size_t max_length) {
  if (text.empty() || text.size() > max_length) return false;
  for (char c : text) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

int64_t Ms(TimePoint t) { return ToUnixMillis(t); }

Value MsOrNull(const std::optional<TimePoint>& t) { return t ? Value(Ms(*t)) : Value(nullptr); }

std::optional<TimePoint> OptionalTime(const Row& row, size_t column) {
  if (row.IsNull(column)) return std::nullopt;
  return FromUnixMillis(row.Int(column));
}

TimePoint Truncate(TimePoint t) { return FromUnixMillis(ToUnixMillis(t)); }

Value TextOrNull(const std::string& text) { return text.empty() ? Value(nullptr) : Value(text); }

Result<std::optional<Account>> FindAccount(Tx& tx, const std::string& id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          tx.Query(Sql("SELECT ", kAccountColumns, " FROM ledger_accounts WHERE id = $1"), {id}));
  if (rows.empty()) return std::optional<Account>();
  return std::optional<Account>(AccountFromRow(rows.front()));
}

namespace {

constexpr std::string_view kAddToBalancesSql =
    "UPDATE ledger_accounts SET debits_pending = debits_pending + $2, debits_posted = debits_posted + $3, "
    "credits_pending = credits_pending + $4, credits_posted = credits_posted + $5 "
    "WHERE id = $1 AND debits_pending BETWEEN $8 AND $9 AND debits_posted BETWEEN $10 AND $11 "
    "AND credits_pending BETWEEN $12 AND $13 AND credits_posted BETWEEN $14 AND $15 "
    "AND ($6 = 0 OR CAST(debits_pending AS NUMERIC) + $2 + debits_posted + $3 <= credits_posted + $5) "
    "AND ($7 = 0 OR CAST(credits_pending AS NUMERIC) + $4 + credits_posted + $5 <= debits_posted + $3)";

storage::Params AddToBalancesParams(const Account& account, const BalanceDelta& d) {
  const int64_t debits_limited = (account.flags & AccountFlags::kDebitsMustNotExceedCredits) ? 1 : 0;
  const int64_t credits_limited = (account.flags & AccountFlags::kCreditsMustNotExceedDebits) ? 1 : 0;
  // Bounds computed here, so that no sum in the statement can overflow: each balance stays within
  // [0, INT64_MAX] after its delta, and the limits compare NUMERIC sums.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  auto ceiling = [](int64_t delta) { return kMax - std::max<int64_t>(delta, 0); };
  auto floor = [](int64_t delta) { return -std::min<int64_t>(delta, 0); };
  return {account.id,
          d.debits_pending,
          d.debits_posted,
          d.credits_pending,
          d.credits_posted,
          debits_limited,
          credits_limited,
          floor(d.debits_pending),
          ceiling(d.debits_pending),
          floor(d.debits_posted),
          ceiling(d.debits_posted),
          floor(d.credits_pending),
          ceiling(d.credits_pending),
          floor(d.credits_posted),
          ceiling(d.credits_posted)};
}

}  // namespace

Result<bool> AddToBalances(Tx& tx, const Account& account, const BalanceDelta& d) {
  CLOZIT_ASSIGN_OR_RETURN(int64_t changed, tx.Exec(kAddToBalancesSql, AddToBalancesParams(account, d)));
  return changed == 1;
}

namespace {

template <uint32_t kFlags>
storage::Params PlatformBalanceParams(const std::string& id, const std::vector<int64_t>& deltas) {
  Account account;
  account.id = id;
  account.flags = kFlags;
  return AddToBalancesParams(account, {deltas[0], deltas[1], deltas[2], deltas[3]});
}

}  // namespace

Result<void> AddToBalancesLater(Tx& tx, const Account& account, const BalanceDelta& d) {
  // A platform account takes a change from nearly every write and is read by none (balances come from
  // statements and ledger-check, which read committed data), so its changes are summed per batch. Only where
  // no limit is checked on the way: accounts without one, and the holds, whose limit every write keeps by
  // itself (a settle credits what it then debits, in one linked batch), so the batch's net change checks it.
  // (So balances read inside a write, e.g. those Ledger::OpenAccount returns, leave out what earlier writes
  // of the batch added to such an account; callers there use only its fixed fields.)
  if (account.tenant_id.empty() &&
      (account.flags == 0 ||
       (account.code == kHoldsCode && account.flags == AccountFlags::kDebitsMustNotExceedCredits))) {
    const std::vector<int64_t> deltas = {d.debits_pending, d.debits_posted, d.credits_pending, d.credits_posted};
    return tx.AddLater(kAddToBalancesSql, account.id, deltas,
                       account.flags == 0 ? &PlatformBalanceParams<0>
                                          : &PlatformBalanceParams<AccountFlags::kDebitsMustNotExceedCredits>);
  }
  return tx.ExecLater(kAddToBalancesSql, AddToBalancesParams(account, d), 1);
}

void AccountDirectory::RememberAfterCommit(Tx& tx, const Account& account) {
  Account fixed = account;
  fixed.debits_pending = fixed.debits_posted = fixed.credits_pending = fixed.credits_posted = Credits();
  CommittedFacts<Account>::RememberAfterCommit(tx, fixed.id, fixed);
}

Result<std::optional<Transfer>> FindTransfer(Tx& tx, const std::string& id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          tx.Query(Sql("SELECT ", kTransferColumns, " FROM ledger_transfers WHERE id = $1"), {id}));
  if (rows.empty()) return std::optional<Transfer>();
  return std::optional<Transfer>(TransferFromRow(rows.front()));
}

namespace {

const std::string& ClaimTransferSql() {
  static const std::string sql =
      Sql("INSERT INTO ledger_transfers (", kTransferColumns,
          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) "
          "ON CONFLICT (id) DO NOTHING");
  return sql;
}

storage::Params ClaimTransferParams(const Transfer& t) {
  Value lot_kind = nullptr, lot_priority = nullptr, lot_expires_at = nullptr;
  if (t.new_lot) {
    lot_kind = std::string(LotKindName(t.new_lot->kind));
    lot_priority = t.new_lot->priority;
    lot_expires_at = MsOrNull(t.new_lot->expires_at);
  }
  return {t.id,
          t.ledger,
          std::string(TransferKindName(t.kind)),
          t.debit_account_id,
          t.credit_account_id,
          t.amount.micros(),
          TextOrNull(t.pending_id),
          MsOrNull(t.expires_at),
          t.code,
          TextOrNull(t.corrects),
          t.reference,
          TextOrNull(t.tenant_id),
          TextOrNull(t.debit_lot_id),
          lot_kind,
          lot_priority,
          lot_expires_at,
          Ms(t.created_at)};
}

}  // namespace

Result<bool> ClaimTransfer(Tx& tx, const Transfer& t) {
  CLOZIT_ASSIGN_OR_RETURN(int64_t inserted, tx.Exec(ClaimTransferSql(), ClaimTransferParams(t)));
  return inserted == 1;
}

Result<void> ClaimTransferLater(Tx& tx, const Transfer& t) {
  return tx.ExecLater(ClaimTransferSql(), ClaimTransferParams(t), 1);
}

namespace {

// The five status columns from `first` on.
PendingStatus PendingStatusFromRow(const Row& row, size_t first) {
  PendingStatus status;
  status.transfer_id = row.Text(first);
  std::string state = row.Text(first + 1);
  status.state = state == "posted"    ? PendingState::kPosted
                 : state == "voided"  ? PendingState::kVoided
                 : state == "expired" ? PendingState::kExpired
                                      : PendingState::kPending;
  status.expires_at = OptionalTime(row, first + 2);
  status.resolved_by = row.Text(first + 3);
  status.resolved_at = OptionalTime(row, first + 4);
  return status;
}

constexpr size_t kTransferColumnCount = 17;
constexpr size_t kPendingStatusColumnCount = 5;
constexpr size_t kLotChangeColumnCount = 10;

// One row per earmark (or one with null earmark columns when there is none). Both transfers and pending
// rows have expires_at, so the transfer's columns are named with their table.
const std::string& PendingWithStatusSql() {
  static const std::string sql = [] {
    return "SELECT " + Qualified(kTransferColumns, "t") +
           ", p.transfer_id, p.state, p.expires_at, p.resolved_by, p.resolved_at, " +
           Qualified(kLotChangeColumns, "h") +
           " FROM ledger_transfers t "
           "LEFT JOIN ledger_pending p ON p.transfer_id = t.id "
           "LEFT JOIN ledger_lot_history h ON h.transfer_id = t.id AND h.delta_reserved > 0 "
           "WHERE t.id = $1 ORDER BY h.ordinal";
  }();
  return sql;
}

}  // namespace

Result<std::optional<PendingStatus>> FindPending(Tx& tx, const std::string& transfer_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, tx.Query("SELECT transfer_id, state, expires_at, resolved_by, resolved_at FROM ledger_pending "
                          "WHERE transfer_id = $1",
                          {transfer_id}));
  if (rows.empty()) return std::optional<PendingStatus>();
  return std::optional<PendingStatus>(PendingStatusFromRow(rows.front(), 0));
}

Result<std::optional<PendingWithStatus>> FindPendingWithStatus(Tx& tx, const std::string& transfer_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(PendingWithStatusSql(), {transfer_id}));
  if (rows.empty()) return std::optional<PendingWithStatus>();
  PendingWithStatus found;
  found.transfer = TransferFromRow(rows.front());
  if (!rows.front().IsNull(kTransferColumnCount))
    found.status = PendingStatusFromRow(rows.front(), kTransferColumnCount);
  constexpr size_t kChange = kTransferColumnCount + kPendingStatusColumnCount;
  for (const Row& row : rows) {
    if (!row.IsNull(kChange)) found.earmarks.push_back(LotChangeFromRow(row, kChange));
  }
  return std::optional<PendingWithStatus>(std::move(found));
}

Result<std::optional<Lot>> FindLot(Tx& tx, const std::string& id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query(Sql("SELECT ", kLotColumns, " FROM ledger_lots WHERE id = $1"), {id}));
  if (rows.empty()) return std::optional<Lot>();
  return std::optional<Lot>(LotFromRow(rows.front()));
}

Result<std::vector<Lot>> BurnDownCandidates(Tx& tx, const std::string& account_id, TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          tx.Query(Sql("SELECT ", kLotColumns,
                                       " FROM ledger_lots WHERE account_id = $1 AND exhausted = 0 "
                                       "AND remaining > reserved AND (expires_at IS NULL OR expires_at > $2)" +
                                           std::string(kBurnDownOrder)),
                                   {account_id, Ms(now)}));
  return LotsFromRows(rows);
}

Result<std::vector<Lot>> AccountLots(Tx& tx, const std::string& account_id, bool include_exhausted) {
  std::string where = include_exhausted ? " FROM ledger_lots WHERE account_id = $1"
                                        : " FROM ledger_lots WHERE account_id = $1 AND exhausted = 0";
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          tx.Query(Sql("SELECT ", kLotColumns, where + std::string(kBurnDownOrder)), {account_id}));
  return LotsFromRows(rows);
}

Result<Credits> SpendableCredits(storage::Tx& tx, const std::string& account_id, TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(auto lots, BurnDownCandidates(tx, account_id, now));
  Credits total;
  for (const Lot& lot : lots) {
    CLOZIT_ASSIGN_OR_RETURN(total, total.Add(lot.Unreserved()));
  }
  return total;
}

Result<void> InsertLot(Tx& tx, const Lot& lot) {
  CLOZIT_TRY(
      tx.Exec("INSERT INTO ledger_lots (id, account_id, tenant_id, kind, kind_rank, priority, expires_at, original, "
              "remaining, reserved, version, source_transfer_id, reference, created_at) "
              "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
              {lot.id, lot.account_id, lot.tenant_id, std::string(LotKindName(lot.kind)), LotKindRank(lot.kind),
               lot.priority, MsOrNull(lot.expires_at), lot.original.micros(), lot.remaining.micros(),
               lot.reserved.micros(), lot.version, lot.source_transfer_id, lot.reference, Ms(lot.created_at)}));
  return Ok();
}

// Only the update that empties a lot names `exhausted`: SQLite maintains a partial index in every statement
// that sets a column of its WHERE clause, whatever the value (ADR 0023).
Result<void> SaveLotAmounts(Tx& tx, const Lot& lot) {
  return tx.ExecLater(lot.remaining.micros() == 0
                          ? "UPDATE ledger_lots SET remaining = $2, reserved = $3, version = $4, exhausted = 1 "
                            "WHERE id = $1"
                          : "UPDATE ledger_lots SET remaining = $2, reserved = $3, version = $4 WHERE id = $1",
                      {lot.id, lot.remaining.micros(), lot.reserved.micros(), lot.version}, 1);
}

Result<void> InsertLotChange(Tx& tx, const LotChange& c) {
  return tx.ExecLater(
      Sql("INSERT INTO ledger_lot_history (", kLotChangeColumns, ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
      {c.lot_id, c.seq, c.transfer_id, c.ordinal, c.change, c.delta_remaining.micros(), c.delta_reserved.micros(),
       c.remaining_after.micros(), c.reserved_after.micros(), Ms(c.at)},
      1);
}

Result<void> AddToLotRecording(Tx& tx, const LotChange& c) {
  CLOZIT_TRY(tx.ExecLater(
      "UPDATE ledger_lots SET remaining = remaining + $2, reserved = reserved + $3, version = version + 1, "
      "exhausted = CASE WHEN remaining + $2 = 0 THEN 1 ELSE exhausted END "
      "WHERE id = $1 AND remaining + $2 >= 0 AND reserved + $3 >= 0",
      {c.lot_id, c.delta_remaining.micros(), c.delta_reserved.micros()}, 1));
  return tx.ExecLater(
      Sql("INSERT INTO ledger_lot_history (", kLotChangeColumns,
          ") SELECT id, version, CAST($2 AS TEXT), $3, CAST($4 AS TEXT), $5, $6, remaining, reserved, $7 "
          "FROM ledger_lots "
          "WHERE id = $1"),
      {c.lot_id, c.transfer_id, c.ordinal, c.change, c.delta_remaining.micros(), c.delta_reserved.micros(), Ms(c.at)},
      1);
}

Result<std::vector<LotChange>> LotChanges(Tx& tx, const std::string& lot_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows,
      tx.Query(Sql("SELECT ", kLotChangeColumns, " FROM ledger_lot_history WHERE lot_id = $1 ORDER BY seq"), {lot_id}));
  std::vector<LotChange> changes;
  changes.reserve(rows.size());
  for (const Row& row : rows) changes.push_back(LotChangeFromRow(row));
  return changes;
}

Result<void> WriteRacingOtherNodes(storage::Database& db, const std::function<Result<void>(Tx&)>& work) {
  Result<void> done = db.Write(work);
  if (!done && done.error().code == ErrorCode::kAlreadyExists) done = db.Write(work);
  return done;
}

}  // namespace clozit::billing::detail
