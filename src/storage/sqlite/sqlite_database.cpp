#include "storage/sqlite/sqlite_database.hpp"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "storage/detail/connection_pool.hpp"
#include "storage/detail/tx_base.hpp"
#include "storage/detail/write_queue.hpp"
#include "storage/sqlite/connection.hpp"

namespace clozit::storage::sqlite {
namespace {

using Work = std::function<Result<void>(Tx&)>;

class SqliteTx final : public detail::TxBase {
 public:
  explicit SqliteTx(Connection& connection) : connection_(connection) {}
  Dialect dialect() const override { return Dialect::kSqlite; }

 protected:
  Result<Rows> DoQuery(std::string_view sql, const Params& params) override { return connection_.Query(sql, params); }
  Result<int64_t> DoExec(std::string_view sql, const Params& params) override { return connection_.Exec(sql, params); }
  Result<void> DoExecScript(std::string_view sql) override { return connection_.ExecScript(sql); }

 private:
  Connection& connection_;
};

// Checkpoints the WAL into the database mostly on its own thread and connection. SQLite's automatic checkpoint
// runs on the committing thread, inside the commit: with one writer per database that stalled every queued
// write for the whole copy and its fsync (billing bench: reserve p99 ≈ 55 ms against p50 ≈ 5 ms) while the
// second core idled. A PASSIVE checkpoint never blocks the writer or readers, but under a steady stream of
// writes it never catches up with the end of the WAL, and SQLite starts the WAL over only after a checkpoint
// that did. So it works in two steps: this thread copies the bulk (repeating while the writer keeps adding
// more than kTailPages), then asks the writer to copy the short tail between two commits, after which the
// writer's next transaction starts the WAL from its beginning. That tail and its fsync still hold the writer
// up for a few ms, so a large WAL (OpenOptions::sqlite_checkpoint_pages) makes them rare (ADR 0019).
class Checkpointer {
 public:
  /// What is left for the writer to copy itself.
  static constexpr int kTailPages = 256;
  static constexpr int kMaxPasses = 8;

  /// Checkpoints start when the WAL reaches `start_pages`; at three times that the writer checkpoints at each
  /// commit whatever the state, as SQLite would: the checkpointer has fallen far behind.
  Checkpointer(std::unique_ptr<Connection> connection, int start_pages)
      : start_pages_(start_pages),
        writer_takes_over_pages_(start_pages * 3),
        connection_(std::move(connection)),
        thread_([this] { Loop(); }) {}
  ~Checkpointer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_one();
    thread_.join();
  }
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  /// Called on the writer's thread after each commit with the WAL's size: true when the writer should
  /// checkpoint now (the tail, or a WAL grown far past the start).
  bool Committed(int pages) {
    if (tail_due_.exchange(false) || pages >= writer_takes_over_pages_) return true;
    if (pages >= start_pages_) {
      {
        std::lock_guard lock(mutex_);
        due_ = true;
      }
      changed_.notify_one();
    }
    return false;
  }

 private:
  void Loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stopping_ || due_; });
      if (stopping_) return;
      due_ = false;
      lock.unlock();
      // A writer that adds pages faster than this thread copies them gets the rest after a few passes, as it
      // would have without this thread.
      for (int pass = 1;; ++pass) {
        auto left = connection_->CheckpointPassive();
        if (!left) {
          // Once per streak of failures, not at every commit past the start size.
          if (!failing_) spdlog::warn("background checkpoint failed: {}", left.error().message);
          failing_ = true;
          break;
        }
        failing_ = false;
        if (*left <= kTailPages || pass == kMaxPasses) {
          tail_due_ = true;
          break;
        }
      }
      lock.lock();
      due_ = false;  // what the writer asked for meanwhile was just done
    }
  }

  const int start_pages_;
  const int writer_takes_over_pages_;
  std::unique_ptr<Connection> connection_;  // used only by thread_
  bool failing_ = false;                    // used only by thread_
  std::atomic<bool> tail_due_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  bool due_ = false;       // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;     // last: it runs once everything above exists
};

class SqliteDatabase final : public Database {
 public:
  SqliteDatabase(const std::string& path, const OpenOptions& options, std::unique_ptr<Connection> writer,
                 std::unique_ptr<Connection> checkpoints)
      : writer_connection_(std::move(writer)),
        checkpointer_(std::move(checkpoints), options.sqlite_checkpoint_pages),
        readers_(static_cast<size_t>(options.pool_size),
                 [path, busy_timeout_ms = options.busy_timeout_ms] {
                   return Connection::Open(path, Access::kReadOnly, busy_timeout_ms);
                 }),
        writes_(
            static_cast<size_t>(options.write_batch_max),
            [this](const std::vector<const Work*>& batch, bool careful) { return RunBatch(batch, careful); },
            options.careful_writes) {}

  Dialect dialect() const override { return Dialect::kSqlite; }

  Result<void> Write(const Work& work) override {
    if (detail::WorkScope::Inside(this)) return detail::WorkScope::NestedCallError();
    return writes_.Run(work);
  }

