// accounts::Accounts against a real database: SQLite always, PostgreSQL when
// CLOZIT_TEST_PG_URL names a server (scripts/with-postgres.sh sets it). Each
// test gets a fresh, migrated database, a ManualClock and SeededRandom.
#include "accounts/accounts.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "common/clock.hpp"
#include "privacy/audit_log.hpp"
#include "storage/backend_fixture.hpp"
#include "storage/database.hpp"
#include "storage/migrations.hpp"

namespace clozit::accounts {
namespace {

using namespace std::chrono_literals;
using storage::Dialect;

constexpr const char* kOwnerPassword = "Correct-Horse-42";

using storage::test::AdminExec;
using storage::test::BackendName;
using storage::test::RandomSuffix;
using storage::test::WithDatabase;

class AccountsTest : public ::testing::TestWithParam<Dialect> {
 protected:
  AccountsTest()
      : clock_(std::chrono::sys_days{std::chrono::year{2026} / 1 / 15} + 12h), random_(42), audit_(clock_, random_) {
    config_.argon2_opslimit = 1;
    config_.argon2_memlimit_kib = 8192;
    config_.login_max_failures = 3;
    config_.login_lockout_seconds = 600;
    config_.session_idle_minutes = 30;
    config_.session_absolute_hours = 2;
    config_.invitation_valid_hours = 72;
  }

  void SetUp() override {
    storage::OpenOptions options;
    if (GetParam() == Dialect::kSqlite) {
      directory_ = std::filesystem::path(::testing::TempDir()) / ("clozit_accounts_" + RandomSuffix());
      options.url = "sqlite:" + (directory_ / "clozit.db").string();
    } else {
      const char* server = std::getenv("CLOZIT_TEST_PG_URL");
      if (server == nullptr || *server == '\0') {
        GTEST_SKIP() << "CLOZIT_TEST_PG_URL is not set; run under scripts/with-postgres.sh for PostgreSQL";
      }
      server_url_ = server;
      database_name_ = "clozit_acc_" + RandomSuffix();
      ASSERT_EQ(AdminExec(server_url_, "CREATE DATABASE " + database_name_), "");
      options.url = WithDatabase(server_url_, database_name_);
    }
    auto opened = storage::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_ = std::move(opened).value();
    auto migrated = storage::Migrate(*db_, clock_);
    ASSERT_TRUE(migrated.ok()) << migrated.error().message;
    Rebuild();
  }

  void TearDown() override {
    accounts_.reset();
    db_.reset();
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
    if (!database_name_.empty()) {
      EXPECT_EQ(AdminExec(server_url_, "DROP DATABASE IF EXISTS " + database_name_ + " WITH (FORCE)"), "");
    }
  }

  /// (Re)creates Accounts with the current config_.
  void Rebuild() { accounts_ = std::make_unique<Accounts>(*db_, clock_, random_, audit_, config_); }

  static privacy::Actor Anonymous() { return {"anonymous", "-", "", "192.0.2.10", "req_test"}; }
  static privacy::Actor ActorOf(const Principal& principal) {
    return {principal.ActorKind(), principal.id, principal.tenant_id.str(), "192.0.2.10", "req_test"};
  }

  SignUpInput Input(std::string email = "alice@example.com") {
    return {"Acme Inc", "Alice Owner", std::move(email), "+14155552671", kOwnerPassword};
  }

  SessionCreated SignUpOrDie(const std::string& email = "alice@example.com") {
    auto created = accounts_->SignUp(Input(email), Anonymous());
    EXPECT_TRUE(created.ok()) << created.error().message;
    return created.ok() ? *created : SessionCreated{};
  }

  /// Invites `email` with `role` on behalf of `by`, accepts it, and returns the new user's session.
  SessionCreated InviteAndAccept(const Principal& by, const std::string& email, Role role) {
    auto invited = accounts_->Invite(by, email, role, ActorOf(by));
    EXPECT_TRUE(invited.ok()) << invited.error().message;
    if (!invited.ok()) return {};
    auto accepted =
        accounts_->AcceptInvitation({invited->token, "Invited Person", "+14155552672", "Another-Pass-77"}, Anonymous());
    EXPECT_TRUE(accepted.ok()) << accepted.error().message;
    return accepted.ok() ? *accepted : SessionCreated{};
  }

  int64_t Scalar(const std::string& sql, const storage::Params& params = {}) {
    auto rows = db_->Query(sql, params);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    return rows.ok() && !rows->empty() ? rows->front().Int(0) : -1;
  }

  int64_t AuditCount(const std::string& action) {
    return Scalar("SELECT COUNT(*) FROM audit_log WHERE action = $1", {action});
  }

  ManualClock clock_;
  SeededRandom random_;
  privacy::AuditLog audit_;
  AccountsConfig config_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<Accounts> accounts_;
  std::filesystem::path directory_;
  std::string server_url_;
  std::string database_name_;
};

INSTANTIATE_TEST_SUITE_P(Backends, AccountsTest, ::testing::Values(Dialect::kSqlite, Dialect::kPostgres), BackendName);

// ---- sign-up ---------------------------------------------------------------

TEST_P(AccountsTest, SignUpCreatesOwnerWithNormalisedEmailAndE164Phone) {
  auto input = Input("  Alice.Smith@Example.COM \t");
  input.phone = "(415) 555-2671";
  input.company = "  Acme Inc  ";
  auto created = accounts_->SignUp(input, Anonymous());
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created->principal.kind, Principal::Kind::kUser);
  EXPECT_EQ(created->principal.role, Role::kOwner);
  EXPECT_FALSE(created->token.empty());
  EXPECT_FALSE(created->csrf_token.empty());
  EXPECT_EQ(created->expires_at, clock_.Now() + 2h);

