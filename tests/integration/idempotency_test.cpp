// Idempotency-Key on POST: a retry replays the first response instead of
// acting twice; the same key with a different request is refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "integration/harness.hpp"

namespace clozit::itest {
namespace {

class IdempotencyTest : public ServerTest {
 protected:
  static http::Headers Key(const std::string& key) {
    http::Headers headers;
    headers.Set("Idempotency-Key", key);
    return headers;
  }

  int CountKeysNamed(TestClient& client, const Credentials& by, const std::string& name) {
    int count = 0;
    for (const auto& item : ListAll(client, "/v1/api-keys", by)) count += item.value("name", "") == name;
    return count;
  }
};

TEST_P(IdempotencyTest, SameKeyAndBodyReplaysTheFirstResponseAndActsOnce) {
  ASSERT_NE(StartServer(), nullptr);
  auto client = Client();
  Account owner = SignUp(*client, "idem");
  const json body = {{"name", "deploy-bot"}, {"role", "member"}};

  auto first = client->Post("/v1/api-keys", body, &owner.cookie, Key("create-deploy-bot-1"));
  ASSERT_EQ(first.status, 201) << first;
  EXPECT_EQ(first.Header("Idempotent-Replayed"), "");

  for (int retry = 0; retry < 3; ++retry) {
    auto again = client->Post("/v1/api-keys", body, &owner.cookie, Key("create-deploy-bot-1"));
    ASSERT_EQ(again.status, 201) << again;
    EXPECT_EQ(again.Header("Idempotent-Replayed"), "true");
    EXPECT_EQ(again.Header("Content-Type"), first.Header("Content-Type"));
    EXPECT_NE(again.Header("X-Request-Id"), first.Header("X-Request-Id"));
    // The same key, but its one-time secret is not stored, so a replay cannot show it again.
    json expected = first.Json();
    expected["secret"] = nullptr;
    expected["secrets_redacted"] = true;
    EXPECT_EQ(again.Json(), expected);
  }
  const std::string secret = first.Json().value("secret", "");
  ASSERT_FALSE(secret.empty());
  auto stored = database().Direct().Query("SELECT body FROM idempotency_keys");
  ASSERT_TRUE(stored.ok()) << stored.error().message;
  ASSERT_FALSE(stored->empty());
  for (const auto& row : *stored) {
    EXPECT_EQ(row.Text(0).find(secret.substr(first.Json().value("prefix", "").size() + 1)), std::string::npos)
        << "the idempotency record stores the API key secret";
  }
  EXPECT_EQ(CountKeysNamed(*client, owner.cookie, "deploy-bot"), 1);

  // A fresh connection and a restarted server still replay: the record is in the database.
  servers_.back()->Stop();
  ASSERT_NE(StartServer(), nullptr);
  client = Client();
  auto after_restart = client->Post("/v1/api-keys", body, &owner.cookie, Key("create-deploy-bot-1"));
  ASSERT_EQ(after_restart.status, 201) << after_restart;
  EXPECT_EQ(after_restart.Header("Idempotent-Replayed"), "true");
  EXPECT_EQ(after_restart.Json().value("id", "a"), first.Json().value("id", "b"));
  EXPECT_EQ(CountKeysNamed(*client, owner.cookie, "deploy-bot"), 1);

  // A different key is a different request.
  auto other = client->Post("/v1/api-keys", body, &owner.cookie, Key("create-deploy-bot-2"));
  ASSERT_EQ(other.status, 201) << other;
  EXPECT_EQ(other.Header("Idempotent-Replayed"), "");
  EXPECT_NE(other.Json().value("id", ""), first.Json().value("id", ""));
  EXPECT_EQ(CountKeysNamed(*client, owner.cookie, "deploy-bot"), 2);

  // Keys are scoped to the caller: another principal using the same key string acts anew.
  json admin_key = CreateApiKey(*client, owner.cookie, "admin-key", "admin");
  const Credentials bearer = Credentials::Bearer(admin_key.value("secret", ""));
  auto by_bearer = client->Post("/v1/api-keys", body, &bearer, Key("create-deploy-bot-1"));
  ASSERT_EQ(by_bearer.status, 201) << by_bearer;
  EXPECT_EQ(by_bearer.Header("Idempotent-Replayed"), "");
  EXPECT_NE(by_bearer.Json().value("id", ""), first.Json().value("id", ""));
  EXPECT_EQ(CountKeysNamed(*client, owner.cookie, "deploy-bot"), 3);
}

TEST_P(IdempotencyTest, SameKeyWithDifferentBodyIs422) {
  ASSERT_NE(StartServer(), nullptr);
  auto client = Client();
  Account owner = SignUp(*client, "idem-mismatch");

  auto first = client->Post("/v1/api-keys", {{"name", "alpha"}}, &owner.cookie, Key("k-mismatch"));
  ASSERT_EQ(first.status, 201) << first;
  auto mismatch = client->Post("/v1/api-keys", {{"name", "beta"}}, &owner.cookie, Key("k-mismatch"));
  ExpectProblem(mismatch, 422, "idempotency_key_reused", "Idempotency-Key");
  EXPECT_EQ(mismatch.Header("Idempotent-Replayed"), "");
  // Same body on another route is a different request too.
  auto other_route = client->Post("/v1/invitations", {{"name", "alpha"}}, &owner.cookie, Key("k-mismatch"));
  ExpectProblem(other_route, 422, "idempotency_key_reused", "Idempotency-Key");
  EXPECT_EQ(CountKeysNamed(*client, owner.cookie, "alpha"), 1);
  EXPECT_EQ(CountKeysNamed(*client, owner.cookie, "beta"), 0);

  // Malformed keys are refused before anything happens.
  ExpectProblem(client->Post("/v1/api-keys", {{"name", "gamma"}}, &owner.cookie, Key(std::string(256, 'k'))), 400,
                "invalid_argument", "Idempotency-Key");
  ExpectProblem(client->Post("/v1/api-keys", {{"name", "gamma"}}, &owner.cookie, Key("has space")), 400,
                "invalid_argument", "Idempotency-Key");
  EXPECT_EQ(CountKeysNamed(*client, owner.cookie, "gamma"), 0);

  // A failed request is replayed as the same failure (it was a final answer), not re-run.
  auto invalid = client->Post("/v1/api-keys", {{"name", ""}}, &owner.cookie, Key("k-invalid"));
  ExpectProblem(invalid, 400, "invalid_argument", "name");
  auto invalid_again = client->Post("/v1/api-keys", {{"name", ""}}, &owner.cookie, Key("k-invalid"));
  EXPECT_EQ(invalid_again.status, 400);
  EXPECT_EQ(invalid_again.Header("Idempotent-Replayed"), "true");
}

CLOZIT_INSTANTIATE_BACKENDS(IdempotencyTest);

}  // namespace
}  // namespace clozit::itest