  Result<void> Read(const Work& work) override {
    if (detail::WorkScope::Inside(this)) return detail::WorkScope::NestedCallError();
    CLOZIT_ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    Connection& connection = *lease;
    // An explicit transaction pins one WAL snapshot for every statement in work.
    CLOZIT_TRY(connection.Exec("BEGIN", {}));
    SqliteTx tx(connection);
    Result<void> result;
    try {
      detail::WorkScope scope(this);
      result = work(tx);
    } catch (...) {
      (void)connection.Exec("ROLLBACK", {});
      if (connection.InTransaction()) lease.Discard();
      throw;
    }
    if (result.ok() && tx.failed()) result = tx.AbortedError();
    auto finished = connection.Exec(result.ok() ? "COMMIT" : "ROLLBACK", {});
    if (connection.InTransaction()) lease.Discard();  // never hand out a connection stuck in a transaction
    if (result.ok() && !finished.ok()) return finished.error();
    return result;
  }

  // One statement on a read-only connection in autocommit mode is already a consistent snapshot: skipping
  // BEGIN/COMMIT halves the statements on the hottest path (authentication on every request).
  Result<Rows> Query(std::string_view sql, const Params& params) override {
    if (detail::WorkScope::Inside(this)) return detail::WorkScope::NestedCallError();
    CLOZIT_ASSIGN_OR_RETURN(auto lease, readers_.Acquire());
    SqliteTx tx(*lease);  // the same parameter checks as inside a transaction
    auto rows = tx.Query(sql, params);
    if (lease->InTransaction()) lease.Discard();
    return rows;
  }

  Result<void> Ping() override {
    return Read([](Tx& tx) -> Result<void> {
      CLOZIT_TRY(tx.Query("SELECT 1"));
      return Ok();
    });
  }

 private:
  using Outcome = detail::WriteQueue::Outcome;
  using BatchOutcome = detail::WriteQueue::BatchOutcome;

  // Runs every request of the batch in one transaction, a savepoint each when `careful` (WriteQueue);
  // results are final only after COMMIT, so nobody learns of a success that could still be undone.
  BatchOutcome RunBatch(const std::vector<const Work*>& batch, bool careful) {
    BatchOutcome ran;
    ran.outcomes = RunBatchOnce(batch, careful, &ran.redo);
    return ran;
  }

  std::vector<Outcome> RunBatchOnce(const std::vector<const Work*>& batch, bool careful, bool* redo) {
    Connection& connection = *writer_connection_;
    // Before every batch, not once: a work's `PRAGMA wal_autocheckpoint` replaces the hook (SQLite implements
    // that pragma as a WAL hook of its own), and nothing would checkpoint the WAL after that.
    connection.OnWalCommit(&SqliteDatabase::WalCommitted, this);
    std::vector<Outcome> outcomes(batch.size());
    auto fail_all = [&](const Error& error) {
      for (auto& outcome : outcomes) {
        if (outcome.result.ok() && !outcome.exception) outcome.result = error;
      }
    };

    if (auto begun = connection.Exec("BEGIN IMMEDIATE", {}); !begun) {
      fail_all(begun.error());
      return outcomes;
    }
    // A batch of one needs no savepoint: its transaction is the unit to undo. That spares two statements
    // per write when the server is quiet, and a big write (an import's 100,000-row commit) the in-memory
    // savepoint journal that would hold the original of every page it changes.
    if (batch.size() == 1) return RunAlone(connection, *batch.front(), careful, redo);
    detail::Additions additions;  // optimistic: what the kept writes added (Tx::AddLater)
    for (size_t index = 0; index < batch.size(); ++index) {
      Outcome& outcome = outcomes[index];
      if (careful) {
        if (auto saved = connection.Exec("SAVEPOINT clozit_write", {}); !saved) {
          outcome.result = saved.error();
          continue;
        }
      }
      SqliteTx tx(connection);
      tx.set_careful(careful);
      try {
        detail::WorkScope scope(this);
        outcome.result = (*batch[index])(tx);
        if (outcome.result.ok() && tx.failed()) outcome.result = tx.AbortedError();
      } catch (...) {
        outcome.exception = std::current_exception();
      }
      outcome.after_commit = tx.TakeAfterCommit();
      if (!connection.InTransaction()) {
        // SQLite rolled the whole transaction back by itself (I/O error, disk
        // full): the earlier requests' changes are gone with it.
        fail_all(Error::Internal("sqlite rolled back the write batch after an error"));
        for (size_t rest = index + 1; rest < batch.size(); ++rest) {
          outcomes[rest].result = Error::Internal("sqlite rolled back the write batch after an error");
        }
        return outcomes;
      }
      bool keep = outcome.result.ok() && !outcome.exception;
      if (!careful) {
        // Without a savepoint only the whole transaction can undo what a failed write did.
        if (!keep && tx.used()) {
          (void)connection.Exec("ROLLBACK", {});
          *redo = true;
          return outcomes;
        }
        if (keep) additions.Merge(tx.TakeAdditions());
        continue;
      }
      if (keep) {
        if (auto released = connection.Exec("RELEASE clozit_write", {}); !released) {
          outcome.result = released.error();
          keep = false;
        }
      }
      if (!keep) {
        auto undone = connection.Exec("ROLLBACK TO clozit_write", {});
        auto released = connection.Exec("RELEASE clozit_write", {});
        if (!undone || !released) {
          // The savepoint is unusable, so this request's changes might be committed: give up on the batch.
          (void)connection.Exec("ROLLBACK", {});
          fail_all(Error::Internal("sqlite could not roll back a failed write"));
          for (size_t rest = index + 1; rest < batch.size(); ++rest) {
            outcomes[rest].result = Error::Internal("sqlite could not roll back a failed write");
          }
          return outcomes;
        }
      }
    }
    if (auto added = SendAdditions(connection, additions); !added) {
      (void)connection.Exec("ROLLBACK", {});
      *redo = true;
      return outcomes;
    }
    if (auto committed = connection.Exec("COMMIT", {}); !committed) {
      (void)connection.Exec("ROLLBACK", {});
      fail_all(committed.error());
    }
    return outcomes;
  }

