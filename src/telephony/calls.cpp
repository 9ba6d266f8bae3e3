#include "telephony/calls.hpp"

#include <regex>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "http/message.hpp"
#include "telephony/detail/values.hpp"

namespace clozit::telephony {
namespace {

using detail::IsE164;
using detail::OptionalTime;

// clang-format off
struct CallEventTag { static constexpr const char* kPrefix = "cev"; };
struct RawEventTag { static constexpr const char* kPrefix = "rwe"; };
// clang-format on
using CallEventId = TypedId<CallEventTag>;
using RawEventId = TypedId<RawEventTag>;

constexpr int64_t kRankQueued = 0;
constexpr int64_t kRankInitiated = 1;
constexpr int64_t kRankRinging = 2;
constexpr int64_t kRankInProgress = 3;
constexpr int64_t kRankFinal = 4;

constexpr std::string_view kCallSelect =
    "SELECT id, tenant_id, account_id, provider, provider_call_id, direction, from_number, to_number, status, "
    "machine_detection, answered_by, hangup_cause, error_code, duration_seconds, created_at, ringing_at, answered_at, "
    "ended_at, updated_at FROM telephony_calls ";

storage::Value Nullable(const std::optional<int64_t>& value) {
  return value ? storage::Value(*value) : storage::Value(nullptr);
}

Call CallFromRow(const storage::Row& row) {
  Call call;
  call.id = CallId(row.Text(0));
  call.tenant_id = row.Text(1);
  call.account_id = row.Text(2);
  call.provider = row.Text(3) == "telnyx" ? ProviderKind::kTelnyx : ProviderKind::kTwilio;
  call.provider_call_id = row.Text(4);
  call.direction = row.Text(5);
  call.from = row.Text(6);
  call.to = row.Text(7);
  call.status = row.Text(8);
  call.machine_detection = row.Bool(9);
  call.answered_by = row.Text(10);
  call.hangup_cause = row.Text(11);
  call.error_code = row.Text(12);
  call.duration_seconds = row.OptionalInt(13);
  call.created_at = FromUnixMillis(row.Int(14));
  call.ringing_at = OptionalTime(row, 15);
  call.answered_at = OptionalTime(row, 16);
  call.ended_at = OptionalTime(row, 17);
  call.updated_at = FromUnixMillis(row.Int(18));
  return call;
}

std::string_view AnsweredByName(AnsweredBy answered_by) {
  switch (answered_by) {
    case AnsweredBy::kHuman:
      return "human";
    case AnsweredBy::kMachine:
      return "machine";
    case AnsweredBy::kFax:
      return "fax";
    case AnsweredBy::kUnknown:
      return "unknown";
  }
  return "unknown";
}

StoredCallEvent ToStored(const CallEvent& event, TimePoint received_at) {
  StoredCallEvent stored;
  stored.kind = std::string(KindName(event.kind));
  stored.outcome = std::string(OutcomeName(event.outcome));
  // Only AMD results say who answered; other events leave it open.
  stored.answered_by = event.kind == CallEventKind::kMachineDetection || event.answered_by != AnsweredBy::kUnknown
                           ? std::string(AnsweredByName(event.answered_by))
                           : std::string();
  stored.detail = event.detail;
  if (event.kind == CallEventKind::kEnded && event.provider == ProviderKind::kTwilio) {
    stored.detail = std::string(OutcomeName(event.outcome));  // Twilio's final CallStatus is its hangup cause
  }
  stored.sequence = event.sequence;
  stored.duration_seconds = event.duration_seconds;
  stored.occurred_at = event.occurred_at;
  stored.received_at = received_at;
  return stored;
}

StoredCallEvent EventFromRow(const storage::Row& row) {
  StoredCallEvent event;
  event.kind = row.Text(0);
  event.outcome = row.Text(1);
  event.answered_by = row.Text(2);
  event.detail = row.Text(3);
  event.sequence = row.OptionalInt(4);
  event.duration_seconds = row.OptionalInt(5);
  event.occurred_at = OptionalTime(row, 6);
  event.received_at = FromUnixMillis(row.Int(7));
  event.effect = row.Text(8);
  return event;
}

constexpr std::string_view kEventSelect =
    "SELECT kind, outcome, answered_by, detail, sequence_number, duration_seconds, occurred_at, received_at, effect, "
    "id "
    "FROM telephony_call_events ";

// The call's status and rank after `event`, when the event moves it.
std::optional<std::pair<std::string, int64_t>> Target(const StoredCallEvent& event) {
  if (event.kind == "initiated") return std::pair{std::string("initiated"), kRankInitiated};
  if (event.kind == "ringing") return std::pair{std::string("ringing"), kRankRinging};
  if (event.kind == "answered") return std::pair{std::string("in_progress"), kRankInProgress};
  if (event.kind == "ended") return std::pair{event.outcome, kRankFinal};
  return std::nullopt;
}

// The Clozit call id a webhook URL names (`?call=`, see Place); empty when none.
std::string NamedCall(const std::string& url) {
  auto query = url.find('?');
  if (query == std::string::npos) return {};
  for (auto& [name, value] : http::ParseQuery(std::string_view(url).substr(query + 1))) {
    if (name == "call") return value;
  }
  return {};
}

}  // namespace

std::string_view EffectName(EventEffect effect) {
  switch (effect) {
    case EventEffect::kApplied:
      return "applied";
    case EventEffect::kStale:
      return "stale";
    case EventEffect::kPending:
      return "pending";
    case EventEffect::kDuplicate:
      return "duplicate";
  }
  return "applied";
}

Calls::Calls(storage::Database& db, ProviderAccounts& accounts, const Clock& clock, Random& random,
             CallSettings settings)
    : db_(db), accounts_(accounts), clock_(clock), random_(random), settings_(std::move(settings)) {}

std::string Calls::WebhookUrl(const ProviderAccount& account) const {
  std::string base = settings_.public_base_url ? settings_.public_base_url() : std::string();
  while (base.ends_with('/')) base.pop_back();
  if (account.provider == ProviderKind::kTwilio) return base + "/v1/webhooks/twilio/" + account.id.str() + "/status";
  return base + "/v1/webhooks/telnyx/" + account.id.str();
}

std::string Calls::MediaStreamUrl(const ProviderAccount& account) const {
  std::string base = settings_.public_base_url ? settings_.public_base_url() : std::string();
  while (base.ends_with('/')) base.pop_back();
  // The carrier dials the WebSocket at the same origin it posts webhooks to.
  if (base.starts_with("https://")) {
    base = "wss://" + base.substr(8);
  } else if (base.starts_with("http://")) {
    base = "ws://" + base.substr(7);
  }
  return base + "/v1/media/" + std::string(ProviderName(account.provider));
}

Result<Call> Calls::Place(const std::string& tenant_id, const PlaceCallInput& input) {
  if (!IsE164(input.to)) return Error::InvalidArgument("to", "to must be an E.164 number such as +14155550100");
  if (!IsE164(input.from)) return Error::InvalidArgument("from", "from must be an E.164 number such as +14155550100");
  if (input.ring_timeout_seconds < 5 || input.ring_timeout_seconds > 600) {
    return Error::InvalidArgument("ring_timeout_seconds", "ring_timeout_seconds must be between 5 and 600");
  }
  if (input.max_duration_seconds < 10 || input.max_duration_seconds > 14'400) {
    return Error::InvalidArgument("max_duration_seconds", "max_duration_seconds must be between 10 and 14400");
  }
  ProviderAccount account;
  if (input.account_id.empty()) {
    CLOZIT_ASSIGN_OR_RETURN(account, accounts_.ForTenant(tenant_id));
  } else {
    auto found = accounts_.Find(input.account_id);
    // Another tenant's account is as absent as a missing one.
    if (!found || (!found->tenant_id.empty() && found->tenant_id != tenant_id)) {
      return Error::Make(ErrorCode::kNotFound, "no such provider account", "account_id");
    }
    account = std::move(found).value();
  }
  CLOZIT_ASSIGN_OR_RETURN(auto provider, accounts_.ProviderFor(account));

  const CallId id = CallId::New(clock_, random_);
  const int64_t created = ToUnixMillis(clock_.Now());
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO telephony_calls (id, tenant_id, account_id, provider, provider_call_id, direction, from_number, "
        "to_number, status, status_rank, machine_detection, created_at, updated_at) VALUES ($1, $2, $3, $4, NULL, "
        "'outbound', $5, $6, 'queued', $7, $8, $9, $9)",
        {id.str(), tenant_id, account.id.str(), std::string(ProviderName(account.provider)), input.from, input.to,
         kRankQueued, int64_t{input.machine_detection ? 1 : 0}, created}));
    return Ok();
  }));

  PlaceCallRequest request;
  request.from = input.from;
  request.to = input.to;
  request.machine_detection = input.machine_detection;
  request.ring_timeout = std::chrono::seconds(input.ring_timeout_seconds);
  request.max_duration = std::chrono::seconds(input.max_duration_seconds);
  // The call id lets events of a call whose placement answer was lost find it (see Record).
  request.status_callback_url = WebhookUrl(account) + "?call=" + id.str();
  request.media_stream_url = input.media_stream_url;
  if (settings_.media_token) request.media_stream_token = settings_.media_token(id.str());
  if (request.media_stream_url.empty() && !request.media_stream_token.empty()) {
    request.media_stream_url = MediaStreamUrl(account);
  }
  request.client_state = id.str();
  auto placed = provider->PlaceCall(request);
  if (!placed) {
    const int64_t now = ToUnixMillis(clock_.Now());
    CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
      CLOZIT_TRY(
          tx.Exec("UPDATE telephony_calls SET status = 'failed', status_rank = $2, error_code = $3, "
                  "hangup_cause = 'not_placed', ended_at = $4, updated_at = $4 WHERE id = $1",
                  {id.str(), kRankFinal, std::string(CodeName(placed.error().code)), now}));
      return Ok();
    }));
    return placed.error();
  }

  const std::string provider_call_id = placed->call_id;
  auto attached = db_.Write([&](storage::Tx& tx) -> Result<void> {
    const int64_t now = ToUnixMillis(clock_.Now());
    CLOZIT_TRY(tx.Exec(
        "UPDATE telephony_calls SET provider_call_id = $2, status = CASE WHEN status_rank < $3 THEN 'initiated' ELSE "
        "status END, status_rank = CASE WHEN status_rank < $3 THEN $3 ELSE status_rank END, updated_at = $4 "
        "WHERE id = $1",
        {id.str(), provider_call_id, kRankInitiated, now}));
    // Events that arrived before the carrier's REST answer did.
    CLOZIT_ASSIGN_OR_RETURN(
        auto pending,
        tx.Query(std::string(kEventSelect) + "WHERE account_id = $1 AND provider_call_id = $2 AND effect = 'pending' "
                                             "ORDER BY id",
                 {account.id.str(), provider_call_id}));
    for (const auto& row : pending) {
      StoredCallEvent event = EventFromRow(row);
      CLOZIT_ASSIGN_OR_RETURN(
          auto current, tx.QueryOne("SELECT status_rank, answered_by FROM telephony_calls WHERE id = $1", {id.str()}));
      CLOZIT_ASSIGN_OR_RETURN(EventEffect effect, Fold(tx, id.str(), current.Int(0), current.Text(1), event, now));
      CLOZIT_TRY(tx.Exec("UPDATE telephony_call_events SET effect = $2 WHERE id = $1",
                         {row.Text(9), std::string(EffectName(effect))}));
    }
    return Ok();
  });
  if (!attached) {
    // The carrier has the call but we could not record its id: end it there and here rather than leave a
    // queued row whose events can never find it.
    (void)provider->Hangup(provider_call_id);
    (void)db_.Write([&](storage::Tx& tx) -> Result<void> {
      CLOZIT_TRY(
          tx.Exec("UPDATE telephony_calls SET status = 'failed', status_rank = $2, error_code = $3, "
                  "hangup_cause = 'not_recorded', ended_at = $4, updated_at = $4 WHERE id = $1",
                  {id.str(), kRankFinal, std::string(CodeName(attached.error().code)), ToUnixMillis(clock_.Now())}));
      return Ok();
    });
    return attached.error();
  }
  CLOZIT_ASSIGN_OR_RETURN(auto detail, Get(tenant_id, id.str()));
  return detail.call;
}

