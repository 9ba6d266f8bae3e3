// storage: the one door to persistent state.
//
// A Database runs SQL on SQLite (embedded default) or PostgreSQL (many
// nodes). SQL is written once, in the subset both accept, with numbered
// parameters $1..$n. Timestamps are BIGINT Unix milliseconds, ids TEXT,
// booleans INTEGER 0/1, money BIGINT micro-credits.
//
// Writes go through Database::Write: the function runs inside a transaction
// and either all of it commits or none. On both backends one writer thread per
// Database runs queued write functions back to back and commits them in one
// batch; one failing function rolls back only itself (a batch in which one
// fails after running statements is run again with a savepoint per function,
// detail/write_queue.hpp). So a Write function may run more than once (also
// after a serialization failure on PostgreSQL) and must not have side effects
// outside the transaction; Tx::AfterCommit runs once, after the commit.
//
// All methods are thread-safe and block the caller: call them from worker
// threads, never from the network event loop. Inside a work function use its
// Tx only: a nested Write or Read on the same Database is refused (it could
// deadlock waiting for what the outer call holds).
//
// Parameters: int64 binds as BIGINT; text binds untyped on PostgreSQL, so
// the column it meets decides its type (as SQLite's affinity does). Where
// nothing decides it, e.g. `$1 IS NULL`, write `CAST($1 AS TEXT)`.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.hpp"

namespace clozit::storage {

enum class Dialect { kSqlite, kPostgres };

/// A bound parameter or a column value. PostgreSQL results arrive as text and
/// are converted on access.
using Value = std::variant<std::nullptr_t, int64_t, std::string>;

class Row {
 public:
  explicit Row(std::vector<Value> values) : values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  bool IsNull(size_t column) const;
  /// The column as an integer; text holding a decimal integer is converted. Null or junk is 0.
  int64_t Int(size_t column) const;
  /// The column as text; integers are rendered in decimal, null is "".
  std::string Text(size_t column) const;
  std::optional<std::string> OptionalText(size_t column) const;
  std::optional<int64_t> OptionalInt(size_t column) const;
  bool Bool(size_t column) const { return Int(column) != 0; }

 private:
  std::vector<Value> values_;
};

using Rows = std::vector<Row>;
using Params = std::vector<Value>;

/// A transaction (or, for Database::Read, a read-only snapshot). Used only by
/// the thread running the work function, and only during that call.
///
/// Once a statement fails the transaction is aborted on both backends, as
/// PostgreSQL does natively: later statements fail, and the Write rolls back
/// even if `work` returns success. So branch on a duplicate with
/// `INSERT ... ON CONFLICT DO NOTHING` (and the changed-row count), not by
/// catching kAlreadyExists and carrying on in the same transaction.
class Tx {
 public:
  virtual ~Tx() = default;
  /// Runs a statement that returns rows (SELECT, or INSERT/UPDATE ... RETURNING).
  virtual Result<Rows> Query(std::string_view sql, const Params& params = {}) = 0;
  /// Runs a statement; returns the number of rows it changed.
  virtual Result<int64_t> Exec(std::string_view sql, const Params& params = {}) = 0;
  /// Runs a statement whose outcome the work does not branch on; it must change exactly
  /// `expected_changes` rows. A backend may hold it back and send it with the work's next statement or at
  /// the end of the work (PostgreSQL: all in one round trip), so its failure, or another row count,
  /// surfaces there: that statement fails instead, or the Write does. Only for statements whose failure
  /// means the write cannot go on anyway (a broken invariant, a lost connection, a constraint).
  virtual Result<void> ExecLater(std::string_view sql, const Params& params, int64_t expected_changes) = 0;
  /// Renders the parameters of an AddLater statement for `key` and (summed) `deltas`.
  using AdditionParams = Params (*)(const std::string& key, const std::vector<int64_t>& deltas);
  /// Adds `deltas` to counters of the one row named by `key`, through `sql` (static storage: it may be sent
  /// after this call returns) with `params(key, deltas)`; the statement must change exactly that row. Careful,
  /// this is ExecLater of that statement. Optimistic, a batch's additions are summed per (sql, key) and each
  /// sum goes out once, before COMMIT, in key order; one that changes no row fails the batch, which then runs
  /// carefully. So a row that every write of a batch adds to (a platform account) costs one statement per
  /// batch, not one per write. Only for rows that no work of the batch reads or changes otherwise, and whose
  /// statement's checks hold for a sum whenever they hold for each addition in turn.
  virtual Result<void> AddLater(std::string_view sql, const std::string& key, const std::vector<int64_t>& deltas,
                                AdditionParams params) = 0;
  /// Runs several `;`-separated statements without parameters, e.g. a
  /// migration file. The script must not contain BEGIN/COMMIT/ROLLBACK.
  virtual Result<void> ExecScript(std::string_view sql);
  /// The first row of Query, or kNotFound.
  Result<Row> QueryOne(std::string_view sql, const Params& params = {});
  virtual Dialect dialect() const = 0;

