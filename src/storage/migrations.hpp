// Numbered, forward-only schema migrations, one sequence per module.
//
// Each module ships its SQL files as `src/<module>/migrations/NNNN_name.sql`
// (a `.sqlite.sql` or `.pg.sql` twin overrides for one dialect). The build
// embeds them; the registry below lists them. A migration runs once, in its
// own transaction, and is recorded in `schema_migrations(module, version,
// name, applied_at)`. Editing an applied migration is detected by checksum
// and refused.
#pragma once

#include <string>
#include <vector>

#include "common/clock.hpp"
#include "storage/database.hpp"

namespace clozit::storage {

struct Migration {
  std::string module;  // "accounts"
  int version = 0;     // 1, 2, ...
  std::string name;    // "0001_accounts"
  std::string sqlite_sql;
  std::string postgres_sql;
};

/// Every migration compiled into the binary, in the order they must run
/// (module order is fixed by dependency; versions ascend within a module).
const std::vector<Migration>& AllMigrations();

struct MigrationStatus {
  std::string module;
  int version = 0;
  std::string name;
  bool applied = false;
};

/// Applies every pending migration; returns the names applied.
Result<std::vector<std::string>> Migrate(Database& db, const Clock& clock,
                                         const std::vector<Migration>& migrations = AllMigrations());
/// Which migrations are applied and which pending.
Result<std::vector<MigrationStatus>> Status(Database& db, const std::vector<Migration>& migrations = AllMigrations());
/// True when nothing is pending (for /readyz).
Result<bool> IsCurrent(Database& db, const std::vector<Migration>& migrations = AllMigrations());

}  // namespace clozit::storage
