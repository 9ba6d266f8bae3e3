#include "accounts/accounts.hpp"

#include <arpa/inet.h>
#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/encoding.hpp"
#include "common/phone_number.hpp"

namespace clozit::accounts {
namespace {

using storage::Row;
using storage::Tx;
using storage::Value;

constexpr std::string_view kApiKeyPrefix = "ck_";

std::string Trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}

Result<std::string> RequireName(std::string_view text, const std::string& field, size_t max = 200) {
  std::string value = Trim(text);
  if (value.empty()) return Error::InvalidArgument(field, field + " must not be empty");
  if (value.size() > max) return Error::InvalidArgument(field, field + " is longer than " + std::to_string(max));
  for (unsigned char c : value)
    if (c < 0x20 || c == 0x7F) return Error::InvalidArgument(field, field + " contains control characters");
  return value;
}

std::optional<TimePoint> OptionalTime(const Row& row, size_t column) {
  auto ms = row.OptionalInt(column);
  if (!ms) return std::nullopt;
  return FromUnixMillis(*ms);
}

User UserFromRow(const Row& row) {
  // id, tenant_id, email, name, phone, role, created_at
  return {UserId(row.Text(0)),
          TenantId(row.Text(1)),
          row.Text(2),
          row.Text(3),
          row.Text(4),
          ParseRole(row.Text(5)).value_or(Role::kViewer),
          FromUnixMillis(row.Int(6))};
}
constexpr const char* kUserColumns = "id, tenant_id, email, name, phone, role, created_at";

ApiKey ApiKeyFromRow(const Row& row) {
  // id, name, prefix, role, created_by, created_at, last_used_at, revoked_at
  return {ApiKeyId(row.Text(0)), row.Text(1),
          row.Text(2),           ParseRole(row.Text(3)).value_or(Role::kViewer),
          row.Text(4),           FromUnixMillis(row.Int(5)),
          OptionalTime(row, 6),  OptionalTime(row, 7)};
}
constexpr const char* kApiKeyColumns = "id, name, prefix, role, created_by, created_at, last_used_at, revoked_at";

Invitation InvitationFromRow(const Row& row, TimePoint now) {
  // id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at
  Invitation out{InvitationId(row.Text(0)),
                 row.Text(1),
                 ParseRole(row.Text(2)).value_or(Role::kViewer),
                 row.Text(3),
                 FromUnixMillis(row.Int(4)),
                 FromUnixMillis(row.Int(5)),
                 "pending"};
  if (!row.IsNull(6)) {
    out.status = "accepted";
  } else if (!row.IsNull(7)) {
    out.status = "revoked";
  } else if (out.expires_at <= now) {
    out.status = "expired";
  }
  return out;
}
constexpr const char* kInvitationColumns =
    "id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at";

template <typename T, typename F>
Page<T> MakePage(const storage::Rows& rows, const PageRequest& page, F convert) {
  Page<T> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i)
    out.items.push_back(convert(rows[i]));
  if (static_cast<int64_t>(rows.size()) > page.limit)
    out.next_cursor = rows[static_cast<size_t>(page.limit) - 1].Text(0);
  return out;
}

std::string Details(const nlohmann::json& json) { return json.dump(); }

Error NotFound(const std::string& what) { return Error::NotFound(what + " not found"); }

/// API keys and invitations act with authority their creator lent them (neither may exceed the creator's role
/// when made). When the creator leaves (`cap` empty) or is demoted, whatever exceeds what the creator still
/// holds is revoked, down the chain of keys that made keys or invited people: otherwise a removed employee's key
/// keeps working, and a demoted admin's admin key outranks its maker. Returns what was revoked, for the audit.
Result<nlohmann::json> RevokeLentAuthority(Tx& tx, const std::string& tenant, const std::string& user_id,
                                           std::optional<Role> cap, int64_t now) {
  auto exceeds = [&](std::string_view role) { return !cap || ParseRole(role).value_or(Role::kOwner) > *cap; };
  int64_t keys = 0, invitations = 0;
  std::vector<std::string> creators = {user_id};
  for (size_t i = 0; i < creators.size(); ++i) {
    CLOZIT_ASSIGN_OR_RETURN(auto made, tx.Query("SELECT id, role, revoked_at FROM api_keys WHERE tenant_id = $1 "
                                                "AND created_by = $2",
                                                {tenant, creators[i]}));
    for (const auto& key : made) {
      if (key.IsNull(2) && exceeds(key.Text(1))) {
        CLOZIT_TRY(tx.ExecLater("UPDATE api_keys SET revoked_at = $2 WHERE id = $1", {key.Text(0), now}, 1));
        ++keys;
      }
      // A key's own keys are bounded by the same authority, whether or not the key itself stays.
      if (std::find(creators.begin(), creators.end(), key.Text(0)) == creators.end()) creators.push_back(key.Text(0));
    }
    CLOZIT_ASSIGN_OR_RETURN(auto invited, tx.Query("SELECT id, role FROM invitations WHERE tenant_id = $1 AND "
                                                   "invited_by = $2 AND accepted_at IS NULL AND revoked_at IS NULL",
                                                   {tenant, creators[i]}));
    for (const auto& invitation : invited) {
      if (!exceeds(invitation.Text(1))) continue;
      CLOZIT_TRY(tx.ExecLater("UPDATE invitations SET revoked_at = $2 WHERE id = $1", {invitation.Text(0), now}, 1));
      ++invitations;
    }
  }
  return nlohmann::json{{"api_keys_revoked", keys}, {"invitations_revoked", invitations}};
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kMember:
      return "member";
    case Role::kAdmin:
      return "admin";
    case Role::kOwner:
      return "owner";
  }
  return "viewer";
}