  auto user = accounts_->GetUser(created->principal.tenant_id, created->principal.id);
  ASSERT_TRUE(user.ok()) << user.error().message;
  EXPECT_EQ(user->email, "alice.smith@example.com");
  EXPECT_EQ(user->phone, "+14155552671");
  EXPECT_EQ(user->role, Role::kOwner);
  auto tenant = accounts_->GetTenant(created->principal.tenant_id);
  ASSERT_TRUE(tenant.ok());
  EXPECT_EQ(tenant->name, "Acme Inc");
  EXPECT_EQ(tenant->status, "active");

  // The stored row, not just what GetUser renders.
  auto rows = db_->Query("SELECT email, phone, password_hash FROM users");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].Text(0), "alice.smith@example.com");
  EXPECT_EQ((*rows)[0].Text(1), "+14155552671");
  EXPECT_TRUE((*rows)[0].Text(2).starts_with("$argon2id$")) << "passwords are stored as argon2id hashes";
  EXPECT_EQ((*rows)[0].Text(2).find(kOwnerPassword), std::string::npos);

  // Logging in with another spelling of the address finds the same account.
  auto login = accounts_->Login("ALICE.SMITH@example.com ", kOwnerPassword, Anonymous());
  ASSERT_TRUE(login.ok()) << login.error().message;
  EXPECT_EQ(login->principal.id, created->principal.id);
}

TEST_P(AccountsTest, SignUpRefusesDuplicateEmailOnFieldEmail) {
  SignUpOrDie("alice@example.com");
  auto again = accounts_->SignUp(Input(" ALICE@example.com"), Anonymous());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(again.error().field, "email");
  // The failed sign-up left nothing behind: no second tenant, no audit entry.
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM tenants"), 1);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM users"), 1);
  EXPECT_EQ(AuditCount("tenant.sign_up"), 1);
}

TEST_P(AccountsTest, SignUpNamesTheInvalidField) {
  struct Case {
    SignUpInput input;
    std::string field;
  };
  std::vector<Case> cases;
  auto with = [&](auto change, std::string field) {
    SignUpInput input = Input();
    change(input);
    cases.push_back({input, std::move(field)});
  };
  with([](SignUpInput& in) { in.phone = "not a phone"; }, "phone");
  with([](SignUpInput& in) { in.phone = "12345"; }, "phone");
  with([](SignUpInput& in) { in.phone = ""; }, "phone");
  with([](SignUpInput& in) { in.email = "no-at-sign"; }, "email");
  with([](SignUpInput& in) { in.email = "a@b"; }, "email");
  with([](SignUpInput& in) { in.email = "a@@b.com"; }, "email");
  with([](SignUpInput& in) { in.company = "   "; }, "company");
  with([](SignUpInput& in) { in.name = ""; }, "name");
  with([](SignUpInput& in) { in.name = "tab\tinside"; }, "name");
  for (const auto& c : cases) {
    auto result = accounts_->SignUp(c.input, Anonymous());
    ASSERT_FALSE(result.ok()) << c.field;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument) << c.field;
    EXPECT_EQ(result.error().field, c.field) << result.error().message;
  }
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM users"), 0);
}

TEST_P(AccountsTest, WeakPasswordsAreRefused) {
  for (const char* weak :
       {"Sh0rt!", "abcdefghij", "ABCDEFGHIJKL", "1234567890", "MyPassword99", "Qwerty-2026x", "xalice-smith1"}) {
    auto input = Input("alice-smith@example.com");
    input.password = weak;
    auto result = accounts_->SignUp(input, Anonymous());
    ASSERT_FALSE(result.ok()) << weak;
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument) << weak;
    EXPECT_EQ(result.error().field, "password") << weak << ": " << result.error().message;
  }
  EXPECT_FALSE(accounts_->CheckPasswordStrength(std::string(257, 'a') + "1", "x@y.com", "password").ok());
  // Long single-class passphrases and mixed shorter ones pass.
  EXPECT_TRUE(accounts_->CheckPasswordStrength("correcthorsebatterystaple", "x@y.com", "password").ok());
  EXPECT_TRUE(accounts_->CheckPasswordStrength("Tr0ub4dor&3x", "x@y.com", "password").ok());
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM users"), 0);
}

// ---- login and lockout -----------------------------------------------------

TEST_P(AccountsTest, LoginAcceptsTheRightPasswordOnly) {
  auto owner = SignUpOrDie();
  auto ok = accounts_->Login("alice@example.com", kOwnerPassword, Anonymous());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->principal.id, owner.principal.id);
  EXPECT_EQ(ok->principal.role, Role::kOwner);
  EXPECT_NE(ok->token, owner.token);

  auto wrong = accounts_->Login("alice@example.com", "Wrong-Password-1", Anonymous());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, ErrorCode::kUnauthenticated);
  auto unknown = accounts_->Login("nobody@example.com", kOwnerPassword, Anonymous());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kUnauthenticated);
  EXPECT_EQ(unknown.error().message, wrong.error().message) << "must not reveal which accounts exist";
}

TEST_P(AccountsTest, LockoutAfterMaxFailuresThenAllowedAfterTheWindow) {
  SignUpOrDie("alice@example.com");
  SignUpOrDie("bob@example.com");
  for (int i = 0; i < 3; ++i) {
    auto wrong = accounts_->Login("alice@example.com", "Wrong-Password-1", Anonymous());
    ASSERT_EQ(wrong.error().code, ErrorCode::kUnauthenticated) << i;
  }
  // Locked: even the right password is refused, without being checked.
  auto locked = accounts_->Login("alice@example.com", kOwnerPassword, Anonymous());
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.error().code, ErrorCode::kRateLimited);
  // The lockout is per account.
  EXPECT_TRUE(accounts_->Login("bob@example.com", kOwnerPassword, Anonymous()).ok());

  clock_.Advance(599s);
  locked = accounts_->Login("Alice@Example.com", kOwnerPassword, Anonymous());
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.error().code, ErrorCode::kRateLimited);

  clock_.Advance(2s);
  auto allowed = accounts_->Login("alice@example.com", kOwnerPassword, Anonymous());
  ASSERT_TRUE(allowed.ok()) << allowed.error().message;

  // A success clears the count: two more failures do not lock again.
  for (int i = 0; i < 2; ++i) ASSERT_FALSE(accounts_->Login("alice@example.com", "nope-Nope-1", Anonymous()).ok());
  EXPECT_TRUE(accounts_->Login("alice@example.com", kOwnerPassword, Anonymous()).ok());
}

