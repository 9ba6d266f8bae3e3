#include "telephony/media/detail/media_session.hpp"

#include <algorithm>
#include <cctype>

#include <spdlog/spdlog.h>
#include <boost/asio.hpp>
#include <nlohmann/json.hpp>

#include "telephony/media/detail/media_frame.hpp"
#include "telephony/media/mulaw.hpp"
#include "telephony/media_stream.hpp"

namespace clozit::telephony::media::detail {
namespace {

using nlohmann::json;
constexpr uint8_t kMulawSilence = 0xFF;  // µ-law code of 0

std::string Field(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& Member(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

}  // namespace

MediaSession::MediaSession(ProviderKind provider, std::optional<std::string> verified_call_id,
                           const MediaTokens& tokens, const MediaHandlerFactory& factory, const MediaSettings& settings,
                           MediaStats& stats)
    : provider_(provider),
      verified_call_id_(std::move(verified_call_id)),
      tokens_(tokens),
      factory_(factory),
      settings_(settings),
      stats_(stats) {}

void MediaSession::Open(std::shared_ptr<http::WebSocketConnection> connection) {
  connection_ = std::move(connection);
  connection_executor_ = connection_->executor();
  start_timer_.emplace(connection_executor_, settings_.start_timeout);
  pacer_ = &FramePacer::Of(connection_executor_);
  ++stats_.active;
  start_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->started_ && !self->finished_) self->Refuse("no valid start frame in time");
  });
}

void MediaSession::Text(std::string_view message) {
  if (finished_) return;
  // Nearly every frame is `media`: read those without a JSON tree, everything else with the full parser.
  MediaFrameView view;
  if (started_ && ScanMediaFrame(message, view)) return Media(view.track, view.payload);
  auto frame = json::parse(message, nullptr, false);
  if (!frame.is_object()) return Malformed("a frame that is not a JSON object");
  const std::string event = Field(frame, "event");
  if (event == "connected") return;
  if (event == "start") {
    if (!started_) Start(message);
    return;
  }
  if (!started_) {
    ++stats_.malformed;  // media before start: nothing to attribute it to
    return;
  }
  if (event == "media") {
    const json& media = Member(frame, "media");
    const std::string track = Field(media, "track");
    const std::string payload = Field(media, "payload");
    Media(track, payload);
  } else if (event == "dtmf") {
    std::string digit = Field(Member(frame, "dtmf"), "digit");
    if (digit.size() == 1) handler_->OnDtmf(digit[0]);
  } else if (event == "mark") {
    handler_->OnMark(Field(Member(frame, "mark"), "name"));
  } else if (event == "stop") {
    Stop(false);
    connection_->Close(http::CloseCode::kNormal, "stream stopped");
  } else if (event != "error") {
    ++stats_.malformed;  // an event this version does not know: carriers add them, so not fatal
  }
}

void MediaSession::Media(std::string_view track, std::string_view payload) {
  // A two-way stream may echo our own track back; only the callee's audio goes to the handler.
  if (!track.empty() && track != "inbound" && track != "inbound_track") return;
  if (!DecodeBase64Into(payload, mulaw_)) return Malformed("a media payload that is not base64");
  ++stats_.frames_in;
  pcm_.clear();
  MulawDecode(mulaw_, pcm_);
  handler_->OnAudio(pcm_);
}

void MediaSession::Malformed(const char* what) {
  ++stats_.malformed;
  spdlog::info("media stream on /v1/media/{} closed: {}", ProviderName(provider_), what);
  Stop(true);
  connection_->Close(http::CloseCode::kProtocolError, "malformed frame");
}

void MediaSession::Start(std::string_view message) {
  auto start = ParseMediaStreamStart(provider_, message);
  if (!start) return Refuse("malformed start frame: " + start.error().message);
  bool plain_id = std::all_of(start->stream_id.begin(), start->stream_id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.';
  });
  if (!plain_id) return Refuse("stream id with unexpected characters");
  if (start->encoding != "audio/x-mulaw" && start->encoding != "PCMU") {
    return Refuse("unsupported media format " + start->encoding);
  }
  std::string call_id;
  if (verified_call_id_) {
    call_id = *verified_call_id_;
  } else {
    auto token = start->custom_parameters.find("token");
    if (token == start->custom_parameters.end()) return Refuse("no media token in the start frame");
    auto verified = tokens_.Verify(token->second);
    if (!verified) return Refuse(verified.error().message);
    call_id = std::move(verified).value();
  }
  info_.provider = provider_;
  info_.call_id = std::move(call_id);
  info_.carrier_call_id = start->call_id;
  info_.stream_id = start->stream_id;
  info_.sample_rate = start->sample_rate;
  info_.custom_parameters = std::move(start->custom_parameters);
  info_.custom_parameters.erase("token");  // a credential: not for the handler's logs
  handler_ = factory_(info_);
  if (!handler_) return Refuse("no media handler for the call");
  started_ = true;
  start_timer_->cancel();
  ++stats_.started;
  spdlog::debug("media stream {} started for call {}", info_.stream_id, info_.call_id);
  handler_->OnStart(info_, *this);
}

