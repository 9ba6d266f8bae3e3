// accounts: tenants (organisations), their users and roles, login sessions,
// API keys, invitations and platform operators.
//
// The policy's account information is name, email, phone number and company
// name; nothing else about a person is collected here. Passwords are argon2id
// hashes; session tokens, API-key secrets and invitation tokens are stored
// only as SHA-256 digests, so nothing readable can leak from the database.
// Every tenant-owned query is scoped by tenant id: a caller asking for another
// tenant's row gets not_found, exactly as for a row that does not exist.
//
// Thread-safe; methods block on the database (call from worker threads).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/config.hpp"
#include "common/ids.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::accounts {

/// Ordered: a higher role can do everything a lower one can.
enum class Role { kViewer = 0, kMember = 1, kAdmin = 2, kOwner = 3 };
std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view text);

struct Tenant {
  TenantId id;
  std::string name;
  std::string status;             // active | suspended
  std::string suspension_reason;  // when suspended: spam | illegal_calling | fraud | non_payment | other
  TimePoint created_at;
};

struct User {
  UserId id;
  TenantId tenant_id;
  std::string email;
  std::string name;
  std::string phone;
  Role role = Role::kViewer;
  TimePoint created_at;
};

/// An authenticated caller.
struct Principal {
  enum class Kind { kUser, kApiKey, kOperator };
  Kind kind = Kind::kUser;
  std::string id;      // usr_…, key_… or opr_…
  TenantId tenant_id;  // empty for operators
  Role role = Role::kViewer;
  std::string session_id;  // for cookie sessions
  std::string csrf_token;  // for cookie sessions
  bool suspended = false;  // its tenant is suspended: it may read and sign out, not change anything
  std::string ActorKind() const;
};

struct SignUpInput {
  std::string company;
  std::string name;
  std::string email;
  std::string phone;
  std::string password;
};

struct SessionCreated {
  std::string token;  // the cookie value; shown once
  std::string csrf_token;
  TimePoint expires_at;
  Principal principal;
};

struct ApiKey {
  ApiKeyId id;
  std::string name;
  std::string prefix;
  Role role = Role::kMember;
  std::string created_by;
  TimePoint created_at;
  std::optional<TimePoint> last_used_at;
  std::optional<TimePoint> revoked_at;
};

struct ApiKeyCreated {
  ApiKey key;
  std::string secret;  // the whole bearer token; shown once, never stored
};

struct Invitation {
  InvitationId id;
  std::string email;
  Role role = Role::kMember;
  std::string invited_by;
  TimePoint created_at;
  TimePoint expires_at;
  std::string status;  // pending | accepted | revoked | expired
};

struct InvitationCreated {
  Invitation invitation;
  std::string token;  // also sent by email; shown once
};

struct AcceptInvitationInput {
  std::string token;
  std::string name;
  std::string phone;
  std::string password;
};

struct Operator {
  OperatorId id;
  std::string email;
  std::string name;
};

struct UserUpdate {
  std::optional<std::string> name;
  std::optional<std::string> phone;
  std::optional<Role> role;
};

class Accounts {
 public:
  Accounts(storage::Database& db, const Clock& clock, Random& random, privacy::AuditLog& audit, AccountsConfig config);

  // Sign-up and login.
  Result<SessionCreated> SignUp(const SignUpInput& input, const privacy::Actor& actor);
  Result<SessionCreated> Login(const std::string& email, const std::string& password, const privacy::Actor& actor);
  Result<SessionCreated> OperatorLogin(const std::string& email, const std::string& password,
                                       const privacy::Actor& actor);
  Result<void> Logout(const Principal& principal, const privacy::Actor& actor);

  // Authentication of incoming requests.
  Result<Principal> AuthenticateSession(const std::string& token);
  Result<Principal> AuthenticateApiKey(const std::string& bearer);