// Someone who knows an email must not be able to lock its owner out: failures lock the address they came
// from, and only a guesser spread over many addresses meets the account-wide count.
TEST_P(AccountsTest, FailedLoginsLockTheirAddressNotTheOwnersAndManyAddressesLockTheAccount) {
  SignUpOrDie("alice@example.com");
  auto from = [](const std::string& ip) {
    privacy::Actor actor = Anonymous();
    actor.ip = ip;
    return actor;
  };
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(accounts_->Login("alice@example.com", "Wrong-Password-1", from("198.51.100.7")).error().code,
              ErrorCode::kUnauthenticated);
  }
  EXPECT_EQ(accounts_->Login("alice@example.com", kOwnerPassword, from("198.51.100.7")).error().code,
            ErrorCode::kRateLimited);
  auto owner = accounts_->Login("alice@example.com", kOwnerPassword, from("203.0.113.20"));
  ASSERT_TRUE(owner.ok()) << owner.error().message;
  // The owner's success cleared only their own address's count: the guesser stays locked.
  EXPECT_EQ(accounts_->Login("alice@example.com", kOwnerPassword, from("198.51.100.7")).error().code,
            ErrorCode::kRateLimited);

  // IPv6 addresses count per /64: rotating through one's own /64 is one address.
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(
        accounts_->Login("alice@example.com", "Wrong-Password-1", from("2001:db8::" + std::to_string(i))).error().code,
        ErrorCode::kUnauthenticated);
  }
  EXPECT_EQ(accounts_->Login("alice@example.com", kOwnerPassword, from("2001:db8::ff")).error().code,
            ErrorCode::kRateLimited);
  EXPECT_TRUE(accounts_->Login("alice@example.com", kOwnerPassword, from("2001:db8:0:1::1")).ok());

  // Two failures from each of many addresses: none of them locks alone, together they lock the account at
  // ten times the per-address limit (3 here), from every address.
  for (int i = 0; i < 15; ++i) {
    for (int j = 0; j < 2; ++j) {
      auto wrong = accounts_->Login("alice@example.com", "Wrong-Password-1", from("10.0.0." + std::to_string(i)));
      ASSERT_EQ(wrong.error().code, ErrorCode::kUnauthenticated) << i << "/" << j;
    }
  }
  auto locked = accounts_->Login("alice@example.com", kOwnerPassword, from("203.0.113.20"));
  ASSERT_FALSE(locked.ok());
  EXPECT_EQ(locked.error().code, ErrorCode::kRateLimited);
  clock_.Advance(601s);
  EXPECT_TRUE(accounts_->Login("alice@example.com", kOwnerPassword, from("203.0.113.20")).ok());
}

TEST_P(AccountsTest, FailuresSpreadBeyondTheWindowDoNotLock) {
  SignUpOrDie();
  for (int i = 0; i < 5; ++i) {
    auto wrong = accounts_->Login("alice@example.com", "Wrong-Password-1", Anonymous());
    ASSERT_EQ(wrong.error().code, ErrorCode::kUnauthenticated) << i;
    clock_.Advance(301s);  // two failures per lockout window at most
    if (i % 2 == 1) clock_.Advance(300s);
  }
  EXPECT_TRUE(accounts_->Login("alice@example.com", kOwnerPassword, Anonymous()).ok());
}

// ---- sessions --------------------------------------------------------------

TEST_P(AccountsTest, SessionAuthenticatesUntilIdleTimeout) {
  auto owner = SignUpOrDie();
  auto principal = accounts_->AuthenticateSession(owner.token);
  ASSERT_TRUE(principal.ok()) << principal.error().message;
  EXPECT_EQ(principal->id, owner.principal.id);
  EXPECT_EQ(principal->tenant_id, owner.principal.tenant_id);
  EXPECT_EQ(principal->role, Role::kOwner);
  EXPECT_EQ(principal->csrf_token, owner.csrf_token);
  EXPECT_EQ(principal->session_id, owner.principal.session_id);

  // Activity slides the idle window (30 minutes here).
  clock_.Advance(29min);
  ASSERT_TRUE(accounts_->AuthenticateSession(owner.token).ok());
  clock_.Advance(29min);
  ASSERT_TRUE(accounts_->AuthenticateSession(owner.token).ok());
  clock_.Advance(30min);
  auto idle = accounts_->AuthenticateSession(owner.token);
  ASSERT_FALSE(idle.ok());
  EXPECT_EQ(idle.error().code, ErrorCode::kUnauthenticated);
}

TEST_P(AccountsTest, SessionEndsAtAbsoluteExpiryDespiteActivity) {
  auto owner = SignUpOrDie();
  for (int i = 0; i < 4; ++i) {  // 4 × 29 min = 116 min < 2 h
    clock_.Advance(29min);
    ASSERT_TRUE(accounts_->AuthenticateSession(owner.token).ok()) << i;
  }
  clock_.Advance(4min);  // 120 min
  auto expired = accounts_->AuthenticateSession(owner.token);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, ErrorCode::kUnauthenticated);
}

