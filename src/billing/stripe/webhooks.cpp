#include "billing/stripe/webhooks.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <optional>

#include "billing/detail/store.hpp"

namespace clozit::billing::stripe {
namespace {

using json = nlohmann::json;

constexpr const char* kProvider = "stripe";

std::string Text(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// An expandable field: the id string, or the expanded object's id.
std::string IdOf(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) return Text(*it, "id");
  return {};
}

int64_t IntOf(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int64_t>() : -1;
}

std::string Upper(std::string text) {
  for (char& c : text) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return text;
}

// A Refund object that Clozit asked for (its metadata names the refund request); nullopt for any other.
std::optional<ReportedRefund> ClozitRefund(const json& refund) {
  const json metadata = refund.value("metadata", json::object());
  const std::string request_id = metadata.is_object() ? Text(metadata, "clozit_refund_request_id") : "";
  if (request_id.empty()) return std::nullopt;
  ReportedRefund reported;
  reported.request_id = request_id;
  reported.refund_id = Text(refund, "id");
  reported.payment_reference = IdOf(refund, "payment_intent");
  if (reported.payment_reference.empty()) reported.payment_reference = IdOf(refund, "charge");
  reported.amount_minor = IntOf(refund, "amount");
  reported.currency = Upper(Text(refund, "currency"));
  reported.status = Text(refund, "status");
  reported.attempt = metadata.is_object() ? Text(metadata, "clozit_refund_attempt") : "";
  return reported;
}

bool IsDispute(const std::string& type) { return type == "charge.dispute.created" || type == "charge.dispute.closed"; }

ProviderDispute DisputeOf(const json& object) {
  ProviderDispute dispute;
  dispute.dispute_id = Text(object, "id");
  dispute.payment_reference = IdOf(object, "payment_intent");
  dispute.amount_minor = IntOf(object, "amount");
  dispute.currency = Upper(Text(object, "currency"));
  dispute.reason = Text(object, "reason");
  dispute.status = Text(object, "status");
  return dispute;
}

// Why a dispute event cannot be applied as it stands, or nullopt.
std::optional<std::string> DisputeRefusal(const std::string& type, const ProviderDispute& dispute) {
  if (!detail::ValidKey(dispute.dispute_id) || dispute.payment_reference.empty() || dispute.amount_minor < 0 ||
      dispute.status.empty()) {
    return "dispute without id, payment_intent, amount or status";
  }
  if (type == "charge.dispute.closed" && dispute.status != "won" && dispute.status != "lost" &&
      dispute.status != "warning_closed") {
    return "a closed dispute with status " + dispute.status;
  }
  return std::nullopt;
}

// Disputes of a payment that arrived before it completed (Stripe does not order its deliveries), applied in the
// order they arrived once the purchase exists: the credits they freeze are the lot's just granted. Inside the
// completion's transaction, so the lot is never spendable without its disputes.
Result<std::string> ApplyDeferredDisputes(storage::Tx& tx, Checkouts& checkouts, const std::string& payment_reference,
                                          TimePoint now) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto deferred, tx.Query("SELECT event_id, type, payload FROM billing_provider_events WHERE provider = $1 AND "
                              "payment_reference = $2 AND outcome = 'deferred' AND type IN ('charge.dispute.created', "
                              "'charge.dispute.closed') ORDER BY received_at, event_id",
                              {std::string(kProvider), payment_reference}));
  std::string applied;
  for (const storage::Row& row : deferred) {
    const std::string event_id = row.Text(0);
    // Stored only after its signature and shape were checked (Handle), so it parses as it did then.
    const json event = json::parse(row.Text(2), nullptr, false);
    const json object =
        event.is_object() ? event.value("data", json::object()).value("object", json::object()) : json::object();
    const ProviderDispute dispute = DisputeOf(object.is_object() ? object : json::object());
    EventOutcome outcome{"rejected", ""};
    if (auto refusal = DisputeRefusal(row.Text(1), dispute)) {
      outcome.detail = *refusal;
    } else {
      CLOZIT_ASSIGN_OR_RETURN(outcome, checkouts.ApplyDispute(tx, dispute, event_id, now));
    }
    CLOZIT_TRY(tx.Exec(
        "UPDATE billing_provider_events SET outcome = $3, detail = $4 WHERE provider = $1 AND "
        "event_id = $2",
        {std::string(kProvider), event_id, outcome.outcome, "applied when the payment completed: " + outcome.detail}));
    applied += "; deferred dispute event " + event_id + " " + outcome.outcome + ": " + outcome.detail;
  }
  return applied;
}

}  // namespace

