#include "emulator.hpp"

#include <sodium.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <queue>
#include <regex>
#include <thread>

#include <boost/asio.hpp>

#include <date/date.h>
#include <nlohmann/json.hpp>

#include "common/encoding.hpp"
#include "http/client.hpp"
#include "http/form.hpp"
#include "media_callee.hpp"
#include "telephony/call_event.hpp"
#include "telephony/twilio/signature.hpp"

namespace clozit::emulator {
namespace {

using nlohmann::json;
using telephony::ProviderKind;
using SteadyTime = std::chrono::steady_clock::time_point;
using FormList = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view kTwilioPrefix = "/2010-04-01/Accounts/";

using http::FormBody;

std::string Base64(const unsigned char* data, size_t size) {
  std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);
  return out;
}

std::string Rfc2822(TimePoint t) {
  return date::format("%a, %d %b %Y %H:%M:%S +0000", std::chrono::floor<std::chrono::seconds>(t));
}

bool IsE164(std::string_view number) {
  static const std::regex kE164(R"(\+[1-9][0-9]{6,14})");
  return std::regex_match(number.begin(), number.end(), kE164);
}

std::string Param(const FormList& params, std::string_view name) {
  for (const auto& [key, value] : params)
    if (key == name) return value;
  return {};
}

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) segments.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return segments;
}

http::Response TwilioError(int status, int code, std::string message) {
  json body = {{"code", code},
               {"message", std::move(message)},
               {"more_info", "https://www.twilio.com/docs/errors/" + std::to_string(code)},
               {"status", status}};
  return http::Response::Json(status, body.dump());
}

http::Response TelnyxError(int status, std::string code, std::string title, std::string detail,
                           std::string pointer = {}) {
  json error = {{"code", std::move(code)}, {"title", std::move(title)}, {"detail", std::move(detail)}};
  if (!pointer.empty()) error["source"] = {{"pointer", std::move(pointer)}};
  return http::Response::Json(status, json{{"errors", json::array({error})}}.dump());
}

struct InventoryNumber {
  std::string phone_number;
  std::string area_code;
  std::string locality;
  std::string region;
  bool toll_free = false;
};

struct OwnedNumber {
  std::string id;
  ProviderKind provider;
  std::string phone_number;
  TimePoint purchased_at;
};

struct Call {
  std::string id;
  ProviderKind provider = ProviderKind::kTwilio;
  std::string from;
  std::string to;
  Persona persona;
  std::string status;  // Twilio vocabulary: queued, ringing, in-progress, completed, busy, no-answer, failed, canceled
  bool ended = false;
  int generation = 0;  // bumped when the API ends the call: older scheduled webhooks are dropped
  int next_sequence = 0;
  std::string webhook_url;
  std::string webhook_failover_url;  // Telnyx: tried when webhook_url does not answer 2xx
  std::string amd_url;
  std::string client_state;
  std::string connection_id;
  std::string call_leg_id;
  std::string call_session_id;
  bool machine_detection = false;
  int64_t queue_time_ms = 0;
  TimePoint created_at;
  TimePoint answered_at;
  bool answered = false;
  json request;
  json actions = json::array();
  // The media stream the platform asked for, opened on answer.
  std::string media_url;  // ws:// (the emulator speaks plain WebSocket on loopback)
  MediaCalleeOptions media_options;
  std::shared_ptr<MediaRecord> media;
  std::shared_ptr<http::WebSocketConnection> media_connection;
  bool media_over = false;  // the call ended: a connection completing now is stopped at once
};

std::string XmlUnescape(std::string text) {
  static const std::pair<std::string_view, std::string_view> kEntities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (const auto& [entity, plain] : kEntities) {
    for (size_t at = text.find(entity); at != std::string::npos; at = text.find(entity, at + plain.size())) {
      text.replace(at, entity.size(), plain);
    }
  }
  return text;
}

