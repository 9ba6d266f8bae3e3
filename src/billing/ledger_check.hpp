// billing/ledger_check: re-derives the ledger from its transfers and reports
// every invariant that does not hold (`clozit admin ledger-check`).
//
// Checked, in one read snapshot:
//  - per ledger, Σ debits = Σ credits (posted and pending);
//  - every account's four balances equal the sums of its transfers, and its
//    balance-limit flags hold;
//  - every pending transfer is resolved at most once, by a transfer that
//    matches it (post ≤ pending, void/expire = pending), and its status row
//    agrees;
//  - no lot below zero or over-reserved; every lot's remaining and reserved
//    equal the sums of its history, each history row's transfer exists and
//    each lot-account transfer's history matches its amount; a lot account's
//    balance equals the sum of its lots;
//  - every reservation's hold is a pending transfer of its tenant, it is
//    settled at most once, and a settled reservation's usage equals what was
//    posted; platform holds never keep posted credits;
//  - every phone-number fee period and subscription charge recorded by
//    billing equals the ledger transfers that charged it.
//
// Read-only; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"
#include "storage/database.hpp"

namespace clozit::billing {

/// Human-readable descriptions of every breach found; empty when the books are clean.
Result<std::vector<std::string>> CheckLedger(storage::Database& db);

}  // namespace clozit::billing
