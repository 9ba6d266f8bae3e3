// carrier-emulator: the simulated callee on a call's media WebSocket.
//
// Once a call is answered the emulator opens the stream the platform asked
// for (Twilio `<Connect><Stream>` with its `<Parameter>`s, or Telnyx
// `stream_url`) and a MediaCallee plays the far end in that carrier's frame
// format: `connected`, `start`, then one 20 ms µ-law frame every 20 ms
// (silence until the voice work gives personas speech), `stop` at hang-up.
// It "plays" what the platform sends in real time, so marks are echoed when
// the audio queued before them has played, and `clear` empties that buffer
// and returns pending marks. Everything it saw is kept in a MediaRecord.
//
// Threading: callbacks run on the connection's strand; MediaRecord is read
// from other threads under its mutex.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "http/websocket.hpp"
#include "telephony/call_event.hpp"

namespace clozit::emulator {

struct MediaRecord {
  mutable std::mutex mutex;
  // State below is guarded by mutex.
  std::string state = "connecting";  // connecting, streaming, stopped, dropped, refused, failed
  std::string error;
  int64_t frames_sent = 0;
  int64_t frames_received = 0;
  std::vector<std::string> marks_received;
  int64_t marks_echoed = 0;
  int64_t clears = 0;
  int close_code = 0;
  double interval_max_ms = 0;  // largest gap between two received frames
  double interval_sum_ms = 0;
  int64_t intervals = 0;
  std::optional<std::chrono::steady_clock::time_point> last_frame;

  nlohmann::json ToJson() const;
};

struct MediaCalleeOptions {
  telephony::ProviderKind provider = telephony::ProviderKind::kTwilio;
  std::string call_id;                                   // the carrier's (CallSid / call_control_id)
  std::string stream_id;                                 // streamSid / stream_id
  std::map<std::string, std::string> custom_parameters;  // Twilio <Parameter>s
  std::string client_state;
  std::chrono::milliseconds drop_after{0};  // > 0: drop the socket (no stop) after this long
};

class MediaCallee final : public http::WebSocketHandler {
 public:
  MediaCallee(MediaCalleeOptions options, std::shared_ptr<MediaRecord> record);
  void OnOpen(std::shared_ptr<http::WebSocketConnection> connection) override;
  void OnText(std::string_view message) override;
  void OnClose(uint16_t code, std::string_view reason) override;

  /// The `stop` frame the carrier sends at hang-up (send it, then close).
  static std::string StopFrame(const MediaCalleeOptions& options);

 private:
  void Tick();
  void EchoPlayedMarks(bool all);

  MediaCalleeOptions options_;
  std::shared_ptr<MediaRecord> record_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // a timer may complete after OnClose
  std::shared_ptr<http::WebSocketConnection> connection_;
  std::optional<boost::asio::steady_timer> timer_;
  std::chrono::steady_clock::time_point next_tick_;
  std::chrono::steady_clock::time_point opened_at_;
  std::chrono::steady_clock::time_point play_end_;  // when what we were sent has finished playing
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> pending_marks_;
  int64_t sequence_ = 0;
  bool stopped_ = false;
};

}  // namespace clozit::emulator
