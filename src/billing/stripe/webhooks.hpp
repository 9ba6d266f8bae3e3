// billing/stripe/webhooks: what Stripe's signed event deliveries do.
//
// Handle() checks `Stripe-Signature` against the raw body before parsing
// anything (signature.hpp), then, in one database transaction, stores the
// event verbatim (billing_provider_events, keyed by Stripe's event id, so a
// redelivery is a no-op) together with its effect:
//   checkout.session.completed / checkout.session.async_payment_succeeded
//     with payment_status "paid" → Checkouts::CompletePaid (the lot, once);
//   refund.created / refund.updated of a refund Clozit asked for (metadata
//     clozit_refund_request_id) → Checkouts::ApplyReportedRefund: the outcome
//     of a refund request whose answer from the API was lost, or the failure
//     of an approved one's refund (the request is reversed, credits restored);
//   charge.refunded → the same for Clozit's refunds it lists (older API
//     versions), then Checkouts::ApplyProviderRefund with the charge's
//     cumulative amount_refunded;
//   charge.dispute.created / charge.dispute.closed → Checkouts::ApplyDispute:
//     the disputed share of the purchase's credits frozen, then removed (lost)
//     or released (won, inquiry closed);
//   anything else → stored as ignored.
// An error means "nothing was stored": invalid_argument for a bad signature or
// body (answer 400), unavailable when Stripe should deliver again later.
// Thread-safe.
#pragma once

#include <chrono>
#include <string>

#include "billing/checkouts.hpp"
#include "billing/stripe/signature.hpp"
#include "common/clock.hpp"
#include "storage/database.hpp"

namespace clozit::billing::stripe {

struct WebhookSettings {
  std::string signing_secret;  // whsec_…
  std::chrono::seconds tolerance = kDefaultSignatureTolerance;
};

struct WebhookResult {
  std::string event_id;
  std::string type;
  std::string outcome;  // processed | duplicate | ignored | rejected | deferred
  std::string detail;
};

class StripeWebhooks {
 public:
  StripeWebhooks(storage::Database& db, Checkouts& checkouts, const Clock& clock, WebhookSettings settings)
      : db_(db), checkouts_(checkouts), clock_(clock), settings_(std::move(settings)) {}

  Result<WebhookResult> Handle(std::string_view signature_header, const std::string& body);

 private:
  storage::Database& db_;
  Checkouts& checkouts_;
  const Clock& clock_;
  const WebhookSettings settings_;
};

}  // namespace clozit::billing::stripe
