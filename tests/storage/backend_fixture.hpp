// Runs each storage test on SQLite and on PostgreSQL, each time against a
// fresh, empty database that is deleted afterwards.
//
// SQLite gets a file in a new temporary directory (nested, so Open must create
// the parents). PostgreSQL gets `CREATE DATABASE` on the server named by
// CLOZIT_TEST_PG_URL (scripts/with-postgres.sh starts one and sets it); when
// the variable is unset the PostgreSQL variants are skipped.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "storage/database.hpp"

namespace clozit::storage::test {

inline std::string RandomSuffix() {
  std::random_device device;
  std::ostringstream out;
  out << std::hex << device() << device();
  return out.str();
}

/// `url` with its database name replaced by `database`.
inline std::string WithDatabase(const std::string& url, const std::string& database) {
  size_t authority = url.find("://");
  authority = authority == std::string::npos ? 0 : authority + 3;
  size_t path = std::min(url.find('/', authority), url.find('?', authority));
  size_t query = url.find('?', authority);
  std::string rest = query == std::string::npos ? "" : url.substr(query);
  return url.substr(0, path) + "/" + database + rest;
}

/// Runs one statement outside any transaction (CREATE DATABASE refuses one);
/// returns "" or the server's error.
inline std::string AdminExec(const std::string& url, const std::string& sql) {
  PGconn* connection = PQconnectdb(url.c_str());
  std::string error;
  if (PQstatus(connection) != CONNECTION_OK) {
    error = PQerrorMessage(connection);
  } else {
    PGresult* result = PQexec(connection, sql.c_str());
    ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) error = PQresultErrorMessage(result);
    PQclear(result);
  }
  PQfinish(connection);
  return error;
}

inline std::string BackendName(const ::testing::TestParamInfo<Dialect>& info) {
  return info.param == Dialect::kSqlite ? "Sqlite" : "Postgres";
}

class BackendTest : public ::testing::TestWithParam<Dialect> {
 protected:
  void SetUp() override {
    if (GetParam() == Dialect::kSqlite) {
      directory_ = std::filesystem::path(::testing::TempDir()) / ("clozit_storage_" + RandomSuffix());
      url_ = "sqlite:" + (directory_ / "nested" / "clozit.db").string();
    } else {
      const char* server = std::getenv("CLOZIT_TEST_PG_URL");
      if (server == nullptr || *server == '\0') {
        GTEST_SKIP() << "CLOZIT_TEST_PG_URL is not set; run under scripts/with-postgres.sh for PostgreSQL";
      }
      server_url_ = server;
      database_name_ = "clozit_t_" + RandomSuffix();
      std::string error = AdminExec(server_url_, "CREATE DATABASE " + database_name_);
      ASSERT_EQ(error, "") << "cannot create the test database";
      url_ = WithDatabase(server_url_, database_name_);
    }
    db_ = OpenDatabase();
    ASSERT_NE(db_, nullptr);
  }

  void TearDown() override {
    db_.reset();
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
    if (!database_name_.empty()) {
      EXPECT_EQ(AdminExec(server_url_, "DROP DATABASE IF EXISTS " + database_name_ + " WITH (FORCE)"), "");
    }
  }

  OpenOptions Options() const {
    OpenOptions options;
    options.url = url_;
    return options;
  }

  std::unique_ptr<Database> OpenDatabase() { return OpenDatabase(Options()); }
  std::unique_ptr<Database> OpenDatabase(const OpenOptions& options) {
    auto opened = Open(options);
    EXPECT_TRUE(opened.ok()) << (opened.ok() ? "" : opened.error().message);
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  /// Runs `sql` (one or more statements) in its own write transaction.
  void Script(const std::string& sql) {
    auto result = db_->Write([&](Tx& tx) { return tx.ExecScript(sql); });
    ASSERT_TRUE(result.ok()) << result.error().message;
  }

  int64_t Count(const std::string& table) {
    auto rows = db_->Query("SELECT count(*) FROM " + table);
    EXPECT_TRUE(rows.ok()) << rows.error().message;
    return rows.ok() && !rows->empty() ? rows->front().Int(0) : -1;
  }

  bool postgres() const { return GetParam() == Dialect::kPostgres; }

  std::string url_;
  std::string server_url_;           // PostgreSQL only: the server's admin URL
  std::string database_name_;        // PostgreSQL only
  std::filesystem::path directory_;  // SQLite only
  std::unique_ptr<Database> db_;
};

#define CLOZIT_INSTANTIATE_BACKENDS(suite)                                                           \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::Values(Dialect::kSqlite, Dialect::kPostgres), \
                           ::clozit::storage::test::BackendName)

}  // namespace clozit::storage::test