void MediaSession::Refuse(const std::string& why) {
  ++stats_.refused;
  finished_ = true;
  spdlog::info("media stream on /v1/media/{} refused: {}", ProviderName(provider_), why);
  connection_->Close(http::CloseCode::kPolicyViolation, "media stream refused");
}

void MediaSession::Stop(bool dropped) {
  if (finished_) return;
  finished_ = true;
  queue_.clear();
  queued_frames_ = 0;
  if (!handler_) return;
  if (dropped) {
    ++stats_.dropped;
    spdlog::info("media stream {} of call {} dropped without stop", info_.stream_id, info_.call_id);
  }
  auto handler = std::move(handler_);
  handler->OnStop(dropped);
}

void MediaSession::Closed() {
  Stop(true);  // no effect after a `stop`
  start_timer_->cancel();
  --stats_.active;
  connection_.reset();
}

void MediaSession::Close() {
  if (connection_) connection_->Close(http::CloseCode::kNormal, "call ended");
}

Result<void> MediaSession::SendAudio(std::span<const int16_t> pcm) {
  if (finished_) return Error::Make(ErrorCode::kConflict, "the media stream has ended");
  size_t frames = (pcm.size() + kSamplesPerFrame - 1) / kSamplesPerFrame;
  if (queued_frames_ + frames > settings_.max_queued_frames) {
    return Error::Make(ErrorCode::kRateLimited,
                       "outbound audio queue full (" + std::to_string(queued_frames_) + " frames)");
  }
  for (size_t offset = 0; offset < pcm.size(); offset += kSamplesPerFrame) {
    auto chunk = pcm.subspan(offset, std::min(kSamplesPerFrame, pcm.size() - offset));
    Outbound& item = queue_.emplace_back();
    item.audio = true;
    MulawEncode(chunk, item.mulaw.data());
    std::fill(item.mulaw.begin() + static_cast<std::ptrdiff_t>(chunk.size()), item.mulaw.end(),
              static_cast<char>(kMulawSilence));
  }
  queued_frames_ += frames;
  StartPacing();
  return Ok();
}

void MediaSession::SendMark(std::string name) {
  if (finished_) return;
  queue_.push_back({.audio = false, .mark = std::move(name)});
  StartPacing();
}

void MediaSession::Clear() {
  if (finished_) return;
  std::deque<Outbound> marks;
  for (auto& item : queue_)
    if (!item.audio) marks.push_back(std::move(item));
  queue_.clear();
  queued_frames_ = 0;
  connection_->SendText(provider_ == ProviderKind::kTwilio
                            ? json{{"event", "clear"}, {"streamSid", info_.stream_id}}.dump()
                            : R"({"event":"clear"})");
  // The carrier has nothing buffered after the clear, so these come straight back as played.
  for (auto& mark : marks) SendMarkNow(mark.mark);
}

void MediaSession::StartPacing() {
  if (pacing_ || finished_) return;
  pacing_ = true;
  // Never closer than one frame to the previous one, even after the queue ran dry in between.
  auto now = std::chrono::steady_clock::now();
  next_send_ = std::max(now, last_sent_ + settings_.frame_interval);
  if (next_send_ <= now) {
    Tick();
  } else {
    ArmTimer();
  }
}

void MediaSession::ArmTimer() { pacer_->WakeAt(next_send_, shared_from_this()); }

void MediaSession::OnPace() {
  if (!finished_) Tick();
}

void MediaSession::Tick() {
  if (!SendLeadingMarks()) return;
  SendFrame(queue_.front().mulaw);
  queue_.pop_front();
  --queued_frames_;
  last_sent_ = next_send_;
  if (!SendLeadingMarks()) return;
  next_send_ += settings_.frame_interval;
  // After a stall (the process was descheduled), resume the cadence from now instead of bursting to catch up.
  auto now = std::chrono::steady_clock::now();
  if (now - next_send_ > 3 * settings_.frame_interval) next_send_ = now;
  ArmTimer();
}

bool MediaSession::SendLeadingMarks() {
  // Marks take no time: they go out as soon as the audio before them has.
  while (!queue_.empty() && !queue_.front().audio) {
    SendMarkNow(queue_.front().mark);
    queue_.pop_front();
  }
  if (queue_.empty()) pacing_ = false;
  return !queue_.empty();
}

void MediaSession::SendFrame(std::span<const char> mulaw) {
  ++stats_.frames_out;
  std::string message;
  AppendMediaFrame(provider_ == ProviderKind::kTwilio ? std::string_view(info_.stream_id) : std::string_view(), mulaw,
                   message);
  connection_->SendText(std::move(message));
}

void MediaSession::SendMarkNow(const std::string& name) {
  json message = {{"event", "mark"}, {"mark", {{"name", name}}}};
  if (provider_ == ProviderKind::kTwilio) message["streamSid"] = info_.stream_id;
  connection_->SendText(message.dump());
}

}  // namespace clozit::telephony::media::detail