std::optional<Role> ParseRole(std::string_view text) {
  for (Role role : {Role::kViewer, Role::kMember, Role::kAdmin, Role::kOwner})
    if (RoleName(role) == text) return role;
  return std::nullopt;
}

std::string Principal::ActorKind() const {
  switch (kind) {
    case Kind::kUser:
      return "user";
    case Kind::kApiKey:
      return "api_key";
    case Kind::kOperator:
      return "operator";
  }
  return "user";
}

Accounts::Accounts(storage::Database& db, const Clock& clock, Random& random, privacy::AuditLog& audit,
                   AccountsConfig config)
    : db_(db), clock_(clock), random_(random), audit_(audit), config_(config) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  auto hash = HashPassword(RandomToken(random_, 16));
  if (!hash) throw std::runtime_error("argon2id unavailable: " + hash.error().message);
  dummy_hash_ = *hash;
}

Result<std::string> Accounts::NormalizeEmail(std::string_view email, const std::string& field) {
  std::string value = Trim(email);
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto at = value.find('@');
  bool ok = !value.empty() && value.size() <= 254 && at != std::string::npos && at > 0 &&
            value.find('@', at + 1) == std::string::npos && at + 1 < value.size();
  if (ok) {
    std::string_view domain = std::string_view(value).substr(at + 1);
    ok = domain.find('.') != std::string_view::npos && domain.front() != '.' && domain.back() != '.' &&
         domain.find("..") == std::string_view::npos;
    for (unsigned char c : value) ok = ok && c > 0x20 && c != 0x7F && c != ',' && c != '<' && c != '>';
  }
  if (!ok) return Error::InvalidArgument(field, "not a valid email address");
  return value;
}

Result<void> Accounts::CheckPasswordStrength(const std::string& password, const std::string& email,
                                             const std::string& field) const {
  if (password.size() < static_cast<size_t>(config_.password_min_length)) {
    return Error::InvalidArgument(
        field, "password must be at least " + std::to_string(config_.password_min_length) + " characters");
  }
  if (password.size() > 256) return Error::InvalidArgument(field, "password must be at most 256 characters");
  bool lower = false, upper = false, digit = false, other = false;
  for (unsigned char c : password) {
    lower = lower || std::islower(c);
    upper = upper || std::isupper(c);
    digit = digit || std::isdigit(c);
    other = other || !std::isalnum(c);
  }
  int classes = lower + upper + digit + other;
  if (password.size() < 16 && classes < 2) {
    return Error::InvalidArgument(field, "password must mix letters with digits or symbols, or be 16+ characters");
  }
  std::string lowered = password;
  std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  static const char* kCommon[] = {"password", "123456", "qwerty", "letmein", "welcome", "clozit", "iloveyou", "admin"};
  for (const char* common : kCommon) {
    if (lowered.find(common) != std::string::npos) {
      return Error::InvalidArgument(field, "password contains a common word or sequence");
    }
  }
  auto local = email.substr(0, email.find('@'));
  if (local.size() >= 4 && lowered.find(local) != std::string::npos) {
    return Error::InvalidArgument(field, "password must not contain the email address");
  }
  return Ok();
}

Result<std::string> Accounts::HashPassword(const std::string& password) const {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), static_cast<uint64_t>(config_.argon2_opslimit),
                            static_cast<size_t>(config_.argon2_memlimit_kib) * 1024,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Error::Internal("argon2id hashing failed (out of memory?)");
  }
  return std::string(out);
}

