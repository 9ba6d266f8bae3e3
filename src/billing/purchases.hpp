// billing/purchases: purchases of credit packs, refund requests (policy P2,
// P4, P5, P7) and platform-error adjustments (P6).
//
// Purchase   an operator records a payment taken elsewhere and grants its
//            credits as a purchase lot linked to the Purchase (the Stripe
//            adapter will call the same path). Idempotent per tenant by key.
// Refunds    a tenant asks about a purchase (or any transaction it was shown:
//            a lot or a ledger transfer id); every request is stored, with an
//            exact reason code (RefundReason). Eligible: a purchase of this
//            tenant, asked at most 7 days after it, whose lot still has an
//            unused, unreserved, unexpired remainder, no other open or approved
//            request for it, and the tenant not suspended for spam, illegal
//            calling or fraud. Used credits, subscription periods, phone-number
//            fees (transfers coded "fee.phone_number.*") and granted credits
//            are never refundable. An operator approves (eligibility re-checked
//            except the window, which applies to submission) or rejects with a
//            reason. Approval earmarks the lot's remainder with a pending
//            transfer, calls the PaymentProvider (idempotency key = request
//            id), then posts the earmark to platform.refunds in the same
//            transaction that marks the request approved; if the provider
//            fails, the earmark is voided, the balances are as before and the
//            request stays pending with the error recorded.
// Adjustments a tenant claims that specific settled usage charges (ledger
//            transfer ids coded "usage.*") were caused by a platform error; the
//            claim copies the evidence from each charge's reservation. An
//            operator approves a credit adjustment (transfers from the revenue
//            the charge went to back into a replacement lot, each a correction
//            of its charge) or replacement credits (a promotional lot), or
//            rejects with a reason. What is restored per charge, over all claims
//            ever, never exceeds what was charged.
// Everything that changes state is audited in the same transaction.
// Thread-safe; methods block on the database and the provider.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "billing/charging.hpp"
#include "billing/ledger.hpp"
#include "billing/payments.hpp"
#include "common/clock.hpp"
#include "common/credits.hpp"
#include "common/ids.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::billing {

struct PurchaseTag {
  static constexpr const char* kPrefix = "pur";
};
struct RefundRequestTag {
  static constexpr const char* kPrefix = "rfd";
};
struct AdjustmentRequestTag {
  static constexpr const char* kPrefix = "adj";
};
using PurchaseId = TypedId<PurchaseTag>;
using RefundRequestId = TypedId<RefundRequestTag>;
using AdjustmentRequestId = TypedId<AdjustmentRequestTag>;

/// How long after a transaction a refund may be asked for (P7).
inline constexpr std::chrono::hours kRefundWindow{24 * 7};

struct PurchaseRequest {
  TenantId tenant_id;
  Credits credits;                // > 0
  int64_t price_minor = 0;        // >= 0, minor currency units
  std::string currency;           // three letters, ISO 4217
  std::string payment_reference;  // 1..200 printable characters
  std::string provider = "operator_grant";
  std::string idempotency_key;
  std::optional<TimePoint> expires_at;  // of the lot
  privacy::Actor actor{"system", "billing"};
  /// When the payer paid, if before it was recorded (a provider's late event): the purchase's time, from which
  /// the refund window runs (P7). Never later than the recording.
  std::optional<TimePoint> paid_at;
};

struct Purchase {
  PurchaseId id;
  TenantId tenant_id;
  Credits credits;
  int64_t price_minor = 0;
  std::string currency;
  std::string provider;
  std::string payment_reference;
  std::string lot_id;
  Credits lot_remaining;  // what is left of the lot now (reserved included)
  TimePoint created_at;
};

/// Why a refund is (not) possible. Stable snake_case names (RefundReasonName).
enum class RefundReason {
  kEligible,
  kUnknownTransaction,           // nothing of this tenant has that id
  kUsedCreditsNotRefundable,     // P2: a usage charge
  kSubscriptionNotRefundable,    // P3: a subscription period or its credits
  kPhoneNumberFeeNotRefundable,  // P4
  kGrantedCreditsNotRefundable,  // promotional or replacement credits were never paid for
  kAccountSuspendedForAbuse,     // P5: spam, illegal calling or fraud
  kRefundWindowExpired,          // P7: more than 7 days after the purchase
  kNothingLeftToRefund,          // the purchase's credits are used, reserved or expired
  kAlreadyRequested,             // another request for this purchase is pending or approved
  kPurchaseDisputed,             // the card holder disputed the payment: the card network decides, not a refund
};
std::string_view RefundReasonName(RefundReason reason);