Result<EventEffect> Calls::Fold(storage::Tx& tx, const std::string& call_id, int64_t call_rank,
                                const std::string& answered, const StoredCallEvent& event, int64_t now) {
  bool changed = false;
  if (!event.answered_by.empty() && (answered.empty() || (answered == "unknown" && event.answered_by != "unknown"))) {
    CLOZIT_ASSIGN_OR_RETURN(int64_t updated,
                            tx.Exec("UPDATE telephony_calls SET answered_by = $2, updated_at = $3 WHERE id = $1",
                                    {call_id, event.answered_by, now}));
    changed = updated > 0;
  }
  auto target = Target(event);
  if (target && target->second > call_rank) {
    const int64_t at = event.occurred_at ? ToUnixMillis(*event.occurred_at) : ToUnixMillis(event.received_at);
    const bool final = target->second == kRankFinal;
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t updated,
        tx.Exec("UPDATE telephony_calls SET status = $2, status_rank = $3, "
                "ringing_at = CASE WHEN $3 = 2 AND ringing_at IS NULL THEN $4 ELSE ringing_at END, "
                "answered_at = CASE WHEN $3 = 3 AND answered_at IS NULL THEN $4 ELSE answered_at END, "
                "ended_at = CASE WHEN $3 = 4 AND ended_at IS NULL THEN $4 ELSE ended_at END, "
                "duration_seconds = CASE WHEN $3 = 4 THEN $5 ELSE duration_seconds END, "
                "hangup_cause = CASE WHEN $3 = 4 THEN CAST($6 AS TEXT) ELSE hangup_cause END, updated_at = $7 "
                "WHERE id = $1 AND status_rank < $3",
                {call_id, target->first, target->second, at,
                 final ? Nullable(event.duration_seconds) : storage::Value(nullptr), final ? event.detail : "", now}));
    changed = changed || updated > 0;
  } else if (target && target->second < kRankFinal) {
    // Too late to move the call, but when it rang or was answered is still news (a reordered delivery).
    const int64_t at = event.occurred_at ? ToUnixMillis(*event.occurred_at) : ToUnixMillis(event.received_at);
    CLOZIT_TRY(
        tx.Exec("UPDATE telephony_calls SET "
                "ringing_at = CASE WHEN $2 = 2 AND ringing_at IS NULL THEN $3 ELSE ringing_at END, "
                "answered_at = CASE WHEN $2 = 3 AND answered_at IS NULL THEN $3 ELSE answered_at END "
                "WHERE id = $1",
                {call_id, target->second, at}));
  }
  return changed ? EventEffect::kApplied : EventEffect::kStale;
}

