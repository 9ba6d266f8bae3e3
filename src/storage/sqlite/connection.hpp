// One SQLite connection with its prepared-statement cache, and the mapping of
// SQLite result codes to Clozit errors.
//
// Not thread-safe: a Connection is used by one thread at a time (the writer
// thread, or the reader that leased it from the pool). Opened NOMUTEX, so
// SQLite does not lock on our behalf either.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "storage/database.hpp"

namespace clozit::storage::sqlite {

enum class Access { kReadWrite, kReadOnly };

class Connection {
  struct Key {};  // only Open can make one, yet make_unique can still call the constructor

 public:
  /// kReadWrite creates the file and switches it to WAL; kReadOnly expects that done.
  static Result<std::unique_ptr<Connection>> Open(const std::string& path, Access access, int busy_timeout_ms);

  Connection(Key /*key*/, sqlite3* db) : db_(db) {}
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Result<Rows> Query(std::string_view sql, const Params& params);
  Result<int64_t> Exec(std::string_view sql, const Params& params);
  Result<void> ExecScript(std::string_view sql);

  /// False between BEGIN and COMMIT/ROLLBACK, and after SQLite rolled back on its own.
  bool InTransaction() const;

  /// Has SQLite call `hook` after each commit (sqlite3_wal_hook: `pages` is the WAL's size), instead of its own
  /// automatic checkpoint, which ran on the committing thread. `arg` must outlive the connection's writes.
  void OnWalCommit(int (*hook)(void* arg, sqlite3* db, const char* schema, int pages), void* arg);
  /// Copies what it can from the WAL into the database without waiting for anyone (SQLITE_CHECKPOINT_PASSIVE);
  /// returns the pages left to copy — 0 when another connection was checkpointing (SQLITE_BUSY), which only
  /// means the caller's copy was not needed.
  Result<int> CheckpointPassive();

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };

  Result<sqlite3_stmt*> Prepare(std::string_view sql);
  Result<void> Bind(sqlite3_stmt* statement, const Params& params);
  bool HasMoreStatements(const char* tail, const char* end);
  Error LastError(int code, std::string_view during) const;

  sqlite3* db_;
  // Keyed by SQL text; statements are reset after every use, so one entry serves every call.
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> statements_;
};

/// The Clozit error for SQLite (extended) result `code`. `message` must not
/// contain bound values; SQLite's own messages do not.
Error SqliteError(int code, std::string_view message, std::string_view during);

}  // namespace clozit::storage::sqlite