  // Tenant and users.
  Result<Tenant> GetTenant(const TenantId& tenant);
  Result<Tenant> RenameTenant(const TenantId& tenant, const std::string& name, const privacy::Actor& actor);
  Result<User> GetUser(const TenantId& tenant, const std::string& user_id);
  Result<Page<User>> ListUsers(const TenantId& tenant, const PageRequest& page);
  /// Role changes need admin; only an owner grants or removes owner; the last owner cannot be demoted.
  Result<User> UpdateUser(const Principal& by, const std::string& user_id, const UserUpdate& update,
                          const privacy::Actor& actor);
  Result<void> RemoveUser(const Principal& by, const std::string& user_id, const privacy::Actor& actor);

  // API keys.
  Result<ApiKeyCreated> CreateApiKey(const Principal& by, const std::string& name, Role role,
                                     const privacy::Actor& actor);
  Result<Page<ApiKey>> ListApiKeys(const TenantId& tenant, const PageRequest& page);
  Result<ApiKey> GetApiKey(const TenantId& tenant, const std::string& key_id);
  Result<ApiKey> RevokeApiKey(const TenantId& tenant, const std::string& key_id, const privacy::Actor& actor);

  // Invitations.
  Result<InvitationCreated> Invite(const Principal& by, const std::string& email, Role role,
                                   const privacy::Actor& actor);
  Result<Page<Invitation>> ListInvitations(const TenantId& tenant, const PageRequest& page);
  Result<Invitation> GetInvitation(const TenantId& tenant, const std::string& invitation_id);
  Result<Invitation> RevokeInvitation(const TenantId& tenant, const std::string& invitation_id,
                                      const privacy::Actor& actor);
  Result<SessionCreated> AcceptInvitation(const AcceptInvitationInput& input, const privacy::Actor& actor);

  // Operators (platform staff).
  Result<Operator> CreateOperator(const std::string& email, const std::string& name, const std::string& password,
                                  const privacy::Actor& actor);
  Result<Page<Tenant>> ListTenants(const PageRequest& page);
  /// Suspends a tenant for `reason` (spam, illegal_calling, fraud, non_payment, other): its users and API keys
  /// may still read and sign out but change nothing, and the first three forfeit refunds (policy P5). Suspending
  /// again replaces the reason.
  Result<Tenant> SuspendTenant(const TenantId& tenant, const std::string& reason, const std::string& note,
                               const privacy::Actor& actor);
  Result<Tenant> ReinstateTenant(const TenantId& tenant, const privacy::Actor& actor);

  /// Validation shared with the API layer (for early, field-specific errors).
  static Result<std::string> NormalizeEmail(std::string_view email, const std::string& field);
  Result<void> CheckPasswordStrength(const std::string& password, const std::string& email,
                                     const std::string& field) const;

 private:
  Result<std::string> HashPassword(const std::string& password) const;
  bool VerifyPassword(const std::string& hash, const std::string& password) const;
  Result<SessionCreated> CreateSession(storage::Tx& tx, Principal principal, const std::string& ip);
  /// Throttles failed logins per account and client address, and per account at kAccountWideFailures times the
  /// limit; returns rate_limited while locked out.
  Result<void> CheckLoginAllowed(const std::string& account, const std::string& ip);
  void RecordLoginFailure(const std::string& account, const std::string& ip);
  void ClearLoginFailures(const std::string& account, const std::string& ip);
  static std::array<std::string, 2> LoginFailureKeys(const std::string& account, const std::string& ip);
  static constexpr int64_t kAccountWideFailures = 10;

  storage::Database& db_;
  const Clock& clock_;
  Random& random_;
  privacy::AuditLog& audit_;
  AccountsConfig config_;
  std::string dummy_hash_;  // verified against when the account is unknown, to keep timing uniform

  struct Failures {
    int count = 0;
    TimePoint first;
    TimePoint locked_until;
  };
  std::mutex failures_mutex_;
  std::map<std::string, Failures> failures_;  // guarded by failures_mutex_
};

}  // namespace clozit::accounts
