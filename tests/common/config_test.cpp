#include "common/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include <unistd.h>

namespace clozit {
namespace {

std::string WriteTemp(const std::string& text) {
  static int counter = 0;
  std::string path =
      testing::TempDir() + "/clozit_config_" + std::to_string(::getpid()) + "_" + std::to_string(++counter) + ".toml";
  std::ofstream(path) << text;
  return path;
}

TEST(Config, DefaultsWithoutFile) {
  auto config = LoadConfig("", {});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server.listen_address, "127.0.0.1");
  EXPECT_EQ(config->database.url, "sqlite:var/clozit.db");
}

TEST(Config, FileThenEnvironmentOverride) {
  auto path = WriteTemp("[server]\nport = 9001\n[log]\nlevel = \"debug\"\n");
  auto config = LoadConfig(path, {{"CLOZIT_SERVER__PORT", "9002"}, {"CLOZIT_LOG__ACCESS_LOG", "false"}});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server.port, 9002);
  EXPECT_EQ(config->log.level, "debug");
  EXPECT_FALSE(config->log.access_log);
}

TEST(Config, BillingSection) {
  auto defaults = LoadConfig("", {});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->billing.number_fee_grace_days, 7);
  EXPECT_EQ(defaults->billing.jobs_interval_seconds, 60);
  auto path = WriteTemp("[billing]\nnumber_fee_grace_days = 10\njobs_interval_seconds = 30\n");
  auto config = LoadConfig(path, {{"CLOZIT_BILLING__JOBS_INTERVAL_SECONDS", "15"}});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->billing.number_fee_grace_days, 10);
  EXPECT_EQ(config->billing.jobs_interval_seconds, 15);
  auto zero = LoadConfig(WriteTemp("[billing]\njobs_interval_seconds = 0\n"), {});
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().field, "billing.jobs_interval_seconds");
}

TEST(Config, NamesTheBadKey) {
  struct Case {
    std::string toml;
    Environment env;
    std::string field;
  };
  std::vector<Case> cases = {
      {"[server]\nprot = 1\n", {}, "server.prot"},
      {"[server]\nport = \"x\"\n", {}, "server.port"},
      {"[server]\nport = 70000\n", {}, "server.port"},
      {"", {{"CLOZIT_SERVER__PORT", "eighty"}}, "server.port"},
      {"", {{"CLOZIT_SERVER__NOPE", "1"}}, "CLOZIT_SERVER__NOPE"},
      {"[log]\nlevel = \"loud\"\n", {}, "log.level"},
      {"[database]\nurl = \"mysql://x\"\n", {}, "database.url"},
      {"[server]\ntls_cert_file = \"a.pem\"\n", {}, "server.tls_key_file"},
  };
  for (const auto& c : cases) {
    auto config = LoadConfig(WriteTemp(c.toml), c.env);
    ASSERT_FALSE(config.ok()) << c.toml;
    EXPECT_EQ(config.error().field, c.field) << config.error().message;
  }
}

TEST(Config, NestedBillingStripeSectionFromFileAndEnvironment) {
  auto secret_path = WriteTemp("sk_test_from_file\n");
  auto path = WriteTemp(
      "[billing]\ncredit_packs = \"starter:100:1000:USD\"\n[billing.stripe]\napi_base = "
      "\"http://127.0.0.1:9\"\nsecret_key_file = \"" +
      secret_path + "\"\ntimestamp_tolerance_seconds = 60\n");
  auto config = LoadConfig(path, {{"CLOZIT_BILLING__STRIPE__WEBHOOK_SECRET", "whsec_env"}});
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->billing.credit_packs, "starter:100:1000:USD");
  EXPECT_EQ(config->billing.stripe.api_base, "http://127.0.0.1:9");
  EXPECT_EQ(config->billing.stripe.secret_key, "sk_test_from_file");
  EXPECT_EQ(config->billing.stripe.webhook_secret, "whsec_env");
  EXPECT_EQ(config->billing.stripe.timestamp_tolerance_seconds, 60);
  EXPECT_TRUE(config->billing.stripe.configured());

  // Secrets stay out of the file; a key without its webhook secret is refused; unknown nested keys are named.
  auto in_file = LoadConfig(WriteTemp("[billing.stripe]\nsecret_key = \"sk_live_x\"\n"), {});
  ASSERT_FALSE(in_file.ok());
  EXPECT_EQ(in_file.error().field, "billing.stripe.secret_key");
  EXPECT_EQ(in_file.error().message.find("sk_live_x"), std::string::npos);
  auto no_webhook = LoadConfig("", {{"CLOZIT_BILLING__STRIPE__SECRET_KEY", "sk_test_x"}});
  ASSERT_FALSE(no_webhook.ok());
  EXPECT_EQ(no_webhook.error().field, "billing.stripe.webhook_secret");
  auto unknown = LoadConfig(WriteTemp("[billing.stripe]\nsecret = 1\n"), {});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().field, "billing.stripe.secret");
}

TEST(Config, SecretsOnlyFromEnvironmentOrFile) {
  auto in_file = LoadConfig(WriteTemp("[database]\npassword = \"hunter2\"\n"), {});
  ASSERT_FALSE(in_file.ok());
  EXPECT_EQ(in_file.error().field, "database.password");
  EXPECT_EQ(in_file.error().message.find("hunter2"), std::string::npos);

  auto secret_path = WriteTemp("s3cret\n");
  auto from_file = LoadConfig(WriteTemp("[database]\npassword_file = \"" + secret_path + "\"\n"), {});
  ASSERT_TRUE(from_file.ok()) << from_file.error().message;
  EXPECT_EQ(from_file->database.password, "s3cret");

  auto from_env = LoadConfig("", {{"CLOZIT_DATABASE__PASSWORD", "pw"}});
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->database.password, "pw");
}

TEST(Config, ReportsSyntaxErrors) {
  auto config = LoadConfig(WriteTemp("[server\nport = 1\n"), {});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace clozit
