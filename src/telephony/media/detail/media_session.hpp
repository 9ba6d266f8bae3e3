// One carrier media WebSocket = one call: authenticates the `start` frame,
// decodes inbound frames for the MediaHandler, and paces outbound audio.
// Lives on the connection's executor; shared with its timer and the frame
// pacer so that a wake-up after the socket closed finds a live (closed) object.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "http/websocket.hpp"
#include "telephony/media/detail/frame_pacer.hpp"
#include "telephony/media/media_endpoints.hpp"
#include "telephony/media/mulaw.hpp"

namespace clozit::telephony::media::detail {

class MediaSession final : public MediaOutput, public Paced, public std::enable_shared_from_this<MediaSession> {
 public:
  /// `verified_call_id`: set when the upgrade already carried a valid token (Telnyx).
  MediaSession(ProviderKind provider, std::optional<std::string> verified_call_id, const MediaTokens& tokens,
               const MediaHandlerFactory& factory, const MediaSettings& settings, MediaStats& stats);

  // The WebSocket side (forwarded by the connection's handler).
  void Open(std::shared_ptr<http::WebSocketConnection> connection);
  void Text(std::string_view message);
  void Closed();

  // MediaOutput
  Result<void> SendAudio(std::span<const int16_t> pcm) override;
  void SendMark(std::string name) override;
  void Clear() override;
  size_t QueuedFrames() const override { return queued_frames_; }
  void Close() override;
  boost::asio::any_io_executor executor() const override { return connection_executor_; }

  // Paced: the frame pacer's wake-up sends what is due. On the connection's executor.
  void OnPace() override;

 private:
  struct Outbound {
    bool audio = true;                           // else a mark
    std::array<char, kSamplesPerFrame> mulaw{};  // one 20 ms frame, in place: no allocation per frame
    std::string mark;
  };
  void Start(std::string_view message);
  void Refuse(const std::string& why);
  void Media(std::string_view track, std::string_view payload);
  /// Ends the stream with a protocol error (the handler gets OnStop(dropped)).
  void Malformed(const char* what);
  void Stop(bool dropped);
  void StartPacing();
  void Tick();
  /// Asks the context's frame pacer for a wake-up at next_send_.
  void ArmTimer();
  /// Sends the marks at the head of the queue; false (and pacing stops) when no audio follows them.
  bool SendLeadingMarks();
  void SendFrame(std::span<const char> mulaw);
  void SendMarkNow(const std::string& name);

  ProviderKind provider_;
  std::optional<std::string> verified_call_id_;
  const MediaTokens& tokens_;
  const MediaHandlerFactory& factory_;
  MediaSettings settings_;
  MediaStats& stats_;

  // State below is touched only on the connection's executor.
  std::shared_ptr<http::WebSocketConnection> connection_;
  boost::asio::any_io_executor connection_executor_;
  std::optional<boost::asio::steady_timer> start_timer_;
  FramePacer* pacer_ = nullptr;  // of the connection's io_context, which outlives the session's wakes
  std::unique_ptr<MediaHandler> handler_;
  MediaStreamInfo info_;
  bool started_ = false;
  bool finished_ = false;  // stopped, refused or closed: nothing more reaches the handler
  std::deque<Outbound> queue_;
  size_t queued_frames_ = 0;
  bool pacing_ = false;
  std::chrono::steady_clock::time_point next_send_{};
  std::chrono::steady_clock::time_point last_sent_{};
  // Reused decode buffers.
  std::string mulaw_;
  std::vector<int16_t> pcm_;
};

}  // namespace clozit::telephony::media::detail
