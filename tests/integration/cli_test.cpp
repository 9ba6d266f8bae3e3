// The command line: help for every subcommand, config check, migrate, and
// creating an operator who can then use the admin API.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

using namespace std::chrono_literals;
using testing::HasSubstr;
using testing::Not;

class CliTest : public ServerTest {
 protected:
  std::string WriteConfig(const std::string& name, const std::string& text) {
    std::string path = dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  /// Configuration for one-shot commands: just the database and fast hashing.
  Env CommandEnv(const Env& extra = {}) const {
    Env env = {{"CLOZIT_DATABASE__URL", database_->url()},
               {"CLOZIT_ACCOUNTS__ARGON2_OPSLIMIT", "1"},
               {"CLOZIT_ACCOUNTS__ARGON2_MEMLIMIT_KIB", "8192"}};
    for (const auto& [name, value] : extra) env[name] = value;
    return env;
  }
};

TEST_P(CliTest, HelpForEverySubcommandExitsZero) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--help"}, "serve"},
      {{"serve", "--help"}, "serve"},
      {{"migrate", "--help"}, "--status"},
      {{"config", "check", "--help"}, "check"},
      {{"admin", "create-operator", "--help"}, "--email"},
  };
  for (const auto& [args, expected] : cases) {
    std::string command;
    for (const auto& arg : args) command += arg + " ";
    SCOPED_TRACE("clozit " + command);
    auto result = RunClozit(args, {}, dir(), 10s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_THAT(result.out + result.err, HasSubstr(expected));
  }
  // Naming no or an unknown subcommand is an error.
  EXPECT_NE(RunClozit({}, {}, dir(), 10s).exit_code, 0);
  EXPECT_NE(RunClozit({"frobnicate"}, {}, dir(), 10s).exit_code, 0);
}

TEST_P(CliTest, ConfigCheckNamesTheBadKey) {
  auto bad = WriteConfig("bad.toml", "[server]\nport = 8080\nlisten_adress = \"127.0.0.1\"\n");
  auto result = RunClozit({"--config", bad, "config", "check"}, CommandEnv(), dir(), 10s);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("server.listen_adress"));
  EXPECT_THAT(result.out, Not(HasSubstr("configuration OK")));

  auto wrong_type = WriteConfig("type.toml", "[server]\nport = \"eighty\"\n");
  auto typed = RunClozit({"--config", wrong_type, "config", "check"}, CommandEnv(), dir(), 10s);
  EXPECT_NE(typed.exit_code, 0);
  EXPECT_THAT(typed.err, HasSubstr("server.port"));

  auto secret = WriteConfig("secret.toml", "[database]\npassword = \"hunter2\"\n");
  auto secret_result = RunClozit({"--config", secret, "config", "check"}, CommandEnv(), dir(), 10s);
  EXPECT_NE(secret_result.exit_code, 0);
  EXPECT_THAT(secret_result.err, HasSubstr("database.password"));
  EXPECT_THAT(secret_result.err, Not(HasSubstr("hunter2")));

  // An unknown override in the environment is named too.
  auto env_result = RunClozit({"config", "check"}, CommandEnv({{"CLOZIT_SERVER__PROT", "1"}}), dir(), 10s);
  EXPECT_NE(env_result.exit_code, 0);
  EXPECT_THAT(env_result.err, HasSubstr("CLOZIT_SERVER__PROT"));

  auto good = WriteConfig("good.toml", "[server]\nport = 8080\n[log]\nlevel = \"warn\"\n");
  auto ok = RunClozit({"--config", good, "config", "check"}, CommandEnv(), dir(), 10s);
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("configuration OK"));
}

TEST_P(CliTest, MigrateTwiceAppliesNothingTheSecondTime) {
  auto first = RunClozit({"migrate"}, CommandEnv(), dir(), 30s);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("applied 0001_accounts"));
  EXPECT_THAT(first.out, HasSubstr("schema is current"));
  EXPECT_THAT(first.out, Not(HasSubstr("nothing to apply")));

  auto second = RunClozit({"migrate"}, CommandEnv(), dir(), 30s);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("nothing to apply"));
  EXPECT_THAT(second.out, Not(HasSubstr("applied ")));

  auto status = RunClozit({"migrate", "--status"}, CommandEnv(), dir(), 30s);
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("applied accounts/0001_accounts"));
  EXPECT_THAT(status.out, Not(HasSubstr("pending")));

  // A server on the migrated database has nothing to apply either, and is ready.
  auto* server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_THAT(server->Log(), Not(HasSubstr("applied migration")));
  EXPECT_EQ(Client()->Get("/readyz").status, 200);
}

