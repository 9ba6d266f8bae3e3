#include "telephony/accounts.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "telephony/telnyx/telnyx_provider.hpp"
#include "telephony/twilio/twilio_provider.hpp"

namespace clozit::telephony {
namespace {

constexpr std::string_view kSelect =
    "SELECT id, tenant_id, provider, name, api_base, account_sid, connection_id, public_key, secret_hint, is_default, "
    "managed_by, created_at, updated_at, sealed_secret FROM telephony_accounts ";

ProviderAccount FromRow(const storage::Row& row) {
  ProviderAccount account;
  account.id = ProviderAccountId(row.Text(0));
  account.tenant_id = row.Text(1);
  account.provider = row.Text(2) == "telnyx" ? ProviderKind::kTelnyx : ProviderKind::kTwilio;
  account.name = row.Text(3);
  account.api_base = row.Text(4);
  account.account_sid = row.Text(5);
  account.connection_id = row.Text(6);
  account.public_key = row.Text(7);
  account.secret_hint = row.Text(8);
  account.is_default = row.Bool(9);
  account.managed_by = row.Text(10);
  account.created_at = FromUnixMillis(row.Int(11));
  account.updated_at = FromUnixMillis(row.Int(12));
  account.sealed_secret = row.Text(13);
  return account;
}

// Tenant rows match their tenant; platform rows (tenant_id NULL) match the empty tenant.
constexpr std::string_view kOwner = "COALESCE(tenant_id, '') = $1 AND deleted_at IS NULL ";

bool IsOrigin(std::string_view url) {
  if (!(url.starts_with("https://") || url.starts_with("http://"))) return false;
  auto rest = url.substr(url.find("//") + 2);
  return !rest.empty() && rest.find_first_of("/?#@ ") == std::string_view::npos;
}

}  // namespace

Result<ProviderKind> ParseProviderKind(std::string_view name) {
  if (name == "twilio") return ProviderKind::kTwilio;
  if (name == "telnyx") return ProviderKind::kTelnyx;
  return Error::InvalidArgument("provider", "provider must be twilio or telnyx");
}

ProviderAccounts::ProviderAccounts(storage::Database& db, privacy::AuditLog& audit, const Clock& clock, Random& random,
                                   CredentialBox box, ProviderAccountSettings settings, ProviderFactory factory)
    : db_(db),
      audit_(audit),
      clock_(clock),
      random_(random),
      box_(std::move(box)),
      factory_(std::move(factory)),
      settings_(std::move(settings)) {}

void ProviderAccounts::AllowTenantApiBase(const std::string& origin) {
  std::lock_guard lock(mutex_);
  settings_.extra_tenant_api_bases.push_back(origin);
}

Result<void> ProviderAccounts::Validate(const std::string& tenant_id, ProviderAccountInput& input) {
  if (input.name.empty() || input.name.size() > 100) {
    return Error::InvalidArgument("name", "name is required (at most 100 characters)");
  }
  if (input.secret.empty() || input.secret.size() > 512) {
    return Error::InvalidArgument(
        input.provider == ProviderKind::kTwilio ? "auth_token" : "api_key",
        input.provider == ProviderKind::kTwilio ? "auth_token is required" : "api_key is required");
  }
  const std::string real = input.provider == ProviderKind::kTwilio ? kTwilioApiBase : kTelnyxApiBase;
  if (input.api_base.empty()) input.api_base = real;
  while (input.api_base.ends_with('/')) input.api_base.pop_back();
  if (!IsOrigin(input.api_base)) {
    return Error::InvalidArgument("api_base", "api_base must be an origin such as https://api.twilio.com");
  }
  if (!tenant_id.empty() && input.api_base != real) {
    // A tenant-chosen origin would make the server send requests wherever the tenant likes.
    std::lock_guard lock(mutex_);
    const auto& allowed = settings_.extra_tenant_api_bases;
    if (std::find(allowed.begin(), allowed.end(), input.api_base) == allowed.end()) {
      return Error::InvalidArgument("api_base", "api_base must be the carrier's API (" + real + ")");
    }
  }
  if (input.provider == ProviderKind::kTwilio) {
    if (input.account_sid.size() != 34 || !input.account_sid.starts_with("AC")) {
      return Error::InvalidArgument("account_sid", "account_sid must be a Twilio AccountSid (AC followed by 32 hex)");
    }
  } else {
    if (input.connection_id.empty() || input.connection_id.size() > 64) {
      return Error::InvalidArgument("connection_id", "connection_id (the Call Control application id) is required");
    }
    auto key = DecodeStandardBase64(input.public_key);
    bool valid = key && key->size() == 32;
    if (!valid) return Error::InvalidArgument("public_key", "public_key must be the 32-byte Ed25519 key in base64");
  }
  return Ok();
}

Result<ProviderAccount> ProviderAccounts::Create(const std::string& tenant_id, const ProviderAccountInput& given,
                                                 const privacy::Actor& actor) {
  ProviderAccountInput input = given;
  CLOZIT_TRY(Validate(tenant_id, input));
  ProviderAccount account;
  account.id = ProviderAccountId::New(clock_, random_);
  account.tenant_id = tenant_id;
  account.provider = input.provider;
  account.name = input.name;
  account.api_base = input.api_base;
  account.account_sid = input.account_sid;
  account.connection_id = input.connection_id;
  account.public_key = input.public_key;
  account.secret_hint = MaskedHint(input.secret);
  account.sealed_secret = box_.Seal(input.secret, random_);
  account.created_at = account.updated_at = clock_.Now();
  const int64_t now = ToUnixMillis(account.created_at);
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto existing, tx.Query("SELECT COUNT(*) FROM telephony_accounts WHERE " +
                                                        std::string(kOwner) + "AND is_default = 1",
                                                    {tenant_id}));
    // The first account of an owner is its default; a later one only when asked, replacing the old default.
    account.is_default = input.is_default || existing[0].Int(0) == 0;
    if (account.is_default && existing[0].Int(0) > 0) {
      CLOZIT_TRY(tx.Exec("UPDATE telephony_accounts SET is_default = 0, updated_at = $2 WHERE " + std::string(kOwner),
                         {tenant_id, now}));
    }
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO telephony_accounts (id, tenant_id, provider, name, api_base, account_sid, connection_id, "
        "public_key, sealed_secret, secret_hint, is_default, managed_by, created_at, updated_at) VALUES ($1, $2, $3, "
        "$4, $5, $6, $7, $8, $9, $10, $11, '', $12, $12)",
        {account.id.str(), tenant_id.empty() ? storage::Value(nullptr) : storage::Value(tenant_id),
         std::string(ProviderName(account.provider)), account.name, account.api_base, account.account_sid,
         account.connection_id, account.public_key, account.sealed_secret, account.secret_hint,
         int64_t{account.is_default ? 1 : 0}, now}));
    nlohmann::json details = {{"provider", ProviderName(account.provider)}, {"name", account.name}};
    return audit_.Record(tx, actor, {"provider_account.create", "provider_account", account.id.str(), details.dump()},
                         tenant_id);
  }));
  return account;
}