/// kReversed: approved, then the provider's refund failed (e.g. a closed card); its credits were restored.
enum class RequestStatus { kPending, kApproved, kRejected, kRefused, kReversed };
std::string_view RequestStatusName(RequestStatus status);
std::optional<RequestStatus> ParseRequestStatus(std::string_view name);

struct RefundRequest {
  RefundRequestId id;
  TenantId tenant_id;
  std::string subject_id;
  std::string purchase_id;  // empty when the subject is not a purchase
  std::string reason;
  RequestStatus status = RequestStatus::kPending;
  RefundReason reason_code = RefundReason::kEligible;
  Credits requested_credits;  // the refundable remainder when asked
  std::optional<Credits> refunded_credits;
  std::optional<int64_t> refunded_minor;
  std::string currency;
  std::string provider_refund_id;
  int64_t attempts = 0;
  std::string last_error;
  std::string decision_reason;
  std::string decided_by;
  std::optional<TimePoint> decided_at;
  TimePoint created_at;
  TimePoint updated_at;
};

struct AdjustmentItem {
  std::string transfer_id;
  Credits charged;
  std::string evidence;  // JSON object from the charge's source record
  Credits restored;      // by this request's approval
};

enum class AdjustmentResolution { kCreditAdjustment, kReplacementCredits };
std::string_view AdjustmentResolutionName(AdjustmentResolution resolution);
std::optional<AdjustmentResolution> ParseAdjustmentResolution(std::string_view text);

struct AdjustmentRequest {
  AdjustmentRequestId id;
  TenantId tenant_id;
  std::string description;
  RequestStatus status = RequestStatus::kPending;
  std::optional<AdjustmentResolution> resolution;
  Credits restored;
  std::string lot_id;
  std::vector<AdjustmentItem> items;
  std::string decision_reason;
  std::string decided_by;
  std::optional<TimePoint> decided_at;
  TimePoint created_at;
  TimePoint updated_at;
};

/// A refund the payment provider reports having made for one of Clozit's refund requests (its event).
struct ReportedRefund {
  std::string request_id;  // from the refund's metadata
  std::string refund_id;   // the provider's
  std::string payment_reference;
  int64_t amount_minor = 0;
  std::string currency;  // upper case
  std::string status;    // the provider's: succeeded | pending | failed | canceled | requires_action
  std::string attempt;   // the attempt's hold (its idempotency key), from the metadata; empty on older refunds
};

/// `part` of `whole` money as a share of `credits`, rounded down and never above `credits`: the credits a
/// refund of `part` minor units of a purchase of `credits` for `whole` takes back.
Credits CreditsShare(Credits credits, int64_t part, int64_t whole);

/// Who acts when the payment provider's events change billing records (audit entries, decisions).
inline const privacy::Actor kPaymentProviderActor{"system", "payment_provider"};

/// What a reported refund did to its request, and why.
struct ReportedRefundOutcome {
  bool applied = false;
  std::string detail;
  bool needs_operator = false;  // the report contradicts what was recorded: kept for an operator to settle
};

/// What Purchases::ResolveRefundsInDoubt did, by request id.
struct RefundResolutions {
  std::vector<std::string> approved;  // the provider had paid out
  std::vector<std::string> unpaid;    // the attempt paid nothing (or the request was decided meanwhile)
  std::vector<std::string> failed;    // "id: why" (provider unreachable, refund still pending there)
};

struct AdjustmentDecision {
  AdjustmentResolution resolution = AdjustmentResolution::kCreditAdjustment;
  /// Per charge: what to restore; a charge not named restores all it still may.
  std::vector<std::pair<std::string, Credits>> amounts;
  std::string reason;
  std::optional<TimePoint> expires_at;  // replacement credits only
};

class Purchases {
 public:
  Purchases(storage::Database& db, Ledger& ledger, Charging& charging, PaymentProvider& provider,
            privacy::AuditLog& audit, const Clock& clock, Random& random)
      : db_(db),
        ledger_(ledger),
        charging_(charging),
        provider_(provider),
        audit_(audit),
        clock_(clock),
        random_(random) {}

  Result<Purchase> RecordPurchase(const PurchaseRequest& request);
  /// The same inside a caller's transaction, under the id the caller reserved (a checkout's purchase id).
  Result<Purchase> RecordPurchase(storage::Tx& tx, const PurchaseRequest& request, const PurchaseId& id, TimePoint now);
  Result<Purchase> GetPurchase(const TenantId& tenant_id, const std::string& purchase_id);
  Result<Page<Purchase>> ListPurchases(const TenantId& tenant_id, const PageRequest& page);

