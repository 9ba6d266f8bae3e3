// The transfer engine: applies one TransferSpec inside a transaction —
// idempotency check, validation, balance limits, balances, pending status and
// credit lots. Not thread-safe: one Engine serves one work function call.
#pragma once

#include "billing/ledger.hpp"
#include "storage/database.hpp"

namespace clozit::billing::detail {

class Engine {
 public:
  Engine(storage::Tx& tx, TimePoint now, Random& random) : tx_(tx), now_(now), random_(random) {}

  /// Applies `spec`, or returns the stored transfer when `spec` repeats it.
  Result<Transfer> Apply(const TransferSpec& spec);

 private:
  Result<void> Validate(const TransferSpec& spec) const;
  Result<Transfer> ApplyNew(const TransferSpec& spec);
  Result<Transfer> ApplyResolution(const TransferSpec& spec);
  Result<Account> LoadAccount(const std::string& id, const char* field);
  Result<void> TakeFromLots(const Transfer& transfer, const Account& account);
  Result<void> OpenLot(const Transfer& transfer, const Account& account);
  Result<void> ResolveEarmarks(const Transfer& resolution, const Transfer& pending, Credits posted);

  storage::Tx& tx_;
  const TimePoint now_;
  Random& random_;
};

/// kAlreadyExists naming the first field where `spec` differs from the stored transfer, or Ok.
Result<void> SameAsStored(const TransferSpec& spec, const Transfer& stored);

}  // namespace clozit::billing::detail
