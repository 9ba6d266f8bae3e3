#include "storage/sqlite/connection.hpp"

#include <climits>
#include <string>
#include <utility>

namespace clozit::storage::sqlite {
namespace {

// SQL texts are program constants, so this only bounds a misbehaving caller
// that builds SQL dynamically.
constexpr size_t kMaxCachedStatements = 256;

// Returns a statement to its unbound, not-running state on every path out.
class StatementReset {
 public:
  explicit StatementReset(sqlite3_stmt* statement) : statement_(statement) {}
  ~StatementReset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
  }
  StatementReset(const StatementReset&) = delete;
  StatementReset& operator=(const StatementReset&) = delete;

 private:
  sqlite3_stmt* statement_;
};

std::string Bytes(const void* data, int size) {
  if (data == nullptr || size <= 0) return {};
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

Value ColumnValue(sqlite3_stmt* statement, int column) {
  switch (sqlite3_column_type(statement, column)) {
    case SQLITE_INTEGER:
      return static_cast<int64_t>(sqlite3_column_int64(statement, column));
    case SQLITE_NULL:
      return nullptr;
    case SQLITE_BLOB: {
      const void* blob = sqlite3_column_blob(statement, column);
      return Bytes(blob, sqlite3_column_bytes(statement, column));
    }
    default: {  // TEXT, and FLOAT rendered as text (the schema has no floating point)
      const unsigned char* text = sqlite3_column_text(statement, column);
      return Bytes(text, sqlite3_column_bytes(statement, column));
    }
  }
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

}  // namespace

Error SqliteError(int code, std::string_view message, std::string_view during) {
  int primary = code & 0xff;
  ErrorCode error_code = ErrorCode::kInternal;
  if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
    error_code = ErrorCode::kAlreadyExists;
  } else if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) {
    error_code = ErrorCode::kUnavailable;
  }
  std::string text = "sqlite ";
  text.append(during).append(": ").append(message);
  return Error::Make(error_code, std::move(text));
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& path, Access access, int busy_timeout_ms) {
  int flags = SQLITE_OPEN_NOMUTEX;
  flags |= access == Access::kReadOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* db = nullptr;
  int code = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (code != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code);
    sqlite3_close_v2(db);
    return Error::Make(ErrorCode::kUnavailable, "sqlite cannot open " + path + ": " + message);
  }
  auto connection = std::make_unique<Connection>(Key(), db);
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);

  if (access == Access::kReadWrite) {
    // WAL lets readers run beside the one writer; NORMAL syncs only at checkpoints,
    // which in WAL mode can lose the last commits on power loss but never corrupts.
    CLOZIT_ASSIGN_OR_RETURN(Rows mode, connection->Query("PRAGMA journal_mode=WAL", {}));
    if (mode.empty() || mode.front().Text(0) != "wal") {
      return Error::Make(ErrorCode::kUnavailable, "sqlite cannot switch " + path + " to WAL mode");
    }
    // Each write of a batch runs in a SAVEPOINT, whose undo journal is a temporary file unless temp_store is
    // memory: on disk it wrote every touched page once more (≈ 300 KB per reserve, measured by
    // bench/billing_bench) and capped reserve+settle at ~1,600 pairs/s.
    // Checkpoints: the database's writer hands them to a thread of their own (OnWalCommit replaces SQLite's
    // automatic checkpoint); 10,000 pages is the automatic one's size for a connection that does not.
    CLOZIT_TRY(
        connection->ExecScript("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY; "
                               "PRAGMA wal_autocheckpoint=10000;"));
  } else {
    // The read-only open already refuses writes; query_only also names the reason.
    CLOZIT_TRY(connection->ExecScript("PRAGMA query_only=1; PRAGMA foreign_keys=ON;"));
  }
  return connection;
}

Connection::~Connection() {
  for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
  sqlite3_close_v2(db_);
}

bool Connection::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

void Connection::OnWalCommit(int (*hook)(void* arg, sqlite3* db, const char* schema, int pages), void* arg) {
  sqlite3_wal_hook(db_, hook, arg);
}

Result<int> Connection::CheckpointPassive() {
  int log_pages = 0, copied = 0;
  int code = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_pages, &copied);
  // BUSY: another connection was checkpointing; both counts are -1 then.
  if (code != SQLITE_OK && code != SQLITE_BUSY) return LastError(code, "checkpoint");
  return log_pages < 0 || copied < 0 ? 0 : log_pages - copied;
}

Error Connection::LastError(int code, std::string_view during) const {
  return SqliteError(code, sqlite3_errmsg(db_), during);
}