Result<Page<ProviderAccount>> ProviderAccounts::List(const std::string& tenant_id, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string(kSelect) + "WHERE " + std::string(kOwner) +
                                                   "AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3",
                                               {tenant_id, page.cursor, page.limit + 1}));
  Page<ProviderAccount> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i)
    out.items.push_back(FromRow(rows[i]));
  if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id.str();
  return out;
}

Result<ProviderAccount> ProviderAccounts::Get(const std::string& tenant_id, const std::string& id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string(kSelect) + "WHERE " + std::string(kOwner) + "AND id = $2", {tenant_id, id}));
  if (rows.empty()) return Error::NotFound("no such provider account");
  return FromRow(rows[0]);
}

Result<void> ProviderAccounts::Delete(const std::string& tenant_id, const std::string& id,
                                      const privacy::Actor& actor) {
  const int64_t now = ToUnixMillis(clock_.Now());
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t changed,
        tx.Exec("UPDATE telephony_accounts SET deleted_at = $3, is_default = 0, updated_at = $3 WHERE " +
                    std::string(kOwner) + "AND id = $2",
                {tenant_id, id, now}));
    if (changed == 0) return Error::NotFound("no such provider account");
    return audit_.Record(tx, actor, {"provider_account.delete", "provider_account", id, "{}"}, tenant_id);
  }));
  std::lock_guard lock(mutex_);
  providers_.erase(id);
  return Ok();
}

Result<ConnectivityResult> ProviderAccounts::Check(const std::string& tenant_id, const std::string& id) {
  CLOZIT_ASSIGN_OR_RETURN(auto account, Get(tenant_id, id));
  CLOZIT_ASSIGN_OR_RETURN(auto provider, ProviderFor(account));
  ConnectivityResult result;
  auto numbers = provider->ListNumbers();
  if (numbers) {
    result.ok = true;
    result.numbers = static_cast<int64_t>(numbers->size());
    result.message = "the carrier accepted the credentials";
  } else {
    result.error_code = std::string(CodeName(numbers.error().code));
    result.message = numbers.error().message;  // the adapters never put credentials in errors
  }
  return result;
}

Result<ProviderAccount> ProviderAccounts::Find(const std::string& id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string(kSelect) + "WHERE id = $1 AND deleted_at IS NULL", {id}));
  if (rows.empty()) return Error::NotFound("no such provider account");
  return FromRow(rows[0]);
}

