#include "telephony/webhooks.hpp"

#include <spdlog/spdlog.h>

namespace clozit::telephony {

Result<EventEffect> Webhooks::Receive(ProviderKind provider, const std::string& account_id, const std::string& url,
                                      const http::Request& request) {
  auto refuse = [&](std::string_view why) -> Error {
    // The account id is ours and not secret; the body, headers and numbers stay out of the log.
    spdlog::warn("telephony webhook refused: {} (provider {}, account {}, from {}, request {})", why,
                 ProviderName(provider), account_id.size() <= 40 ? account_id : account_id.substr(0, 40),
                 request.remote_ip, request.request_id);
    return Error::Make(ErrorCode::kPermissionDenied, "webhook signature verification failed");
  };
  auto account = accounts_.Find(account_id);
  if (!account || account->provider != provider) return refuse("unknown provider account");
  auto adapter = accounts_.ProviderFor(*account);
  if (!adapter) return adapter.error();
  WebhookRequest webhook{url, request.headers, request.body};
  if (!(*adapter)->VerifyWebhook(webhook)) return refuse("bad or missing signature");

  RawDelivery raw{url, request.body};
  auto event = (*adapter)->ParseWebhook(webhook);
  if (!event) {
    // Signed by the carrier but not a call event we track (e.g. streaming.started): kept for audit, accepted so
    // that the carrier does not retry it.
    CLOZIT_TRY(calls_.RecordUnparsed(*account, raw, event.error().message));
    return EventEffect::kStale;
  }
  return calls_.Record(*account, *event, raw);
}

}  // namespace clozit::telephony