TEST_P(AccountsTest, UnknownOrMalformedSessionTokensFail) {
  SignUpOrDie();
  for (const std::string& token : {std::string(), std::string("nope"), std::string(200, 'a')}) {
    auto result = accounts_->AuthenticateSession(token);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kUnauthenticated);
  }
}

TEST_P(AccountsTest, LogoutRevokesTheSessionOnly) {
  auto owner = SignUpOrDie();
  auto second = accounts_->Login("alice@example.com", kOwnerPassword, Anonymous());
  ASSERT_TRUE(second.ok());
  auto principal = accounts_->AuthenticateSession(owner.token);
  ASSERT_TRUE(principal.ok());
  ASSERT_TRUE(accounts_->Logout(*principal, ActorOf(*principal)).ok());
  EXPECT_FALSE(accounts_->AuthenticateSession(owner.token).ok());
  EXPECT_TRUE(accounts_->AuthenticateSession(second->token).ok()) << "other sessions stay";
  EXPECT_EQ(AuditCount("session.revoke"), 1);

  Principal api_key_principal{Principal::Kind::kApiKey, "key_x", owner.principal.tenant_id, Role::kAdmin};
  auto not_session = accounts_->Logout(api_key_principal, ActorOf(api_key_principal));
  ASSERT_FALSE(not_session.ok());
  EXPECT_EQ(not_session.error().code, ErrorCode::kInvalidArgument);
}

TEST_P(AccountsTest, SessionTokensAreStoredOnlyAsHashes) {
  auto owner = SignUpOrDie();
  auto rows = db_->Query("SELECT * FROM sessions");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  for (size_t column = 0; column < (*rows)[0].size(); ++column) {
    EXPECT_EQ((*rows)[0].Text(column).find(owner.token), std::string::npos) << "column " << column;
  }
}

// ---- API keys --------------------------------------------------------------

TEST_P(AccountsTest, ApiKeySecretAuthenticatesAndIsStoredOnlyAsHash) {
  auto owner = SignUpOrDie();
  auto created = accounts_->CreateApiKey(owner.principal, "  CI deploys ", Role::kMember, ActorOf(owner.principal));
  ASSERT_TRUE(created.ok()) << created.error().message;
  const std::string& secret = created->secret;
  ASSERT_TRUE(secret.starts_with("ck_")) << secret;
  EXPECT_TRUE(secret.starts_with(created->key.prefix + "_"));
  EXPECT_EQ(created->key.name, "CI deploys");
  EXPECT_EQ(created->key.role, Role::kMember);
  EXPECT_EQ(created->key.created_by, owner.principal.id);

  auto principal = accounts_->AuthenticateApiKey(secret);
  ASSERT_TRUE(principal.ok()) << principal.error().message;
  EXPECT_EQ(principal->kind, Principal::Kind::kApiKey);
  EXPECT_EQ(principal->id, created->key.id.str());
  EXPECT_EQ(principal->tenant_id, owner.principal.tenant_id);
  EXPECT_EQ(principal->role, Role::kMember);
  EXPECT_TRUE(principal->session_id.empty());

  // No column of the stored row holds the secret, or its secret part.
  std::string secret_part = secret.substr(created->key.prefix.size() + 1);
  auto rows = db_->Query("SELECT * FROM api_keys");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  for (size_t column = 0; column < (*rows)[0].size(); ++column) {
    std::string value = (*rows)[0].Text(column);
    EXPECT_EQ(value.find(secret), std::string::npos) << "column " << column;
    EXPECT_EQ(value.find(secret_part), std::string::npos) << "column " << column;
  }
  // Nor does the audit log.
  auto audit = db_->Query("SELECT details, target_id FROM audit_log");
  ASSERT_TRUE(audit.ok());
  for (const auto& row : *audit) EXPECT_EQ(row.Text(0).find(secret_part), std::string::npos);

  // Using the key records when.
  auto stored = accounts_->GetApiKey(owner.principal.tenant_id, created->key.id.str());
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(stored->last_used_at.has_value());
  EXPECT_EQ(*stored->last_used_at, clock_.Now());
}

TEST_P(AccountsTest, WrongOrMalformedApiKeysFail) {
  auto owner = SignUpOrDie();
  auto created = accounts_->CreateApiKey(owner.principal, "ci", Role::kMember, ActorOf(owner.principal));
  ASSERT_TRUE(created.ok());
  std::string tampered = created->secret;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  for (const std::string& bearer : {tampered, created->key.prefix, created->key.prefix + "_", std::string("ck_"),
                                    std::string("sk_live_abc"), std::string(), std::string(300, 'c')}) {
    auto result = accounts_->AuthenticateApiKey(bearer);
    ASSERT_FALSE(result.ok()) << bearer;
    EXPECT_EQ(result.error().code, ErrorCode::kUnauthenticated);
  }
}

TEST_P(AccountsTest, RevokedApiKeyFails) {
  auto owner = SignUpOrDie();
  auto created = accounts_->CreateApiKey(owner.principal, "ci", Role::kAdmin, ActorOf(owner.principal));
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(accounts_->AuthenticateApiKey(created->secret).ok());
  auto revoked = accounts_->RevokeApiKey(owner.principal.tenant_id, created->key.id.str(), ActorOf(owner.principal));
  ASSERT_TRUE(revoked.ok()) << revoked.error().message;
  ASSERT_TRUE(revoked->revoked_at.has_value());
  auto result = accounts_->AuthenticateApiKey(created->secret);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnauthenticated);

  // Revoking again is harmless and not audited twice.
  ASSERT_TRUE(accounts_->RevokeApiKey(owner.principal.tenant_id, created->key.id.str(), ActorOf(owner.principal)).ok());
  EXPECT_EQ(AuditCount("api_key.revoke"), 1);
}

