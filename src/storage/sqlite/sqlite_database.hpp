// The SQLite backend of storage::Database.
//
// One writer thread owns the only read-write connection and commits queued
// Write calls in batches (BEGIN IMMEDIATE, one SAVEPOINT per call, one
// COMMIT), which amortises the fsync and keeps SQLite's single-writer rule
// inside the process. Reads use a pool of read-only connections and, thanks
// to WAL, run beside the writer. The returned Database is thread-safe.
#pragma once

#include <memory>
#include <string>

#include "storage/database.hpp"

namespace clozit::storage::sqlite {

/// Opens (creating if needed, with its parent directories) the database file at `path`.
Result<std::unique_ptr<Database>> OpenSqliteDatabase(const std::string& path, const OpenOptions& options);

}  // namespace clozit::storage::sqlite
