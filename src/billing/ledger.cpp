#include "billing/ledger.hpp"

#include <limits>
#include <utility>

#include "billing/chart.hpp"
#include "billing/detail/engine.hpp"
#include "billing/detail/store.hpp"

namespace clozit::billing {

using storage::Tx;

Credits Account::Available() const {
  __int128 available =
      static_cast<__int128>(credits_posted.micros()) - debits_posted.micros() - debits_pending.micros();
  available = std::max<__int128>(available, std::numeric_limits<int64_t>::min());
  available = std::min<__int128>(available, std::numeric_limits<int64_t>::max());
  return Credits::FromMicros(static_cast<int64_t>(available));
}

std::string_view TransferKindName(TransferKind kind) {
  switch (kind) {
    case TransferKind::kSingle:
      return "single";
    case TransferKind::kPending:
      return "pending";
    case TransferKind::kPostPending:
      return "post_pending";
    case TransferKind::kVoidPending:
      return "void_pending";
    case TransferKind::kExpirePending:
      return "expire_pending";
  }
  return "unknown";
}

std::optional<TransferKind> ParseTransferKind(std::string_view text) {
  for (TransferKind kind : {TransferKind::kSingle, TransferKind::kPending, TransferKind::kPostPending,
                            TransferKind::kVoidPending, TransferKind::kExpirePending}) {
    if (TransferKindName(kind) == text) return kind;
  }
  return std::nullopt;
}

std::string_view LotKindName(LotKind kind) {
  switch (kind) {
    case LotKind::kPurchase:
      return "purchase";
    case LotKind::kSubscription:
      return "subscription";
    case LotKind::kPromotional:
      return "promotional";
    case LotKind::kReplacement:
      return "replacement";
  }
  return "unknown";
}

std::optional<LotKind> ParseLotKind(std::string_view text) {
  for (LotKind kind : {LotKind::kPurchase, LotKind::kSubscription, LotKind::kPromotional, LotKind::kReplacement}) {
    if (LotKindName(kind) == text) return kind;
  }
  return std::nullopt;
}

int64_t LotKindRank(LotKind kind) {
  switch (kind) {
    case LotKind::kPromotional:
    case LotKind::kReplacement:
      return 0;
    case LotKind::kSubscription:
      return 1;
    case LotKind::kPurchase:
      return 2;
  }
  return 2;
}

std::string_view PendingStateName(PendingState state) {
  switch (state) {
    case PendingState::kPending:
      return "pending";
    case PendingState::kPosted:
      return "posted";
    case PendingState::kVoided:
      return "voided";
    case PendingState::kExpired:
      return "expired";
  }
  return "unknown";
}

Ledger::Ledger(storage::Database& db, const Clock& clock, Random& random)
    : db_(db),
      clock_(clock),
      random_(random),
      directory_(std::make_unique<detail::AccountDirectory>()),
      pendings_(std::make_unique<detail::OpenPendings>()) {}

Ledger::~Ledger() = default;

// ---- inside a caller's transaction

Result<Account> Ledger::OpenAccount(Tx& tx, const AccountSpec& spec) {
  if (!detail::ValidKey(spec.id)) {
    return Error::InvalidArgument("id", "account id must be 1-200 printable characters without spaces");
  }
  if (spec.code.empty() || spec.code.size() > 200) return Error::InvalidArgument("code", "account code is required");
  CLOZIT_ASSIGN_OR_RETURN(auto existing, detail::FindAccount(tx, spec.id));
  if (!existing) {
    CLOZIT_TRY(
        tx.Exec("INSERT INTO ledger_accounts (id, ledger, tenant_id, code, flags, debits_pending, debits_posted, "
                "credits_pending, credits_posted, created_at) VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, $6) "
                "ON CONFLICT DO NOTHING",
                {spec.id, spec.ledger, detail::TextOrNull(spec.tenant_id), spec.code, static_cast<int64_t>(spec.flags),
                 detail::Ms(clock_.Now())}));
    CLOZIT_ASSIGN_OR_RETURN(existing, detail::FindAccount(tx, spec.id));
    if (!existing) return Error::Internal("ledger account " + spec.id + " not found after creating it");
  }
  const Account& account = *existing;
  if (account.ledger != spec.ledger || account.tenant_id != spec.tenant_id || account.code != spec.code ||
      account.flags != spec.flags) {
    return Error::Make(ErrorCode::kAlreadyExists,
                       "ledger account " + spec.id + " already exists with a different ledger, tenant, code or flags",
                       "id");
  }
  directory_->RememberAfterCommit(tx, account);
  return account;
}

Result<std::string> Ledger::EnsureAccount(Tx& tx, const AccountSpec& spec) {
  if (auto known = directory_->Find(spec.id)) {
    if (known->ledger == spec.ledger && known->tenant_id == spec.tenant_id && known->code == spec.code &&
        known->flags == spec.flags) {
      return spec.id;
    }
  }
  CLOZIT_ASSIGN_OR_RETURN(Account account, OpenAccount(tx, spec));
  return account.id;
}

Result<Account> Ledger::GetAccount(Tx& tx, const std::string& account_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto account, detail::FindAccount(tx, account_id));
  if (!account) return Error::NotFound("ledger account " + account_id + " not found");
  return *account;
}

