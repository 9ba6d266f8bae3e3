#include "media_callee.hpp"

#include <boost/asio.hpp>

#include "telephony/detail/rest.hpp"

namespace clozit::emulator {
namespace {

using nlohmann::json;
using telephony::ProviderKind;
constexpr auto kFrame = std::chrono::milliseconds(20);
constexpr size_t kFrameBytes = 160;

}  // namespace

json MediaRecord::ToJson() const {
  std::lock_guard lock(mutex);
  return {{"state", state},
          {"error", error},
          {"frames_sent", frames_sent},
          {"frames_received", frames_received},
          {"marks_received", marks_received},
          {"marks_echoed", marks_echoed},
          {"clears", clears},
          {"close_code", close_code},
          {"interval_mean_ms", intervals ? interval_sum_ms / static_cast<double>(intervals) : 0.0},
          {"interval_max_ms", interval_max_ms}};
}

MediaCallee::MediaCallee(MediaCalleeOptions options, std::shared_ptr<MediaRecord> record)
    : options_(std::move(options)), record_(std::move(record)) {}

std::string MediaCallee::StopFrame(const MediaCalleeOptions& options) {
  if (options.provider == ProviderKind::kTwilio) {
    return json{{"event", "stop"},
                {"sequenceNumber", "0"},
                {"streamSid", options.stream_id},
                {"stop", {{"accountSid", "AC"}, {"callSid", options.call_id}}}}
        .dump();
  }
  return json{{"event", "stop"}, {"stream_id", options.stream_id}, {"stop", {{"call_control_id", options.call_id}}}}
      .dump();
}

void MediaCallee::OnOpen(std::shared_ptr<http::WebSocketConnection> connection) {
  connection_ = std::move(connection);
  timer_.emplace(connection_->executor());
  opened_at_ = next_tick_ = play_end_ = std::chrono::steady_clock::now();
  bool twilio = options_.provider == ProviderKind::kTwilio;
  ++sequence_;
  if (twilio) {
    connection_->SendText(R"({"event":"connected","protocol":"Call","version":"1.0.0"})");
    connection_->SendText(
        json{{"event", "start"},
             {"sequenceNumber", std::to_string(sequence_)},
             {"streamSid", options_.stream_id},
             {"start",
              {{"accountSid", "AC"},
               {"streamSid", options_.stream_id},
               {"callSid", options_.call_id},
               {"tracks", {"inbound"}},
               {"customParameters", options_.custom_parameters},
               {"mediaFormat", {{"encoding", "audio/x-mulaw"}, {"sampleRate", 8000}, {"channels", 1}}}}}}
            .dump());
  } else {
    connection_->SendText(R"({"event":"connected","version":"1.0.0"})");
    connection_->SendText(json{{"event", "start"},
                               {"sequence_number", std::to_string(sequence_)},
                               {"stream_id", options_.stream_id},
                               {"start",
                                {{"call_control_id", options_.call_id},
                                 {"client_state", options_.client_state},
                                 {"custom_parameters", json::object()},
                                 {"media_format", {{"encoding", "PCMU"}, {"sample_rate", 8000}, {"channels", 1}}}}}}
                              .dump());
  }
  {
    std::lock_guard lock(record_->mutex);
    record_->state = "streaming";
  }
  Tick();
}

void MediaCallee::Tick() {
  auto now = std::chrono::steady_clock::now();
  if (options_.drop_after.count() > 0 && now - opened_at_ >= options_.drop_after) {
    {
      std::lock_guard lock(record_->mutex);
      record_->state = "dropped";
    }
    connection_->Abort();
    return;
  }
  EchoPlayedMarks(false);
  ++sequence_;
  static const std::string kSilence = telephony::detail::Base64(std::string(kFrameBytes, '\xFF'));
  const std::string chunk = std::to_string(sequence_ - 1);
  const std::string timestamp = std::to_string((sequence_ - 2) * 20);
  if (options_.provider == ProviderKind::kTwilio) {
    connection_->SendText(R"({"event":"media","sequenceNumber":")" + std::to_string(sequence_) + R"(","streamSid":")" +
                          options_.stream_id + R"(","media":{"track":"inbound","chunk":")" + chunk +
                          R"(","timestamp":")" + timestamp + R"(","payload":")" + kSilence + "\"}}");
  } else {
    connection_->SendText(R"({"event":"media","sequence_number":")" + std::to_string(sequence_) + R"(","stream_id":")" +
                          options_.stream_id + R"(","media":{"track":"inbound","chunk":")" + chunk +
                          R"(","timestamp":")" + timestamp + R"(","payload":")" + kSilence + "\"}}");
  }
  {
    std::lock_guard lock(record_->mutex);
    ++record_->frames_sent;
  }
  next_tick_ += kFrame;
  timer_->expires_at(next_tick_);
  timer_->async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!ec && *alive) Tick();
  });
}

void MediaCallee::EchoPlayedMarks(bool all) {
  auto now = std::chrono::steady_clock::now();
  int64_t echoed = 0;
  while (!pending_marks_.empty() && (all || pending_marks_.front().first <= now)) {
    json mark = {{"event", "mark"}, {"mark", {{"name", pending_marks_.front().second}}}};
    if (options_.provider == ProviderKind::kTwilio) {
      mark["streamSid"] = options_.stream_id;
      mark["sequenceNumber"] = std::to_string(++sequence_);
    } else {
      mark["stream_id"] = options_.stream_id;
    }
    connection_->SendText(mark.dump());
    pending_marks_.pop_front();
    ++echoed;
  }
  if (echoed) {
    std::lock_guard lock(record_->mutex);
    record_->marks_echoed += echoed;
  }
}

void MediaCallee::OnText(std::string_view text) {
  auto message = json::parse(text, nullptr, false);
  if (!message.is_object()) return;
  std::string event = message.value("event", "");
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(record_->mutex);
  if (event == "media") {
    ++record_->frames_received;
    if (record_->last_frame) {
      double interval = std::chrono::duration<double, std::milli>(now - *record_->last_frame).count();
      record_->interval_sum_ms += interval;
      record_->interval_max_ms = std::max(record_->interval_max_ms, interval);
      ++record_->intervals;
    }
    record_->last_frame = now;
    // Played in real time behind what is already buffered.
    play_end_ = std::max(play_end_, now) + kFrame;
  } else if (event == "mark" && message.contains("mark")) {
    std::string name = message["mark"].value("name", "");
    record_->marks_received.push_back(name);
    pending_marks_.emplace_back(std::max(play_end_, now), name);
  } else if (event == "clear") {
    ++record_->clears;
    play_end_ = now;
    for (auto& mark : pending_marks_) mark.first = now;
  }
}

void MediaCallee::OnClose(uint16_t code, std::string_view) {
  *alive_ = false;
  if (timer_) timer_->cancel();
  {
    std::lock_guard lock(record_->mutex);
    record_->close_code = code;
    if (record_->state == "streaming") record_->state = code == 1008 ? "refused" : "stopped";
  }
  connection_.reset();
}

}  // namespace clozit::emulator