TEST_P(CliTest, CreatedOperatorCanUseTheAdminApi) {
  const std::string operator_password = "Night-Shift-2048";
  auto weak = RunClozit({"admin", "create-operator", "--email", "ops@example.com", "--name", "Ops"},
                        CommandEnv({{"CLOZIT_OPERATOR_PASSWORD", "short"}}), dir(), 30s);
  EXPECT_NE(weak.exit_code, 0);
  EXPECT_THAT(weak.err, HasSubstr("password"));

  auto created = RunClozit({"admin", "create-operator", "--email", "ops@example.com", "--name", "Olga Ops"},
                           CommandEnv({{"CLOZIT_OPERATOR_PASSWORD", operator_password}}), dir(), 30s);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr("created operator opr_"));
  EXPECT_THAT(created.out + created.err, Not(HasSubstr(operator_password)));
  auto duplicate = RunClozit({"admin", "create-operator", "--email", "OPS@example.com", "--name", "Olga Again"},
                             CommandEnv({{"CLOZIT_OPERATOR_PASSWORD", operator_password}}), dir(), 30s);
  EXPECT_NE(duplicate.exit_code, 0);
  EXPECT_THAT(duplicate.err, HasSubstr("already exists"));

  ASSERT_NE(StartServer(), nullptr);
  auto client = Client();
  Account tenant = SignUp(*client, "customer");

  // Wrong password first, then the right one.
  ExpectProblem(client->Post("/v1/admin/login", {{"email", "ops@example.com"}, {"password", "Wrong-Horse-77"}}), 401,
                "unauthenticated");
  // A tenant user is not an operator.
  ExpectProblem(client->Post("/v1/admin/login", {{"email", tenant.email}, {"password", tenant.password}}), 401,
                "unauthenticated");
  auto login = client->Post("/v1/admin/login", {{"email", "ops@example.com"}, {"password", operator_password}});
  ASSERT_EQ(login.status, 200) << login;
  const std::string line = login.CookieLine("clozit_operator_session");
  EXPECT_THAT(line, HasSubstr("Path=/v1/admin"));
  EXPECT_THAT(line, HasSubstr("HttpOnly"));
  EXPECT_TRUE(login.Cookie("clozit_session").value_or("").empty()) << "an operator login must not set a tenant cookie";
  const Credentials op =
      Credentials::Operator(login.Cookie("clozit_operator_session").value_or(""), login.Json().value("csrf_token", ""));
  EXPECT_THAT(login.Json()["operator"].value("id", ""), testing::StartsWith("opr_"));

  auto tenants = client->Get("/v1/admin/tenants", &op);
  ASSERT_EQ(tenants.status, 200) << tenants;
  bool listed = false;
  const json tenant_list = tenants.Json();
  for (const auto& item : tenant_list["data"]) listed = listed || item.value("id", "") == tenant.tenant_id;
  EXPECT_TRUE(listed) << tenants;
  auto one = client->Get("/v1/admin/tenants/" + tenant.tenant_id, &op);
  ASSERT_EQ(one.status, 200) << one;
  EXPECT_EQ(one.Json().value("name", ""), "customer Ltd");
  ExpectProblem(client->Get("/v1/admin/tenants/ten_01ZZZZZZZZZZZZZZZZZZZZZZZZ", &op), 404, "not_found");
  EXPECT_EQ(client->Get("/v1/admin/audit-log?tenant_id=" + tenant.tenant_id, &op).status, 200);

  // Operator and tenant credentials do not cross over.
  ExpectProblem(client->Get("/v1/me", &op), 401, "unauthenticated");
  ExpectProblem(client->Get("/v1/admin/tenants", &tenant.cookie), 401, "unauthenticated");
  // An operator session in the tenant cookie is not a tenant session either.
  const Credentials smuggled = Credentials::Cookie(op.operator_session, op.csrf);
  ExpectProblem(client->Get("/v1/me", &smuggled), 401, "unauthenticated");

  // Logout needs CSRF, then ends the session.
  const Credentials op_without_csrf = op.WithoutCsrf();
  ExpectProblem(client->Post("/v1/admin/logout", json::object(), &op_without_csrf), 403, "permission_denied",
                "X-CSRF-Token");
  auto logout = client->Post("/v1/admin/logout", json::object(), &op);
  EXPECT_EQ(logout.status, 204) << logout;
  ExpectProblem(client->Get("/v1/admin/tenants", &op), 401, "unauthenticated");
}

CLOZIT_INSTANTIATE_BACKENDS(CliTest);

}  // namespace
}  // namespace clozit::itest
