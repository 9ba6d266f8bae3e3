// The PostgreSQL backend of storage::Database.
//
// A pool of up to pool_size libpq connections; each Write or Read leases one
// for its whole transaction. Writes run SERIALIZABLE, so work written against
// SQLite's one-writer-at-a-time semantics stays correct with many writers and
// nodes; serialization failures and deadlocks re-run the work (up to three
// retries). Reads run REPEATABLE READ READ ONLY: one snapshot for all of work.
// The returned Database is thread-safe.
#pragma once

#include <memory>

#include "storage/database.hpp"

namespace clozit::storage::postgres {

/// Connects once to check the URL and the server; more connections open on demand.
Result<std::unique_ptr<Database>> OpenPostgresDatabase(const OpenOptions& options);

}  // namespace clozit::storage::postgres