Result<EventEffect> Calls::Record(const ProviderAccount& account, const CallEvent& event, const RawDelivery& raw) {
  const TimePoint received = clock_.Now();
  const int64_t now = ToUnixMillis(received);
  const StoredCallEvent stored = ToStored(event, received);
  const CallEventId event_id = CallEventId::New(clock_, random_);
  const RawEventId raw_id = RawEventId::New(clock_, random_);
  EventEffect effect = EventEffect::kDuplicate;
  const std::string named_call = NamedCall(raw.url);
  bool adopted = false;
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    effect = EventEffect::kDuplicate;  // the function may run again after a serialization failure
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t inserted,
        tx.Exec(
            "INSERT INTO telephony_call_events (id, account_id, provider_event_id, provider_call_id, kind, outcome, "
            "answered_by, detail, sequence_number, duration_seconds, occurred_at, received_at, effect) VALUES ($1, "
            "$2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending') "
            "ON CONFLICT (account_id, provider_event_id) DO NOTHING",
            {event_id.str(), account.id.str(), event.event_id, event.call_id, stored.kind, stored.outcome,
             stored.answered_by, stored.detail, Nullable(stored.sequence), Nullable(stored.duration_seconds),
             stored.occurred_at ? storage::Value(ToUnixMillis(*stored.occurred_at)) : storage::Value(nullptr), now}));
    if (inserted > 0) {
      adopted = false;
      CLOZIT_ASSIGN_OR_RETURN(auto calls, tx.Query("SELECT id, status_rank, answered_by FROM telephony_calls WHERE "
                                                   "account_id = $1 AND provider_call_id = $2",
                                                   {account.id.str(), event.call_id}));
      if (calls.empty() && !named_call.empty()) {
        // A call we reported as not placed exists after all: the carrier did it but its answer was lost.
        CLOZIT_ASSIGN_OR_RETURN(int64_t updated,
                                tx.Exec("UPDATE telephony_calls SET provider_call_id = $3, hangup_cause = "
                                        "'orphan_hung_up', updated_at = $4 WHERE id = $1 AND account_id = $2 AND "
                                        "provider_call_id IS NULL AND hangup_cause = 'not_placed'",
                                        {named_call, account.id.str(), event.call_id, now}));
        adopted = updated > 0;
        if (adopted) {
          CLOZIT_TRY(
              tx.Exec("UPDATE telephony_call_events SET effect = 'stale' WHERE account_id = $1 AND "
                      "provider_call_id = $2 AND effect = 'pending' AND id <> $3",
                      {account.id.str(), event.call_id, event_id.str()}));
          CLOZIT_ASSIGN_OR_RETURN(calls, tx.Query("SELECT id, status_rank, answered_by FROM telephony_calls WHERE "
                                                  "account_id = $1 AND provider_call_id = $2",
                                                  {account.id.str(), event.call_id}));
        }
      }
      effect = EventEffect::kPending;
      if (!calls.empty()) {
        CLOZIT_ASSIGN_OR_RETURN(effect, Fold(tx, calls[0].Text(0), calls[0].Int(1), calls[0].Text(2), stored, now));
        CLOZIT_TRY(tx.Exec("UPDATE telephony_call_events SET effect = $2 WHERE id = $1",
                           {event_id.str(), std::string(EffectName(effect))}));
      }
    }
    CLOZIT_TRY(
        tx.Exec("INSERT INTO telephony_raw_events (id, account_id, provider, url, body, outcome, received_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                {raw_id.str(), account.id.str(), std::string(ProviderName(account.provider)), raw.url, raw.body,
                 std::string(EffectName(effect)), now}));
    return Ok();
  }));
  if (adopted && event.kind != CallEventKind::kEnded) {
    auto provider = accounts_.ProviderFor(account);
    auto hung_up = provider ? (*provider)->Hangup(event.call_id) : Result<void>(provider.error());
    // Already over is what we wanted; anything else ends by the carrier's own limits.
    if (!hung_up && hung_up.error().code != ErrorCode::kConflict && hung_up.error().code != ErrorCode::kNotFound) {
      spdlog::warn("call {}: the carrier placed it although we reported it failed, and hanging it up failed: {}",
                   named_call, hung_up.error().message);
    }
  }
  return effect;
}