TEST_P(AccountsTest, KeyCannotExceedItsCreatorsRole) {
  auto owner = SignUpOrDie();
  auto admin = InviteAndAccept(owner.principal, "admin@example.com", Role::kAdmin);
  ASSERT_EQ(admin.principal.role, Role::kAdmin);

  auto too_high = accounts_->CreateApiKey(admin.principal, "k", Role::kOwner, ActorOf(admin.principal));
  ASSERT_FALSE(too_high.ok());
  EXPECT_EQ(too_high.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(too_high.error().field, "role");
  EXPECT_TRUE(accounts_->CreateApiKey(admin.principal, "k", Role::kAdmin, ActorOf(admin.principal)).ok());

  // A key acting through the API is bound the same way.
  auto member_key = accounts_->CreateApiKey(owner.principal, "m", Role::kMember, ActorOf(owner.principal));
  ASSERT_TRUE(member_key.ok());
  auto as_key = accounts_->AuthenticateApiKey(member_key->secret);
  ASSERT_TRUE(as_key.ok());
  auto escalate = accounts_->CreateApiKey(*as_key, "x", Role::kAdmin, ActorOf(*as_key));
  ASSERT_FALSE(escalate.ok());
  EXPECT_EQ(escalate.error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM api_keys"), 2);
}

TEST_P(AccountsTest, ApiKeysAreTenantScoped) {
  auto alice = SignUpOrDie("alice@example.com");
  auto bob = SignUpOrDie("bob@example.com");
  auto key = accounts_->CreateApiKey(alice.principal, "k", Role::kMember, ActorOf(alice.principal));
  ASSERT_TRUE(key.ok());
  auto other = accounts_->GetApiKey(bob.principal.tenant_id, key->key.id.str());
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code, ErrorCode::kNotFound);
  auto revoke = accounts_->RevokeApiKey(bob.principal.tenant_id, key->key.id.str(), ActorOf(bob.principal));
  ASSERT_FALSE(revoke.ok());
  EXPECT_EQ(revoke.error().code, ErrorCode::kNotFound);
  EXPECT_TRUE(accounts_->AuthenticateApiKey(key->secret).ok());
  auto listed = accounts_->ListApiKeys(bob.principal.tenant_id, {});
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->items.empty());
  EXPECT_FALSE(accounts_->GetUser(bob.principal.tenant_id, alice.principal.id).ok());
}

// ---- roles -----------------------------------------------------------------

TEST_P(AccountsTest, LastOwnerCannotBeDemotedOrRemoved) {
  auto owner = SignUpOrDie();
  const auto& me = owner.principal;
  auto demote = accounts_->UpdateUser(me, me.id, {.role = Role::kAdmin}, ActorOf(me));
  ASSERT_FALSE(demote.ok());
  EXPECT_EQ(demote.error().code, ErrorCode::kConflict);
  auto remove = accounts_->RemoveUser(me, me.id, ActorOf(me));
  ASSERT_FALSE(remove.ok());
  EXPECT_EQ(remove.error().code, ErrorCode::kConflict);
  auto still = accounts_->GetUser(me.tenant_id, me.id);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->role, Role::kOwner);

  // With a second owner, the first may step down.
  auto second = InviteAndAccept(me, "second@example.com", Role::kOwner);
  ASSERT_EQ(second.principal.role, Role::kOwner);
  auto stepped_down = accounts_->UpdateUser(me, me.id, {.role = Role::kAdmin}, ActorOf(me));
  ASSERT_TRUE(stepped_down.ok()) << stepped_down.error().message;
  EXPECT_EQ(stepped_down->role, Role::kAdmin);
  // The new role applies to the existing session at once.
  auto principal = accounts_->AuthenticateSession(owner.token);
  ASSERT_TRUE(principal.ok());
  EXPECT_EQ(principal->role, Role::kAdmin);
  // And now the second owner is the last one.
  auto last = accounts_->RemoveUser(second.principal, second.principal.id, ActorOf(second.principal));
  ASSERT_FALSE(last.ok());
  EXPECT_EQ(last.error().code, ErrorCode::kConflict);
}