bool Connection::HasMoreStatements(const char* tail, const char* end) {
  while (tail != end && IsSpace(*tail)) ++tail;
  if (tail == end) return false;
  // Only comments may follow; anything SQLite can compile is a second statement.
  sqlite3_stmt* next = nullptr;
  int code = sqlite3_prepare_v2(db_, tail, static_cast<int>(end - tail), &next, nullptr);
  sqlite3_finalize(next);
  return code != SQLITE_OK || next != nullptr;
}

Result<sqlite3_stmt*> Connection::Prepare(std::string_view sql) {
  if (auto cached = statements_.find(sql); cached != statements_.end()) return cached->second;
  if (sql.size() >= static_cast<size_t>(INT_MAX)) return Error::Internal("sqlite prepare: statement too long");

  sqlite3_stmt* statement = nullptr;
  const char* tail = nullptr;
  int code =
      sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &statement, &tail);
  if (code != SQLITE_OK) return LastError(code, "prepare");
  if (statement == nullptr) return Error::Internal("sqlite prepare: empty statement");
  if (HasMoreStatements(tail, sql.data() + sql.size())) {
    sqlite3_finalize(statement);
    return Error::Internal("sqlite prepare: several statements in one call; use ExecScript");
  }
  if (statements_.size() >= kMaxCachedStatements) {
    for (auto& [cached_sql, cached] : statements_) sqlite3_finalize(cached);
    statements_.clear();
  }
  statements_.emplace(std::string(sql), statement);
  return statement;
}

Result<void> Connection::Bind(sqlite3_stmt* statement, const Params& params) {
  // $N names map to SQLite indexes in order of first appearance, not by number.
  int expected = sqlite3_bind_parameter_count(statement);
  if (static_cast<size_t>(expected) != params.size()) {
    return Error::Internal("sqlite bind: statement takes " + std::to_string(expected) + " parameters, " +
                           std::to_string(params.size()) + " given");
  }
  for (size_t position = 0; position < params.size(); ++position) {
    std::string name = "$" + std::to_string(position + 1);
    int index = sqlite3_bind_parameter_index(statement, name.c_str());
    if (index == 0) return Error::Internal("sqlite bind: statement has no parameter " + name + " (use $1..$n)");
    const Value& value = params[position];
    int code = SQLITE_OK;
    if (const auto* number = std::get_if<int64_t>(&value)) {
      code = sqlite3_bind_int64(statement, index, *number);
    } else if (const auto* text = std::get_if<std::string>(&value)) {
      // STATIC: params outlive the statement's use; bindings are cleared before returning.
      code = sqlite3_bind_text64(statement, index, text->data(), text->size(), SQLITE_STATIC, SQLITE_UTF8);
    } else {
      code = sqlite3_bind_null(statement, index);
    }
    if (code != SQLITE_OK) return LastError(code, "bind " + name);
  }
  return Ok();
}

Result<Rows> Connection::Query(std::string_view sql, const Params& params) {
  CLOZIT_ASSIGN_OR_RETURN(sqlite3_stmt * statement, Prepare(sql));
  StatementReset reset(statement);
  CLOZIT_TRY(Bind(statement, params));
  int columns = sqlite3_column_count(statement);
  Rows rows;
  for (;;) {
    int code = sqlite3_step(statement);
    if (code == SQLITE_DONE) break;
    if (code != SQLITE_ROW) return LastError(code, "step");
    std::vector<Value> values;
    values.reserve(static_cast<size_t>(columns));
    for (int column = 0; column < columns; ++column) values.push_back(ColumnValue(statement, column));
    rows.emplace_back(std::move(values));
  }
  return rows;
}

Result<int64_t> Connection::Exec(std::string_view sql, const Params& params) {
  CLOZIT_ASSIGN_OR_RETURN(sqlite3_stmt * statement, Prepare(sql));
  StatementReset reset(statement);
  CLOZIT_TRY(Bind(statement, params));
  // sqlite3_changes keeps the count of the last INSERT/UPDATE/DELETE, so a
  // later CREATE TABLE would report it again; PostgreSQL reports 0 there.
  int64_t total_before = sqlite3_total_changes64(db_);
  for (;;) {
    int code = sqlite3_step(statement);
    if (code == SQLITE_DONE) break;
    if (code != SQLITE_ROW) return LastError(code, "step");
  }
  if (sqlite3_total_changes64(db_) == total_before) return int64_t{0};
  return static_cast<int64_t>(sqlite3_changes64(db_));
}

Result<void> Connection::ExecScript(std::string_view sql) {
  std::string script(sql);
  char* message = nullptr;
  int code = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &message);
  if (code == SQLITE_OK) return Ok();
  Error error = SqliteError(code, message != nullptr ? message : sqlite3_errstr(code), "exec");
  sqlite3_free(message);
  return error;
}

}  // namespace clozit::storage::sqlite
