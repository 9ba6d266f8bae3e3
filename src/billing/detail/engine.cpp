#include "billing/detail/engine.hpp"

#include <algorithm>
#include <string>

#include "billing/detail/store.hpp"
#include "common/ids.hpp"

namespace clozit::billing::detail {
namespace {

constexpr size_t kMaxTextLength = 200;

bool IsResolution(TransferKind kind) {
  return kind == TransferKind::kPostPending || kind == TransferKind::kVoidPending ||
         kind == TransferKind::kExpirePending;
}

std::string NormalizedCode(const TransferSpec& spec) {
  return spec.code.empty() ? std::string(TransferKindName(spec.kind)) : spec.code;
}

std::string TimeText(const std::optional<TimePoint>& t) { return t ? FormatRfc3339(*t) : "none"; }

std::string Quote(const std::string& text) { return "\"" + text + "\""; }

Error Invalid(std::string field, std::string message) {
  return Error::InvalidArgument(std::move(field), std::move(message));
}

Error Differs(const std::string& id, const std::string& field, const std::string& stored,
              const std::string& requested) {
  return Error::Make(ErrorCode::kAlreadyExists,
                     "transfer " + id + " already exists with a different " + field + " (stored " + stored +
                         ", requested " + requested + "); a retry must repeat the original fields",
                     field);
}

// True when the account's limits hold. `amount` is what the transfer adds, for the message.
Result<void> CheckLimits(const Account& before, const Account& after, Credits amount) {
  if (after.flags & AccountFlags::kDebitsMustNotExceedCredits) {
    __int128 debits = static_cast<__int128>(after.debits_pending.micros()) + after.debits_posted.micros();
    if (debits > after.credits_posted.micros()) {
      return Error::Make(ErrorCode::kInsufficientCredits,
                         "insufficient credits: " + before.Available().ToString() + " available, " + amount.ToString() +
                             " requested (account " + before.id + ")",
                         "amount");
    }
  }
  if (after.flags & AccountFlags::kCreditsMustNotExceedDebits) {
    __int128 credits = static_cast<__int128>(after.credits_pending.micros()) + after.credits_posted.micros();
    if (credits > after.debits_posted.micros()) {
      return Error::Make(
          ErrorCode::kInsufficientCredits,
          "credits to account " + before.id + " would exceed its debits (" + amount.ToString() + " requested)",
          "amount");
    }
  }
  return Ok();
}

// A ManualClock pinned at `now`, so lot ids carry the transfer's instant.
std::string NewLotId(TimePoint now, Random& random) {
  ManualClock at(now);
  return "lot_" + NewUlid(at, random);
}

}  // namespace

Result<void> SameAsStored(const TransferSpec& spec, const Transfer& stored) {
  const std::string& id = stored.id;
  if (spec.kind != stored.kind) {
    return Differs(id, "kind", std::string(TransferKindName(stored.kind)), std::string(TransferKindName(spec.kind)));
  }
  std::string code = NormalizedCode(spec);
  if (code != stored.code) return Differs(id, "code", Quote(stored.code), Quote(code));
  if (spec.corrects != stored.corrects) return Differs(id, "corrects", Quote(stored.corrects), Quote(spec.corrects));
  if (IsResolution(spec.kind)) {
    if (spec.pending_id != stored.pending_id) {
      return Differs(id, "pending_id", Quote(stored.pending_id), Quote(spec.pending_id));
    }
    if (!spec.debit_account_id.empty() && spec.debit_account_id != stored.debit_account_id) {
      return Differs(id, "debit_account_id", Quote(stored.debit_account_id), Quote(spec.debit_account_id));
    }
    if (!spec.credit_account_id.empty() && spec.credit_account_id != stored.credit_account_id) {
      return Differs(id, "credit_account_id", Quote(stored.credit_account_id), Quote(spec.credit_account_id));
    }
    bool amount_matches = spec.kind == TransferKind::kPostPending
                              ? spec.amount == stored.amount
                              : spec.amount.micros() == 0 || spec.amount == stored.amount;
    if (!amount_matches) return Differs(id, "amount", stored.amount.ToString(), spec.amount.ToString());
    if (!spec.reference.empty() && spec.reference != stored.reference) {
      return Differs(id, "reference", Quote(stored.reference), Quote(spec.reference));
    }
    return Ok();
  }
  if (spec.debit_account_id != stored.debit_account_id) {
    return Differs(id, "debit_account_id", Quote(stored.debit_account_id), Quote(spec.debit_account_id));
  }
  if (spec.credit_account_id != stored.credit_account_id) {
    return Differs(id, "credit_account_id", Quote(stored.credit_account_id), Quote(spec.credit_account_id));
  }
  if (spec.amount != stored.amount) return Differs(id, "amount", stored.amount.ToString(), spec.amount.ToString());
  std::optional<TimePoint> expires_at;
  if (spec.expires_at) expires_at = Truncate(*spec.expires_at);
  if (expires_at != stored.expires_at) {
    return Differs(id, "expires_at", TimeText(stored.expires_at), TimeText(expires_at));
  }
  if (spec.reference != stored.reference) {
    return Differs(id, "reference", Quote(stored.reference), Quote(spec.reference));
  }
  if (!spec.tenant_id.empty() && spec.tenant_id != stored.tenant_id) {
    return Differs(id, "tenant_id", Quote(stored.tenant_id), Quote(spec.tenant_id));
  }
  if (spec.debit_lot_id != stored.debit_lot_id) {
    return Differs(id, "debit_lot_id", Quote(stored.debit_lot_id), Quote(spec.debit_lot_id));
  }
  if (spec.new_lot.has_value() != stored.new_lot.has_value()) {
    return Differs(id, "new_lot", stored.new_lot ? "a lot" : "none", spec.new_lot ? "a lot" : "none");
  }
  if (spec.new_lot) {
    const LotSpec& a = *stored.new_lot;
    const LotSpec& b = *spec.new_lot;
    if (a.kind != b.kind) {
      return Differs(id, "new_lot.kind", std::string(LotKindName(a.kind)), std::string(LotKindName(b.kind)));
    }
    if (a.priority != b.priority) {
      return Differs(id, "new_lot.priority", std::to_string(a.priority), std::to_string(b.priority));
    }
    std::optional<TimePoint> lot_expiry;
    if (b.expires_at) lot_expiry = Truncate(*b.expires_at);
    if (lot_expiry != a.expires_at) {
      return Differs(id, "new_lot.expires_at", TimeText(a.expires_at), TimeText(lot_expiry));
    }
  }
  return Ok();
}

Result<Transfer> Engine::Apply(const TransferSpec& spec) {
  if (auto valid = Validate(spec); !valid) {
    // An expiry that has passed since the transfer committed does not make its retry invalid: a repeat is
    // answered with the stored transfer, as it would have been a moment before.
    const std::string& field = valid.error().field;
    if ((field == "expires_at" || field == "new_lot.expires_at") && ValidKey(spec.id)) {
      CLOZIT_ASSIGN_OR_RETURN(auto stored, Repeated(spec));
      if (stored) return *stored;
    }
    return valid.error();
  }
  if (!spec.corrects.empty()) {
    CLOZIT_ASSIGN_OR_RETURN(auto corrected, FindTransfer(tx_, spec.corrects));
    if (!corrected)
      return Error::Make(ErrorCode::kNotFound, "corrected transfer " + spec.corrects + " not found", "corrects");
  }
  return IsResolution(spec.kind) ? ApplyResolution(spec) : ApplyNew(spec);
}

Result<std::optional<Transfer>> Engine::Repeated(const TransferSpec& spec) {
  CLOZIT_ASSIGN_OR_RETURN(auto existing, FindTransfer(tx_, spec.id));
  if (existing) CLOZIT_TRY(SameAsStored(spec, *existing));
  return existing;
}

Result<void> Engine::Validate(const TransferSpec& spec) const {
  if (!ValidKey(spec.id)) return Invalid("id", "transfer id must be 1-200 printable characters without spaces");
  if (spec.amount.micros() < 0) return Invalid("amount", "amount must not be negative");
  if (spec.code.size() > kMaxTextLength) return Invalid("code", "code is longer than 200 characters");
  if (spec.reference.size() > kMaxTextLength) return Invalid("reference", "reference is longer than 200 characters");
  if (spec.tenant_id.size() > kMaxTextLength) return Invalid("tenant_id", "tenant_id is longer than 200 characters");
  if (!spec.corrects.empty() && spec.corrects == spec.id)
    return Invalid("corrects", "a transfer cannot correct itself");
  if (IsResolution(spec.kind)) {
    if (spec.pending_id.empty()) return Invalid("pending_id", "post, void and expire name the pending transfer");
    if (spec.expires_at) return Invalid("expires_at", "only a pending transfer has an expiry");
    if (spec.new_lot) return Invalid("new_lot", "only a single-phase credit opens a lot");
    if (!spec.debit_lot_id.empty()) return Invalid("debit_lot_id", "a resolution takes from the pending earmarks");
    return Ok();
  }
  if (spec.debit_account_id.empty()) return Invalid("debit_account_id", "debit account is required");
  if (spec.credit_account_id.empty()) return Invalid("credit_account_id", "credit account is required");
  if (spec.debit_account_id == spec.credit_account_id) {
    return Invalid("credit_account_id", "debit and credit accounts must differ");
  }
  if (spec.amount.micros() == 0) return Invalid("amount", "amount must be positive");
  if (!spec.pending_id.empty()) return Invalid("pending_id", "only post, void and expire name a pending transfer");
  if (spec.kind == TransferKind::kSingle && spec.expires_at) {
    return Invalid("expires_at", "only a pending transfer has an expiry");
  }
  if (spec.expires_at && *spec.expires_at <= now_) return Invalid("expires_at", "expiry must be in the future");
  if (spec.new_lot && spec.new_lot->expires_at && *spec.new_lot->expires_at <= now_) {
    return Invalid("new_lot.expires_at", "a lot's expiry must be in the future");
  }
  return Ok();
}

Result<Account> Engine::LoadAccount(const std::string& id, const char* field) {
  if (auto known = directory_.Find(id)) return *known;
  CLOZIT_ASSIGN_OR_RETURN(auto account, FindAccount(tx_, id));
  if (!account) return Error::Make(ErrorCode::kNotFound, "ledger account " + id + " not found", field);
  directory_.RememberAfterCommit(tx_, *account);
  return *account;
}

Result<std::optional<Transfer>> Engine::Claim(const TransferSpec& spec, const Transfer& transfer) {
  if (!tx_.careful()) {
    CLOZIT_TRY(ClaimTransferLater(tx_, transfer));
    return std::optional<Transfer>();
  }
  CLOZIT_ASSIGN_OR_RETURN(bool claimed, ClaimTransfer(tx_, transfer));
  if (claimed) return std::optional<Transfer>();
  CLOZIT_ASSIGN_OR_RETURN(auto stored, Repeated(spec));
  if (!stored) return Error::Internal("transfer " + spec.id + " is taken but cannot be read");
  return stored;
}

Result<void> Engine::AddToBalances(const Account& account, const BalanceDelta& delta, Credits amount) {
  // Optimistic, the limits are assumed to hold: a refused UPDATE fails the write, and the careful run says why.
  if (!tx_.careful()) return detail::AddToBalancesLater(tx_, account, delta);
  CLOZIT_ASSIGN_OR_RETURN(bool changed, detail::AddToBalances(tx_, account, delta));
  if (changed) return Ok();
  // The UPDATE refused: read the row to say why (the rare path pays the read the common one skips).
  CLOZIT_ASSIGN_OR_RETURN(auto before, FindAccount(tx_, account.id));
  if (!before) return Error::Internal("ledger account " + account.id + " vanished during a transfer");
  Account after = *before;
  CLOZIT_ASSIGN_OR_RETURN(after.debits_pending, before->debits_pending.Add(Credits::FromMicros(delta.debits_pending)));
  CLOZIT_ASSIGN_OR_RETURN(after.debits_posted, before->debits_posted.Add(Credits::FromMicros(delta.debits_posted)));
  CLOZIT_ASSIGN_OR_RETURN(after.credits_pending,
                          before->credits_pending.Add(Credits::FromMicros(delta.credits_pending)));
  CLOZIT_ASSIGN_OR_RETURN(after.credits_posted, before->credits_posted.Add(Credits::FromMicros(delta.credits_posted)));
  if (after.debits_pending.micros() < 0 || after.credits_pending.micros() < 0) {
    return Error::Internal("pending balance of " + account.id + " would go negative");
  }
  CLOZIT_TRY(CheckLimits(*before, after, amount));
  return Error::Internal("the balances of ledger account " + account.id + " did not change");
}

Result<Transfer> Engine::ApplyNew(const TransferSpec& spec) {
  const bool pending = spec.kind == TransferKind::kPending;
  Account debit, credit;
  bool debit_lots = false, credit_lots = false;
  Transfer transfer;
  auto prepare = [&]() -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(debit, LoadAccount(spec.debit_account_id, "debit_account_id"));
    CLOZIT_ASSIGN_OR_RETURN(credit, LoadAccount(spec.credit_account_id, "credit_account_id"));
    if (debit.ledger != credit.ledger) return Invalid("credit_account_id", "the accounts are on different ledgers");
    // A tenant's statement finds its transfers by tenant_id alone (no index on the accounts, ADR 0015).
    if (!debit.tenant_id.empty() && !credit.tenant_id.empty() && debit.tenant_id != credit.tenant_id) {
      return Invalid("credit_account_id", "a transfer cannot move credits between two tenants' accounts");
    }

    std::string tenant = !debit.tenant_id.empty() ? debit.tenant_id : credit.tenant_id;
    if (!spec.tenant_id.empty()) {
      bool matches = spec.tenant_id == debit.tenant_id || spec.tenant_id == credit.tenant_id;
      if (!tenant.empty() && !matches) return Invalid("tenant_id", "tenant_id is neither account's tenant");
      if (tenant.empty()) tenant = spec.tenant_id;
    }
    credit_lots = (credit.flags & AccountFlags::kLots) != 0;
    debit_lots = (debit.flags & AccountFlags::kLots) != 0;
    if (credit_lots && !spec.new_lot) {
      return Invalid("new_lot", "a credit to lot account " + credit.id + " opens a lot: new_lot is required");
    }
    if (credit_lots && pending) return Invalid("kind", "a credit to a lot account must be single-phase");
    if (!credit_lots && spec.new_lot) return Invalid("new_lot", "account " + credit.id + " has no lots");
    if (!debit_lots && !spec.debit_lot_id.empty()) {
      return Invalid("debit_lot_id", "account " + debit.id + " has no lots");
    }
    transfer.id = spec.id;
    transfer.ledger = debit.ledger;
    transfer.kind = spec.kind;
    transfer.debit_account_id = debit.id;
    transfer.credit_account_id = credit.id;
    transfer.amount = spec.amount;
    if (spec.expires_at) transfer.expires_at = Truncate(*spec.expires_at);
    transfer.code = NormalizedCode(spec);
    transfer.corrects = spec.corrects;
    transfer.reference = spec.reference;
    transfer.tenant_id = tenant;
    transfer.debit_lot_id = spec.debit_lot_id;
    if (spec.new_lot) {
      transfer.new_lot = spec.new_lot;
      if (spec.new_lot->expires_at) transfer.new_lot->expires_at = Truncate(*spec.new_lot->expires_at);
    }
    transfer.created_at = Truncate(now_);
    return Ok();
  };
  // A repeat is answered with the stored transfer, as if it had been looked up before anything else.
  if (auto prepared = prepare(); !prepared) {
    CLOZIT_ASSIGN_OR_RETURN(auto stored, Repeated(spec));
    if (stored) return *stored;
    return prepared.error();
  }
  // The id is claimed by this transaction's insert; a repeat finds the stored row.
  CLOZIT_ASSIGN_OR_RETURN(auto repeated, Claim(spec, transfer));
  if (repeated) return *repeated;
  const int64_t amount = spec.amount.micros();
  BalanceDelta debit_delta, credit_delta;
  if (pending) {
    debit_delta.debits_pending = amount;
    credit_delta.credits_pending = amount;
  } else {
    debit_delta.debits_posted = amount;
    credit_delta.credits_posted = amount;
  }
  CLOZIT_TRY(AddToBalances(debit, debit_delta, spec.amount));
  if (pending && !(credit.flags & AccountFlags::kCreditsMustNotExceedDebits)) {
    // Pending credits count against no limit of this account: nothing but a broken invariant can refuse it.
    CLOZIT_TRY(AddToBalancesLater(tx_, credit, credit_delta));
  } else {
    CLOZIT_TRY(AddToBalances(credit, credit_delta, spec.amount));
  }
  if (pending) {
    CLOZIT_TRY(tx_.ExecLater("INSERT INTO ledger_pending (transfer_id, expires_at, state) VALUES ($1, $2, 'pending')",
                             {transfer.id, MsOrNull(transfer.expires_at)}, 1));
  }
  std::vector<LotChange> earmarks;
  if (debit_lots) {
    CLOZIT_ASSIGN_OR_RETURN(earmarks, TakeFromLots(transfer, debit));
  }
  if (credit_lots) CLOZIT_TRY(OpenLot(transfer, credit));
  if (pending) {
    PendingStatus status{transfer.id, PendingState::kPending, transfer.expires_at, {}, {}};
    pendings_.RememberAfterCommit(tx_, transfer.id, PendingWithStatus{transfer, status, std::move(earmarks)});
  }
  return transfer;
}