Result<std::vector<Transfer>> Ledger::CreateTransfers(Tx& tx, const std::vector<TransferSpec>& batch, TimePoint now) {
  if (batch.empty()) return Error::InvalidArgument("transfers", "a batch needs at least one transfer");
  if (batch.size() > kMaxBatchSize) {
    return Error::InvalidArgument("transfers", "a batch holds at most " + std::to_string(kMaxBatchSize) + " transfers");
  }
  detail::Engine engine(tx, now, random_, *directory_, *pendings_);
  std::vector<Transfer> applied;
  applied.reserve(batch.size());
  for (size_t index = 0; index < batch.size(); ++index) {
    auto transfer = engine.Apply(batch[index]);
    if (!transfer) {
      Error error = transfer.error();
      if (batch.size() > 1) {
        error.message = "transfer " + std::to_string(index) + " (" + batch[index].id +
                        ") of the linked batch: " + error.message + "; nothing in the batch was applied";
      }
      return error;
    }
    applied.push_back(std::move(transfer).value());
  }
  return applied;
}

Result<Transfer> Ledger::LookupTransfer(Tx& tx, const std::string& transfer_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto transfer, detail::FindTransfer(tx, transfer_id));
  if (!transfer) return Error::NotFound("transfer " + transfer_id + " not found");
  return *transfer;
}

Result<PendingStatus> Ledger::LookupPending(Tx& tx, const std::string& transfer_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto status, detail::FindPending(tx, transfer_id));
  if (!status) return Error::NotFound("pending transfer " + transfer_id + " not found");
  return *status;
}

Result<std::vector<Lot>> Ledger::ListLots(Tx& tx, const std::string& account_id, bool include_exhausted) {
  return detail::AccountLots(tx, account_id, include_exhausted);
}

TransferSpec ExpiryOf(const std::string& pending_id) {
  TransferSpec spec;
  spec.id = pending_id + "/expire";
  spec.kind = TransferKind::kExpirePending;
  spec.pending_id = pending_id;
  return spec;
}

Result<std::vector<Transfer>> Ledger::ExpirePending(Tx& tx, TimePoint now, int64_t limit) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT transfer_id FROM ledger_pending WHERE state = 'pending' "
                                              "AND expires_at IS NOT NULL AND expires_at <= $1 "
                                              "ORDER BY expires_at, transfer_id LIMIT $2",
                                              {detail::Ms(now), limit}));
  std::vector<TransferSpec> batch;
  for (const auto& row : rows) {
    batch.push_back(ExpiryOf(row.Text(0)));
  }
  if (batch.empty()) return std::vector<Transfer>();
  return CreateTransfers(tx, batch, now);
}

