// telephony: calls — what Clozit asked a carrier to do and what the carrier
// reported back.
//
// Calls::Place stores the call first (status queued), then asks the account's
// provider; the provider's call id is attached when it answers. A refusal
// marks the row failed with the stable error code and returns the error, so no
// row is left in a non-terminal state by a failed placement.
//
// Carrier events arrive through Calls::Record (from the webhook endpoints,
// after the signature was verified). Each distinct provider event is stored
// once (duplicates collide on the provider's event id); a call's status only
// moves forward (queued → initiated → ringing → in_progress → final), so a
// late or reordered event is recorded as `stale` without regressing the call.
// An event that beats the provider's REST answer is kept `pending` and applied
// when the call id is attached. Every raw webhook is stored too, in the same
// transaction as its effect.
//
// Two repairs for what carriers lose (ADR 0013). A placement whose answer was
// lost may still have made a call: each call's webhook URL names Clozit's call
// id (`?call=`), so when events of an unknown carrier call name a call that was
// marked failed (`not_placed`), that call adopts the carrier's id
// (`hangup_cause` `orphan_hung_up`) and the carrier call is hung up — the
// dialer was told it failed and may dial again. And Reconcile asks the carrier
// about calls that have not moved for a while, ending those it reports over
// (their final webhook was lost: Twilio does not retry status callbacks).
//
// Thread-safe; all state is in the Database. No compliance check happens
// here: the dialer does that before it calls Place.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/page.hpp"
#include "storage/database.hpp"
#include "telephony/accounts.hpp"
#include "telephony/call_event.hpp"

namespace clozit::telephony {

// clang-format off
struct CallTag { static constexpr const char* kPrefix = "cal"; };
// clang-format on
using CallId = TypedId<CallTag>;

struct PlaceCallInput {
  std::string from;  // caller id, E.164 (or chosen from `from_pool_id` by the caller of Place)
  std::string to;    // callee, E.164
  bool machine_detection = false;
  int64_t ring_timeout_seconds = 30;  // 5..600
  int64_t max_duration_seconds = 3600;
  std::string account_id;  // empty: the tenant's default account (ProviderAccounts::ForTenant)
  std::string media_stream_url;
};

struct Call {
  CallId id;
  std::string tenant_id;
  std::string account_id;
  ProviderKind provider = ProviderKind::kTwilio;
  std::string provider_call_id;
  std::string direction = "outbound";
  std::string from;
  std::string to;
  std::string status;  // queued | initiated | ringing | in_progress | completed | busy | no_answer | failed | canceled
  bool machine_detection = false;
  std::string answered_by;  // "" | human | machine | fax | unknown
  std::string hangup_cause;
  std::string error_code;  // why placement failed
  std::optional<int64_t> duration_seconds;
  TimePoint created_at;
  std::optional<TimePoint> ringing_at;
  std::optional<TimePoint> answered_at;
  std::optional<TimePoint> ended_at;
  TimePoint updated_at;
};

struct StoredCallEvent {
  std::string kind;
  std::string outcome;
  std::string answered_by;
  std::string detail;
  std::optional<int64_t> sequence;
  std::optional<int64_t> duration_seconds;
  std::optional<TimePoint> occurred_at;
  TimePoint received_at;
  std::string effect;  // applied | stale | pending
};

struct CallDetail {
  Call call;
  std::vector<StoredCallEvent> events;
};

struct CallFilter {
  std::string status;
  std::string to;
  std::string from;
};

/// What happened to one webhook delivery.
enum class EventEffect { kApplied, kStale, kPending, kDuplicate };
std::string_view EffectName(EventEffect effect);

/// A verified webhook as received, stored for audit.
struct RawDelivery {
  std::string url;
  std::string body;
};

struct CallSettings {
  /// The externally visible origin carriers post webhooks to ("https://clozit.example.com"); read per call,
  /// because an embedded server learns its port only once it listens.
  std::function<std::string()> public_base_url;
  /// Mints the token the call's media stream must present (telephony/media/media_token.hpp), for Clozit's call
  /// id. Set: every call streams its audio to /v1/media/<provider> on public_base_url unless the caller names
  /// another stream URL. Unset (or returning ""): no stream unless named.
  std::function<std::string(const std::string& call_id)> media_token;
};

class Calls {
 public:
  Calls(storage::Database& db, ProviderAccounts& accounts, const Clock& clock, Random& random, CallSettings settings);

  /// Stores the call, asks the provider, attaches its call id. Provider failures come back with their stable
  /// code (invalid_argument on "to", unauthenticated, rate_limited, unavailable) and leave the call `failed`.
  Result<Call> Place(const std::string& tenant_id, const PlaceCallInput& input);

  /// Records one verified, parsed carrier event for `account` (idempotent; see the header comment).
  Result<EventEffect> Record(const ProviderAccount& account, const CallEvent& event, const RawDelivery& raw);
  /// Stores a verified delivery that did not parse into a call event (outcome "ignored: …").
  Result<void> RecordUnparsed(const ProviderAccount& account, const RawDelivery& raw, const std::string& why);

  /// Asks each non-final call's carrier whose row has not changed for `quiet` and ends the calls the carrier
  /// reports over (the outcome it reports; Telnyx does not say: completed if answered, else failed), as an event
  /// `reconciled:<carrier id>`. Returns how many calls it ended; a carrier that cannot be asked is skipped.
  /// Reads the calls `page_size` at a time.
  Result<int64_t> Reconcile(std::chrono::milliseconds quiet, int64_t page_size = 100);

  Result<Page<Call>> List(const std::string& tenant_id, const CallFilter& filter, const PageRequest& page);
  Result<CallDetail> Get(const std::string& tenant_id, const std::string& id);

  /// Where carriers post this account's events.
  std::string MediaStreamUrl(const ProviderAccount& account) const;
  std::string WebhookUrl(const ProviderAccount& account) const;

 private:
  /// Asks the carrier about one call; true when it was over there and ended here.
  Result<bool> ReconcileOne(const std::string& account_id, const std::string& carrier_id, bool answered);
  /// Applies `event` to the call as far as it moves it forward.
  Result<EventEffect> Fold(storage::Tx& tx, const std::string& call_id, int64_t call_rank, const std::string& answered,
                           const StoredCallEvent& event, int64_t now);

  storage::Database& db_;
  ProviderAccounts& accounts_;
  const Clock& clock_;
  Random& random_;
  CallSettings settings_;
};

}  // namespace clozit::telephony