TEST_P(AccountsTest, DemotingOrRemovingAUserRevokesTheAuthorityTheirKeysAndInvitationsCarry) {
  auto owner = SignUpOrDie();
  auto admin = InviteAndAccept(owner.principal, "admin@example.com", Role::kAdmin);
  const auto& by = admin.principal;
  auto key = [&](const Principal& maker, Role role) {
    auto made = accounts_->CreateApiKey(maker, "k", role, ActorOf(maker));
    EXPECT_TRUE(made.ok()) << made.error().message;
    return made.ok() ? made->secret : std::string();
  };
  auto invite = [&](const std::string& email, Role role) {
    auto made = accounts_->Invite(by, email, role, ActorOf(by));
    EXPECT_TRUE(made.ok()) << made.error().message;
    return made.ok() ? made->invitation.id.str() : std::string();
  };
  auto works = [&](const std::string& secret) { return accounts_->AuthenticateApiKey(secret).ok(); };
  auto status = [&](const std::string& invitation_id) {
    auto got = accounts_->GetInvitation(by.tenant_id, invitation_id);
    return got.ok() ? got->status : got.error().message;
  };
  std::string admin_key = key(by, Role::kAdmin);
  std::string member_key = key(by, Role::kMember);
  auto as_admin_key = accounts_->AuthenticateApiKey(admin_key);
  ASSERT_TRUE(as_admin_key.ok());
  std::string admin_key_by_key = key(*as_admin_key, Role::kAdmin);
  std::string viewer_key_by_key = key(*as_admin_key, Role::kViewer);
  std::string admin_invitation = invite("second-admin@example.com", Role::kAdmin);
  std::string viewer_invitation = invite("viewer@example.com", Role::kViewer);
  std::string owners_key = key(owner.principal, Role::kAdmin);

  // Demoted to member: what exceeds a member goes, down the chain of keys made by keys; the rest stays.
  auto demoted = accounts_->UpdateUser(owner.principal, by.id, {.role = Role::kMember}, ActorOf(owner.principal));
  ASSERT_TRUE(demoted.ok()) << demoted.error().message;
  EXPECT_FALSE(works(admin_key));
  EXPECT_FALSE(works(admin_key_by_key));
  EXPECT_TRUE(works(member_key));
  EXPECT_TRUE(works(viewer_key_by_key));
  EXPECT_EQ(status(admin_invitation), "revoked");
  EXPECT_EQ(status(viewer_invitation), "pending");
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'user.update' AND details LIKE "
                   "'%\"api_keys_revoked\":2%' AND details LIKE '%\"invitations_revoked\":1%'"),
            1);
  // A request authenticated before the demotion (its principal still says admin) lends nothing above member,
  // and neither does a revoked key's.
  auto stale_key = accounts_->CreateApiKey(by, "late", Role::kAdmin, ActorOf(by));
  ASSERT_FALSE(stale_key.ok());
  EXPECT_EQ(stale_key.error().code, ErrorCode::kPermissionDenied);
  auto stale_invitation = accounts_->Invite(by, "late@example.com", Role::kAdmin, ActorOf(by));
  ASSERT_FALSE(stale_invitation.ok());
  EXPECT_EQ(stale_invitation.error().code, ErrorCode::kPermissionDenied);
  auto by_revoked_key = accounts_->CreateApiKey(*as_admin_key, "late", Role::kViewer, ActorOf(*as_admin_key));
  ASSERT_FALSE(by_revoked_key.ok());
  EXPECT_EQ(by_revoked_key.error().code, ErrorCode::kPermissionDenied);

  // Removed: everything they lent goes; what others made stays.
  ASSERT_TRUE(accounts_->RemoveUser(owner.principal, by.id, ActorOf(owner.principal)).ok());
  EXPECT_FALSE(works(member_key));
  EXPECT_FALSE(works(viewer_key_by_key));
  EXPECT_EQ(status(viewer_invitation), "revoked");
  EXPECT_TRUE(works(owners_key));
  EXPECT_EQ(accounts_->CreateApiKey(by, "late", Role::kViewer, ActorOf(by)).error().code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'user.remove' AND details LIKE "
                   "'%\"api_keys_revoked\":2%' AND details LIKE '%\"invitations_revoked\":1%'"),
            1);
}

TEST_P(AccountsTest, OnlyOwnersTouchOwnersAndOnlyAdminsChangeOthers) {
  auto owner = SignUpOrDie();
  auto admin = InviteAndAccept(owner.principal, "admin@example.com", Role::kAdmin);
  auto member = InviteAndAccept(owner.principal, "member@example.com", Role::kMember);

  auto admin_demotes_owner =
      accounts_->UpdateUser(admin.principal, owner.principal.id, {.role = Role::kViewer}, ActorOf(admin.principal));
  ASSERT_FALSE(admin_demotes_owner.ok());
  EXPECT_EQ(admin_demotes_owner.error().code, ErrorCode::kPermissionDenied);
  auto admin_grants_owner =
      accounts_->UpdateUser(admin.principal, member.principal.id, {.role = Role::kOwner}, ActorOf(admin.principal));
  ASSERT_FALSE(admin_grants_owner.ok());
  EXPECT_EQ(admin_grants_owner.error().code, ErrorCode::kPermissionDenied);
  auto admin_removes_owner = accounts_->RemoveUser(admin.principal, owner.principal.id, ActorOf(admin.principal));
  ASSERT_FALSE(admin_removes_owner.ok());
  EXPECT_EQ(admin_removes_owner.error().code, ErrorCode::kPermissionDenied);

  auto member_renames_other =
      accounts_->UpdateUser(member.principal, admin.principal.id, {.name = "Hacked"}, ActorOf(member.principal));
  ASSERT_FALSE(member_renames_other.ok());
  EXPECT_EQ(member_renames_other.error().code, ErrorCode::kPermissionDenied);
  auto member_promotes_self =
      accounts_->UpdateUser(member.principal, member.principal.id, {.role = Role::kAdmin}, ActorOf(member.principal));
  ASSERT_FALSE(member_promotes_self.ok());
  EXPECT_EQ(member_promotes_self.error().code, ErrorCode::kPermissionDenied);

  auto member_renames_self =
      accounts_->UpdateUser(member.principal, member.principal.id, {.name = " New Name ", .phone = "415-555-2699"},
                            ActorOf(member.principal));
  ASSERT_TRUE(member_renames_self.ok()) << member_renames_self.error().message;
  EXPECT_EQ(member_renames_self->name, "New Name");
  EXPECT_EQ(member_renames_self->phone, "+14155552699");

  auto admin_demotes_member =
      accounts_->UpdateUser(admin.principal, member.principal.id, {.role = Role::kViewer}, ActorOf(admin.principal));
  ASSERT_TRUE(admin_demotes_member.ok()) << admin_demotes_member.error().message;
  EXPECT_EQ(admin_demotes_member->role, Role::kViewer);

  // Removing a user ends their sessions.
  ASSERT_TRUE(accounts_->RemoveUser(admin.principal, member.principal.id, ActorOf(admin.principal)).ok());
  EXPECT_FALSE(accounts_->AuthenticateSession(member.token).ok());
  EXPECT_FALSE(accounts_->GetUser(owner.principal.tenant_id, member.principal.id).ok());
}

// ---- invitations -----------------------------------------------------------

