// telephony/telephony: the telephony services wired together for the
// application and the API — provider accounts (with their sealed
// credentials), calls, the webhook endpoints' logic, phone numbers and
// caller-id pools (whose fees go through billing::NumberFees).
//
// The public base URL (where carriers post webhooks) is settable after
// construction because an embedded server only learns its port once it
// listens; it is guarded by a mutex. Everything else is immutable wiring.
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include "telephony/accounts.hpp"
#include "telephony/calls.hpp"
#include "telephony/numbers.hpp"
#include "telephony/webhooks.hpp"

namespace clozit::telephony {

class Telephony {
 public:
  Telephony(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random, CredentialBox box,
            ProviderAccountSettings account_settings, billing::NumberFees* fees, ProviderFactory factory = {})
      : accounts(db, audit, clock, random, std::move(box), std::move(account_settings), std::move(factory)),
        calls(db, accounts, clock, random,
              CallSettings{[this] { return public_base_url(); },
                           [this](const std::string& call_id) { return MediaToken(call_id); }}),
        webhooks(accounts, calls),
        numbers(db, accounts, fees, audit, clock, random) {}

  void SetPublicBaseUrl(std::string url) {
    while (url.ends_with('/')) url.pop_back();
    std::lock_guard lock(mutex_);
    public_base_url_ = std::move(url);
  }
  std::string public_base_url() const {
    std::lock_guard lock(mutex_);
    return public_base_url_;
  }

  /// Where calls get their media-stream tokens (the application's media::MediaTokens); until set, calls carry
  /// no media stream unless the caller names one.
  void SetMediaTokenIssuer(std::function<std::string(const std::string& call_id)> issuer) {
    std::lock_guard lock(mutex_);
    media_token_ = std::move(issuer);
  }
  std::string MediaToken(const std::string& call_id) const {
    std::function<std::string(const std::string&)> issuer;
    {
      std::lock_guard lock(mutex_);
      issuer = media_token_;
    }
    return issuer ? issuer(call_id) : std::string();
  }

  ProviderAccounts accounts;
  Calls calls;
  Webhooks webhooks;
  PhoneNumbers numbers;

 private:
  mutable std::mutex mutex_;
  std::string public_base_url_;                                 // guarded by mutex_
  std::function<std::string(const std::string&)> media_token_;  // guarded by mutex_
};

}  // namespace clozit::telephony
