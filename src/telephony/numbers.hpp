// telephony: phone numbers and caller-id pools.
//
// A tenant searches a carrier's inventory through its default account (its own,
// else the platform's), buys a number, imports one it already holds at its own
// account, lists, and releases them. Buying charges the first monthly and the
// regulatory fee through billing::NumberFees BEFORE the carrier is asked, and
// aborts that charge (the tenant gets it back) when the carrier refuses; without
// credits nothing is bought. Releasing a bought number releases it at the
// carrier, then stops its fees; imported numbers carry no Clozit fees and stay
// at the tenant's carrier account. When the carrier's answer to a purchase or a
// release is lost (unavailable), its number list decides whether it happened
// (ADR 0013), then or later: SweepPurchasing settles numbers still `purchasing`
// after a grace period (ADR 0016). ReleaseDue is the periodic job that releases
// numbers whose fees went unpaid past their grace.
//
// Caller-id pools group a tenant's active numbers; PickFromPool hands out the
// least recently used one. Thread-safe; state in the Database; provider calls
// are made outside transactions.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "billing/number_fees.hpp"
#include "common/ids.hpp"
#include "common/page.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"
#include "telephony/accounts.hpp"

namespace clozit::telephony {

// clang-format off
struct PhoneNumberTag { static constexpr const char* kPrefix = "num"; };
struct CallerIdPoolTag { static constexpr const char* kPrefix = "cip"; };
// clang-format on
using PhoneNumberId = TypedId<PhoneNumberTag>;
using CallerIdPoolId = TypedId<CallerIdPoolTag>;

struct PhoneNumber {
  PhoneNumberId id;
  std::string tenant_id;
  std::string account_id;
  ProviderKind provider = ProviderKind::kTwilio;
  std::string provider_number_id;
  std::string e164;
  std::string country;
  std::string number_type;                // local | toll_free
  std::vector<std::string> capabilities;  // what Clozit asked the carrier for ("voice")
  std::string source;                     // purchased | imported
  std::string status;                     // purchasing | active | released | failed
  std::string error_code;                 // failed: why the carrier refused
  std::optional<TimePoint> purchased_at;
  std::optional<TimePoint> next_fee_at;  // bought numbers only
  std::optional<TimePoint> released_at;
  TimePoint created_at;
  TimePoint updated_at;
};

struct NumberSearchInput {
  std::string country = "US";
  std::string area_code;
  std::string contains;
  int limit = 10;
  std::string account_id;  // empty: the tenant's default account
};

struct BuyNumberInput {
  std::string phone_number;  // E.164, from a search
  std::string account_id;    // empty: the tenant's default account
  std::string idempotency_key;
};

struct CallerIdPool {
  CallerIdPoolId id;
  std::string tenant_id;
  std::string name;
  std::vector<std::string> number_ids;
  TimePoint created_at;
  TimePoint updated_at;
};

/// A number chosen to present as caller id.
struct CallerId {
  std::string e164;
  std::string account_id;
};

class PhoneNumbers {
 public:
  /// `fees` null: buying is refused (unavailable) — there is no way to charge for it.
  PhoneNumbers(storage::Database& db, ProviderAccounts& accounts, billing::NumberFees* fees, privacy::AuditLog& audit,
               const Clock& clock, Random& random);

  Result<std::vector<AvailableNumber>> Search(const std::string& tenant_id, const NumberSearchInput& input);
  Result<PhoneNumber> Buy(const std::string& tenant_id, const BuyNumberInput& input, const privacy::Actor& actor);
  /// A number the tenant holds at its own account (not a platform account).
  Result<PhoneNumber> Import(const std::string& tenant_id, const std::string& phone_number,
                             const std::string& account_id, const privacy::Actor& actor);
  Result<Page<PhoneNumber>> List(const std::string& tenant_id, const std::string& status, const PageRequest& page);
  Result<PhoneNumber> Get(const std::string& tenant_id, const std::string& id);
  Result<PhoneNumber> Release(const std::string& tenant_id, const std::string& id, const privacy::Actor& actor);
  /// Releases the numbers billing flagged release_due (fees unpaid past grace); returns how many.
  Result<int64_t> ReleaseDue(int64_t limit = 100);
  /// Settles numbers left `purchasing` for longer than `grace` (the carrier's answer to the buy was lost, or a
  /// write after it failed) by the carrier's number list: held → active, its one charge standing; not held →
  /// failed, the charge returned as replacement credits; never charged → the row is deleted. A number whose
  /// carrier cannot be asked stays for the next run. Returns how many were settled (ADR 0016).
  Result<int64_t> SweepPurchasing(std::chrono::milliseconds grace, int64_t limit = 100);

  Result<CallerIdPool> CreatePool(const std::string& tenant_id, const std::string& name, const privacy::Actor& actor);
  Result<Page<CallerIdPool>> ListPools(const std::string& tenant_id, const PageRequest& page);
  Result<CallerIdPool> GetPool(const std::string& tenant_id, const std::string& id);
  Result<void> DeletePool(const std::string& tenant_id, const std::string& id, const privacy::Actor& actor);
  Result<CallerIdPool> AddToPool(const std::string& tenant_id, const std::string& pool_id, const std::string& number_id,
                                 const privacy::Actor& actor);
  Result<CallerIdPool> RemoveFromPool(const std::string& tenant_id, const std::string& pool_id,
                                      const std::string& number_id, const privacy::Actor& actor);
  /// The pool's least recently used active number (and marks it used).
  Result<CallerId> PickFromPool(const std::string& tenant_id, const std::string& pool_id);

 private:
  Result<ProviderAccount> AccountFor(const std::string& tenant_id, const std::string& account_id);
  Result<PhoneNumber> FinishRelease(const PhoneNumber& number, const privacy::Actor& actor);
  /// `purchasing` → active, once: the carrier holds the number and `holding` is what billing charged for it.
  Result<void> Activate(const PhoneNumber& number, const std::string& provider_number_id,
                        const billing::NumberHolding& holding, const privacy::Actor& actor);
  /// `purchasing` → failed: the carrier does not hold the number, so its charge is returned (AbortNumberPurchase).
  Result<void> FailPurchase(const PhoneNumber& number, ErrorCode why);

  storage::Database& db_;
  ProviderAccounts& accounts_;
  billing::NumberFees* fees_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
  Random& random_;
};

/// "toll_free" for NANP toll-free prefixes (8xx), else "local".
std::string NumberTypeOf(const std::string& e164);

}  // namespace clozit::telephony