Result<WebhookResult> StripeWebhooks::Handle(std::string_view signature_header, const std::string& body) {
  const TimePoint received = clock_.Now();
  CLOZIT_TRY(VerifySignature(settings_.signing_secret, signature_header, body, received, settings_.tolerance));

  auto event = json::parse(body, nullptr, false);
  if (!event.is_object() || Text(event, "id").empty() || Text(event, "type").empty() || !event.contains("data") ||
      !event["data"].is_object() || !event["data"].contains("object") || !event["data"]["object"].is_object()) {
    return Error::InvalidArgument("body", "not a Stripe event: expected {id, type, data: {object}}");
  }
  WebhookResult result;
  result.event_id = Text(event, "id");
  result.type = Text(event, "type");
  if (!detail::ValidKey(result.event_id)) return Error::InvalidArgument("body", "malformed event id");
  const json& object = event["data"]["object"];

  auto stored = detail::WriteRacingOtherNodes(db_, [&](storage::Tx& tx) -> Result<void> {
    const TimePoint now = clock_.Now();
    CLOZIT_ASSIGN_OR_RETURN(auto existing, tx.Query("SELECT outcome, detail FROM billing_provider_events WHERE "
                                                    "provider = $1 AND event_id = $2",
                                                    {std::string(kProvider), result.event_id}));
    if (!existing.empty()) {
      result.outcome = "duplicate";
      result.detail = "already received (" + existing.front().Text(0) + ": " + existing.front().Text(1) + ")";
      return Ok();
    }
    std::string payment_reference;
    std::optional<int64_t> amount;
    EventOutcome outcome{"ignored", "event type not handled"};
    if (result.type == "checkout.session.completed" || result.type == "checkout.session.async_payment_succeeded") {
      payment_reference = IdOf(object, "payment_intent");
      if (Text(object, "payment_status") != "paid") {
        outcome = {"ignored", "payment_status is " + Text(object, "payment_status") + ", not paid"};
      } else {
        PaidCheckout paid;
        const json metadata = object.value("metadata", json::object());
        paid.purchase_id = metadata.is_object() ? Text(metadata, "clozit_purchase_id") : "";
        if (paid.purchase_id.empty()) paid.purchase_id = Text(object, "client_reference_id");
        paid.tenant_id = metadata.is_object() ? Text(metadata, "clozit_tenant_id") : "";
        paid.session_id = Text(object, "id");
        paid.payment_reference = payment_reference;
        paid.amount_minor = IntOf(object, "amount_total");
        paid.currency = Upper(Text(object, "currency"));
        if (const int64_t created = IntOf(event, "created"); created > 0) {
          paid.paid_at = TimePoint(std::chrono::seconds(created));
        }
        if (paid.purchase_id.empty()) {
          outcome = {"ignored", "not a Clozit checkout (no clozit_purchase_id)"};
        } else {
          CLOZIT_ASSIGN_OR_RETURN(outcome, checkouts_.CompletePaid(tx, paid, result.event_id, now));
          if (outcome.outcome == "processed") {
            CLOZIT_ASSIGN_OR_RETURN(std::string disputes,
                                    ApplyDeferredDisputes(tx, checkouts_, paid.payment_reference, now));
            outcome.detail += disputes;
          }
        }
      }
    } else if (result.type == "refund.created" || result.type == "refund.updated") {
      const std::optional<ReportedRefund> reported = ClozitRefund(object);
      if (!reported) {
        outcome = {"ignored", "not a refund Clozit asked for (no clozit_refund_request_id)"};
      } else if (reported->refund_id.empty() || reported->payment_reference.empty() || reported->amount_minor < 0) {
        outcome = {"rejected", "refund without id, payment_intent or amount"};
      } else {
        payment_reference = reported->payment_reference;
        amount = reported->amount_minor;
        CLOZIT_ASSIGN_OR_RETURN(outcome, checkouts_.ApplyReportedRefund(tx, *reported, now));
      }
    } else if (IsDispute(result.type)) {
      const ProviderDispute dispute = DisputeOf(object);
      payment_reference = dispute.payment_reference;
      amount = dispute.amount_minor;
      if (auto refusal = DisputeRefusal(result.type, dispute)) {
        outcome = {"rejected", *refusal};
      } else {
        CLOZIT_ASSIGN_OR_RETURN(outcome, checkouts_.ApplyDispute(tx, dispute, result.event_id, now));
      }
    } else if (result.type == "charge.refunded") {
      payment_reference = IdOf(object, "payment_intent");
      if (payment_reference.empty()) payment_reference = Text(object, "id");
      const int64_t refunded = IntOf(object, "amount_refunded");
      if (refunded < 0 || payment_reference.empty()) {
        outcome = {"rejected", "charge without payment_intent or amount_refunded"};
      } else {
        amount = refunded;
        // API versions before 2022-11-15 list the charge's refunds: Clozit's own among them settle their
        // requests first, so the rest is told apart from them without waiting for a refund.* event.
        const json refunds = object.value("refunds", json::object());
        const json data = refunds.is_object() ? refunds.value("data", json::array()) : json::array();
        std::string settled;
        for (const json& refund : data.is_array() ? data : json::array()) {
          if (!refund.is_object()) continue;
          std::optional<ReportedRefund> reported = ClozitRefund(refund);
          if (!reported || reported->refund_id.empty() || reported->amount_minor < 0) continue;
          reported->payment_reference = payment_reference;  // a refund listed on its charge
          CLOZIT_ASSIGN_OR_RETURN(EventOutcome applied, checkouts_.ApplyReportedRefund(tx, *reported, now));
          if (applied.outcome == "processed") settled += applied.detail + "; ";
        }
        ProviderRefund stated{payment_reference, refunded, Upper(Text(object, "currency")), std::nullopt};
        if (const int64_t created = IntOf(event, "created"); created > 0) {
          stated.stated_at = TimePoint(std::chrono::seconds(created));
        }
        CLOZIT_ASSIGN_OR_RETURN(outcome, checkouts_.ApplyProviderRefund(tx, stated, result.event_id, now));
        if (!settled.empty()) outcome = {"processed", settled + outcome.detail};
      }
    }
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO billing_provider_events (provider, event_id, type, payload, payment_reference, amount_minor, "
        "outcome, detail, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        {std::string(kProvider), result.event_id, result.type, body, detail::TextOrNull(payment_reference),
         amount ? storage::Value(*amount) : storage::Value(nullptr), outcome.outcome, outcome.detail,
         detail::Ms(received)}));
    result.outcome = outcome.outcome;
    result.detail = outcome.detail;
    return Ok();
  });
  if (!stored) {
    // Run twice and still a unique key taken: not a redelivery (the second run would have found the event), so
    // let Stripe deliver it again later rather than acknowledge an event nothing recorded.
    if (stored.error().code == ErrorCode::kAlreadyExists) {
      return Error::Make(ErrorCode::kUnavailable,
                         "event " + result.event_id + " raced another write; deliver it again");
    }
    return stored.error();
  }
  return result;
}

}  // namespace clozit::billing::stripe
