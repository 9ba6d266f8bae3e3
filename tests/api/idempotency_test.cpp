// IdempotencyStore on its own: what counts as "the same request" for a key.
#include "api/idempotency.hpp"

#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "common/encoding.hpp"
#include "storage/database.hpp"
#include "storage/migrations.hpp"

namespace clozit::api {
namespace {

class IdempotencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device device;
    directory_ = std::filesystem::path(::testing::TempDir()) /
                 ("clozit_idempotency_" + std::to_string(device()) + "_" + std::to_string(device()));
    std::filesystem::create_directories(directory_);
    storage::OpenOptions options;
    options.url = "sqlite:" + (directory_ / "clozit.db").string();
    auto opened = storage::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    db_ = std::move(opened).value();
    ASSERT_TRUE(storage::Migrate(*db_, clock_).ok());
    store_ = std::make_unique<IdempotencyStore>(*db_, clock_);
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
    std::filesystem::remove_all(directory_);
  }

  static http::Request Post(std::vector<std::pair<std::string, std::string>> query = {}, std::string body = {}) {
    http::Request request;
    request.method = "POST";
    request.path = "/v1/contacts/imports";
    request.query = std::move(query);
    request.body = std::move(body);
    request.headers.Set("Idempotency-Key", "import-1");
    return request;
  }

  std::string Spool(const std::string& name, const std::string& content) {
    auto path = directory_ / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  // Runs the request under the key; counts how often the handler really ran.
  http::Response Run(const http::Request& request) {
    return store_->Run("tenant:usr_1", request, [&] {
      ++runs_;
      return http::Response::Json(202, R"({"id":"job_)" + std::to_string(runs_) + R"("})");
    });
  }

  std::filesystem::path directory_;
  ManualClock clock_{FromUnixMillis(1'800'000'000'000)};
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<IdempotencyStore> store_;
  int runs_ = 0;
};

// An import's consent and column mapping travel in the query: a retry that changed them is another request.
TEST_F(IdempotencyTest, TheQueryIsPartOfTheRequest) {
  auto first = Run(Post({{"consent_type", "express_written"}, {"list_id", "lst_1"}}));
  ASSERT_EQ(first.status, 202);
  auto replay = Run(Post({{"consent_type", "express_written"}, {"list_id", "lst_1"}}));
  EXPECT_EQ(replay.status, 202);
  EXPECT_EQ(replay.body, first.body);
  EXPECT_EQ(replay.headers.GetOr("Idempotent-Replayed", ""), "true");

  EXPECT_EQ(Run(Post({{"consent_type", "express_written"}, {"list_id", "lst_2"}})).status, 422);
  EXPECT_EQ(Run(Post()).status, 422);
  // Length-prefixed: moving a character between a name and a value is still a different query.
  EXPECT_EQ(Run(Post({{"consent_type", "express_written"}, {"list_id", "lst_1"}, {"a=", "b"}})).status, 422);
  EXPECT_EQ(runs_, 1);
}

// A streamed upload's body is in its spool file; two different files under one key are two requests.
TEST_F(IdempotencyTest, AStreamedBodyIsComparedByItsFile) {
  auto upload = Post({{"file_name", "leads.csv"}});
  upload.body_file = Spool("first.csv", "phone\n+14155552671\n");
  auto first = Run(upload);
  ASSERT_EQ(first.status, 202);

  auto same = Post({{"file_name", "leads.csv"}});
  same.body_file = Spool("retry.csv", "phone\n+14155552671\n");
  auto replay = Run(same);
  EXPECT_EQ(replay.body, first.body);
  EXPECT_EQ(replay.headers.GetOr("Idempotent-Replayed", ""), "true");

  auto other = Post({{"file_name", "leads.csv"}});
  other.body_file = Spool("other.csv", "phone\n+12125550142\n");
  EXPECT_EQ(Run(other).status, 422);
  EXPECT_EQ(runs_, 1);

  auto vanished = Post({{"file_name", "leads.csv"}});
  vanished.body_file = (directory_ / "gone.csv").string();
  EXPECT_EQ(Run(vanished).status, 500);
  EXPECT_EQ(runs_, 1);
}

// Keys claimed before queries and spooled bodies counted were hashed as SHA-256 of "METHOD path\nbody"; a plain
// JSON request still hashes that way, so its retry across an upgrade replays instead of being refused.
TEST_F(IdempotencyTest, APlainRequestKeepsTheDigestStoredBeforeQueriesCounted) {
  ASSERT_TRUE(db_->Write([&](storage::Tx& tx) -> Result<void> {
                   auto inserted = tx.Exec(
                       "INSERT INTO idempotency_keys (scope, key, request_hash, status, content_type, body, "
                       "created_at) VALUES ('tenant:usr_1', 'import-1', $1, 201, 'application/json', "
                       "'{\"id\":\"old\"}', $2)",
                       {Sha256Hex("POST /v1/contacts/imports\n{\"a\":1}"), ToUnixMillis(clock_.Now())});
                   if (!inserted) return inserted.error();
                   return Ok();
                 })
                  .ok());
  auto replay = Run(Post({}, R"({"a":1})"));
  EXPECT_EQ(replay.status, 201);
  EXPECT_EQ(replay.body, R"({"id":"old"})");
  EXPECT_EQ(runs_, 0);
}

}  // namespace
}  // namespace clozit::api