bool Accounts::VerifyPassword(const std::string& hash, const std::string& password) const {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

// Failures are counted per account and address: someone who knows an email cannot lock its owner out from
// elsewhere by guessing wrong. A guesser spread over many addresses still meets the account-wide count, set
// kAccountWideFailures times higher so that a lockout from it needs that many addresses' worth of attempts.
std::array<std::string, 2> Accounts::LoginFailureKeys(const std::string& account, const std::string& ip) {
  // IPv6 clients count per /64: one subscriber commonly holds a whole /64, and could rotate through it freely.
  std::string group = ip;
  in6_addr v6{};
  if (inet_pton(AF_INET6, ip.c_str(), &v6) == 1 && !IN6_IS_ADDR_V4MAPPED(&v6)) {
    std::memset(&v6.s6_addr[8], 0, 8);
    char text[INET6_ADDRSTRLEN];
    if (inet_ntop(AF_INET6, &v6, text, sizeof text) != nullptr) group = std::string(text) + "/64";
  }
  return {account + "@" + group, account};
}

Result<void> Accounts::CheckLoginAllowed(const std::string& account, const std::string& ip) {
  std::lock_guard lock(failures_mutex_);
  for (const auto& key : LoginFailureKeys(account, ip)) {
    auto it = failures_.find(key);
    if (it != failures_.end() && it->second.locked_until > clock_.Now()) {
      return Error::Make(ErrorCode::kRateLimited, "too many failed logins; try again later");
    }
  }
  return Ok();
}

void Accounts::RecordLoginFailure(const std::string& account, const std::string& ip) {
  std::lock_guard lock(failures_mutex_);
  TimePoint now = clock_.Now();
  auto window = std::chrono::seconds(config_.login_lockout_seconds);
  if (failures_.size() > 100'000)
    std::erase_if(failures_, [&](const auto& e) { return now - e.second.first > window; });
  auto keys = LoginFailureKeys(account, ip);
  const int64_t limits[] = {config_.login_max_failures, config_.login_max_failures * kAccountWideFailures};
  for (size_t i = 0; i < keys.size(); ++i) {
    auto& entry = failures_[keys[i]];
    if (entry.count == 0 || now - entry.first > window) entry = {0, now, {}};
    if (++entry.count >= limits[i]) entry.locked_until = now + window;
  }
}

void Accounts::ClearLoginFailures(const std::string& account, const std::string& ip) {
  std::lock_guard lock(failures_mutex_);
  for (const auto& key : LoginFailureKeys(account, ip)) failures_.erase(key);
}

Result<SessionCreated> Accounts::CreateSession(Tx& tx, Principal principal, const std::string& ip) {
  SessionCreated out;
  out.token = RandomToken(random_, 32);
  out.csrf_token = RandomToken(random_, 24);
  TimePoint now = clock_.Now();
  out.expires_at = now + std::chrono::hours(config_.session_absolute_hours);
  principal.session_id = "ses_" + NewUlid(clock_, random_);
  principal.csrf_token = out.csrf_token;
  bool is_operator = principal.kind == Principal::Kind::kOperator;
  CLOZIT_TRY(tx.Exec(
      "INSERT INTO sessions (id, token_hash, principal_kind, principal_id, tenant_id, csrf_token, ip, created_at, "
      "last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
      {principal.session_id, Sha256Hex(out.token), is_operator ? "operator" : "user", principal.id,
       is_operator ? Value(nullptr) : Value(principal.tenant_id.str()), out.csrf_token, ip, ToUnixMillis(now),
       ToUnixMillis(out.expires_at)}));
  out.principal = std::move(principal);
  return out;
}

Result<SessionCreated> Accounts::SignUp(const SignUpInput& input, const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string company, RequireName(input.company, "company"));
  CLOZIT_ASSIGN_OR_RETURN(std::string name, RequireName(input.name, "name"));
  CLOZIT_ASSIGN_OR_RETURN(std::string email, NormalizeEmail(input.email, "email"));
  CLOZIT_ASSIGN_OR_RETURN(auto phone, ParsePhoneNumber(input.phone, "US", "phone"));
  CLOZIT_TRY(CheckPasswordStrength(input.password, email, "password"));
  CLOZIT_ASSIGN_OR_RETURN(std::string hash, HashPassword(input.password));

  auto tenant_id = TenantId::New(clock_, random_);
  auto user_id = UserId::New(clock_, random_);
  int64_t now = ToUnixMillis(clock_.Now());
  SessionCreated created;
  auto result = db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(
        tx.Exec("INSERT INTO tenants (id, name, status, created_at, updated_at) VALUES ($1, $2, 'active', $3, $3)",
                {tenant_id.str(), company, now}));
    CLOZIT_TRY(
        tx.Exec("INSERT INTO users (id, tenant_id, email, name, phone, password_hash, role, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, 'owner', $7, $7)",
                {user_id.str(), tenant_id.str(), email, name, phone.e164, hash, now}));
    privacy::Actor who = actor;
    who.kind = "user";
    who.id = user_id.str();
    who.tenant_id = tenant_id.str();
    CLOZIT_TRY(audit_.Record(tx, who, {"tenant.sign_up", "tenant", tenant_id.str(), "{}"}));
    CLOZIT_ASSIGN_OR_RETURN(
        created, CreateSession(tx, {Principal::Kind::kUser, user_id.str(), tenant_id, Role::kOwner}, actor.ip));
    return audit_.Record(tx, who, {"session.create", "session", created.principal.session_id, "{}"});
  });
  if (!result) {
    if (result.error().code == ErrorCode::kAlreadyExists) {
      return Error::Make(ErrorCode::kAlreadyExists, "an account with this email already exists", "email");
    }
    return result.error();
  }
  return created;
}

Result<SessionCreated> Accounts::Login(const std::string& email_input, const std::string& password,
                                       const privacy::Actor& actor) {
  auto email = NormalizeEmail(email_input, "email");
  if (!email) return email.error();
  CLOZIT_TRY(CheckLoginAllowed("user:" + *email, actor.ip));
  CLOZIT_ASSIGN_OR_RETURN(auto rows,
                          db_.Query("SELECT id, tenant_id, password_hash, role FROM users WHERE email = $1", {*email}));
  bool ok = !rows.empty() && VerifyPassword(rows[0].Text(2), password);
  if (rows.empty()) VerifyPassword(dummy_hash_, password);
  if (!ok) {
    RecordLoginFailure("user:" + *email, actor.ip);
    return Error::Make(ErrorCode::kUnauthenticated, "wrong email or password");
  }
  ClearLoginFailures("user:" + *email, actor.ip);
  Principal principal{Principal::Kind::kUser, rows[0].Text(0), TenantId(rows[0].Text(1)),
                      ParseRole(rows[0].Text(3)).value_or(Role::kViewer)};
  SessionCreated created;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(created, CreateSession(tx, principal, actor.ip));
    privacy::Actor who = actor;
    who.kind = "user";
    who.id = principal.id;
    who.tenant_id = principal.tenant_id.str();
    return audit_.Record(tx, who, {"session.create", "session", created.principal.session_id, "{}"});
  }));
  return created;
}

