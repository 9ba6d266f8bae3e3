#include "storage/migrations.hpp"

#include <map>
#include <utility>

#include "common/encoding.hpp"

namespace clozit::storage {
namespace {

// Any constant works as long as nothing else uses it: "clozit" in ASCII.
constexpr int64_t kMigrationLockKey = 0x636c'6f7a'6974;

constexpr std::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "module TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, checksum TEXT NOT NULL, "
    "applied_at BIGINT NOT NULL, PRIMARY KEY (module, version))";

struct AppliedMigration {
  std::string name;
  std::string checksum;
};
using AppliedMigrations = std::map<std::pair<std::string, int>, AppliedMigration>;

const std::string& SqlFor(const Migration& migration, Dialect dialect) {
  return dialect == Dialect::kSqlite ? migration.sqlite_sql : migration.postgres_sql;
}

std::string Label(const Migration& migration) { return migration.module + "/" + migration.name; }

bool IsBlank(std::string_view text) { return text.find_first_not_of(" \t\r\n") == std::string_view::npos; }

// The registry is generated at build time; a malformed one is a build bug.
Result<void> Validate(const std::vector<Migration>& migrations, Dialect dialect) {
  std::map<std::string, int> last_version;
  for (const Migration& migration : migrations) {
    if (migration.module.empty() || migration.version < 1) {
      return Error::Internal("migration " + Label(migration) + " needs a module and a version from 1");
    }
    int& last = last_version[migration.module];
    if (migration.version <= last) {
      return Error::Internal("migration " + Label(migration) + " is out of order: versions must ascend per module");
    }
    last = migration.version;
    if (IsBlank(SqlFor(migration, dialect))) {
      return Error::Internal("migration " + Label(migration) + " has no SQL for this database");
    }
  }
  return Ok();
}

// On PostgreSQL, serialises migrators across processes until the transaction
// ends. SQLite needs nothing: BEGIN IMMEDIATE already admits one writer.
Result<void> LockMigrations(Tx& tx) {
  if (tx.dialect() != Dialect::kPostgres) return Ok();
  // Runs in Database::WriteAlone, at READ COMMITTED: a SERIALIZABLE snapshot
  // would be taken by the lock query itself, before the wait, and a migration
  // that the lock holder commits would stay invisible.
  CLOZIT_TRY(tx.Query("SELECT pg_advisory_xact_lock($1)", {kMigrationLockKey}));
  return Ok();
}

Result<bool> TableExists(Tx& tx) {
  std::string_view sql = tx.dialect() == Dialect::kSqlite
                             ? "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
                             : "SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN 0 ELSE 1 END";
  CLOZIT_ASSIGN_OR_RETURN(Row row, tx.QueryOne(sql));
  return row.Int(0) != 0;
}

Result<AppliedMigrations> LoadApplied(Database& db) {
  AppliedMigrations applied;
  CLOZIT_TRY(db.Read([&](Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(bool exists, TableExists(tx));
    if (!exists) return Ok();
    CLOZIT_ASSIGN_OR_RETURN(Rows rows, tx.Query("SELECT module, version, name, checksum FROM schema_migrations"));
    for (const Row& row : rows) {
      applied[{row.Text(0), static_cast<int>(row.Int(1))}] = {row.Text(2), row.Text(3)};
    }
    return Ok();
  }));
  return applied;
}

Result<void> CheckUnchanged(const Migration& migration, const std::string& applied_checksum, Dialect dialect) {
  if (Sha256Hex(SqlFor(migration, dialect)) == applied_checksum) return Ok();
  return Error::Internal("migration " + Label(migration) +
                         " was changed after it was applied (checksum mismatch); restore it and add a new migration");
}

Result<void> CheckAllUnchanged(const std::vector<Migration>& migrations, const AppliedMigrations& applied,
                               Dialect dialect) {
  for (const Migration& migration : migrations) {
    auto found = applied.find({migration.module, migration.version});
    if (found != applied.end()) CLOZIT_TRY(CheckUnchanged(migration, found->second.checksum, dialect));
  }
  return Ok();
}

}  // namespace

Result<std::vector<std::string>> Migrate(Database& db, const Clock& clock, const std::vector<Migration>& migrations) {
  const Dialect dialect = db.dialect();
  CLOZIT_TRY(Validate(migrations, dialect));
  CLOZIT_TRY(db.WriteAlone([](Tx& tx) -> Result<void> {
    CLOZIT_TRY(LockMigrations(tx));
    CLOZIT_TRY(tx.Exec(kCreateTable));
    return Ok();
  }));
  CLOZIT_ASSIGN_OR_RETURN(AppliedMigrations applied, LoadApplied(db));
  // Refuse before applying anything: a changed history means this binary and
  // the database disagree about the schema.
  CLOZIT_TRY(CheckAllUnchanged(migrations, applied, dialect));

  std::vector<std::string> names;
  for (const Migration& migration : migrations) {
    if (applied.contains({migration.module, migration.version})) continue;
    const std::string& sql = SqlFor(migration, dialect);
    const std::string checksum = Sha256Hex(sql);
    bool ran = false;
    auto result = db.WriteAlone([&](Tx& tx) -> Result<void> {
      ran = false;  // the work may be re-run after a serialization failure
      CLOZIT_TRY(LockMigrations(tx));
      // Another process may have applied it since LoadApplied.
      CLOZIT_ASSIGN_OR_RETURN(Rows existing,
                              tx.Query("SELECT checksum FROM schema_migrations WHERE module = $1 AND version = $2",
                                       {migration.module, int64_t{migration.version}}));
      if (!existing.empty()) return CheckUnchanged(migration, existing.front().Text(0), dialect);
      CLOZIT_TRY(tx.ExecScript(sql));
      CLOZIT_TRY(tx.Exec(
          "INSERT INTO schema_migrations (module, version, name, checksum, applied_at) VALUES ($1, $2, $3, $4, $5)",
          {migration.module, int64_t{migration.version}, migration.name, checksum, ToUnixMillis(clock.Now())}));
      ran = true;
      return Ok();
    });
    if (!result) {
      return Error::Make(result.error().code, "migration " + Label(migration) + " failed: " + result.error().message);
    }
    if (ran) names.push_back(migration.name);
  }
  return names;
}

Result<std::vector<MigrationStatus>> Status(Database& db, const std::vector<Migration>& migrations) {
  CLOZIT_TRY(Validate(migrations, db.dialect()));
  CLOZIT_ASSIGN_OR_RETURN(AppliedMigrations applied, LoadApplied(db));
  CLOZIT_TRY(CheckAllUnchanged(migrations, applied, db.dialect()));
  std::vector<MigrationStatus> statuses;
  statuses.reserve(migrations.size());
  for (const Migration& migration : migrations) {
    statuses.push_back(
        {migration.module, migration.version, migration.name, applied.contains({migration.module, migration.version})});
  }
  return statuses;
}

Result<bool> IsCurrent(Database& db, const std::vector<Migration>& migrations) {
  CLOZIT_ASSIGN_OR_RETURN(auto statuses, Status(db, migrations));
  for (const MigrationStatus& status : statuses) {
    if (!status.applied) return false;
  }
  return true;
}

}  // namespace clozit::storage