TEST_P(AccountsTest, AcceptingAnInvitationCreatesAMemberWithTheInvitedRole) {
  auto owner = SignUpOrDie();
  auto invited = accounts_->Invite(owner.principal, " Viewer@Example.com", Role::kViewer, ActorOf(owner.principal));
  ASSERT_TRUE(invited.ok()) << invited.error().message;
  EXPECT_EQ(invited->invitation.email, "viewer@example.com");
  EXPECT_EQ(invited->invitation.status, "pending");
  EXPECT_EQ(invited->invitation.expires_at, clock_.Now() + 72h);
  // The token goes out by email and is stored only as a hash.
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM email_outbox WHERE to_address = 'viewer@example.com'"), 1);
  auto stored = db_->Query("SELECT * FROM invitations");
  ASSERT_TRUE(stored.ok());
  for (size_t column = 0; column < (*stored)[0].size(); ++column) {
    EXPECT_EQ((*stored)[0].Text(column).find(invited->token), std::string::npos) << "column " << column;
  }

  auto accepted =
      accounts_->AcceptInvitation({invited->token, "Vera Viewer", "(415) 555-2673", "Vera-Secret-55"}, Anonymous());
  ASSERT_TRUE(accepted.ok()) << accepted.error().message;
  EXPECT_EQ(accepted->principal.role, Role::kViewer);
  EXPECT_EQ(accepted->principal.tenant_id, owner.principal.tenant_id);
  auto user = accounts_->GetUser(owner.principal.tenant_id, accepted->principal.id);
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->email, "viewer@example.com");
  EXPECT_EQ(user->role, Role::kViewer);
  EXPECT_EQ(user->phone, "+14155552673");
  EXPECT_TRUE(accounts_->AuthenticateSession(accepted->token).ok());
  EXPECT_TRUE(accounts_->Login("viewer@example.com", "Vera-Secret-55", Anonymous()).ok());

  auto invitation = accounts_->GetInvitation(owner.principal.tenant_id, invited->invitation.id.str());
  ASSERT_TRUE(invitation.ok());
  EXPECT_EQ(invitation->status, "accepted");
}

TEST_P(AccountsTest, InvitationTokenIsSingleUse) {
  auto owner = SignUpOrDie();
  auto invited = accounts_->Invite(owner.principal, "new@example.com", Role::kMember, ActorOf(owner.principal));
  ASSERT_TRUE(invited.ok());
  ASSERT_TRUE(accounts_->AcceptInvitation({invited->token, "New", "+14155552674", "First-Pass-123"}, Anonymous()).ok());
  auto again = accounts_->AcceptInvitation({invited->token, "Other", "+14155552675", "Second-Pass-123"}, Anonymous());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kConflict);
  EXPECT_EQ(again.error().field, "token");
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM users"), 2);
  EXPECT_TRUE(accounts_->Login("new@example.com", "First-Pass-123", Anonymous()).ok());
}

TEST_P(AccountsTest, ExpiredRevokedAndUnknownInvitationsAreRefused) {
  auto owner = SignUpOrDie();
  auto expiring = accounts_->Invite(owner.principal, "late@example.com", Role::kMember, ActorOf(owner.principal));
  ASSERT_TRUE(expiring.ok());
  auto revoked = accounts_->Invite(owner.principal, "gone@example.com", Role::kMember, ActorOf(owner.principal));
  ASSERT_TRUE(revoked.ok());
  ASSERT_TRUE(
      accounts_->RevokeInvitation(owner.principal.tenant_id, revoked->invitation.id.str(), ActorOf(owner.principal))
          .ok());
  auto refused = accounts_->AcceptInvitation({revoked->token, "Gone", "+14155552676", "Revoked-Pass-1"}, Anonymous());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);

  clock_.Advance(72h);
  auto status = accounts_->GetInvitation(owner.principal.tenant_id, expiring->invitation.id.str());
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->status, "expired");
  auto late = accounts_->AcceptInvitation({expiring->token, "Late", "+14155552677", "Expired-Pass-1"}, Anonymous());
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::kConflict);
  EXPECT_EQ(late.error().field, "token");

  auto unknown = accounts_->AcceptInvitation({"no-such-token", "X", "+14155552678", "Unknown-Pass-1"}, Anonymous());
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(unknown.error().field, "token");
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM users"), 1);
}