Result<SessionCreated> Accounts::OperatorLogin(const std::string& email_input, const std::string& password,
                                               const privacy::Actor& actor) {
  auto email = NormalizeEmail(email_input, "email");
  if (!email) return email.error();
  CLOZIT_TRY(CheckLoginAllowed("operator:" + *email, actor.ip));
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT id, password_hash FROM operators WHERE email = $1", {*email}));
  bool ok = !rows.empty() && VerifyPassword(rows[0].Text(1), password);
  if (rows.empty()) VerifyPassword(dummy_hash_, password);
  if (!ok) {
    RecordLoginFailure("operator:" + *email, actor.ip);
    return Error::Make(ErrorCode::kUnauthenticated, "wrong email or password");
  }
  ClearLoginFailures("operator:" + *email, actor.ip);
  Principal principal{Principal::Kind::kOperator, rows[0].Text(0), TenantId(), Role::kOwner};
  SessionCreated created;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(created, CreateSession(tx, principal, actor.ip));
    privacy::Actor who = actor;
    who.kind = "operator";
    who.id = principal.id;
    return audit_.Record(tx, who, {"operator_session.create", "session", created.principal.session_id, "{}"});
  }));
  return created;
}

Result<void> Accounts::Logout(const Principal& principal, const privacy::Actor& actor) {
  if (principal.session_id.empty()) return Error::InvalidArgument("session", "not a cookie session");
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                       {principal.session_id, ToUnixMillis(clock_.Now())}));
    return audit_.Record(tx, actor, {"session.revoke", "session", principal.session_id, "{}"});
  });
}

Result<Principal> Accounts::AuthenticateSession(const std::string& token) {
  auto unauthenticated = [] { return Error::Make(ErrorCode::kUnauthenticated, "session expired or invalid"); };
  if (token.empty() || token.size() > 128) return unauthenticated();
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query("SELECT s.id, s.principal_kind, s.principal_id, s.tenant_id, s.csrf_token, s.last_seen_at, "
                           "s.expires_at, s.revoked_at, u.role, t.status FROM sessions s LEFT JOIN users u ON "
                           "u.id = s.principal_id LEFT JOIN tenants t ON t.id = s.tenant_id WHERE s.token_hash = $1",
                           {Sha256Hex(token)}));
  if (rows.empty()) return unauthenticated();
  const Row& row = rows[0];
  int64_t now = ToUnixMillis(clock_.Now());
  int64_t idle_ms = config_.session_idle_minutes * 60'000;
  if (!row.IsNull(7) || now >= row.Int(6) || now - row.Int(5) >= idle_ms) return unauthenticated();
  bool is_operator = row.Text(1) == "operator";
  if (!is_operator && row.IsNull(8)) return unauthenticated();  // the user was removed
  Principal principal{
      is_operator ? Principal::Kind::kOperator : Principal::Kind::kUser,           row.Text(2), TenantId(row.Text(3)),
      is_operator ? Role::kOwner : ParseRole(row.Text(8)).value_or(Role::kViewer), row.Text(0), row.Text(4)};
  principal.suspended = !is_operator && !row.IsNull(9) && row.Text(9) == "suspended";
  // Sliding idle expiry without a write per request: refresh at most once a minute.
  if (now - row.Int(5) > 60'000) {
    auto touched = db_.Write([&](Tx& tx) -> Result<void> {
      return tx.Exec("UPDATE sessions SET last_seen_at = $2 WHERE id = $1", {principal.session_id, now}).ok()
                 ? Ok()
                 : Error::Internal("session touch failed");
    });
    (void)touched;  // a failed touch only shortens the idle window; authentication still holds
  }
  return principal;
}

Result<Principal> Accounts::AuthenticateApiKey(const std::string& bearer) {
  auto unauthenticated = [] { return Error::Make(ErrorCode::kUnauthenticated, "invalid API key"); };
  // ck_<prefix>_<secret>
  if (!bearer.starts_with(kApiKeyPrefix) || bearer.size() > 128) return unauthenticated();
  auto separator = bearer.find('_', kApiKeyPrefix.size());
  if (separator == std::string::npos) return unauthenticated();
  std::string prefix = bearer.substr(0, separator);
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query("SELECT k.id, k.tenant_id, k.secret_hash, k.role, k.revoked_at, "
                                               "k.last_used_at, t.status FROM api_keys k LEFT JOIN tenants t "
                                               "ON t.id = k.tenant_id WHERE k.prefix = $1",
                                               {prefix}));
  if (rows.empty() || !rows[0].IsNull(4) || !ConstantTimeEquals(rows[0].Text(2), Sha256Hex(bearer))) {
    return unauthenticated();
  }
  int64_t now = ToUnixMillis(clock_.Now());
  if (rows[0].IsNull(5) || now - rows[0].Int(5) > 60'000) {
    auto touched = db_.Write([&](Tx& tx) -> Result<void> {
      return tx.Exec("UPDATE api_keys SET last_used_at = $2 WHERE id = $1", {rows[0].Text(0), now}).ok()
                 ? Ok()
                 : Error::Internal("api key touch failed");
    });
    (void)touched;  // last_used_at is informational
  }
  Principal principal{Principal::Kind::kApiKey, rows[0].Text(0), TenantId(rows[0].Text(1)),
                      ParseRole(rows[0].Text(3)).value_or(Role::kViewer)};
  principal.suspended = !rows[0].IsNull(6) && rows[0].Text(6) == "suspended";
  return principal;
}