/// `<Connect><Stream url="…"><Parameter name="…" value="…"/>…` → the URL and the parameters.
void ParseStreamTwiml(const std::string& twiml, std::string& url, std::map<std::string, std::string>& parameters) {
  static const std::regex kStream(R"re(<Stream\s+url="([^"]*)")re");
  static const std::regex kParameter(R"re(<Parameter\s+name="([^"]*)"\s+value="([^"]*)"\s*/>)re");
  std::smatch match;
  if (!std::regex_search(twiml, match, kStream)) return;
  url = XmlUnescape(match[1]);
  for (auto it = std::sregex_iterator(twiml.begin(), twiml.end(), kParameter); it != std::sregex_iterator(); ++it) {
    parameters[XmlUnescape((*it)[1])] = XmlUnescape((*it)[2]);
  }
}

struct Delivery {
  SteadyTime due;
  uint64_t order = 0;
  std::string call_id;
  int generation = 0;
  ProviderKind provider = ProviderKind::kTwilio;
  std::string url;
  std::string event;         // "initiated", "call.answered", ...
  FormList twilio_params;    // Twilio: the form (signed at send time)
  json telnyx_body;          // Telnyx: the JSON
  std::string failover_url;  // Telnyx: where the delivery goes when `url` does not answer 2xx
  std::string new_status;    // applied to the call when sent
  bool final = false;
  bool duplicate = false;
  bool operator>(const Delivery& other) const { return due != other.due ? due > other.due : order > other.order; }
};

}  // namespace

struct Emulator::Impl {
  EmulatorOptions options;
  Scenario scenario;
  const Clock& clock;
  SeededRandom random;
  unsigned char telnyx_public_key[crypto_sign_PUBLICKEYBYTES];
  unsigned char telnyx_secret_key[crypto_sign_SECRETKEYBYTES];

  // State below is guarded by mutex.
  mutable std::mutex mutex;
  std::condition_variable wake;  // a delivery finished or was dropped (WaitIdle)
  // One queue per delivery thread, each woken on its own; a call's deliveries all go through one (Shard), so they
  // keep carrier order.
  struct DeliveryQueue {
    std::priority_queue<Delivery, std::vector<Delivery>, std::greater<>> due;
    std::condition_variable wake;
  };
  std::deque<DeliveryQueue> pending;
  int sending = 0;  // deliveries in flight
  bool stopping = false;
  uint64_t next_order = 0;
  int request_count = 0;
  int webhook_count = 0;     // first attempts of webhook deliveries (duplicates included)
  int faults_triggered = 0;  // injected REST and webhook faults that fired
  std::map<std::string, Call> calls;
  std::vector<std::string> call_order;
  json events = json::array();
  json requests = json::array();
  std::vector<InventoryNumber> inventory;
  std::map<std::string, OwnedNumber> owned;  // by id
  std::map<std::string, json> number_orders;
  std::map<std::string, std::pair<SteadyTime, http::Response>> telnyx_commands;  // command_id → first answer
  std::deque<std::pair<SteadyTime, std::string>> telnyx_command_expiry;          // oldest first
  std::deque<SteadyTime> telnyx_recent_calls;
  SteadyTime twilio_next_slot{};
  uint64_t next_telnyx_number_id = 1293384261075731400ULL;

  std::vector<std::thread> senders;
  // Media WebSockets (simulated callees) run here, on their own strands.
  boost::asio::io_context media_io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> media_work{
      media_io.get_executor()};
  std::thread media_thread;

  Impl(EmulatorOptions opts, Scenario scen, const Clock& clk)
      : options(std::move(opts)),
        scenario(std::move(scen)),
        clock(clk),
        random(options.seed),
        pending(static_cast<size_t>(options.webhook_senders)) {
    BuildInventory();
  }

  // ---- helpers (mutex held) ----
  std::string RandomHex(size_t bytes) {
    std::vector<uint8_t> data(bytes);
    random.Fill(data);
    return Hex(data);
  }
  std::string Uuid() {
    std::string hex = RandomHex(16);
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-4" + hex.substr(13, 3) + "-a" + hex.substr(17, 3) + "-" +
           hex.substr(20);
  }
  std::chrono::microseconds Scaled(double seconds) const {
    return std::chrono::microseconds(static_cast<int64_t>(seconds * options.time_scale * 1e6));
  }
  double RingSeconds(const Persona& persona) {
    if (persona.ring_seconds >= 0) return persona.ring_seconds;
    return 1.0 + static_cast<double>(random.NextU64() % 7001) / 1000.0;
  }

  void BuildInventory() {
    struct Area {
      const char* code;
      const char* locality;
      const char* region;
      bool toll_free;
    };
    static const Area kAreas[] = {{"212", "New York", "NY", false},      {"303", "Denver", "CO", false},
                                  {"415", "San Francisco", "CA", false}, {"512", "Austin", "TX", false},
                                  {"646", "New York", "NY", false},      {"800", "", "", true}};
    for (const auto& area : kAreas) {
      for (int i = 0; i < 25; ++i) {
        char digits[8];
        std::snprintf(digits, sizeof digits, "%04d", (137 + i * 373) % 10000);
        inventory.push_back(
            {std::string("+1") + area.code + "555" + digits, area.code, area.locality, area.region, area.toll_free});
      }
    }
  }
  bool IsOwned(const std::string& phone_number) const {
    return std::any_of(owned.begin(), owned.end(),
                       [&](const auto& entry) { return entry.second.phone_number == phone_number; });
  }
  const InventoryNumber* FindInventory(const std::string& phone_number) const {
    for (const auto& number : inventory)
      if (number.phone_number == phone_number) return &number;
    return nullptr;
  }

  size_t Shard(const std::string& call_id) const { return std::hash<std::string>{}(call_id) % pending.size(); }

  void Schedule(std::vector<Delivery> timeline) {
    if (options.reorder_webhooks) {
      // Swap what is delivered at neighbouring instants: the receiver sees 1,0,3,2,…
      for (size_t i = 0; i + 1 < timeline.size(); i += 2) {
        std::swap(timeline[i].due, timeline[i + 1].due);
      }
    }
    for (auto& delivery : timeline) {
      delivery.order = next_order++;
      if (options.duplicate_webhooks) {
        Delivery copy = delivery;
        copy.duplicate = true;
        copy.order = next_order++;
        copy.due += std::chrono::milliseconds(1);
        pending[Shard(copy.call_id)].due.push(std::move(copy));
      }
      auto& queue = pending[Shard(delivery.call_id)];
      queue.due.push(std::move(delivery));
      queue.wake.notify_one();
    }
  }

  // ---- Twilio timeline ----
  Delivery TwilioEvent(Call& call, SteadyTime due, TimePoint at, const std::string& status, FormList extra = {}) {
    Delivery delivery;
    delivery.due = due;
    delivery.call_id = call.id;
    delivery.generation = call.generation;
    delivery.provider = ProviderKind::kTwilio;
    delivery.url = call.webhook_url;
    delivery.event = status;
    delivery.new_status = status;
    delivery.final = status == "completed" || status == "busy" || status == "no-answer" || status == "failed" ||
                     status == "canceled";
    delivery.twilio_params = {{"AccountSid", call.request.value("AccountSid", "")},
                              {"ApiVersion", "2010-04-01"},
                              {"CallSid", call.id},
                              {"CallStatus", status},
                              {"Called", call.to},
                              {"Caller", call.from},
                              {"CallbackSource", "call-progress-events"},
                              {"Direction", "outbound-api"},
                              {"From", call.from},
                              {"SequenceNumber", std::to_string(call.next_sequence++)},
                              {"Timestamp", Rfc2822(at)},
                              {"To", call.to}};
    for (auto& field : extra) delivery.twilio_params.push_back(std::move(field));
    return delivery;
  }

  std::vector<Delivery> TwilioTimeline(Call& call, const std::set<std::string>& subscribed, int ring_timeout,
                                       int time_limit) {
    std::vector<Delivery> timeline;
    auto steady_start = std::chrono::steady_clock::now() + std::chrono::milliseconds(call.queue_time_ms);
    auto wall_start = clock.Now() + std::chrono::milliseconds(call.queue_time_ms);
    auto add = [&](double seconds, const std::string& status, FormList extra = {}) {
      bool final = status != "initiated" && status != "ringing" && status != "in-progress";
      std::string event = status == "in-progress" ? "answered" : final ? "completed" : status;
      if (call.webhook_url.empty() || (!final && !subscribed.contains(event))) return;
      timeline.push_back(TwilioEvent(
          call, steady_start + Scaled(seconds),
          wall_start + std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(seconds)),
          status, std::move(extra)));
    };
    auto add_amd = [&](double seconds, const std::string& answered_by) {
      if (!call.machine_detection || call.amd_url.empty()) return;
      Delivery delivery;
      delivery.due = steady_start + Scaled(seconds);
      delivery.call_id = call.id;
      delivery.generation = call.generation;
      delivery.url = call.amd_url;
      delivery.event = "amd";
      delivery.twilio_params = {{"AccountSid", call.request.value("AccountSid", "")},
                                {"AnsweredBy", answered_by},
                                {"CallSid", call.id},
                                {"MachineDetectionDuration", "2100"}};
      timeline.push_back(std::move(delivery));
    };
    const Persona& persona = call.persona;
    double ring = RingSeconds(persona);
    constexpr double kInitiated = 0.1;
    constexpr double kRinging = 0.6;
    add(kInitiated, "initiated");
    switch (persona.kind) {
      case PersonaKind::kBusy:
        add(1.0, "busy", {{"CallDuration", "0"}, {"SipResponseCode", "486"}});
        break;
      case PersonaKind::kReject:
        add(kRinging, "ringing");
        add(kRinging + ring, "failed", {{"CallDuration", "0"}, {"SipResponseCode", "603"}});
        break;
      case PersonaKind::kNoAnswer:
      case PersonaKind::kAnswer:
      case PersonaKind::kMachine:
      case PersonaKind::kInvalid: {
        add(kRinging, "ringing");
        if (persona.kind == PersonaKind::kNoAnswer || ring > ring_timeout) {
          add(kRinging + ring_timeout, "no-answer", {{"CallDuration", "0"}, {"SipResponseCode", "487"}});
          break;
        }
        double answer = kRinging + ring;
        bool machine = persona.kind == PersonaKind::kMachine;
        add(answer, "in-progress");
        add_amd(answer + (machine ? 1.5 : 1.0), machine ? "machine_start" : "human");
        double talk = std::min<double>(persona.talk_seconds, time_limit);
        add(answer + talk, "completed",
            {{"CallDuration", std::to_string(static_cast<int64_t>(std::ceil(talk)))}, {"SipResponseCode", "200"}});
        break;
      }
    }
    return timeline;
  }

  // ---- Telnyx timeline ----
  Delivery TelnyxEvent(Call& call, SteadyTime due, TimePoint at, const std::string& type, json extra) {
    Delivery delivery;
    delivery.due = due;
    delivery.call_id = call.id;
    delivery.generation = call.generation;
    delivery.provider = ProviderKind::kTelnyx;
    delivery.url = call.webhook_url;
    delivery.failover_url = call.webhook_failover_url;
    delivery.event = type;
    json payload = {{"call_control_id", call.id},
                    {"call_leg_id", call.call_leg_id},
                    {"call_session_id", call.call_session_id},
                    {"connection_id", call.connection_id},
                    {"client_state", call.client_state.empty() ? json(nullptr) : json(call.client_state)},
                    {"from", call.from},
                    {"to", call.to},
                    {"direction", "outgoing"}};
    for (auto& [key, value] : extra.items()) payload[key] = value;
    if (type == "call.initiated") {
      payload["state"] = "bridging";
      delivery.new_status = "ringing";
    } else if (type == "call.answered") {
      payload["state"] = "answered";
      delivery.new_status = "in-progress";
    } else if (type == "call.hangup") {
      payload["state"] = "hangup";
      delivery.final = true;
      std::string cause = payload.value("hangup_cause", "");
      delivery.new_status = cause == "user_busy"                                  ? "busy"
                            : cause == "timeout" || cause == "no_answer"          ? "no-answer"
                            : cause == "normal_clearing" || cause == "time_limit" ? "completed"
                            : cause == "originator_cancel"                        ? "canceled"
                                                                                  : "failed";
    }
    delivery.telnyx_body = {{"data",
                             {{"record_type", "event"},
                              {"event_type", type},
                              {"id", Uuid()},
                              {"occurred_at", FormatRfc3339(at)},
                              {"payload", payload}}},
                            {"meta", {{"attempt", 1}, {"delivered_to", call.webhook_url}}}};
    return delivery;
  }

  std::vector<Delivery> TelnyxTimeline(Call& call, int ring_timeout, int time_limit) {
    std::vector<Delivery> timeline;
    if (call.webhook_url.empty()) return timeline;
    auto steady_start = std::chrono::steady_clock::now();
    auto wall_start = clock.Now();
    auto at = [&](double seconds) {
      return wall_start + std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::duration<double>(seconds));
    };
    auto add = [&](double seconds, const std::string& type, json extra = json::object()) {
      timeline.push_back(TelnyxEvent(call, steady_start + Scaled(seconds), at(seconds), type, std::move(extra)));
    };
    auto hangup = [&](double seconds, const std::string& cause, const std::string& source, const std::string& sip,
                      std::optional<double> answered) {
      json extra = {{"hangup_cause", cause}, {"hangup_source", source}, {"sip_hangup_cause", sip}};
      if (answered) {
        extra["start_time"] = FormatRfc3339(at(*answered));
        extra["end_time"] = FormatRfc3339(at(seconds));
      }
      add(seconds, "call.hangup", std::move(extra));
    };
    const Persona& persona = call.persona;
    double ring = RingSeconds(persona);
    constexpr double kInitiated = 0.1;
    add(kInitiated, "call.initiated");
    switch (persona.kind) {
      case PersonaKind::kBusy:
        hangup(1.0, "user_busy", "callee", "486", std::nullopt);
        break;
      case PersonaKind::kReject:
        hangup(kInitiated + ring, "call_rejected", "callee", "603", std::nullopt);
        break;
      case PersonaKind::kNoAnswer:
      case PersonaKind::kAnswer:
      case PersonaKind::kMachine:
      case PersonaKind::kInvalid: {
        if (persona.kind == PersonaKind::kNoAnswer || ring > ring_timeout) {
          hangup(kInitiated + ring_timeout, "timeout", "unknown", "487", std::nullopt);
          break;
        }
        double answer = kInitiated + ring;
        bool machine = persona.kind == PersonaKind::kMachine;
        add(answer, "call.answered", {{"start_time", FormatRfc3339(at(answer))}});
        if (call.machine_detection) {
          add(answer + (machine ? 1.5 : 1.0), "call.machine.detection.ended",
              {{"result", machine ? "machine" : "human"}});
        }
        bool limited = persona.talk_seconds > time_limit;
        double talk = limited ? time_limit : persona.talk_seconds;
        hangup(answer + talk, limited ? "time_limit" : "normal_clearing", limited ? "unknown" : "callee", "16", answer);
        break;
      }
    }
    return timeline;
  }

  // Ends a live call at the API's request: later scheduled webhooks are dropped, the final one goes now.
  void EndByApi(Call& call) {
    ++call.generation;
    call.ended = true;
    StopMedia(call);
    auto steady_now = std::chrono::steady_clock::now();
    TimePoint now = clock.Now();
    std::vector<Delivery> timeline;
    if (call.provider == ProviderKind::kTwilio) {
      std::string status = call.answered ? "completed" : "canceled";
      if (!call.webhook_url.empty()) {
        int64_t duration =
            call.answered ? std::chrono::duration_cast<std::chrono::seconds>(now - call.answered_at).count() : 0;
        timeline.push_back(TwilioEvent(call, steady_now, now, status, {{"CallDuration", std::to_string(duration)}}));
      }
      call.status = status;
    } else if (!call.webhook_url.empty()) {
      json extra = {{"hangup_cause", call.answered ? "normal_clearing" : "originator_cancel"},
                    {"hangup_source", "caller"},
                    {"sip_hangup_cause", "16"}};
      if (call.answered) {
        extra["start_time"] = FormatRfc3339(call.answered_at);
        extra["end_time"] = FormatRfc3339(now);
      }
      timeline.push_back(TelnyxEvent(call, steady_now, now, "call.hangup", std::move(extra)));
      call.status = call.answered ? "completed" : "canceled";
    }
    bool reorder = options.reorder_webhooks;
    options.reorder_webhooks = false;
    Schedule(std::move(timeline));
    options.reorder_webhooks = reorder;
  }

  // ---- media (mutex held) ----
  void StartMedia(Call& call) {
    if (call.media_url.empty() || call.media) return;
    call.media = std::make_shared<MediaRecord>();
    call.media_options.call_id = call.id;
    call.media_options.provider = call.provider;
    call.media_options.stream_id = call.provider == ProviderKind::kTwilio ? "MZ" + RandomHex(16) : Uuid();
    call.media_options.client_state = call.client_state;
    call.media_options.drop_after = options.drop_media_after;
    http::WebSocketClientOptions client_options;
    auto record = call.media;
    std::string id = call.id;
    http::WebSocketClient::AsyncConnect(
        media_io.get_executor(), call.media_url, std::make_unique<MediaCallee>(call.media_options, record),
        client_options, [this, id, record](Result<std::shared_ptr<http::WebSocketConnection>> connected) {
          std::lock_guard lock(mutex);
          if (!connected) {
            std::lock_guard record_lock(record->mutex);
            record->state = connected.error().code == ErrorCode::kUnauthenticated ? "refused" : "failed";
            record->error = connected.error().message;
            return;
          }
          auto it = calls.find(id);
          if (it == calls.end()) return;
          it->second.media_connection = *connected;
          if (it->second.media_over) StopMedia(it->second);
        });
  }
  void StopMedia(Call& call) {
    call.media_over = true;
    if (!call.media_connection) return;
    call.media_connection->SendText(MediaCallee::StopFrame(call.media_options));
    call.media_connection->Close(http::CloseCode::kNormal, "call ended");
    call.media_connection.reset();
  }

  json CallJson(const Call& call) const {
    return {{"id", call.id},
            {"provider", std::string(telephony::ProviderName(call.provider))},
            {"from", call.from},
            {"to", call.to},
            {"persona", std::string(PersonaName(call.persona.kind))},
            {"status", call.status},
            {"ended", call.ended},
            {"queue_time_ms", call.queue_time_ms},
            {"webhook_url", call.webhook_url},
            {"request", call.request},
            {"actions", call.actions},
            {"media", call.media ? call.media->ToJson() : json(nullptr)}};
  }

  json TwilioCallResource(const Call& call, const std::string& account) const {
    return {{"sid", call.id},
            {"account_sid", account},
            {"to", call.to},
            {"from", call.from},
            {"status", call.status},
            {"direction", "outbound-api"},
            {"api_version", "2010-04-01"},
            {"date_created", Rfc2822(call.created_at)},
            {"date_updated", Rfc2822(call.created_at)},
            {"start_time", nullptr},
            {"end_time", nullptr},
            {"duration", nullptr},
            {"answered_by", nullptr},
            {"price", nullptr},
            {"price_unit", "USD"},
            {"queue_time", std::to_string(call.queue_time_ms)},
            {"uri", "/2010-04-01/Accounts/" + account + "/Calls/" + call.id + ".json"}};
  }

  // ---- Twilio REST ----
  http::Response Twilio(http::Request& request, const std::vector<std::string>& path) {
    // path: 2010-04-01 Accounts {sid} rest...
    if (path.size() < 4) return TwilioError(404, 20404, "The requested resource was not found");
    const std::string& account = path[2];
    auto authorization = request.headers.Get("Authorization");
    bool authorized = false;
    if (authorization && authorization->starts_with("Basic ")) {
      std::string_view encoded = authorization->substr(6);
      std::string decoded(encoded.size(), '\0');
      size_t length = 0;
      if (sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(), encoded.data(),
                            encoded.size(), nullptr, &length, nullptr, sodium_base64_VARIANT_ORIGINAL) == 0) {
        decoded.resize(length);
        authorized = ConstantTimeEquals(decoded, account + ":" + options.twilio_auth_token);
      }
    }
    if (!authorized) return TwilioError(401, 20003, "Authenticate");
    FormList form = http::ParseQuery(request.body);
    const std::string& resource = path[3];
    if (resource == "Calls.json" && path.size() == 4 && request.method == "POST") return TwilioPlaceCall(account, form);
    if (resource == "Calls.json" && path.size() == 4 && request.method == "GET")
      return TwilioListCalls(request, account);
    if (resource == "Calls" && path.size() == 5 && path[4].ends_with(".json")) {
      std::string sid = path[4].substr(0, path[4].size() - 5);
      auto it = calls.find(sid);
      if (it == calls.end() || it->second.provider != ProviderKind::kTwilio) {
        return TwilioError(404, 20404, "The requested resource /Calls/" + sid + ".json was not found");
      }
      Call& call = it->second;
      if (request.method == "GET") return http::Response::Json(200, TwilioCallResource(call, account).dump());
      if (request.method != "POST") return TwilioError(405, 20004, "Method not allowed");
      std::string status = Param(form, "Status");
      std::string twiml = Param(form, "Twiml");
      std::string url = Param(form, "Url");
      if (!status.empty()) {
        if (status != "completed" && status != "canceled") return TwilioError(400, 21218, "Invalid Status");
        call.actions.push_back({{"action", "status"}, {"status", status}});
        if (!call.ended) EndByApi(call);
      } else if (!twiml.empty() || !url.empty()) {
        if (call.ended) return TwilioError(400, 21220, "Call is not in-progress. Cannot redirect.");
        call.actions.push_back({{"action", "redirect"}, {"twiml", twiml}, {"url", url}});
      }
      return http::Response::Json(200, TwilioCallResource(call, account).dump());
    }
    if (resource == "AvailablePhoneNumbers" && path.size() == 6 && request.method == "GET") {
      std::string country = path[4];
      std::string type = path[5];
      bool toll_free = type == "TollFree.json";
      int page_size = 50;
      if (auto size = request.QueryParam("PageSize")) page_size = std::clamp(std::atoi(size->c_str()), 1, 1000);
      std::string area_code = request.QueryParam("AreaCode").value_or("");
      std::string contains = request.QueryParam("Contains").value_or("");
      json found = json::array();
      for (const auto& number : inventory) {
        if (country != "US" || number.toll_free != toll_free || IsOwned(number.phone_number)) continue;
        if (!area_code.empty() && number.area_code != area_code) continue;
        if (!contains.empty() && number.phone_number.find(contains) == std::string::npos) continue;
        if (static_cast<int>(found.size()) >= page_size) break;
        found.push_back({{"friendly_name", number.phone_number},
                         {"phone_number", number.phone_number},
                         {"locality", number.locality},
                         {"region", number.region},
                         {"postal_code", nullptr},
                         {"iso_country", "US"},
                         {"address_requirements", "none"},
                         {"beta", false},
                         {"capabilities", {{"voice", true}, {"SMS", true}, {"MMS", false}, {"fax", false}}}});
      }
      std::string uri = "/2010-04-01/Accounts/" + account + "/AvailablePhoneNumbers/" + country + "/" + type;
      return http::Response::Json(200, json{{"available_phone_numbers", found},
                                            {"uri", uri},
                                            {"page", 0},
                                            {"page_size", page_size},
                                            {"next_page_uri", nullptr}}
                                           .dump());
    }
    if (resource == "IncomingPhoneNumbers.json" && path.size() == 4) {
      if (request.method == "POST") {
        std::string phone_number = Param(form, "PhoneNumber");
        if (phone_number.empty()) return TwilioError(400, 21421, "PhoneNumber is required.");
        if (!FindInventory(phone_number) || IsOwned(phone_number)) {
          return TwilioError(400, 21422, "PhoneNumber requested is not available");
        }
        OwnedNumber number{"PN" + RandomHex(16), ProviderKind::kTwilio, phone_number, clock.Now()};
        owned[number.id] = number;
        return http::Response::Json(201, TwilioNumber(number, account).dump());
      }
      if (request.method == "GET") {
        std::string filter = request.QueryParam("PhoneNumber").value_or("");
        json list = json::array();
        for (const auto& [id, number] : owned) {
          if (number.provider != ProviderKind::kTwilio) continue;
          if (!filter.empty() && number.phone_number != filter) continue;
          list.push_back(TwilioNumber(number, account));
        }
        return http::Response::Json(
            200,
            json{{"incoming_phone_numbers", list}, {"page", 0}, {"page_size", list.size()}, {"next_page_uri", nullptr}}
                .dump());
      }
    }
    if (resource == "IncomingPhoneNumbers" && path.size() == 5 && path[4].ends_with(".json")) {
      std::string sid = path[4].substr(0, path[4].size() - 5);
      auto it = owned.find(sid);
      if (it == owned.end() || it->second.provider != ProviderKind::kTwilio) {
        return TwilioError(404, 20404, "The requested resource was not found");
      }
      if (request.method == "GET") return http::Response::Json(200, TwilioNumber(it->second, account).dump());
      if (request.method == "DELETE") {
        owned.erase(it);
        return http::Response::NoContent();
      }
    }
    return TwilioError(404, 20404, "The requested resource " + request.path + " was not found");
  }

  // Newest first, as Twilio lists them; one page (the emulator's volumes fit one).
  http::Response TwilioListCalls(const http::Request& request, const std::string& account) const {
    int page_size = 50;
    if (auto size = request.QueryParam("PageSize")) page_size = std::clamp(std::atoi(size->c_str()), 1, 1000);
    std::string to = request.QueryParam("To").value_or("");
    std::string from = request.QueryParam("From").value_or("");
    std::string status = request.QueryParam("Status").value_or("");
    json list = json::array();
    for (auto id = call_order.rbegin(); id != call_order.rend(); ++id) {
      const Call& call = calls.at(*id);
      if (call.provider != ProviderKind::kTwilio) continue;
      if ((!to.empty() && call.to != to) || (!from.empty() && call.from != from) ||
          (!status.empty() && call.status != status)) {
        continue;
      }
      if (static_cast<int>(list.size()) >= page_size) break;
      list.push_back(TwilioCallResource(call, account));
    }
    std::string uri = "/2010-04-01/Accounts/" + account + "/Calls.json?PageSize=" + std::to_string(page_size);
    return http::Response::Json(200, json{{"calls", list},
                                          {"page", 0},
                                          {"page_size", page_size},
                                          {"start", 0},
                                          {"end", list.empty() ? 0 : list.size() - 1},
                                          {"uri", uri},
                                          {"first_page_uri", uri + "&Page=0"},
                                          {"previous_page_uri", nullptr},
                                          {"next_page_uri", nullptr}}
                                         .dump());
  }

  json TwilioNumber(const OwnedNumber& number, const std::string& account) const {
    return {{"sid", number.id},
            {"account_sid", account},
            {"phone_number", number.phone_number},
            {"friendly_name", number.phone_number},
            {"status", "in-use"},
            {"date_created", Rfc2822(number.purchased_at)},
            {"capabilities", {{"voice", true}, {"sms", true}, {"mms", false}, {"fax", false}}},
            {"uri", "/2010-04-01/Accounts/" + account + "/IncomingPhoneNumbers/" + number.id + ".json"}};
  }

  http::Response TwilioPlaceCall(const std::string& account, const FormList& form) {
    std::string to = Param(form, "To");
    std::string from = Param(form, "From");
    if (to.empty()) return TwilioError(400, 21201, "No 'To' number is specified");
    if (from.empty()) return TwilioError(400, 21213, "No 'From' number is specified");
    if (Param(form, "Url").empty() && Param(form, "Twiml").empty()) {
      return TwilioError(400, 21205, "Url or Twiml is required");
    }
    const Persona& persona = scenario.For(to);
    if (!IsE164(to) || persona.kind == PersonaKind::kInvalid) {
      return TwilioError(400, 21217, "Phone number is not a valid phone number: " + to);
    }
    Call call;
    call.id = "CA" + RandomHex(16);
    call.provider = ProviderKind::kTwilio;
    call.to = to;
    call.from = from;
    call.persona = persona;
    call.status = "queued";
    call.created_at = clock.Now();
    call.request = json::object();
    for (const auto& [name, value] : form) {
      if (call.request.contains(name)) {
        if (!call.request[name].is_array()) call.request[name] = json::array({call.request[name]});
        call.request[name].push_back(value);
      } else {
        call.request[name] = value;
      }
    }
    call.request["AccountSid"] = account;
    ParseStreamTwiml(Param(form, "Twiml"), call.media_url, call.media_options.custom_parameters);
    call.webhook_url = Param(form, "StatusCallback");
    if (call.webhook_url.empty() && !options.webhook_base.empty()) {
      call.webhook_url = options.webhook_base + "/webhooks/twilio/status";
    }
    call.machine_detection = !Param(form, "MachineDetection").empty();
    call.amd_url = Param(form, "AsyncAmdStatusCallback");
    if (call.amd_url.empty()) call.amd_url = call.webhook_url;
    std::set<std::string> subscribed;
    for (const auto& [name, value] : form)
      if (name == "StatusCallbackEvent") subscribed.insert(value);
    if (subscribed.empty()) subscribed.insert("completed");
    int ring_timeout = 60;
    if (auto text = Param(form, "Timeout"); !text.empty()) ring_timeout = std::clamp(std::atoi(text.c_str()), 1, 600);
    int time_limit = 4 * 3600;
    if (auto text = Param(form, "TimeLimit"); !text.empty()) time_limit = std::max(1, std::atoi(text.c_str()));

    // Twilio queues REST-created calls beyond its calls-per-second instead of refusing them.
    auto now = std::chrono::steady_clock::now();
    auto slot = std::max(now, twilio_next_slot);
    call.queue_time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(slot - now).count();
    twilio_next_slot = slot + Scaled(1.0 / options.twilio_calls_per_second);

    auto timeline = TwilioTimeline(call, subscribed, ring_timeout, time_limit);
    std::string id = call.id;
    auto [it, inserted] = calls.emplace(id, std::move(call));
    call_order.push_back(id);
    Schedule(std::move(timeline));
    return http::Response::Json(201, TwilioCallResource(it->second, account).dump());
  }

  // ---- Telnyx REST ----
  http::Response Telnyx(http::Request& request, const std::vector<std::string>& path) {
    auto authorization = request.headers.Get("Authorization");
    bool authorized =
        authorization && authorization->starts_with("Bearer ") && authorization->size() > 7 &&
        (options.telnyx_api_key.empty() || ConstantTimeEquals(authorization->substr(7), options.telnyx_api_key));
    if (!authorized) return TelnyxError(401, "10009", "Authentication failed", "The API key is missing or invalid.");
    json body = json::object();
    if (!request.body.empty()) {
      body = json::parse(request.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return TelnyxError(400, "10015", "Bad Request", "The request body is not valid JSON.");
      }
    }
    // Idempotent commands: a repeated command_id within 60 s gets the first answer again.
    std::string command_id = body.value("command_id", "");
    auto now = std::chrono::steady_clock::now();
    // Oldest first, so expiry does not walk every command of the last minute on each request.
    while (!telnyx_command_expiry.empty() && now - telnyx_command_expiry.front().first > std::chrono::seconds(60)) {
      telnyx_commands.erase(telnyx_command_expiry.front().second);
      telnyx_command_expiry.pop_front();
    }
    if (!command_id.empty()) {
      if (auto it = telnyx_commands.find(command_id); it != telnyx_commands.end()) return it->second.second;
    }
    http::Response response = TelnyxRoute(request, path, body);
    if (!command_id.empty() && response.status < 300) {
      telnyx_commands[command_id] = {now, response};
      telnyx_command_expiry.emplace_back(now, command_id);
    }
    return response;
  }

  http::Response TelnyxRoute(http::Request& request, const std::vector<std::string>& path, const json& body) {
    const std::string& resource = path.size() > 1 ? path[1] : std::string();
    if (resource == "calls" && path.size() == 2 && request.method == "POST") return TelnyxPlaceCall(body);
    if (resource == "calls" && path.size() >= 3) {
      auto it = calls.find(path[2]);
      if (it == calls.end() || it->second.provider != ProviderKind::kTelnyx) {
        return TelnyxError(404, "10005", "Resource not found", "Call " + path[2] + " not found.");
      }
      Call& call = it->second;
      if (path.size() == 3 && request.method == "GET") {
        int64_t duration =
            call.answered ? std::chrono::duration_cast<std::chrono::seconds>(clock.Now() - call.answered_at).count()
                          : 0;
        return http::Response::Json(200, json{{"data",
                                               {{"call_control_id", call.id},
                                                {"call_leg_id", call.call_leg_id},
                                                {"call_session_id", call.call_session_id},
                                                {"is_alive", !call.ended},
                                                {"call_duration", duration},
                                                {"record_type", "call"}}}}
                                             .dump());
      }
      if (path.size() == 5 && path[3] == "actions" && request.method == "POST") {
        const std::string& action = path[4];
        if (call.ended) return TelnyxError(422, "90018", "Call has already ended", "This call is no longer active.");
        if (action == "transfer" && body.value("to", "").empty()) {
          return TelnyxError(422, "10004", "Missing required parameter", "'to' is required.", "/to");
        }
        if (action != "hangup" && action != "transfer" && action != "streaming_start" && action != "streaming_stop") {
          return TelnyxError(404, "10005", "Resource not found", "Unknown action " + action);
        }
        call.actions.push_back({{"action", action}, {"body", body}});
        if (action == "hangup") EndByApi(call);
        return http::Response::Json(200, json{{"data", {{"result", "ok"}}}}.dump());
      }
    }
    if (resource == "connections" && path.size() == 4 && path[3] == "active_calls" && request.method == "GET") {
      json list = json::array();
      for (const auto& id : call_order) {
        const Call& call = calls.at(id);
        if (call.provider != ProviderKind::kTelnyx || call.connection_id != path[2] || call.ended) continue;
        int64_t duration =
            call.answered ? std::chrono::duration_cast<std::chrono::seconds>(clock.Now() - call.answered_at).count()
                          : 0;
        list.push_back({{"record_type", "call"},
                        {"call_control_id", call.id},
                        {"call_leg_id", call.call_leg_id},
                        {"call_session_id", call.call_session_id},
                        {"call_duration", duration},
                        {"client_state", call.client_state}});
      }
      return http::Response::Json(
          200,
          json{{"data", list},
               {"meta", {{"page_number", 1}, {"page_size", 250}, {"total_pages", 1}, {"total_results", list.size()}}}}
              .dump());
    }
    if (resource == "available_phone_numbers" && path.size() == 2 && request.method == "GET") {
      std::string country = request.QueryParam("filter[country_code]").value_or("US");
      std::string ndc = request.QueryParam("filter[national_destination_code]").value_or("");
      std::string contains = request.QueryParam("filter[phone_number][contains]").value_or("");
      int limit = std::clamp(std::atoi(request.QueryParam("filter[limit]").value_or("20").c_str()), 1, 1000);
      json found = json::array();
      for (const auto& number : inventory) {
        if (country != "US" || IsOwned(number.phone_number)) continue;
        if (!ndc.empty() && number.area_code != ndc) continue;
        if (!contains.empty() && number.phone_number.find(contains) == std::string::npos) continue;
        if (static_cast<int>(found.size()) >= limit) break;
        json regions = json::array({{{"region_type", "country_code"}, {"region_name", "US"}}});
        if (!number.toll_free) {
          regions.push_back({{"region_type", "location"}, {"region_name", number.locality}});
          regions.push_back({{"region_type", "state"}, {"region_name", number.region}});
        }
        found.push_back(
            {{"record_type", "available_phone_number"},
             {"phone_number", number.phone_number},
             {"vanity_format", nullptr},
             {"best_effort", false},
             {"quickship", true},
             {"reservable", true},
             {"region_information", regions},
             {"cost_information",
              {{"upfront_cost", "1.00"}, {"monthly_cost", number.toll_free ? "2.00" : "1.00"}, {"currency", "USD"}}},
             {"features", json::array({{{"name", "voice"}}, {{"name", "sms"}}})}});
      }
      return http::Response::Json(
          200, json{{"data", found}, {"meta", {{"total_results", found.size()}, {"best_effort_results", 0}}}}.dump());
    }
    if (resource == "number_orders" && path.size() == 2 && request.method == "POST") {
      if (!body.contains("phone_numbers") || !body["phone_numbers"].is_array() || body["phone_numbers"].empty()) {
        return TelnyxError(422, "10004", "Missing required parameter", "'phone_numbers' is required.",
                           "/phone_numbers");
      }
      json ordered = json::array();
      bool all_ok = true;
      for (const auto& entry : body["phone_numbers"]) {
        std::string phone_number = entry.value("phone_number", "");
        bool available = FindInventory(phone_number) && !IsOwned(phone_number);
        std::string id;
        if (available) {
          id = std::to_string(next_telnyx_number_id++);
          owned[id] = {id, ProviderKind::kTelnyx, phone_number, clock.Now()};
        }
        all_ok = all_ok && available;
        ordered.push_back({{"id", id},
                           {"record_type", "number_order_phone_number"},
                           {"phone_number", phone_number},
                           {"status", available ? "success" : "failure"},
                           {"requirements_met", true}});
      }
      std::string order_id = Uuid();
      json order = {{"id", order_id},
                    {"record_type", "number_order"},
                    {"status", all_ok ? "success" : "failure"},
                    {"phone_numbers", ordered},
                    {"phone_numbers_count", ordered.size()},
                    {"connection_id", body.value("connection_id", "")},
                    {"created_at", FormatRfc3339(clock.Now())}};
      number_orders[order_id] = order;
      return http::Response::Json(200, json{{"data", order}}.dump());
    }
    if (resource == "number_orders" && path.size() == 3 && request.method == "GET") {
      auto it = number_orders.find(path[2]);
      if (it == number_orders.end()) return TelnyxError(404, "10005", "Resource not found", "No such order.");
      return http::Response::Json(200, json{{"data", it->second}}.dump());
    }
    if (resource == "phone_numbers" && path.size() == 2 && request.method == "GET") {
      std::string filter = request.QueryParam("filter[phone_number]").value_or("");
      json list = json::array();
      for (const auto& [id, number] : owned) {
        if (number.provider != ProviderKind::kTelnyx) continue;
        if (!filter.empty() && number.phone_number != filter) continue;
        list.push_back(TelnyxNumber(number));
      }
      return http::Response::Json(
          200,
          json{{"data", list},
               {"meta", {{"page_number", 1}, {"page_size", 250}, {"total_pages", 1}, {"total_results", list.size()}}}}
              .dump());
    }
    if (resource == "phone_numbers" && path.size() == 3) {
      auto it = owned.find(path[2]);
      if (it == owned.end() || it->second.provider != ProviderKind::kTelnyx) {
        return TelnyxError(404, "10005", "Resource not found", "Phone number " + path[2] + " not found.");
      }
      json number = TelnyxNumber(it->second);
      if (request.method == "GET") return http::Response::Json(200, json{{"data", number}}.dump());
      if (request.method == "DELETE") {
        owned.erase(it);
        number["status"] = "deleted";
        return http::Response::Json(200, json{{"data", number}}.dump());
      }
    }
    return TelnyxError(404, "10005", "Resource not found", "No route for " + request.method + " " + request.path);
  }

  json TelnyxNumber(const OwnedNumber& number) const {
    return {
        {"id", number.id},    {"record_type", "phone_number"},  {"phone_number", number.phone_number},
        {"status", "active"}, {"deletion_lock_enabled", false}, {"purchased_at", FormatRfc3339(number.purchased_at)}};
  }

  http::Response TelnyxPlaceCall(const json& body) {
    for (const char* field : {"connection_id", "to", "from"}) {
      if (!body.contains(field) || !body[field].is_string() || body[field].get<std::string>().empty()) {
        return TelnyxError(422, "10004", "Missing required parameter",
                           "The '" + std::string(field) + "' parameter is required.", std::string("/") + field);
      }
    }
    std::string to = body["to"];
    const Persona& persona = scenario.For(to);
    if (!IsE164(to) || persona.kind == PersonaKind::kInvalid) {
      return TelnyxError(422, "10016", "Phone number must be in +E.164 format",
                         "The 'to' parameter must be a valid phone number in +E.164 format.", "/to");
    }
    // Telnyx refuses calls over the account's rate instead of queueing them.
    auto now = std::chrono::steady_clock::now();
    while (!telnyx_recent_calls.empty() && now - telnyx_recent_calls.front() >= std::chrono::seconds(1)) {
      telnyx_recent_calls.pop_front();
    }
    if (static_cast<int>(telnyx_recent_calls.size()) >= options.telnyx_calls_per_second) {
      http::Response refused = TelnyxError(429, "10011", "Too many requests", "Call rate limit exceeded.");
      refused.headers.Set("Retry-After", "1");
      return refused;
    }
    telnyx_recent_calls.push_back(now);

    Call call;
    call.id = "v3:" + RandomHex(24);
    call.provider = ProviderKind::kTelnyx;
    call.to = to;
    call.from = body["from"];
    call.persona = persona;
    call.status = "queued";
    call.created_at = clock.Now();
    call.request = body;
    call.connection_id = body["connection_id"];
    call.call_leg_id = Uuid();
    call.call_session_id = Uuid();
    call.client_state = body.value("client_state", "");
    call.media_url = body.value("stream_url", "");
    call.webhook_url = body.value("webhook_url", "");
    call.webhook_failover_url = body.value("webhook_url_failover", "");
    if (call.webhook_url.empty() && !options.webhook_base.empty()) {
      call.webhook_url = options.webhook_base + "/webhooks/telnyx";
    }
    std::string amd = body.value("answering_machine_detection", "disabled");
    call.machine_detection = amd != "disabled";
    int ring_timeout = std::clamp(body.value("timeout_secs", 30), 5, 600);
    int time_limit = std::max(1, body.value("time_limit_secs", 14400));
    auto timeline = TelnyxTimeline(call, ring_timeout, time_limit);
    std::string id = call.id;
    json answer = {{"data",
                    {{"call_control_id", call.id},
                     {"call_leg_id", call.call_leg_id},
                     {"call_session_id", call.call_session_id},
                     {"is_alive", false},
                     {"record_type", "call"}}}};
    calls.emplace(id, std::move(call));
    call_order.push_back(id);
    Schedule(std::move(timeline));
    return http::Response::Json(200, answer.dump());
  }

  // ---- /_emulator ----
  http::Response Internal(http::Request& request, const std::vector<std::string>& path) {
    std::string what = path.size() > 1 ? path[1] : "";
    if (what == "calls" && request.method == "GET") {
      json list = json::array();
      for (const auto& id : call_order) list.push_back(CallJson(calls.at(id)));
      return http::Response::Json(200, list.dump());
    }
    if (what == "events" && request.method == "GET") return http::Response::Json(200, events.dump());
    if (what == "requests" && request.method == "GET") return http::Response::Json(200, requests.dump());
    if (what == "health") {
      return http::Response::Json(200, json{{"ok", true},
                                            {"telnyx_public_key", PublicKey()},
                                            {"requests", request_count},
                                            {"webhooks", webhook_count},
                                            {"faults_triggered", faults_triggered}}
                                           .dump());
    }
    if (what == "faults" && request.method == "POST") {
      auto body = json::parse(request.body, nullptr, false);
      if (!body.is_object()) return http::Response::Json(400, R"({"error":"expected a JSON object"})");
      options.duplicate_webhooks = body.value("duplicate_webhooks", options.duplicate_webhooks);
      options.reorder_webhooks = body.value("reorder_webhooks", options.reorder_webhooks);
      if (body.contains("drop_media_after_ms") && body["drop_media_after_ms"].is_number_integer()) {
        options.drop_media_after = std::chrono::milliseconds(body["drop_media_after_ms"].get<int64_t>());
      }
      auto add = [&](const char* key, std::set<int>& into, int base) {
        if (!body.contains(key) || !body[key].is_array()) return;
        for (const auto& n : body[key])
          if (n.is_number_integer()) into.insert(base + n.get<int>());
      };
      add("fail_next", options.fail_requests, request_count);
      add("lose_next", options.lose_responses, request_count);
      add("fail_webhook_next", options.fail_webhooks, webhook_count);
      return http::Response::NoContent();
    }
    return http::Response::Json(404, R"({"error":"not found"})");
  }

  std::string PublicKey() const { return Base64(telnyx_public_key, sizeof telnyx_public_key); }

  http::Response Handle(http::Request& request) {
    auto path = Split(request.path);
    std::lock_guard lock(mutex);
    if (!path.empty() && path[0] == "_emulator") return Internal(request, path);
    int number = ++request_count;
    bool twilio = request.path.starts_with(kTwilioPrefix);
    requests.push_back({{"n", number},
                        {"provider", twilio ? "twilio" : "telnyx"},
                        {"method", request.method},
                        {"target", request.target},
                        {"body", request.body}});
    if (options.fail_requests.contains(number)) {
      ++faults_triggered;
      requests.back()["fault"] = "5xx";
      if (twilio) return TwilioError(500, 20500, "Internal Server Error");
      return TelnyxError(500, "10007", "Unexpected error", "An unexpected error occurred.");
    }
    http::Response response = Route(request, path, twilio);
    if (options.lose_responses.contains(number)) {
      // Done at the carrier, but the client never learns it: what a timed-out or reset connection looks like
      // from the carrier's edge.
      ++faults_triggered;
      requests.back()["fault"] = "lost";
      return http::Response::Text(504, "Gateway Timeout");
    }
    return response;
  }

  http::Response Route(http::Request& request, const std::vector<std::string>& path, bool twilio) {
    if (twilio) return Twilio(request, path);
    if (!path.empty() && path[0] == "v2") return Telnyx(request, path);
    return http::Response::Json(404, R"({"error":"not found"})");
  }

  // ---- delivery thread ----
  void SendLoop(size_t shard) {
    std::map<std::string, std::unique_ptr<http::Client>> clients;  // by origin; this thread only
    auto& queue = pending[shard];
    std::unique_lock lock(mutex);
    while (true) {
      if (stopping) return;
      if (queue.due.empty()) {
        queue.wake.wait(lock);
        continue;
      }
      if (SteadyTime due = queue.due.top().due; due > std::chrono::steady_clock::now()) {
        queue.wake.wait_until(lock, due);  // a copy: the queue changes while we wait
        continue;
      }
      Delivery delivery = queue.due.top();
      queue.due.pop();
      auto call_it = calls.find(delivery.call_id);
      if (call_it == calls.end() || call_it->second.generation != delivery.generation) {
        wake.notify_all();  // WaitIdle may be waiting for the queue to drain
        continue;
      }
      Call& call = call_it->second;
      if (!delivery.new_status.empty() && !delivery.duplicate && (!call.ended || delivery.final)) {
        if (delivery.new_status == "in-progress" && !call.answered) {
          call.answered = true;
          call.answered_at = clock.Now();
          StartMedia(call);
        }
        if (!call.ended) call.status = delivery.new_status;
        if (delivery.final) {
          call.ended = true;
          StopMedia(call);
        }
      }
      // Sign now: the Telnyx timestamp is the moment of sending.
      auto [headers, body] = Signed(delivery);
      size_t event_index = events.size();
      events.push_back({{"provider", std::string(telephony::ProviderName(delivery.provider))},
                        {"call_id", delivery.call_id},
                        {"event", delivery.event},
                        {"url", delivery.url},
                        {"duplicate", delivery.duplicate},
                        {"status", 0}});
      // The platform's endpoint is down for this one: Twilio's connect retry fails too.
      const bool endpoint_down = options.fail_webhooks.contains(++webhook_count);
      if (endpoint_down) {
        ++faults_triggered;
        events[event_index]["fault"] = "endpoint_down";
      }
      ++sending;
      lock.unlock();
      int status = endpoint_down ? 0 : Deliver(clients, delivery.url, headers, body);
      // Telnyx sends an undelivered event (no 2xx) to the call's failover URL, once.
      std::optional<int> failover_status;
      if ((status < 200 || status > 299) && !delivery.failover_url.empty()) {
        Delivery failover = delivery;
        failover.telnyx_body["meta"] = {{"attempt", 2}, {"delivered_to", delivery.failover_url}};
        auto [failover_headers, failover_body] = Signed(failover);
        failover_status = Deliver(clients, delivery.failover_url, failover_headers, failover_body);
      }
      lock.lock();
      --sending;
      events[event_index]["status"] = status;
      if (failover_status) {
        events[event_index]["failover_url"] = delivery.failover_url;
        events[event_index]["failover_status"] = *failover_status;
      }
      wake.notify_all();
    }
  }

  // Headers and body of a delivery, signed as its carrier signs them (Telnyx: with the current time).
  std::pair<http::Headers, std::string> Signed(const Delivery& delivery) const {
    http::Headers headers;
    std::string body;
    if (delivery.provider == ProviderKind::kTwilio) {
      telephony::twilio::FormParams signed_params(delivery.twilio_params.begin(), delivery.twilio_params.end());
      headers.Set("Content-Type", "application/x-www-form-urlencoded");
      headers.Set("X-Twilio-Signature",
                  telephony::twilio::ComputeSignature(options.twilio_auth_token, delivery.url, signed_params));
      headers.Set("I-Twilio-Idempotency-Token", delivery.call_id + "-" + delivery.event);
      body = FormBody(delivery.twilio_params);
    } else {
      body = delivery.telnyx_body.dump();
      std::string timestamp =
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(clock.Now().time_since_epoch()).count());
      std::string message = timestamp + "|" + body;
      unsigned char signature[crypto_sign_BYTES];
      crypto_sign_detached(signature, nullptr, reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                           telnyx_secret_key);
      headers.Set("Content-Type", "application/json");
      headers.Set("telnyx-timestamp", timestamp);
      headers.Set("telnyx-signature-ed25519", Base64(signature, sizeof signature));
    }
    return {std::move(headers), std::move(body)};
  }

  // One POST; a failed connection is retried once (what Twilio does by default). 0: not delivered.
  static int Deliver(std::map<std::string, std::unique_ptr<http::Client>>& clients, const std::string& url,
                     const http::Headers& headers, const std::string& body) {
    auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return 0;
    auto path_start = url.find('/', scheme_end + 3);
    std::string origin = url.substr(0, path_start);
    std::string target = path_start == std::string::npos ? "/" : url.substr(path_start);
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto& client = clients[origin];
      if (!client) {
        auto created = http::Client::Create(origin, {.timeout = std::chrono::milliseconds(5000)});
        if (!created) return 0;
        client = std::move(created).value();
      }
      auto response = client->Send("POST", target, headers, body);
      if (response) return response->status;
      client.reset();
    }
    return 0;
  }
};