Result<int64_t> Calls::Reconcile(std::chrono::milliseconds quiet, int64_t page_size) {
  const int64_t before = ToUnixMillis(clock_.Now()) - quiet.count();
  int64_t ended = 0;
  // Every quiet call, a page at a time: long live calls stay quiet, and must not starve the rest.
  for (std::string cursor;;) {
    CLOZIT_ASSIGN_OR_RETURN(
        auto rows, db_.Query("SELECT account_id, provider_call_id, answered_at, id FROM telephony_calls WHERE "
                             "status_rank < $1 AND provider_call_id IS NOT NULL AND updated_at <= $2 AND id > $3 "
                             "ORDER BY id LIMIT $4",
                             {kRankFinal, before, cursor, page_size}));
    for (const auto& row : rows) {
      CLOZIT_ASSIGN_OR_RETURN(bool over, ReconcileOne(row.Text(0), row.Text(1), !row.IsNull(2)));
      if (over) ++ended;
    }
    if (static_cast<int64_t>(rows.size()) < page_size) break;
    cursor = rows.back().Text(3);
  }
  return ended;
}

Result<bool> Calls::ReconcileOne(const std::string& account_id, const std::string& carrier_id, bool answered) {
  auto account = accounts_.Find(account_id);
  if (!account) return false;
  auto provider = accounts_.ProviderFor(*account);
  if (!provider) return false;
  auto state = (*provider)->GetCall(carrier_id);
  if (!state && state.error().code != ErrorCode::kNotFound) {
    spdlog::warn("call reconciliation: {} {} not checked: {}", ProviderName(account->provider), carrier_id,
                 state.error().message);
    return false;
  }
  if (state && state->live) return false;
  CallEvent event;
  event.provider = account->provider;
  event.event_id = "reconciled:" + carrier_id;
  event.call_id = carrier_id;
  event.kind = CallEventKind::kEnded;
  event.outcome = state && state->outcome != CallOutcome::kNone ? state->outcome
                  : answered                                    ? CallOutcome::kCompleted
                                                                : CallOutcome::kFailed;
  event.detail = "reconciled";
  if (state) event.duration_seconds = state->duration_seconds;
  nlohmann::json what = {{"reconciled", true}, {"carrier_knows_call", state.ok()}};
  CLOZIT_ASSIGN_OR_RETURN(auto effect, Record(*account, event, RawDelivery{"reconcile:" + carrier_id, what.dump()}));
  return effect == EventEffect::kApplied;
}