namespace {
constexpr const char* kTenantColumns = "id, name, status, COALESCE(suspension_reason, ''), created_at";

Tenant TenantFromRow(const Row& row) {
  return Tenant{TenantId(row.Text(0)), row.Text(1), row.Text(2), row.Text(3), FromUnixMillis(row.Int(4))};
}

bool IsSuspensionReason(std::string_view reason) {
  return reason == "spam" || reason == "illegal_calling" || reason == "fraud" || reason == "non_payment" ||
         reason == "other";
}
}  // namespace

Result<Tenant> Accounts::GetTenant(const TenantId& tenant) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kTenantColumns + " FROM tenants WHERE id = $1", {tenant.str()}));
  if (rows.empty()) return NotFound("tenant");
  return TenantFromRow(rows[0]);
}

Result<Tenant> Accounts::SuspendTenant(const TenantId& tenant, const std::string& reason, const std::string& note,
                                       const privacy::Actor& actor) {
  if (!IsSuspensionReason(reason)) {
    return Error::InvalidArgument("reason", "reason must be spam, illegal_calling, fraud, non_payment or other");
  }
  if (note.size() > 1000) return Error::InvalidArgument("note", "note is longer than 1000 characters");
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t changed,
        tx.Exec("UPDATE tenants SET status = 'suspended', suspension_reason = $2, updated_at = $3 WHERE id = $1",
                {tenant.str(), reason, ToUnixMillis(clock_.Now())}));
    if (changed == 0) return NotFound("tenant");
    return audit_.Record(tx, actor,
                         {"tenant.suspend", "tenant", tenant.str(), Details({{"reason", reason}, {"note", note}})});
  }));
  return GetTenant(tenant);
}

Result<Tenant> Accounts::ReinstateTenant(const TenantId& tenant, const privacy::Actor& actor) {
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(
        int64_t changed,
        tx.Exec("UPDATE tenants SET status = 'active', suspension_reason = NULL, updated_at = $2 WHERE id = $1",
                {tenant.str(), ToUnixMillis(clock_.Now())}));
    if (changed == 0) return NotFound("tenant");
    return audit_.Record(tx, actor, {"tenant.reinstate", "tenant", tenant.str(), "{}"});
  }));
  return GetTenant(tenant);
}

Result<Tenant> Accounts::RenameTenant(const TenantId& tenant, const std::string& name_input,
                                      const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string name, RequireName(name_input, "name"));
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(int64_t changed, tx.Exec("UPDATE tenants SET name = $2, updated_at = $3 WHERE id = $1",
                                                     {tenant.str(), name, ToUnixMillis(clock_.Now())}));
    if (changed == 0) return NotFound("tenant");
    return audit_.Record(tx, actor, {"tenant.update", "tenant", tenant.str(), Details({{"fields", {"name"}}})});
  }));
  return GetTenant(tenant);
}

Result<User> Accounts::GetUser(const TenantId& tenant, const std::string& user_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kUserColumns + " FROM users WHERE id = $1 AND tenant_id = $2",
                           {user_id, tenant.str()}));
  if (rows.empty()) return NotFound("user");
  return UserFromRow(rows[0]);
}

Result<Page<User>> Accounts::ListUsers(const TenantId& tenant, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kUserColumns +
                                                   " FROM users WHERE tenant_id = $1 AND ($2 = '' OR id < $2) "
                                                   "ORDER BY id DESC LIMIT $3",
                                               {tenant.str(), page.cursor, page.limit + 1}));
  return MakePage<User>(rows, page, UserFromRow);
}

Result<User> Accounts::UpdateUser(const Principal& by, const std::string& user_id, const UserUpdate& update,
                                  const privacy::Actor& actor) {
  std::optional<std::string> name, phone;
  if (update.name) {
    CLOZIT_ASSIGN_OR_RETURN(name, RequireName(*update.name, "name"));
  }
  if (update.phone) {
    CLOZIT_ASSIGN_OR_RETURN(auto parsed, ParsePhoneNumber(*update.phone, "US", "phone"));
    phone = parsed.e164;
  }
  bool self = by.kind == Principal::Kind::kUser && by.id == user_id;
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto current, tx.QueryOne("SELECT role FROM users WHERE id = $1 AND tenant_id = $2",
                                                      {user_id, by.tenant_id.str()}));
    Role current_role = ParseRole(current.Text(0)).value_or(Role::kViewer);
    if (!self && by.role < Role::kAdmin) {
      return Error::Make(ErrorCode::kPermissionDenied, "only admins can change other users");
    }
    if (update.role && *update.role != current_role) {
      if (by.role < Role::kAdmin)
        return Error::Make(ErrorCode::kPermissionDenied, "only admins can change roles", "role");
      if ((*update.role == Role::kOwner || current_role == Role::kOwner) && by.role != Role::kOwner) {
        return Error::Make(ErrorCode::kPermissionDenied, "only an owner can grant or remove the owner role", "role");
      }
      if (current_role == Role::kOwner) {
        CLOZIT_ASSIGN_OR_RETURN(auto owners, tx.QueryOne("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = "
                                                         "'owner'",
                                                         {by.tenant_id.str()}));
        if (owners.Int(0) <= 1)
          return Error::Make(ErrorCode::kConflict, "a tenant must keep at least one owner", "role");
      }
    }
    nlohmann::json fields = nlohmann::json::array();
    int64_t now = ToUnixMillis(clock_.Now());
    if (name) {
      CLOZIT_TRY(tx.Exec("UPDATE users SET name = $2, updated_at = $3 WHERE id = $1", {user_id, *name, now}));
      fields.push_back("name");
    }
    if (phone) {
      CLOZIT_TRY(tx.Exec("UPDATE users SET phone = $2, updated_at = $3 WHERE id = $1", {user_id, *phone, now}));
      fields.push_back("phone");
    }
    nlohmann::json details = {{"fields", fields}};
    if (update.role && *update.role != current_role) {
      CLOZIT_TRY(tx.Exec("UPDATE users SET role = $2, updated_at = $3 WHERE id = $1",
                         {user_id, std::string(RoleName(*update.role)), now}));
      details["role"] = {{"from", RoleName(current_role)}, {"to", RoleName(*update.role)}};
      if (*update.role < current_role) {
        CLOZIT_ASSIGN_OR_RETURN(details["revoked"],
                                RevokeLentAuthority(tx, by.tenant_id.str(), user_id, *update.role, now));
      }
    }
    return audit_.Record(tx, actor, {"user.update", "user", user_id, Details(details)});
  }));
  return GetUser(by.tenant_id, user_id);
}