Result<std::unique_ptr<Emulator>> Emulator::Create(EmulatorOptions options, Scenario scenario, const Clock& clock) {
  if (sodium_init() < 0) return Error::Internal("libsodium failed to initialise");
  unsigned char seed[crypto_sign_SEEDBYTES];
  size_t length = 0;
  if (options.telnyx_seed_hex.size() != 2 * sizeof seed ||
      sodium_hex2bin(seed, sizeof seed, options.telnyx_seed_hex.data(), options.telnyx_seed_hex.size(), nullptr,
                     &length, nullptr) != 0 ||
      length != sizeof seed) {
    return Error::InvalidArgument("telnyx_seed_hex", "the Telnyx key seed must be 64 hex digits");
  }
  if (options.time_scale <= 0) return Error::InvalidArgument("time_scale", "time scale must be positive");
  if (options.webhook_senders < 1) return Error::InvalidArgument("webhook_senders", "must be at least 1");
  if (options.twilio_calls_per_second <= 0) {
    return Error::InvalidArgument("twilio_calls_per_second", "must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(scenario), clock);
  crypto_sign_seed_keypair(impl->telnyx_public_key, impl->telnyx_secret_key, seed);
  sodium_memzero(seed, sizeof seed);
  Impl* raw = impl.get();
  for (size_t shard = 0; shard < impl->pending.size(); ++shard) {
    impl->senders.emplace_back([raw, shard] { raw->SendLoop(shard); });
  }
  impl->media_thread = std::thread([raw] { raw->media_io.run(); });
  return std::unique_ptr<Emulator>(new Emulator(std::move(impl)));
}

Emulator::Emulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Emulator::~Emulator() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  for (auto& queue : impl_->pending) queue.wake.notify_all();
  for (auto& sender : impl_->senders) sender.join();
  {
    std::lock_guard lock(impl_->mutex);
    for (auto& [id, call] : impl_->calls) impl_->StopMedia(call);
  }
  impl_->media_work.reset();
  // Streams get a moment to say goodbye; the rest are cut when the context stops.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (!impl_->media_io.stopped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  impl_->media_io.stop();
  impl_->media_thread.join();
  sodium_memzero(impl_->telnyx_secret_key, sizeof impl_->telnyx_secret_key);
}

http::Response Emulator::Handle(http::Request& request) { return impl_->Handle(request); }

std::string Emulator::telnyx_public_key_base64() const { return impl_->PublicKey(); }

void Emulator::SetFaults(bool duplicate_webhooks, bool reorder_webhooks, const std::set<int>& fail_next) {
  std::lock_guard lock(impl_->mutex);
  impl_->options.duplicate_webhooks = duplicate_webhooks;
  impl_->options.reorder_webhooks = reorder_webhooks;
  impl_->options.fail_requests.clear();
  impl_->options.lose_responses.clear();
  impl_->options.fail_webhooks.clear();
  for (int n : fail_next) impl_->options.fail_requests.insert(impl_->request_count + n);
}

void Emulator::InjectFaults(const std::set<int>& fail_requests, const std::set<int>& lose_responses,
                            const std::set<int>& fail_webhooks) {
  std::lock_guard lock(impl_->mutex);
  for (int n : fail_requests) impl_->options.fail_requests.insert(impl_->request_count + n);
  for (int n : lose_responses) impl_->options.lose_responses.insert(impl_->request_count + n);
  for (int n : fail_webhooks) impl_->options.fail_webhooks.insert(impl_->webhook_count + n);
}

int Emulator::FaultsTriggered() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->faults_triggered;
}

bool Emulator::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->mutex);
  return impl_->wake.wait_for(lock, timeout, [&] {
    return impl_->sending == 0 && std::all_of(impl_->pending.begin(), impl_->pending.end(),
                                              [](const auto& queue) { return queue.due.empty(); });
  });
}

}  // namespace clozit::emulator