  /// Runs `done` after this Write's changes are committed, and never if they are rolled back (or in a
  /// Read): the one safe moment to remember in memory something the transaction wrote or saw, since
  /// until then another write of the batch or a failed COMMIT can still undo it. `done` runs on the
  /// writer thread: it must be quick and must not touch the database.
  void AfterCommit(std::function<void()> done) { after_commit_.push_back(std::move(done)); }
  std::vector<std::function<void()>> TakeAfterCommit() { return std::move(after_commit_); }

  /// False while the Write runs optimistically (storage/detail/write_queue.hpp): if it then fails after
  /// running statements, its batch is rolled back and the Write runs again with careful() true. So work may
  /// take a shortcut that assumes the common case, provided a wrong assumption makes the Write fail (an
  /// ExecLater whose row count differs, a unique violation) and never changes what it does when it succeeds.
  /// True in every other transaction: there each answer counts.
  bool careful() const { return careful_; }

 protected:
  void set_careful(bool careful) { careful_ = careful; }

 private:
  std::vector<std::function<void()>> after_commit_;
  bool careful_ = true;
};

class Database {
 public:
  virtual ~Database() = default;

  virtual Dialect dialect() const = 0;

  /// Runs `work` in a write transaction: commit when it returns success,
  /// roll back when it returns an error (which is passed through). A unique
  /// constraint violation surfaces as ErrorCode::kAlreadyExists.
  virtual Result<void> Write(const std::function<Result<void>(Tx&)>& work) = 0;

  /// Like Write, but in a transaction of its own, never batched with other
  /// writes; on PostgreSQL at READ COMMITTED, so that each statement sees what
  /// others committed while it waited for a lock. For schema migrations.
  virtual Result<void> WriteAlone(const std::function<Result<void>(Tx&)>& work) { return Write(work); }

  /// Runs `work` against a consistent read snapshot. Statements that write fail.
  virtual Result<void> Read(const std::function<Result<void>(Tx&)>& work) = 0;

  /// Convenience: a single read-only query. A backend may run it without an
  /// explicit transaction (one statement is its own snapshot).
  virtual Result<Rows> Query(std::string_view sql, const Params& params = {});

  /// Cheap liveness probe for /readyz.
  virtual Result<void> Ping() = 0;
};

/// Opens "sqlite:PATH" or "postgresql://...". `password` is used for
/// PostgreSQL when the URL has none. Does not run migrations.
struct OpenOptions {
  std::string url;
  std::string password;
  int pool_size = 8;
  int busy_timeout_ms = 5000;
  int write_batch_max = 64;
  /// SQLite: WAL size (4 KiB pages) at which a background checkpoint starts; the WAL file grows to about
  /// this size under steady writes (ADR 0019). 64,000 pages ≈ 250 MiB.
  int sqlite_checkpoint_pages = 64'000;
  /// Every write batch runs carefully, a savepoint per write, and every Tx::careful() is true: no
  /// optimistic first pass (storage/detail/write_queue.hpp). For tests that must cover the careful path.
  bool careful_writes = false;
};
Result<std::unique_ptr<Database>> Open(const OpenOptions& options);

}  // namespace clozit::storage