Result<void> Accounts::RemoveUser(const Principal& by, const std::string& user_id, const privacy::Actor& actor) {
  return db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto current, tx.QueryOne("SELECT role FROM users WHERE id = $1 AND tenant_id = $2",
                                                      {user_id, by.tenant_id.str()}));
    if (current.Text(0) == "owner") {
      if (by.role != Role::kOwner)
        return Error::Make(ErrorCode::kPermissionDenied, "only an owner can remove an owner");
      CLOZIT_ASSIGN_OR_RETURN(auto owners, tx.QueryOne("SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND role = "
                                                       "'owner'",
                                                       {by.tenant_id.str()}));
      if (owners.Int(0) <= 1) return Error::Make(ErrorCode::kConflict, "a tenant must keep at least one owner");
    }
    int64_t now = ToUnixMillis(clock_.Now());
    CLOZIT_TRY(
        tx.Exec("UPDATE sessions SET revoked_at = $2 WHERE principal_id = $1 AND revoked_at IS NULL", {user_id, now}));
    CLOZIT_ASSIGN_OR_RETURN(auto revoked, RevokeLentAuthority(tx, by.tenant_id.str(), user_id, std::nullopt, now));
    CLOZIT_TRY(tx.Exec("DELETE FROM users WHERE id = $1 AND tenant_id = $2", {user_id, by.tenant_id.str()}));
    return audit_.Record(tx, actor, {"user.remove", "user", user_id, Details({{"revoked", revoked}})});
  });
}

namespace {
// The maker's authority as it stands inside the write that lends it: a removal or demotion that committed after
// the request was authenticated would otherwise leave a key or invitation that RevokeLentAuthority never saw.
Result<void> StillMayLend(Tx& tx, const Principal& by, Role role, const std::string& what) {
  std::optional<Role> current;
  if (by.kind == Principal::Kind::kUser) {
    CLOZIT_ASSIGN_OR_RETURN(
        auto rows, tx.Query("SELECT role FROM users WHERE id = $1 AND tenant_id = $2", {by.id, by.tenant_id.str()}));
    if (!rows.empty()) current = ParseRole(rows.front().Text(0));
  } else if (by.kind == Principal::Kind::kApiKey) {
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT role FROM api_keys WHERE id = $1 AND tenant_id = $2 AND "
                                                "revoked_at IS NULL",
                                                {by.id, by.tenant_id.str()}));
    if (!rows.empty()) current = ParseRole(rows.front().Text(0));
  }
  if (!current) return Error::Make(ErrorCode::kPermissionDenied, "your access was removed meanwhile");
  if (role > *current) {
    return Error::Make(ErrorCode::kPermissionDenied, what + " cannot have a higher role than its creator", "role");
  }
  return Ok();
}
}  // namespace

Result<ApiKeyCreated> Accounts::CreateApiKey(const Principal& by, const std::string& name_input, Role role,
                                             const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string name, RequireName(name_input, "name", 100));
  if (role > by.role)
    return Error::Make(ErrorCode::kPermissionDenied, "a key cannot have a higher role than its creator", "role");
  ApiKeyCreated out;
  out.key.id = ApiKeyId::New(clock_, random_);
  // The prefix is public (shown in listings, used for lookup); the secret part is 32 random bytes.
  out.key.prefix = std::string(kApiKeyPrefix) + RandomToken(random_, 6);
  std::replace(out.key.prefix.begin() + static_cast<std::ptrdiff_t>(kApiKeyPrefix.size()), out.key.prefix.end(), '_',
               'x');
  out.secret = out.key.prefix + "_" + RandomToken(random_, 32);
  out.key.name = name;
  out.key.role = role;
  out.key.created_by = by.id;
  out.key.created_at = clock_.Now();
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(StillMayLend(tx, by, role, "a key"));
    CLOZIT_TRY(
        tx.Exec("INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, role, created_by, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                {out.key.id.str(), by.tenant_id.str(), name, out.key.prefix, Sha256Hex(out.secret),
                 std::string(RoleName(role)), by.id, ToUnixMillis(out.key.created_at)}));
    return audit_.Record(tx, actor,
                         {"api_key.create", "api_key", out.key.id.str(), Details({{"role", RoleName(role)}})});
  }));
  return out;
}