  // The batch's summed additions, one statement per row, each through ExecLater (which checks it changed its row).
  static Result<void> SendAdditions(Connection& connection, const detail::Additions& additions) {
    if (additions.empty()) return Ok();
    CLOZIT_ASSIGN_OR_RETURN(auto statements, additions.Statements());
    SqliteTx last(connection);
    for (const auto& [sql, params] : statements) CLOZIT_TRY(last.ExecLater(sql, params, 1));
    return Ok();
  }

  // One work in its own transaction (BEGIN IMMEDIATE already ran): commit on success, else roll back (and,
  // not `careful`, ask for a redo if it ran statements).
  std::vector<Outcome> RunAlone(Connection& connection, const Work& work, bool careful, bool* redo) {
    std::vector<Outcome> outcomes(1);
    Outcome& outcome = outcomes.front();
    SqliteTx tx(connection);
    tx.set_careful(careful);
    try {
      detail::WorkScope scope(this);
      outcome.result = work(tx);
      if (outcome.result.ok() && tx.failed()) outcome.result = tx.AbortedError();
    } catch (...) {
      outcome.exception = std::current_exception();
    }
    outcome.after_commit = tx.TakeAfterCommit();
    if (!connection.InTransaction()) {
      if (outcome.result.ok() && !outcome.exception) {
        outcome.result = Error::Internal("sqlite rolled back the write after an error");
      }
      return outcomes;
    }
    if (outcome.result.ok() && !outcome.exception) {
      // Careful, AddLater ran its statement at once and there is nothing to send.
      if (auto added = SendAdditions(connection, tx.TakeAdditions()); !added) {
        (void)connection.Exec("ROLLBACK", {});
        *redo = true;
        return outcomes;
      }
      if (auto committed = connection.Exec("COMMIT", {}); !committed) {
        (void)connection.Exec("ROLLBACK", {});
        outcome.result = committed.error();
      }
    } else {
      (void)connection.Exec("ROLLBACK", {});
      // An optimistic work may have failed only because a shortcut's assumption did not hold (Tx::careful).
      if (!careful && tx.used()) *redo = true;
    }
    return outcomes;
  }

  // The writer connection's WAL hook, called by SQLite inside each commit; nothing may throw through it.
  static int WalCommitted(void* self, sqlite3* /*db*/, const char* /*schema*/, int pages) noexcept {
    auto* database = static_cast<SqliteDatabase*>(self);
    try {
      if (!database->checkpointer_.Committed(pages)) return SQLITE_OK;
      if (auto left = database->writer_connection_->CheckpointPassive(); !left) {
        spdlog::warn("checkpoint failed: {}", left.error().message);
      }
    } catch (...) {  // a failed lock or log line: the next commit asks again
    }
    return SQLITE_OK;
  }

  std::unique_ptr<Connection> writer_connection_;  // used only by the write queue's thread
  Checkpointer checkpointer_;
  detail::ConnectionPool<Connection> readers_;
  detail::WriteQueue writes_;  // last: its thread runs batches once everything above exists
};

}  // namespace

Result<std::unique_ptr<Database>> OpenSqliteDatabase(const std::string& path, const OpenOptions& options) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parent, error);
    if (error) {
      return Error::Make(ErrorCode::kUnavailable,
                         "sqlite cannot create directory " + parent.string() + ": " + error.message());
    }
  }
  CLOZIT_ASSIGN_OR_RETURN(auto writer, Connection::Open(path, Access::kReadWrite, options.busy_timeout_ms));
  CLOZIT_ASSIGN_OR_RETURN(auto checkpoints, Connection::Open(path, Access::kReadWrite, options.busy_timeout_ms));
  return std::unique_ptr<Database>(
      std::make_unique<SqliteDatabase>(path, options, std::move(writer), std::move(checkpoints)));
}

}  // namespace clozit::storage::sqlite