Result<std::vector<LotChange>> Engine::TakeFromLots(const Transfer& transfer, const Account& account) {
  const bool earmark = transfer.kind == TransferKind::kPending;
  std::vector<Lot> lots;
  if (!transfer.debit_lot_id.empty()) {
    // A named lot may have expired: that is how the expiry sweep empties it.
    CLOZIT_ASSIGN_OR_RETURN(auto lot, FindLot(tx_, transfer.debit_lot_id));
    if (!lot || lot->account_id != account.id) {
      return Error::Make(ErrorCode::kNotFound, "lot " + transfer.debit_lot_id + " not found in account " + account.id,
                         "debit_lot_id");
    }
    lots.push_back(*lot);
  } else {
    CLOZIT_ASSIGN_OR_RETURN(lots, BurnDownCandidates(tx_, account.id, now_));
  }
  int64_t needed = transfer.amount.micros();
  int64_t ordinal = 0;
  std::vector<LotChange> changes;
  for (Lot& lot : lots) {
    if (needed == 0) break;
    int64_t take = std::min(needed, lot.Unreserved().micros());
    if (take <= 0) continue;
    LotChange change;
    change.lot_id = lot.id;
    change.seq = ++lot.version;
    change.transfer_id = transfer.id;
    change.ordinal = ordinal++;
    change.at = transfer.created_at;
    if (earmark) {
      lot.reserved = Credits::FromMicros(lot.reserved.micros() + take);
      change.change = "earmark";
      change.delta_reserved = Credits::FromMicros(take);
    } else {
      lot.remaining = Credits::FromMicros(lot.remaining.micros() - take);
      change.change = "debit";
      change.delta_remaining = Credits::FromMicros(-take);
    }
    change.remaining_after = lot.remaining;
    change.reserved_after = lot.reserved;
    CLOZIT_TRY(SaveLotAmounts(tx_, lot));
    CLOZIT_TRY(InsertLotChange(tx_, change));
    changes.push_back(std::move(change));
    needed -= take;
  }
  if (needed > 0) {
    Credits found = Credits::FromMicros(transfer.amount.micros() - needed);
    std::string where =
        transfer.debit_lot_id.empty() ? "in unexpired lots" : "unreserved in lot " + transfer.debit_lot_id;
    return Error::Make(ErrorCode::kInsufficientCredits,
                       "insufficient credits: " + found.ToString() + " available " + where + ", " +
                           transfer.amount.ToString() + " requested",
                       "amount");
  }
  return changes;
}