Result<Page<ApiKey>> Accounts::ListApiKeys(const TenantId& tenant, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kApiKeyColumns +
                                                   " FROM api_keys WHERE tenant_id = $1 AND ($2 = '' OR id < $2) "
                                                   "ORDER BY id DESC LIMIT $3",
                                               {tenant.str(), page.cursor, page.limit + 1}));
  return MakePage<ApiKey>(rows, page, ApiKeyFromRow);
}

Result<ApiKey> Accounts::GetApiKey(const TenantId& tenant, const std::string& key_id) {
  CLOZIT_ASSIGN_OR_RETURN(
      auto rows, db_.Query(std::string("SELECT ") + kApiKeyColumns + " FROM api_keys WHERE id = $1 AND tenant_id = $2",
                           {key_id, tenant.str()}));
  if (rows.empty()) return NotFound("API key");
  return ApiKeyFromRow(rows[0]);
}

Result<ApiKey> Accounts::RevokeApiKey(const TenantId& tenant, const std::string& key_id, const privacy::Actor& actor) {
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.QueryOne("SELECT id FROM api_keys WHERE id = $1 AND tenant_id = $2", {key_id, tenant.str()}));
    CLOZIT_ASSIGN_OR_RETURN(int64_t changed,
                            tx.Exec("UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2 AND "
                                    "revoked_at IS NULL",
                                    {key_id, tenant.str(), ToUnixMillis(clock_.Now())}));
    if (changed == 0) return Ok();  // already revoked: idempotent, no second audit entry
    return audit_.Record(tx, actor, {"api_key.revoke", "api_key", key_id, "{}"});
  }));
  return GetApiKey(tenant, key_id);
}

Result<InvitationCreated> Accounts::Invite(const Principal& by, const std::string& email_input, Role role,
                                           const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string email, NormalizeEmail(email_input, "email"));
  if (role > by.role)
    return Error::Make(ErrorCode::kPermissionDenied, "cannot invite with a role above your own", "role");
  InvitationCreated out;
  TimePoint now = clock_.Now();
  out.token = RandomToken(random_, 32);
  out.invitation = {InvitationId::New(clock_, random_),
                    email,
                    role,
                    by.id,
                    now,
                    now + std::chrono::hours(config_.invitation_valid_hours),
                    "pending"};
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(StillMayLend(tx, by, role, "an invitation"));
    CLOZIT_ASSIGN_OR_RETURN(auto existing, tx.Query("SELECT id FROM users WHERE email = $1", {email}));
    if (!existing.empty()) return Error::Make(ErrorCode::kAlreadyExists, "this email already has an account", "email");
    CLOZIT_ASSIGN_OR_RETURN(auto tenant, tx.QueryOne("SELECT name FROM tenants WHERE id = $1", {by.tenant_id.str()}));
    CLOZIT_TRY(
        tx.Exec("INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, created_at, "
                "expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                {out.invitation.id.str(), by.tenant_id.str(), email, std::string(RoleName(role)), Sha256Hex(out.token),
                 by.id, ToUnixMillis(now), ToUnixMillis(out.invitation.expires_at)}));
    CLOZIT_TRY(
        tx.Exec("INSERT INTO email_outbox (id, tenant_id, to_address, subject, body, created_at) VALUES ($1, $2, "
                "$3, $4, $5, $6)",
                {"eml_" + NewUlid(clock_, random_), by.tenant_id.str(), email,
                 "You are invited to " + tenant.Text(0) + " on Clozit",
                 "You have been invited to join " + tenant.Text(0) + " on Clozit as " + std::string(RoleName(role)) +
                     ".\n\nAccept with this token (valid " + std::to_string(config_.invitation_valid_hours) +
                     " hours): " + out.token + "\n",
                 ToUnixMillis(now)}));
    return audit_.Record(
        tx, actor, {"invitation.create", "invitation", out.invitation.id.str(), Details({{"role", RoleName(role)}})});
  }));
  return out;
}

Result<Page<Invitation>> Accounts::ListInvitations(const TenantId& tenant, const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kInvitationColumns +
                                                   " FROM invitations WHERE tenant_id = $1 AND ($2 = '' OR id < $2) "
                                                   "ORDER BY id DESC LIMIT $3",
                                               {tenant.str(), page.cursor, page.limit + 1}));
  TimePoint now = clock_.Now();
  return MakePage<Invitation>(rows, page, [now](const Row& row) { return InvitationFromRow(row, now); });
}

Result<Invitation> Accounts::GetInvitation(const TenantId& tenant, const std::string& invitation_id) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kInvitationColumns +
                                                   " FROM invitations WHERE id = $1 AND tenant_id = $2",
                                               {invitation_id, tenant.str()}));
  if (rows.empty()) return NotFound("invitation");
  return InvitationFromRow(rows[0], clock_.Now());
}

