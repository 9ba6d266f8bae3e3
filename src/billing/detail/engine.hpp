// The transfer engine: applies one TransferSpec inside a transaction —
// idempotency check, validation, balance limits, balances, pending status and
// credit lots. Not thread-safe: one Engine serves one work function call.
//
// A transfer costs few statements (ADR 0011): accounts' fixed fields come from
// the AccountDirectory, the id is claimed by the INSERT itself, and balances
// change by relative UPDATEs that check the limits against the stored row. So
// work may have written before it fails: an error from Apply must roll the
// caller's transaction back (every caller returns it from its work). Optimistic (Tx::careful), new ids and
// limits that hold are assumed, so a transfer waits for no answer but its lots'; a wrong assumption fails the
// write and the careful run answers it exactly.
#pragma once

#include "billing/detail/store.hpp"
#include "billing/ledger.hpp"
#include "storage/database.hpp"

namespace clozit::billing::detail {

/// Pending transfers this process created, with their earmarks, while no resolution of each has been tried
/// here: rows that never change, so a resolution need not read them back. That one is still pending is the
/// status UPDATE's condition (resolved_by IS NULL), and a resolution reads no lot (AddToLotRecording), so one
/// from these facts reads nothing.
class OpenPendings : public CommittedFacts<PendingWithStatus> {
 public:
  OpenPendings() : CommittedFacts<PendingWithStatus>(kCapacity) {}

 private:
  // Open calls' holds, with room to spare: a call's hold lives minutes, and past this the oldest settle by reading.
  static constexpr size_t kCapacity = 20'000;
};

class Engine {
 public:
  Engine(storage::Tx& tx, TimePoint now, Random& random, AccountDirectory& directory, OpenPendings& pendings)
      : tx_(tx), now_(now), random_(random), directory_(directory), pendings_(pendings) {}

  /// Applies `spec`, or returns the stored transfer when `spec` repeats it.
  Result<Transfer> Apply(const TransferSpec& spec);

 private:
  Result<void> Validate(const TransferSpec& spec) const;
  Result<Transfer> ApplyNew(const TransferSpec& spec);
  Result<Transfer> ApplyResolution(const TransferSpec& spec);
  /// `from_facts`: `found` came from OpenPendings, not from this transaction; a refusal is then decided again
  /// from the database.
  Result<Transfer> Resolve(const TransferSpec& spec, const PendingWithStatus& found, bool from_facts);
  Result<Account> LoadAccount(const std::string& id, const char* field);
  /// Claims the transfer's id by inserting it: nullopt when this write now owns it, else the stored transfer
  /// that `spec` repeats. Optimistic (Tx::careful false), the id is assumed new and the INSERT goes out with
  /// the next statement: a taken id fails the write, which then runs again carefully.
  Result<std::optional<Transfer>> Claim(const TransferSpec& spec, const Transfer& transfer);
  /// The stored transfer when `spec` repeats it (kAlreadyExists when it differs), nullopt when there is none.
  Result<std::optional<Transfer>> Repeated(const TransferSpec& spec);
  Result<void> AddToBalances(const Account& account, const BalanceDelta& delta, Credits amount);
  /// Returns the history rows it wrote (a pending transfer's earmarks).
  Result<std::vector<LotChange>> TakeFromLots(const Transfer& transfer, const Account& account);
  Result<void> OpenLot(const Transfer& transfer, const Account& account);
  /// `earmarks`: the pending transfer's history rows with a positive delta_reserved, in order.
  Result<void> ResolveEarmarks(const Transfer& resolution, const Transfer& pending,
                               const std::vector<LotChange>& earmarks, Credits posted);

  storage::Tx& tx_;
  const TimePoint now_;
  Random& random_;
  AccountDirectory& directory_;
  OpenPendings& pendings_;
};

/// kAlreadyExists naming the first field where `spec` differs from the stored transfer, or Ok.
Result<void> SameAsStored(const TransferSpec& spec, const Transfer& stored);

}  // namespace clozit::billing::detail
