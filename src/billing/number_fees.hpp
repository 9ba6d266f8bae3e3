// billing/number_fees: what holding a phone number costs (policy P4). The
// telephony module calls this when it buys or releases a number at a
// provider; the billing jobs call ChargeDueFees and ReleaseDue.
//
//   ChargeNumberPurchase  charges the first monthly fee and the regulatory
//                         fee (two linked ledger transfers coded
//                         "fee.phone_number.monthly" / ".regulatory", from the
//                         tenant's credits to the platform's fee revenue) and
//                         records the holding, all in one transaction; or
//                         fails with kInsufficientCredits and charges nothing.
//                         Idempotent per tenant by the caller's key.
//   AbortNumberPurchase   the provider purchase failed after the charge: each
//                         fee transfer is reversed by a correcting transfer
//                         into a replacement lot (a platform failure, so the
//                         tenant gets it back), audited.
//   ReleaseNumber         stops future fees. Nothing is refunded (P4).
//   ChargeDueFees         charges every held number whose monthly anniversary
//                         has passed (by the clock), one transaction per
//                         number, each fee period once. Short of credits, the
//                         number turns past_due with a grace deadline (due date
//                         + grace_days) and is retried on later runs; past the
//                         grace it is flagged release_due and a
//                         `number.release_due` billing event is recorded.
//   ReleaseDue            the numbers flagged for release: the telephony module
//                         releases them at the provider, then calls ReleaseNumber.
//
// Fees are never refundable: the refund eligibility (billing/purchases.hpp)
// refuses fee transfers and held numbers with phone_number_fee_not_refundable.
// Thread-safe; methods block on the database.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "billing/ledger.hpp"
#include "common/clock.hpp"
#include "common/credits.hpp"
#include "common/ids.hpp"
#include "common/result.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::billing {

struct NumberPurchase {
  TenantId tenant_id;
  std::string number_id;    // the telephony module's id: 1..100 printable characters, no spaces or '/'
  std::string e164;         // "+14155550100"
  std::string country;      // ISO 3166-1 alpha-2, upper case
  std::string number_type;  // local | toll_free | mobile
  std::string idempotency_key;
};

enum class HoldingStatus { kActive, kPastDue, kReleaseDue, kReleased, kAborted };
std::string_view HoldingStatusName(HoldingStatus status);  // active, past_due, release_due, released, aborted

struct NumberHolding {
  TenantId tenant_id;
  std::string number_id;
  std::string e164;
  std::string country;
  std::string number_type;
  HoldingStatus status = HoldingStatus::kActive;
  TimePoint purchased_at;
  int64_t periods_charged = 0;
  std::optional<TimePoint> next_fee_at;  // none once released or aborted
  std::optional<TimePoint> grace_until;  // past_due: when it is flagged for release
  std::optional<TimePoint> release_due_at;
  std::optional<TimePoint> released_at;
  /// What the last charged period cost.
  Credits monthly_fee;
  Credits regulatory_fee;
  int64_t price_version = 0;
};

/// The fees of one period of a number, and the price-book version they came from.
struct NumberFeeQuote {
  Credits monthly;
  Credits regulatory;
  int64_t price_version = 0;  // the price-book version
};

/// Prices a number's fee period: (country, number type, at) → fees, inside the caller's transaction.
using NumberFeePricer = std::function<Result<NumberFeeQuote>(storage::Tx& tx, const std::string& country,
                                                             const std::string& number_type, TimePoint at)>;

struct NumberFeeSettings {
  /// How long a number whose fee could not be charged stays before it is flagged for release.
  std::chrono::hours grace{24 * 7};
};

struct FeeRunItem {
  TenantId tenant_id;
  std::string number_id;
  int64_t period = 0;
  Credits amount;  // charged, or due
};

struct FeeRunReport {
  std::vector<FeeRunItem> charged;
  std::vector<FeeRunItem> past_due;     // newly or still short of credits
  std::vector<FeeRunItem> release_due;  // flagged for release by this run
  std::vector<std::string> failed;  // "<tenant id>/<number id>: <error>"; each stays due and is tried again next run
};

class NumberFees {
 public:
  NumberFees(storage::Database& db, Ledger& ledger, privacy::AuditLog& audit, const Clock& clock, Random& random,
             NumberFeePricer pricer, NumberFeeSettings settings = {})
      : db_(db),
        ledger_(ledger),
        audit_(audit),
        clock_(clock),
        random_(random),
        pricer_(std::move(pricer)),
        settings_(settings) {}

  Result<NumberHolding> ChargeNumberPurchase(const NumberPurchase& p);
  Result<void> AbortNumberPurchase(const TenantId& tenant_id, const std::string& number_id);
  Result<NumberHolding> ReleaseNumber(const TenantId& tenant_id, const std::string& number_id);
  /// Up to `limit` numbers whose fee is due, after the first `skip` of them (those an earlier batch of the same
  /// run left due: past due or failed), so that they do not starve the rest.
  Result<FeeRunReport> ChargeDueFees(int64_t limit = 500, int64_t skip = 0);
  Result<std::vector<NumberHolding>> ReleaseDue(int64_t limit = 500);

  Result<NumberHolding> GetHolding(const TenantId& tenant_id, const std::string& number_id);

 private:
  storage::Database& db_;
  Ledger& ledger_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
  Random& random_;
  const NumberFeePricer pricer_;
  const NumberFeeSettings settings_;
};

}  // namespace clozit::billing