Result<void> Calls::RecordUnparsed(const ProviderAccount& account, const RawDelivery& raw, const std::string& why) {
  const RawEventId raw_id = RawEventId::New(clock_, random_);
  const int64_t now = ToUnixMillis(clock_.Now());
  return db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(
        tx.Exec("INSERT INTO telephony_raw_events (id, account_id, provider, url, body, outcome, received_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                {raw_id.str(), account.id.str(), std::string(ProviderName(account.provider)), raw.url, raw.body,
                 "ignored: " + why, now}));
    return Ok();
  });
}

Result<Page<Call>> Calls::List(const std::string& tenant_id, const CallFilter& filter, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string(kCallSelect) +
                               "WHERE tenant_id = $1 AND ($2 = '' OR status = $2) AND ($3 = '' OR to_number = $3) AND "
                               "($4 = '' OR from_number = $4) AND ($5 = '' OR id < $5) ORDER BY id DESC LIMIT $6",
                           {tenant_id, filter.status, filter.to, filter.from, page.cursor, page.limit + 1}));
  Page<Call> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
    out.items.push_back(CallFromRow(rows[i]));
  }
  if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
  return out;
}

Result<CallDetail> Calls::Get(const std::string& tenant_id, const std::string& id) {
  CallDetail detail;
  CLOZIT_TRY(db_.Read([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto rows,
                            tx.Query(std::string(kCallSelect) + "WHERE tenant_id = $1 AND id = $2", {tenant_id, id}));
    if (rows.empty()) return Error::NotFound("no such call");
    detail.call = CallFromRow(rows[0]);
    detail.events.clear();
    if (detail.call.provider_call_id.empty()) return Ok();
    CLOZIT_ASSIGN_OR_RETURN(
        auto events, tx.Query(std::string(kEventSelect) + "WHERE account_id = $1 AND provider_call_id = $2 ORDER BY id",
                              {detail.call.account_id, detail.call.provider_call_id}));
    for (const auto& row : events) detail.events.push_back(EventFromRow(row));
    return Ok();
  }));
  return detail;
}

}  // namespace clozit::telephony
