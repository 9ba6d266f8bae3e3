// telephony: the carrier webhook endpoints' logic, behind the HTTP routes
// POST /v1/webhooks/twilio/{account_id}/status and POST /v1/webhooks/telnyx/{account_id}.
//
// Order matters: the account named in the path is looked up and the request's
// signature verified with that account's credentials (Twilio: auth token over
// the externally visible URL, both port forms; Telnyx: Ed25519 public key,
// 300 s tolerance) before anything in the body is parsed. A request that fails
// — unknown account, wrong provider, missing or bad signature — is refused
// with kPermissionDenied and one warning log line (no body, no number, no
// secret in it); nothing is stored. A verified delivery is stored raw and its
// event recorded through Calls (idempotently). Thread-safe.
#pragma once

#include <string>

#include "http/message.hpp"
#include "telephony/accounts.hpp"
#include "telephony/calls.hpp"

namespace clozit::telephony {

class Webhooks {
 public:
  Webhooks(ProviderAccounts& accounts, Calls& calls) : accounts_(accounts), calls_(calls) {}

  /// `url`: the URL the carrier requested, as the public sees it (public base URL + request target).
  Result<EventEffect> Receive(ProviderKind provider, const std::string& account_id, const std::string& url,
                              const http::Request& request);

 private:
  ProviderAccounts& accounts_;
  Calls& calls_;
};

}  // namespace clozit::telephony