Result<void> Engine::OpenLot(const Transfer& transfer, const Account& account) {
  Lot lot;
  lot.id = NewLotId(now_, random_);
  lot.account_id = account.id;
  lot.tenant_id = account.tenant_id;
  lot.kind = transfer.new_lot->kind;
  lot.priority = transfer.new_lot->priority;
  lot.expires_at = transfer.new_lot->expires_at;
  lot.original = transfer.amount;
  lot.remaining = transfer.amount;
  lot.source_transfer_id = transfer.id;
  lot.reference = transfer.reference;
  lot.created_at = transfer.created_at;
  lot.version = 1;
  CLOZIT_TRY(InsertLot(tx_, lot));
  LotChange change;
  change.lot_id = lot.id;
  change.seq = lot.version;
  change.transfer_id = transfer.id;
  change.change = "grant";
  change.delta_remaining = transfer.amount;
  change.remaining_after = lot.remaining;
  change.reserved_after = lot.reserved;
  change.at = transfer.created_at;
  return InsertLotChange(tx_, change);
}

Result<Transfer> Engine::ApplyResolution(const TransferSpec& spec) {
  // Taken whatever becomes of this resolution (the facts may be stale after it: the next one reads); used
  // only optimistically.
  std::optional<PendingWithStatus> open = pendings_.Take(spec.pending_id);
  if (open && !tx_.careful()) return Resolve(spec, *open, true);
  CLOZIT_ASSIGN_OR_RETURN(auto found, FindPendingWithStatus(tx_, spec.pending_id));
  if (!found) {
    CLOZIT_ASSIGN_OR_RETURN(auto stored, Repeated(spec));
    if (stored) return *stored;
    return Error::Make(ErrorCode::kNotFound, "pending transfer " + spec.pending_id + " not found", "pending_id");
  }
  return Resolve(spec, *found, false);
}

