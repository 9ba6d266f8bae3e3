#include "storage/migrations.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

#include "storage/backend_fixture.hpp"

namespace clozit::storage::test {
namespace {

Migration Make(std::string module, int version, std::string name, std::string sql) {
  return {std::move(module), version, std::move(name), sql, sql};
}

std::vector<Migration> TwoModules() {
  return {
      Make("alpha", 1, "0001_tenants", "CREATE TABLE tenants (id TEXT PRIMARY KEY, name TEXT NOT NULL);"),
      // Depends on 0001: a wrong order fails.
      Make("alpha", 2, "0002_seed",
           "-- a comment; with a semicolon\n"
           "INSERT INTO tenants (id, name) VALUES ('t1', 'semi;colon');\n"
           "CREATE INDEX tenants_name ON tenants (name);\n"),
      Make("beta", 1, "0001_users",
           "CREATE TABLE users (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL REFERENCES tenants (id));"),
  };
}

class MigrationsTest : public BackendTest {
 protected:
  ManualClock clock_{FromUnixMillis(1'700'000'000'000)};
};
CLOZIT_INSTANTIATE_BACKENDS(MigrationsTest);

TEST_P(MigrationsTest, AppliesPendingMigrationsInOrderExactlyOnce) {
  auto applied = Migrate(*db_, clock_, TwoModules());
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_EQ(*applied, (std::vector<std::string>{"0001_tenants", "0002_seed", "0001_users"}));
  EXPECT_EQ(Count("tenants"), 1);
  auto semicolon = db_->Query("SELECT name FROM tenants");
  ASSERT_TRUE(semicolon.ok());
  EXPECT_EQ(semicolon->front().Text(0), "semi;colon");

  auto again = Migrate(*db_, clock_, TwoModules());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(Count("tenants"), 1) << "0002 must not run twice";

  auto recorded =
      db_->Query("SELECT module, version, name, applied_at FROM schema_migrations ORDER BY module, version");
  ASSERT_TRUE(recorded.ok()) << recorded.error().message;
  ASSERT_EQ(recorded->size(), 3u);
  EXPECT_EQ((*recorded)[0].Text(0), "alpha");
  EXPECT_EQ((*recorded)[1].Int(1), 2);
  EXPECT_EQ((*recorded)[2].Text(2), "0001_users");
  EXPECT_EQ((*recorded)[2].Int(3), 1'700'000'000'000);
}

TEST_P(MigrationsTest, StatusAndIsCurrentFollowPendingMigrations) {
  auto fresh = Status(*db_, TwoModules());
  ASSERT_TRUE(fresh.ok()) << fresh.error().message;
  ASSERT_EQ(fresh->size(), 3u);
  EXPECT_TRUE(std::none_of(fresh->begin(), fresh->end(), [](const MigrationStatus& s) { return s.applied; }));
  auto current = IsCurrent(*db_, TwoModules());
  ASSERT_TRUE(current.ok()) << current.error().message;
  EXPECT_FALSE(*current);

  auto first_two = TwoModules();
  first_two.pop_back();
  ASSERT_TRUE(Migrate(*db_, clock_, first_two).ok());
  auto partly = Status(*db_, TwoModules());
  ASSERT_TRUE(partly.ok()) << partly.error().message;
  EXPECT_TRUE((*partly)[0].applied);
  EXPECT_TRUE((*partly)[1].applied);
  EXPECT_FALSE((*partly)[2].applied);
  EXPECT_EQ((*partly)[2].module, "beta");
  EXPECT_EQ((*partly)[2].name, "0001_users");
  EXPECT_FALSE(*IsCurrent(*db_, TwoModules()));

  auto rest = Migrate(*db_, clock_, TwoModules());
  ASSERT_TRUE(rest.ok()) << rest.error().message;
  EXPECT_EQ(*rest, (std::vector<std::string>{"0001_users"}));
  EXPECT_TRUE(*IsCurrent(*db_, TwoModules()));
}

TEST_P(MigrationsTest, RefusesAMigrationChangedAfterItWasApplied) {
  ASSERT_TRUE(Migrate(*db_, clock_, TwoModules()).ok());
  auto edited = TwoModules();
  edited[1].sqlite_sql += "\n-- edited";
  edited[1].postgres_sql += "\n-- edited";
  edited.push_back(Make("beta", 2, "0002_more", "CREATE TABLE more (x BIGINT);"));

  auto migrated = Migrate(*db_, clock_, edited);
  ASSERT_FALSE(migrated.ok());
  EXPECT_EQ(migrated.error().code, ErrorCode::kInternal);
  EXPECT_NE(migrated.error().message.find("alpha/0002_seed"), std::string::npos) << migrated.error().message;
  auto status = Status(*db_, edited);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("alpha/0002_seed"), std::string::npos);
  EXPECT_FALSE(IsCurrent(*db_, edited).ok());
  auto tables = db_->Query(postgres() ? "SELECT count(*) FROM pg_tables WHERE tablename = 'more'"
                                      : "SELECT count(*) FROM sqlite_master WHERE name = 'more'");
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ(tables->front().Int(0), 0) << "nothing may run once the history disagrees";
}

TEST_P(MigrationsTest, FailingMigrationRollsBackEntirelyAndStopsTheRun) {
  auto migrations = TwoModules();
  migrations.insert(migrations.begin() + 2, Make("alpha", 3, "0003_broken",
                                                 "CREATE TABLE half (x BIGINT);\n"
                                                 "INSERT INTO no_such_table VALUES (1);\n"));
  auto migrated = Migrate(*db_, clock_, migrations);
  ASSERT_FALSE(migrated.ok());
  EXPECT_NE(migrated.error().message.find("alpha/0003_broken"), std::string::npos) << migrated.error().message;

  auto status = Status(*db_, migrations);
  ASSERT_TRUE(status.ok()) << status.error().message;
  std::vector<bool> applied;
  for (const auto& entry : *status) applied.push_back(entry.applied);
  EXPECT_EQ(applied, (std::vector<bool>{true, true, false, false}));
  auto half = db_->Query(postgres() ? "SELECT count(*) FROM pg_tables WHERE tablename = 'half'"
                                    : "SELECT count(*) FROM sqlite_master WHERE name = 'half'");
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->front().Int(0), 0) << "DDL of the failed migration must roll back with it";
}

