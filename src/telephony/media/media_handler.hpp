// telephony/media: the seam between a carrier media stream and whatever talks
// on the call (the voice agent; until it lands, a built-in echo or silence).
//
// The media endpoints (media_endpoints.hpp) turn each carrier's WebSocket
// frames into MediaHandler calls — decoded 16-bit PCM at 8 kHz, DTMF digits,
// marks that have finished playing, the end of the stream — and give the
// handler a MediaOutput to speak through. Every call of both interfaces
// happens on the call's strand (`MediaOutput::executor()`): one strand per
// call, so a handler needs no locks for its own state; it must not block
// there (post speech recognition, TTS, database work to other executors and
// come back with asio::post(output.executor(), …)).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>

#include "common/result.hpp"
#include "telephony/call_event.hpp"

namespace clozit::telephony::media {

/// Which call a stream carries.
struct MediaStreamInfo {
  ProviderKind provider = ProviderKind::kTwilio;
  std::string call_id;          // Clozit's call id (from the verified media token)
  std::string carrier_call_id;  // Twilio CallSid / Telnyx call_control_id
  std::string stream_id;
  int sample_rate = 8000;
  std::map<std::string, std::string> custom_parameters;
};

/// Audio, marks and clears towards the callee. Call on the call's strand only.
class MediaOutput {
 public:
  virtual ~MediaOutput() = default;
  /// Queues audio (8 kHz, any length; cut into 20 ms frames, the last one padded with silence). It is sent
  /// one frame every 20 ms. kRateLimited when the queue would exceed its bound (nothing is queued then).
  virtual Result<void> SendAudio(std::span<const int16_t> pcm) = 0;
  /// Queues a mark after the audio queued so far; MediaHandler::OnMark gets `name` once the callee heard it.
  virtual void SendMark(std::string name) = 0;
  /// Drops the queued audio (barge-in) and tells the carrier to drop what it buffered; pending marks return.
  virtual void Clear() = 0;
  /// Audio frames waiting to be sent.
  virtual size_t QueuedFrames() const = 0;
  /// Ends the stream from our side.
  virtual void Close() = 0;
  virtual boost::asio::any_io_executor executor() const = 0;
};

/// The call's listener. Called on the call's strand.
class MediaHandler {
 public:
  virtual ~MediaHandler() = default;
  /// The stream is authenticated and started; `output` stays valid until OnStop returns.
  virtual void OnStart(const MediaStreamInfo& info, MediaOutput& output) = 0;
  /// One inbound frame (usually 160 samples, 20 ms), in arrival order.
  virtual void OnAudio(std::span<const int16_t> pcm) = 0;
  virtual void OnDtmf(char digit) = 0;
  /// A mark sent with SendMark has been played to the callee (or cleared).
  virtual void OnMark(std::string_view name) = 0;
  /// The stream ended: the carrier's `stop` (`dropped` false) or a socket lost without it (`dropped` true).
  virtual void OnStop(bool dropped) = 0;
};

using MediaHandlerFactory = std::function<std::unique_ptr<MediaHandler>(const MediaStreamInfo& info)>;

/// Sends the caller's audio straight back (the embedded default until the voice agent lands).
std::unique_ptr<MediaHandler> MakeEchoHandler();
/// Keeps the line open with silence, 20 ms at a time, and ignores what it hears.
std::unique_ptr<MediaHandler> MakeSilenceHandler();
/// "echo" or "silence" → a factory; kInvalidArgument (field "media.handler") otherwise.
Result<MediaHandlerFactory> BuiltInHandler(std::string_view name);

}  // namespace clozit::telephony::media