Result<Transfer> Engine::Resolve(const TransferSpec& spec, const PendingWithStatus& found, bool from_facts) {
  // A repeat is answered with the stored transfer before any of the checks below, which it could fail now.
  // Facts are checked against the database before they refuse anything (they were forgotten above).
  auto refuse = [&](Error error) -> Result<Transfer> {
    if (from_facts) return ApplyResolution(spec);
    CLOZIT_ASSIGN_OR_RETURN(auto stored, Repeated(spec));
    if (stored) return *stored;
    return error;
  };
  const Transfer& pending = found.transfer;
  if (pending.kind != TransferKind::kPending) {
    return refuse(Invalid("pending_id", "transfer " + pending.id + " is not pending"));
  }
  if (!found.status) return Error::Internal("pending transfer " + pending.id + " has no status row");
  const PendingStatus& status = *found.status;
  if (status.state != PendingState::kPending) {
    return refuse(Error::Make(ErrorCode::kConflict,
                              "pending transfer " + pending.id + " was already " +
                                  std::string(PendingStateName(status.state)) + " by " + status.resolved_by,
                              "pending_id"));
  }
  const bool expired = pending.expires_at && *pending.expires_at <= now_;
  if (spec.kind == TransferKind::kExpirePending && !expired) {
    return refuse(Error::Make(
        ErrorCode::kConflict,
        "pending transfer " + pending.id + " has not expired (it expires at " + TimeText(pending.expires_at) + ")",
        "pending_id"));
  }
  if (spec.kind != TransferKind::kExpirePending && expired) {
    return refuse(Error::Make(ErrorCode::kConflict,
                              "pending transfer " + pending.id + " expired at " + TimeText(pending.expires_at),
                              "pending_id"));
  }
  if (!spec.debit_account_id.empty() && spec.debit_account_id != pending.debit_account_id) {
    return refuse(Invalid("debit_account_id", "debit account differs from the pending transfer's"));
  }
  if (!spec.credit_account_id.empty() && spec.credit_account_id != pending.credit_account_id) {
    return refuse(Invalid("credit_account_id", "credit account differs from the pending transfer's"));
  }
  const bool post = spec.kind == TransferKind::kPostPending;
  if (post && spec.amount > pending.amount) {
    return refuse(Invalid(
        "amount", "cannot post " + spec.amount.ToString() + ": the pending amount is " + pending.amount.ToString()));
  }
  if (!post && spec.amount.micros() != 0 && spec.amount != pending.amount) {
    return refuse(Invalid("amount", "a void or expiry releases the whole pending amount " + pending.amount.ToString()));
  }
  const Credits posted = post ? spec.amount : Credits();
  auto debit = LoadAccount(pending.debit_account_id, "debit_account_id");
  if (!debit) return refuse(debit.error());
  auto credit = LoadAccount(pending.credit_account_id, "credit_account_id");
  if (!credit) return refuse(credit.error());

  Transfer transfer;
  transfer.id = spec.id;
  transfer.ledger = pending.ledger;
  transfer.kind = spec.kind;
  transfer.debit_account_id = pending.debit_account_id;
  transfer.credit_account_id = pending.credit_account_id;
  transfer.amount = post ? posted : pending.amount;
  transfer.pending_id = pending.id;
  transfer.code = NormalizedCode(spec);
  transfer.corrects = spec.corrects;
  transfer.reference = spec.reference.empty() ? pending.reference : spec.reference;
  transfer.tenant_id = pending.tenant_id;
  transfer.created_at = Truncate(now_);
  CLOZIT_ASSIGN_OR_RETURN(auto repeated, Claim(spec, transfer));
  if (repeated) return *repeated;

  // The status was read pending above and the claim made this the only resolution (UNIQUE pending_id), so
  // the statements below cannot be refused short of a broken invariant: none of them waits for an answer.
  // A resolution only releases pending amounts, and posts at most what was pending: no limit can refuse it.
  std::string state = post ? "posted" : spec.kind == TransferKind::kVoidPending ? "voided" : "expired";
  CLOZIT_TRY(tx_.ExecLater(kResolvePendingStatus, {pending.id, state, transfer.id, Ms(transfer.created_at)}, 1));
  BalanceDelta debit_delta, credit_delta;
  debit_delta.debits_pending = -pending.amount.micros();
  debit_delta.debits_posted = posted.micros();
  credit_delta.credits_pending = -pending.amount.micros();
  credit_delta.credits_posted = posted.micros();
  CLOZIT_TRY(AddToBalancesLater(tx_, *debit, debit_delta));
  CLOZIT_TRY(AddToBalancesLater(tx_, *credit, credit_delta));
  if (debit->flags & AccountFlags::kLots) CLOZIT_TRY(ResolveEarmarks(transfer, pending, found.earmarks, posted));
  return transfer;
}

Result<void> Engine::ResolveEarmarks(const Transfer& resolution, const Transfer& pending,
                                     const std::vector<LotChange>& earmarks, Credits posted) {
  int64_t to_post = posted.micros();
  int64_t released = 0;
  int64_t ordinal = 0;
  for (const LotChange& earmark : earmarks) {
    const int64_t held = earmark.delta_reserved.micros();
    const int64_t consumed = std::min(to_post, held);
    to_post -= consumed;
    released += held;
    LotChange change;
    change.lot_id = earmark.lot_id;
    change.transfer_id = resolution.id;
    change.ordinal = ordinal++;
    change.change = consumed > 0 ? "post" : "release";
    change.delta_remaining = Credits::FromMicros(-consumed);
    change.delta_reserved = Credits::FromMicros(-held);
    change.at = resolution.created_at;
    // The lot is not read: other reservations of the tenant change it all the time, and the UPDATE refuses to
    // take it below zero (a broken invariant), which fails the write.
    CLOZIT_TRY(AddToLotRecording(tx_, change));
  }
  if (to_post != 0 || released != pending.amount.micros()) {
    return Error::Internal("earmarks of pending transfer " + pending.id + " do not match its amount");
  }
  return Ok();
}

}  // namespace clozit::billing::detail