TEST_P(MigrationsTest, RunsTheSqlWrittenForThisDialect) {
  Migration split{"gamma", 1, "0001_split", "CREATE TABLE only_sqlite (x INTEGER);",
                  "CREATE TABLE only_postgres (x BIGSERIAL);"};
  ASSERT_TRUE(Migrate(*db_, clock_, {split}).ok());
  auto mine = db_->Query(postgres() ? "SELECT count(*) FROM only_postgres" : "SELECT count(*) FROM only_sqlite");
  EXPECT_TRUE(mine.ok());
  auto theirs = db_->Query(postgres() ? "SELECT count(*) FROM only_sqlite" : "SELECT count(*) FROM only_postgres");
  EXPECT_FALSE(theirs.ok());
}

TEST_P(MigrationsTest, RejectsAMalformedRegistry) {
  auto out_of_order = TwoModules();
  std::swap(out_of_order[0], out_of_order[1]);
  auto result = Migrate(*db_, clock_, out_of_order);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInternal);

  auto blank = TwoModules();
  (postgres() ? blank[2].postgres_sql : blank[2].sqlite_sql) = "  \n";
  EXPECT_FALSE(Migrate(*db_, clock_, blank).ok());
  EXPECT_FALSE(Status(*db_, blank).ok());
  auto status = Status(*db_, TwoModules());
  ASSERT_TRUE(status.ok()) << status.error().message;
  for (const auto& entry : *status) EXPECT_FALSE(entry.applied) << "a bad registry is refused before anything runs";
}

// Stands in for several processes starting at once: each has its own Database.
TEST_P(MigrationsTest, ConcurrentMigratorsApplyEachMigrationOnce) {
  auto migrations = TwoModules();
  for (int version = 2; version <= 6; ++version) {
    std::string table = "beta_" + std::to_string(version);
    migrations.push_back(
        Make("beta", version, "000" + std::to_string(version) + "_" + table, "CREATE TABLE " + table + " (x BIGINT);"));
  }
  constexpr int kMigrators = 4;
  std::mutex mutex;
  std::vector<std::string> all_applied;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int migrator = 0; migrator < kMigrators; ++migrator) {
    threads.emplace_back([&] {
      auto db = Open(Options());
      if (!db.ok()) {
        std::lock_guard lock(mutex);
        errors.push_back(db.error().message);
        return;
      }
      auto applied = Migrate(**db, clock_, migrations);
      std::lock_guard lock(mutex);
      if (applied.ok()) {
        all_applied.insert(all_applied.end(), applied->begin(), applied->end());
      } else {
        errors.push_back(applied.error().message);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(all_applied.size(), migrations.size()) << "each migration is applied by exactly one migrator";
  EXPECT_EQ(std::set<std::string>(all_applied.begin(), all_applied.end()).size(), migrations.size());
  EXPECT_EQ(Count("schema_migrations"), static_cast<int64_t>(migrations.size()));
  EXPECT_EQ(Count("tenants"), 1);
}

// The migrations compiled in from src/<module>/migrations must apply on both backends.
TEST_P(MigrationsTest, EmbeddedMigrationsAreOrderedAndApply) {
  const auto& embedded = AllMigrations();
  std::vector<std::string> module_order;
  for (const Migration& migration : embedded) {
    if (module_order.empty() || module_order.back() != migration.module) module_order.push_back(migration.module);
  }
  std::set<std::string> distinct(module_order.begin(), module_order.end());
  EXPECT_EQ(distinct.size(), module_order.size()) << "each module's migrations must be contiguous";
  // Every tenant-owned table references tenants, so accounts must come first.
  ASSERT_FALSE(module_order.empty());
  EXPECT_EQ(module_order.front(), "accounts");

  auto applied = Migrate(*db_, clock_);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  EXPECT_EQ(applied->size(), embedded.size());
  auto current = IsCurrent(*db_);
  ASSERT_TRUE(current.ok()) << current.error().message;
  EXPECT_TRUE(*current);
  auto again = Migrate(*db_, clock_);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

}  // namespace
}  // namespace clozit::storage::test
