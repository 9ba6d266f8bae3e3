// telephony/media: the carriers' media WebSocket endpoints.
//
//   /v1/media/twilio   Twilio Media Streams (camelCase frames; the media token arrives in
//                      start.customParameters.token, so it is checked on `start`: a bad one closes
//                      the socket with 1008 before anything reaches the handler)
//   /v1/media/telnyx   Telnyx media streaming (snake_case frames; the token is the `token` query
//                      parameter of stream_url, or the x-telnyx-streaming-auth-token header, and is
//                      checked before the upgrade: a bad one gets 401 and no WebSocket)
//
// Each connection is one call, served on its connection's strand by a
// detail::MediaSession that decodes inbound frames (base64 → µ-law → PCM) for
// the MediaHandler the factory makes, and paces outbound audio at one 20 ms
// frame per timer tick. Thread-safe: Routes() is called once at start-up;
// stats() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "http/websocket.hpp"
#include "telephony/media/media_handler.hpp"
#include "telephony/media/media_token.hpp"

namespace clozit::telephony::media {

struct MediaSettings {
  std::chrono::milliseconds frame_interval{20};
  /// Outbound audio a handler may queue ahead (3,000 frames = 60 s; Twilio refuses more than 10 minutes).
  size_t max_queued_frames = 3000;
  /// A socket that has not sent a valid `start` by then is closed.
  std::chrono::milliseconds start_timeout{10'000};
};

/// Counters over every stream since start-up.
struct MediaStats {
  std::atomic<int64_t> active{0};
  std::atomic<int64_t> started{0};
  std::atomic<int64_t> refused{0};  // bad or missing token, wrong format
  std::atomic<int64_t> dropped{0};  // ended without `stop`
  std::atomic<int64_t> frames_in{0};
  std::atomic<int64_t> frames_out{0};
  std::atomic<int64_t> malformed{0};  // frames that were not valid JSON of a known event
};

class MediaEndpoints {
 public:
  MediaEndpoints(const MediaTokens& tokens, MediaHandlerFactory factory, MediaSettings settings = {});
  /// Both routes, for http::ServerOptions::websocket_routes.
  http::WebSocketRoutes Routes();
  const MediaStats& stats() const { return stats_; }

 private:
  const MediaTokens& tokens_;
  MediaHandlerFactory factory_;
  MediaSettings settings_;
  MediaStats stats_;
};

}  // namespace clozit::telephony::media