TEST_P(AccountsTest, InvitationRulesOnRoleAndExistingAccounts) {
  auto owner = SignUpOrDie();
  auto admin = InviteAndAccept(owner.principal, "admin@example.com", Role::kAdmin);
  auto above = accounts_->Invite(admin.principal, "boss@example.com", Role::kOwner, ActorOf(admin.principal));
  ASSERT_FALSE(above.ok());
  EXPECT_EQ(above.error().code, ErrorCode::kPermissionDenied);
  auto existing = accounts_->Invite(owner.principal, "ADMIN@example.com", Role::kMember, ActorOf(owner.principal));
  ASSERT_FALSE(existing.ok());
  EXPECT_EQ(existing.error().code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(existing.error().field, "email");
  auto bad_email = accounts_->Invite(owner.principal, "nope", Role::kMember, ActorOf(owner.principal));
  ASSERT_FALSE(bad_email.ok());
  EXPECT_EQ(bad_email.error().field, "email");
}

// ---- audit -----------------------------------------------------------------

TEST_P(AccountsTest, EveryStateChangeWritesAnAuditRow) {
  auto owner = SignUpOrDie();  // tenant.sign_up + session.create
  const auto& me = owner.principal;
  auto actor = ActorOf(me);
  ASSERT_TRUE(accounts_->Login("alice@example.com", kOwnerPassword, Anonymous()).ok());  // session.create
  ASSERT_TRUE(accounts_->RenameTenant(me.tenant_id, "Acme Two", actor).ok());            // tenant.update
  auto key = accounts_->CreateApiKey(me, "ci", Role::kMember, actor);                    // api_key.create
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(accounts_->RevokeApiKey(me.tenant_id, key->key.id.str(), actor).ok());  // api_key.revoke
  auto invitation = accounts_->Invite(me, "m@example.com", Role::kMember, actor);     // invitation.create
  ASSERT_TRUE(invitation.ok());
  auto member = accounts_->AcceptInvitation({invitation->token, "M", "+14155552679", "Member-Pass-11"},
                                            Anonymous());  // invitation.accept
  ASSERT_TRUE(member.ok());
  auto revoked = accounts_->Invite(me, "r@example.com", Role::kMember, actor);  // invitation.create
  ASSERT_TRUE(revoked.ok());
  ASSERT_TRUE(accounts_->RevokeInvitation(me.tenant_id, revoked->invitation.id.str(), actor).ok());   // .revoke
  ASSERT_TRUE(accounts_->UpdateUser(me, member->principal.id, {.role = Role::kViewer}, actor).ok());  // user.update
  ASSERT_TRUE(accounts_->RemoveUser(me, member->principal.id, actor).ok());                           // user.remove
  auto session = accounts_->AuthenticateSession(owner.token);
  ASSERT_TRUE(session.ok());
  ASSERT_TRUE(accounts_->Logout(*session, actor).ok());  // session.revoke
  ASSERT_TRUE(accounts_->CreateOperator("ops@clozit.tech", "Ops", "Operator-Pass-9", Anonymous()).ok());
  ASSERT_TRUE(accounts_->OperatorLogin("ops@clozit.tech", "Operator-Pass-9", Anonymous()).ok());

  EXPECT_EQ(AuditCount("tenant.sign_up"), 1);
  EXPECT_EQ(AuditCount("session.create"), 2);
  EXPECT_EQ(AuditCount("tenant.update"), 1);
  EXPECT_EQ(AuditCount("api_key.create"), 1);
  EXPECT_EQ(AuditCount("api_key.revoke"), 1);
  EXPECT_EQ(AuditCount("invitation.create"), 2);
  EXPECT_EQ(AuditCount("invitation.accept"), 1);
  EXPECT_EQ(AuditCount("invitation.revoke"), 1);
  EXPECT_EQ(AuditCount("user.update"), 1);
  EXPECT_EQ(AuditCount("user.remove"), 1);
  EXPECT_EQ(AuditCount("session.revoke"), 1);
  EXPECT_EQ(AuditCount("operator.create"), 1);
  EXPECT_EQ(AuditCount("operator_session.create"), 1);

  // Entries name who acted, on what, from where; tenant entries are scoped to the tenant.
  auto rows = db_->Query(
      "SELECT actor_kind, actor_id, tenant_id, target_id, ip, request_id FROM audit_log WHERE "
      "action = 'api_key.create'");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].Text(0), "user");
  EXPECT_EQ((*rows)[0].Text(1), me.id);
  EXPECT_EQ((*rows)[0].Text(2), me.tenant_id.str());
  EXPECT_EQ((*rows)[0].Text(3), key->key.id.str());
  EXPECT_EQ((*rows)[0].Text(4), "192.0.2.10");
  EXPECT_EQ((*rows)[0].Text(5), "req_test");
  // Operator entries are platform-level.
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'operator_session.create' AND tenant_id IS NULL"), 1);

  auto page = audit_.List(*db_, me.tenant_id.str(), {.limit = 3});
  ASSERT_TRUE(page.ok()) << page.error().message;
  EXPECT_EQ(page->items.size(), 3u);
  EXPECT_FALSE(page->next_cursor.empty());
}

TEST_P(AccountsTest, RefusedChangesWriteNoAuditRow) {
  auto owner = SignUpOrDie();
  int64_t before = Scalar("SELECT COUNT(*) FROM audit_log");
  const auto& me = owner.principal;
  EXPECT_FALSE(accounts_->UpdateUser(me, me.id, {.role = Role::kViewer}, ActorOf(me)).ok());
  EXPECT_FALSE(accounts_->RemoveUser(me, me.id, ActorOf(me)).ok());
  EXPECT_FALSE(accounts_->CreateApiKey(me, "", Role::kMember, ActorOf(me)).ok());
  EXPECT_FALSE(accounts_->RenameTenant(me.tenant_id, "  ", ActorOf(me)).ok());
  EXPECT_EQ(Scalar("SELECT COUNT(*) FROM audit_log"), before);
}

// ---- listing ---------------------------------------------------------------

TEST_P(AccountsTest, ListsPageByCursorNewestFirst) {
  auto owner = SignUpOrDie();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(1ms);  // ids are time-ordered
    auto key =
        accounts_->CreateApiKey(owner.principal, "k" + std::to_string(i), Role::kViewer, ActorOf(owner.principal));
    ASSERT_TRUE(key.ok());
    ids.push_back(key->key.id.str());
  }
  auto first = accounts_->ListApiKeys(owner.principal.tenant_id, {.limit = 2});
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_EQ(first->items.size(), 2u);
  EXPECT_EQ(first->items[0].id.str(), ids[4]);
  EXPECT_EQ(first->items[1].id.str(), ids[3]);
  ASSERT_EQ(first->next_cursor, ids[3]);
  auto second = accounts_->ListApiKeys(owner.principal.tenant_id, {.limit = 2, .cursor = first->next_cursor});
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->items.size(), 2u);
  EXPECT_EQ(second->items[0].id.str(), ids[2]);
  auto last = accounts_->ListApiKeys(owner.principal.tenant_id, {.limit = 2, .cursor = second->next_cursor});
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->items.size(), 1u);
  EXPECT_EQ(last->items[0].id.str(), ids[0]);
  EXPECT_TRUE(last->next_cursor.empty());
}

}  // namespace
}  // namespace clozit::accounts