  /// Stores the request: pending when eligible, refused with the reason otherwise.
  Result<RefundRequest> RequestRefund(const TenantId& tenant_id, const std::string& subject_id,
                                      const std::string& reason, const privacy::Actor& actor);
  Result<RefundRequest> GetRefundRequest(const TenantId& tenant_id, const std::string& id);
  /// An empty tenant_id (operators) lists every tenant's; a non-empty status ("pending": the review queue)
  /// lists only those in it.
  Result<Page<RefundRequest>> ListRefundRequests(const TenantId& tenant_id, const PageRequest& page,
                                                 const std::string& status = {});
  /// Operator actions: `tenant_id` empty means any tenant.
  Result<RefundRequest> ApproveRefund(const std::string& id, const privacy::Actor& actor);
  Result<RefundRequest> RejectRefund(const std::string& id, const std::string& reason, const privacy::Actor& actor);
  /// Inside the caller's transaction (the one that stores the provider's event). A refund the provider made
  /// approves its request if the request was still waiting to learn the outcome (a lost answer, an unreachable
  /// provider): without this a paid-out refund stayed pending, its credits spendable once the earmark lapsed.
  /// A failed one releases the earmark.
  Result<ReportedRefundOutcome> ApplyReportedRefund(storage::Tx& tx, const ReportedRefund& refund, TimePoint now);
  /// The request's attempt whose outcome is unknown (its answer lost, its earmark perhaps lapsed), settled by
  /// asking the provider: paid out → the request is approved as the provider's report would; pending there →
  /// kUnavailable; nothing paid → the attempt is closed (its earmark released) and the request stays pending
  /// for a new attempt. The request as it stands after; unchanged when nothing was in doubt.
  Result<RefundRequest> ResolveRefundInDoubt(const std::string& id);
  /// The billing job's sweep: every pending request whose attempt's earmark lapsed in doubt, up to `limit`.
  /// Until then the provider's refund events for their payments wait (Checkouts), so they must be settled.
  Result<RefundResolutions> ResolveRefundsInDoubt(int64_t limit);

  Result<AdjustmentRequest> RequestAdjustment(const TenantId& tenant_id, const std::vector<std::string>& transfer_ids,
                                              const std::string& description, const privacy::Actor& actor);
  Result<AdjustmentRequest> GetAdjustmentRequest(const TenantId& tenant_id, const std::string& id);
  /// As ListRefundRequests.
  Result<Page<AdjustmentRequest>> ListAdjustmentRequests(const TenantId& tenant_id, const PageRequest& page,
                                                         const std::string& status = {});
  Result<AdjustmentRequest> ApproveAdjustment(const std::string& id, const AdjustmentDecision& decision,
                                              const privacy::Actor& actor);
  Result<AdjustmentRequest> RejectAdjustment(const std::string& id, const std::string& reason,
                                             const privacy::Actor& actor);

 private:
  // Earmarks `amount` of the purchase's lot for the request's next attempt at the provider; the hold's id.
  Result<std::string> HoldForRefund(storage::Tx& tx, const RefundRequest& request, const Purchase& purchase,
                                    Credits amount, TimePoint now);
  // An approved request's refund failed at the provider afterwards: the removed credits come back.
  Result<ReportedRefundOutcome> ReverseApprovedRefund(storage::Tx& tx, const RefundRequest& request,
                                                      const std::string& hold_id, const ReportedRefund& refund,
                                                      TimePoint now);
  // The attempt that `hold` earmarked for is known to have paid nothing: the earmark goes (released, or expired
  // when lapsed) and the request no longer names an attempt.
  Result<void> SettleUnpaidAttempt(storage::Tx& tx, const RefundRequest& request, const PendingStatus& hold,
                                   const std::string& why, TimePoint now);
  // Ends an earmark still pending: released while it holds, expired (as the sweep would) once it lapsed.
  Result<void> CloseHold(storage::Tx& tx, const PendingStatus& hold, TimePoint now);
  // The provider refused or failed the refund: the earmarked credits are the tenant's again.
  Result<void> ReleaseRefundHold(storage::Tx& tx, const std::string& hold_id, TimePoint now);
  // The provider refunded: the held credits leave the lot with the request's approval.
  // `at_most`: what the refunded money buys back, when less than the hold (the rest is released).
  Result<RefundRequest> CompleteRefund(storage::Tx& tx, const std::string& id, const std::string& hold_id,
                                       const RefundReceipt& receipt, const std::string& currency,
                                       const privacy::Actor& actor, TimePoint now,
                                       std::optional<Credits> at_most = std::nullopt);

  storage::Database& db_;
  Ledger& ledger_;
  Charging& charging_;
  PaymentProvider& provider_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
  Random& random_;
};

}  // namespace clozit::billing