Result<std::vector<Transfer>> Ledger::ExpireLots(Tx& tx, TimePoint now, int64_t limit) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows,
      tx.Query("SELECT id, account_id, tenant_id, remaining, reserved FROM ledger_lots "
               "WHERE exhausted = 0 AND remaining > reserved AND expires_at IS NOT NULL AND expires_at <= $1 "
               "ORDER BY expires_at, id LIMIT $2",
               {detail::Ms(now), limit}));
  std::vector<TransferSpec> batch;
  for (const auto& row : rows) {
    const std::string lot_id = row.Text(0);
    const int64_t remaining = row.Int(3);
    AccountSpec expired = ExpiredAccount(PlatformShard(row.Text(2)));
    CLOZIT_TRY(OpenAccount(tx, expired));
    TransferSpec spec;
    // Each sweep of a lot leaves less remaining, so the id never repeats for one lot.
    spec.id = lot_id + "/expire/" + std::to_string(remaining);
    spec.debit_account_id = row.Text(1);
    spec.credit_account_id = expired.id;
    spec.amount = Credits::FromMicros(remaining - row.Int(4));
    spec.code = "lot_expiry";
    spec.reference = lot_id;
    spec.debit_lot_id = lot_id;
    batch.push_back(std::move(spec));
  }
  if (batch.empty()) return std::vector<Transfer>();
  return CreateTransfers(tx, batch, now);
}

// ---- each in its own transaction

Result<Account> Ledger::OpenAccount(const AccountSpec& spec) {
  Account account;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(account, OpenAccount(tx, spec));
    return Ok();
  }));
  return account;
}

Result<Account> Ledger::GetAccount(const std::string& account_id) {
  Account account;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(account, GetAccount(tx, account_id));
    return Ok();
  }));
  return account;
}

Result<std::vector<Transfer>> Ledger::CreateTransfers(const std::vector<TransferSpec>& batch) {
  std::vector<Transfer> applied;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(applied, CreateTransfers(tx, batch, clock_.Now()));
    return Ok();
  }));
  return applied;
}

Result<Transfer> Ledger::CreateTransfer(const TransferSpec& spec) {
  CLOZIT_ASSIGN_OR_RETURN(auto applied, CreateTransfers(std::vector<TransferSpec>{spec}));
  return std::move(applied.front());
}

Result<Transfer> Ledger::LookupTransfer(const std::string& transfer_id) {
  Transfer transfer;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(transfer, LookupTransfer(tx, transfer_id));
    return Ok();
  }));
  return transfer;
}

Result<PendingStatus> Ledger::LookupPending(const std::string& transfer_id) {
  PendingStatus status;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(status, LookupPending(tx, transfer_id));
    return Ok();
  }));
  return status;
}

Result<std::vector<Lot>> Ledger::ListLots(const std::string& account_id, bool include_exhausted) {
  std::vector<Lot> lots;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(lots, ListLots(tx, account_id, include_exhausted));
    return Ok();
  }));
  return lots;
}

Result<std::vector<LotChange>> Ledger::LotHistory(const std::string& lot_id) {
  std::vector<LotChange> changes;
  CLOZIT_TRY(db_.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(changes, detail::LotChanges(tx, lot_id));
    return Ok();
  }));
  return changes;
}

Result<std::vector<Transfer>> Ledger::ExpirePending(TimePoint now, int64_t limit) {
  std::vector<Transfer> expired;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(expired, ExpirePending(tx, now, limit));
    return Ok();
  }));
  return expired;
}

Result<std::vector<Transfer>> Ledger::ExpireLots(TimePoint now, int64_t limit) {
  std::vector<Transfer> expired;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(expired, ExpireLots(tx, now, limit));
    return Ok();
  }));
  return expired;
}

}  // namespace clozit::billing