Result<Invitation> Accounts::RevokeInvitation(const TenantId& tenant, const std::string& invitation_id,
                                              const privacy::Actor& actor) {
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto row,
                            tx.QueryOne("SELECT accepted_at FROM invitations WHERE id = $1 AND tenant_id = $2",
                                        {invitation_id, tenant.str()}));
    if (!row.IsNull(0)) return Error::Make(ErrorCode::kConflict, "invitation already accepted");
    CLOZIT_ASSIGN_OR_RETURN(int64_t changed, tx.Exec("UPDATE invitations SET revoked_at = $3 WHERE id = $1 AND "
                                                     "tenant_id = $2 AND revoked_at IS NULL",
                                                     {invitation_id, tenant.str(), ToUnixMillis(clock_.Now())}));
    if (changed == 0) return Ok();
    return audit_.Record(tx, actor, {"invitation.revoke", "invitation", invitation_id, "{}"});
  }));
  return GetInvitation(tenant, invitation_id);
}

Result<SessionCreated> Accounts::AcceptInvitation(const AcceptInvitationInput& input, const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string name, RequireName(input.name, "name"));
  CLOZIT_ASSIGN_OR_RETURN(auto phone, ParsePhoneNumber(input.phone, "US", "phone"));
  if (input.token.empty() || input.token.size() > 128)
    return Error::InvalidArgument("token", "invalid invitation token");
  CLOZIT_ASSIGN_OR_RETURN(auto found,
                          db_.Query("SELECT email FROM invitations WHERE token_hash = $1", {Sha256Hex(input.token)}));
  if (found.empty()) return Error::Make(ErrorCode::kNotFound, "invitation not found", "token");
  CLOZIT_TRY(CheckPasswordStrength(input.password, found[0].Text(0), "password"));
  CLOZIT_ASSIGN_OR_RETURN(std::string hash, HashPassword(input.password));
  SessionCreated created;
  auto user_id = UserId::New(clock_, random_);
  CLOZIT_TRY(db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto row, tx.QueryOne("SELECT id, tenant_id, email, role, expires_at, accepted_at, "
                                                  "revoked_at FROM invitations WHERE token_hash = $1",
                                                  {Sha256Hex(input.token)}));
    int64_t now = ToUnixMillis(clock_.Now());
    if (!row.IsNull(5) || !row.IsNull(6) || row.Int(4) <= now) {
      return Error::Make(ErrorCode::kConflict, "invitation is no longer valid", "token");
    }
    // A suspended tenant gains no users (ADR 0027).
    CLOZIT_ASSIGN_OR_RETURN(auto status, tx.QueryOne("SELECT status FROM tenants WHERE id = $1", {row.Text(1)}));
    if (status.Text(0) == "suspended") {
      return Error::Make(ErrorCode::kPermissionDenied, "this account is suspended: invitations cannot be accepted");
    }
    Role role = ParseRole(row.Text(3)).value_or(Role::kViewer);
    CLOZIT_TRY(tx.Exec("UPDATE invitations SET accepted_at = $2 WHERE id = $1", {row.Text(0), now}));
    auto inserted = tx.Exec(
        "INSERT INTO users (id, tenant_id, email, name, phone, password_hash, role, created_at, updated_at) VALUES "
        "($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        {user_id.str(), row.Text(1), row.Text(2), name, phone.e164, hash, row.Text(3), now});
    if (!inserted) {
      if (inserted.error().code == ErrorCode::kAlreadyExists) {
        return Error::Make(ErrorCode::kAlreadyExists, "this email already has an account", "token");
      }
      return inserted.error();
    }
    privacy::Actor who = actor;
    who.kind = "user";
    who.id = user_id.str();
    who.tenant_id = row.Text(1);
    CLOZIT_TRY(audit_.Record(tx, who, {"invitation.accept", "invitation", row.Text(0), "{}"}));
    CLOZIT_ASSIGN_OR_RETURN(
        created, CreateSession(tx, {Principal::Kind::kUser, user_id.str(), TenantId(row.Text(1)), role}, actor.ip));
    return Ok();
  }));
  return created;
}

Result<Operator> Accounts::CreateOperator(const std::string& email_input, const std::string& name_input,
                                          const std::string& password, const privacy::Actor& actor) {
  CLOZIT_ASSIGN_OR_RETURN(std::string email, NormalizeEmail(email_input, "email"));
  CLOZIT_ASSIGN_OR_RETURN(std::string name, RequireName(name_input, "name"));
  CLOZIT_TRY(CheckPasswordStrength(password, email, "password"));
  CLOZIT_ASSIGN_OR_RETURN(std::string hash, HashPassword(password));
  Operator out{OperatorId::New(clock_, random_), email, name};
  auto result = db_.Write([&](Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("INSERT INTO operators (id, email, name, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                       {out.id.str(), email, name, hash, ToUnixMillis(clock_.Now())}));
    return audit_.Record(tx, actor, {"operator.create", "operator", out.id.str(), "{}"});
  });
  if (!result) {
    if (result.error().code == ErrorCode::kAlreadyExists) {
      return Error::Make(ErrorCode::kAlreadyExists, "an operator with this email already exists", "email");
    }
    return result.error();
  }
  return out;
}

Result<Page<Tenant>> Accounts::ListTenants(const PageRequest& page) {
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_.Query(std::string("SELECT ") + kTenantColumns +
                                                   " FROM tenants WHERE ($1 = '' OR id < $1) ORDER BY id DESC LIMIT $2",
                                               {page.cursor, page.limit + 1}));
  return MakePage<Tenant>(rows, page, TenantFromRow);
}

}  // namespace clozit::accounts