Result<ProviderAccount> ProviderAccounts::ForTenant(const std::string& tenant_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string(kSelect) +
                               "WHERE deleted_at IS NULL AND is_default = 1 AND (tenant_id = $1 OR tenant_id IS NULL) "
                               "ORDER BY CASE WHEN tenant_id IS NULL THEN 1 ELSE 0 END LIMIT 1",
                           {tenant_id}));
  if (rows.empty()) {
    return Error::Make(ErrorCode::kUnavailable, "no provider account is configured for calls and numbers");
  }
  return FromRow(rows[0]);
}

Result<std::shared_ptr<Provider>> ProviderAccounts::ProviderFor(const ProviderAccount& account) {
  const int64_t version = ToUnixMillis(account.updated_at);
  {
    std::lock_guard lock(mutex_);
    auto it = providers_.find(account.id.str());
    if (it != providers_.end() && it->second.first == version) return it->second.second;
  }
  CLOZIT_ASSIGN_OR_RETURN(std::string secret, box_.Open(account.sealed_secret));
  auto built = factory_ ? factory_(account, secret) : BuildProvider(account, secret);
  std::fill(secret.begin(), secret.end(), '\0');
  if (!built) return built.error();
  std::lock_guard lock(mutex_);
  providers_[account.id.str()] = {version, *built};
  return *built;
}

Result<std::shared_ptr<Provider>> ProviderAccounts::BuildProvider(const ProviderAccount& account,
                                                                  const std::string& secret) {
  if (account.provider == ProviderKind::kTwilio) {
    twilio::TwilioSettings settings;
    settings.account_sid = account.account_sid;
    settings.auth_token = secret;
    settings.api_base = account.api_base;
    settings.client_options = settings_.client_options;
    return std::shared_ptr<Provider>(std::make_shared<twilio::TwilioProvider>(std::move(settings)));
  }
  telnyx::TelnyxSettings settings;
  settings.api_key = secret;
  settings.connection_id = account.connection_id;
  settings.public_key_base64 = account.public_key;
  settings.api_base = account.api_base;
  settings.client_options = settings_.client_options;
  return std::shared_ptr<Provider>(std::make_shared<telnyx::TelnyxProvider>(clock_, random_, std::move(settings)));
}

Result<ProviderAccount> ProviderAccounts::UpsertManaged(const std::string& managed_by,
                                                        const ProviderAccountInput& given) {
  ProviderAccountInput input = given;
  CLOZIT_TRY(Validate("", input));
  const TimePoint now_time = clock_.Now();
  const int64_t now = ToUnixMillis(now_time);
  const std::string sealed = box_.Seal(input.secret, random_);
  const ProviderAccountId fresh_id = ProviderAccountId::New(clock_, random_);
  CLOZIT_TRY(db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto defaults,
                            tx.Query("SELECT COUNT(*) FROM telephony_accounts WHERE tenant_id IS NULL AND "
                                     "deleted_at IS NULL AND is_default = 1 AND managed_by <> $1",
                                     {managed_by}));
    int64_t is_default = input.is_default && defaults[0].Int(0) == 0 ? 1 : 0;
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t updated,
        tx.Exec("UPDATE telephony_accounts SET provider = $2, name = $3, api_base = $4, account_sid = $5, "
                "connection_id = $6, public_key = $7, sealed_secret = $8, secret_hint = $9, is_default = $10, "
                "updated_at = $11 WHERE managed_by = $1 AND tenant_id IS NULL AND deleted_at IS NULL",
                {managed_by, std::string(ProviderName(input.provider)), input.name, input.api_base, input.account_sid,
                 input.connection_id, input.public_key, sealed, MaskedHint(input.secret), is_default, now}));
    if (updated > 0) return Ok();
    CLOZIT_TRY(tx.Exec(
        "INSERT INTO telephony_accounts (id, tenant_id, provider, name, api_base, account_sid, connection_id, "
        "public_key, sealed_secret, secret_hint, is_default, managed_by, created_at, updated_at) VALUES ($1, "
        "NULL, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        {fresh_id.str(), std::string(ProviderName(input.provider)), input.name, input.api_base, input.account_sid,
         input.connection_id, input.public_key, sealed, MaskedHint(input.secret), is_default, managed_by, now}));
    return Ok();
  }));
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string(kSelect) + "WHERE managed_by = $1 AND tenant_id IS NULL AND deleted_at IS NULL",
                           {managed_by}));
  if (rows.empty()) return Error::Internal("the managed provider account vanished");
  return FromRow(rows[0]);
}

}  // namespace clozit::telephony
