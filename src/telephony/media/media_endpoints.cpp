#include "telephony/media/media_endpoints.hpp"

#include "telephony/media/detail/media_session.hpp"

namespace clozit::telephony::media {
namespace {

/// Forwards one connection's WebSocket callbacks to its MediaSession.
class MediaSocket final : public http::WebSocketHandler {
 public:
  explicit MediaSocket(std::shared_ptr<detail::MediaSession> session) : session_(std::move(session)) {}
  void OnOpen(std::shared_ptr<http::WebSocketConnection> connection) override { session_->Open(std::move(connection)); }
  void OnText(std::string_view message) override { session_->Text(message); }
  void OnClose(uint16_t, std::string_view) override { session_->Closed(); }

 private:
  std::shared_ptr<detail::MediaSession> session_;
};

}  // namespace

MediaEndpoints::MediaEndpoints(const MediaTokens& tokens, MediaHandlerFactory factory, MediaSettings settings)
    : tokens_(tokens), factory_(std::move(factory)), settings_(settings) {}

http::WebSocketRoutes MediaEndpoints::Routes() {
  http::WebSocketRoutes routes;
  routes["/v1/media/twilio"] = [this](const http::Request&) -> Result<std::unique_ptr<http::WebSocketHandler>> {
    // Twilio cannot put anything in the URL: the token comes with the `start` frame.
    auto session = std::make_shared<detail::MediaSession>(ProviderKind::kTwilio, std::nullopt, tokens_, factory_,
                                                          settings_, stats_);
    return std::unique_ptr<http::WebSocketHandler>(std::make_unique<MediaSocket>(std::move(session)));
  };
  routes["/v1/media/telnyx"] = [this](const http::Request& request) -> Result<std::unique_ptr<http::WebSocketHandler>> {
    std::string token = request.QueryParam("token").value_or("");
    if (token.empty()) token = std::string(request.headers.GetOr("x-telnyx-streaming-auth-token", ""));
    if (token.empty()) {
      ++stats_.refused;
      return Error::Make(ErrorCode::kUnauthenticated, "media token required", "token");
    }
    auto call_id = tokens_.Verify(token);
    if (!call_id) {
      ++stats_.refused;
      return call_id.error();
    }
    auto session = std::make_shared<detail::MediaSession>(ProviderKind::kTelnyx, std::move(call_id).value(), tokens_,
                                                          factory_, settings_, stats_);
    return std::unique_ptr<http::WebSocketHandler>(std::make_unique<MediaSocket>(std::move(session)));
  };
  return routes;
}

}  // namespace clozit::telephony::media
