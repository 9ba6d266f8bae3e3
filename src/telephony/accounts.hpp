// telephony: provider accounts — whose carrier credentials place a call.
//
// Two kinds: platform accounts (tenant_id empty), managed by operators and used
// for every tenant without an account of its own; and a tenant's own Twilio or
// Telnyx account ("bring your own"). A tenant's default account wins over the
// platform default. Each account stores its non-secret identifiers (Twilio
// AccountSid, Telnyx connection id and webhook public key) in clear and its
// secret (auth token, API key) sealed by a CredentialBox; reads return a
// masked hint only, and neither the secret nor the key is ever logged.
//
// ProviderFor builds (and caches) the adapter for an account; the connectivity
// check asks the carrier for the account's numbers through it. Tenants may only
// point an account at the carriers' real API origins or at origins the
// operator allowed (the embedded carrier emulator); operators at any origin.
//
// Thread-safe: the adapter cache is guarded by a mutex; everything else goes
// through the Database.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/ids.hpp"
#include "common/page.hpp"
#include "http/client.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"
#include "telephony/credentials.hpp"
#include "telephony/provider.hpp"

namespace clozit::telephony {

// clang-format off
struct ProviderAccountTag { static constexpr const char* kPrefix = "pac"; };
// clang-format on
using ProviderAccountId = TypedId<ProviderAccountTag>;

inline constexpr const char* kTwilioApiBase = "https://api.twilio.com";
inline constexpr const char* kTelnyxApiBase = "https://api.telnyx.com";

struct ProviderAccount {
  ProviderAccountId id;
  std::string tenant_id;  // empty: a platform account
  ProviderKind provider = ProviderKind::kTwilio;
  std::string name;
  std::string api_base;
  std::string account_sid;    // Twilio
  std::string connection_id;  // Telnyx
  std::string public_key;     // Telnyx webhook key, base64 (public)
  std::string secret_hint;    // "••••1f3a"
  bool is_default = false;
  std::string managed_by;  // "embedded-emulator" for the account `clozit serve` maintains
  TimePoint created_at;
  TimePoint updated_at;
  std::string sealed_secret;  // never rendered; ProviderFor opens it
};

struct ProviderAccountInput {
  ProviderKind provider = ProviderKind::kTwilio;
  std::string name;
  std::string api_base;  // empty: the carrier's real API
  std::string account_sid;
  std::string connection_id;
  std::string public_key;
  std::string secret;  // Twilio auth token or Telnyx API key
  bool is_default = false;
};

struct ConnectivityResult {
  bool ok = false;
  std::string error_code;  // stable code when !ok
  std::string message;
  int64_t numbers = 0;  // numbers the carrier lists for the account
};

/// Builds the adapter for an account whose secret was opened. Replaced in tests by fakes.
using ProviderFactory =
    std::function<Result<std::shared_ptr<Provider>>(const ProviderAccount& account, const std::string& secret)>;

struct ProviderAccountSettings {
  /// Origins tenants may use besides the carriers' own (e.g. the embedded emulator's).
  std::vector<std::string> extra_tenant_api_bases;
  http::ClientOptions client_options;
};

class ProviderAccounts {
 public:
  /// `factory` empty: the real Twilio and Telnyx adapters.
  ProviderAccounts(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random,
                   CredentialBox box, ProviderAccountSettings settings, ProviderFactory factory = {});

  /// `tenant_id` empty: a platform account (operators).
  Result<ProviderAccount> Create(const std::string& tenant_id, const ProviderAccountInput& input,
                                 const privacy::Actor& actor);
  Result<Page<ProviderAccount>> List(const std::string& tenant_id, const PageRequest& page);
  Result<ProviderAccount> Get(const std::string& tenant_id, const std::string& id);
  Result<void> Delete(const std::string& tenant_id, const std::string& id, const privacy::Actor& actor);
  /// Asks the carrier for the account's numbers; a refusal is a result (ok=false), not an error.
  Result<ConnectivityResult> Check(const std::string& tenant_id, const std::string& id);

  /// Any live account by id, whoever owns it (webhooks, number and call bookkeeping).
  Result<ProviderAccount> Find(const std::string& id);
  /// The account that places `tenant_id`'s calls: its own default account, else the platform default.
  Result<ProviderAccount> ForTenant(const std::string& tenant_id);
  /// The adapter for `account` (cached until the account changes).
  Result<std::shared_ptr<Provider>> ProviderFor(const ProviderAccount& account);
  /// Creates or updates the platform account `managed_by` names (the embedded emulator's, on every start).
  Result<ProviderAccount> UpsertManaged(const std::string& managed_by, const ProviderAccountInput& input);

  /// Lets tenants point accounts at `origin` too (the embedded emulator, once it listens).
  void AllowTenantApiBase(const std::string& origin);

 private:
  Result<std::shared_ptr<Provider>> BuildProvider(const ProviderAccount& account, const std::string& secret);
  Result<void> Validate(const std::string& tenant_id, ProviderAccountInput& input);

  storage::Database& db_;
  privacy::AuditLog& audit_;
  const Clock& clock_;
  Random& random_;
  CredentialBox box_;
  ProviderFactory factory_;

  std::mutex mutex_;
  ProviderAccountSettings settings_;  // extra_tenant_api_bases guarded by mutex_ after construction
  /// Adapters by account id, with the updated_at they were built for. Guarded by mutex_.
  std::map<std::string, std::pair<int64_t, std::shared_ptr<Provider>>> providers_;
};

Result<ProviderKind> ParseProviderKind(std::string_view name);

}  // namespace clozit::telephony
