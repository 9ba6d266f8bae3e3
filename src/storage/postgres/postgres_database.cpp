#include "storage/postgres/postgres_database.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "storage/detail/connection_pool.hpp"
#include "storage/detail/tx_base.hpp"
#include "storage/detail/write_queue.hpp"
#include "storage/postgres/connection.hpp"

namespace clozit::storage::postgres {
namespace {

using Work = std::function<Result<void>(Tx&)>;
using Pool = detail::ConnectionPool<Connection>;

constexpr int kMaxRetries = 3;

// Exponential backoff so the transaction we collided with can finish, spread
// per thread so colliding writers do not retry in lockstep and collide again.
// The spread comes from the thread id, not a random source: it needs to
// differ between threads, not to be unpredictable.
std::chrono::microseconds RetryDelay(int attempt) {
  const int64_t base_us = int64_t{2000} << attempt;
  const size_t spread = std::hash<std::thread::id>{}(std::this_thread::get_id()) * 0x9e3779b97f4a7c15ULL + attempt;
  return std::chrono::microseconds(base_us + static_cast<int64_t>((spread >> 17) % static_cast<size_t>(base_us)));
}

class PostgresTx final : public detail::TxBase {
 public:
  explicit PostgresTx(Connection& connection) : connection_(connection) {}
  Dialect dialect() const override { return Dialect::kPostgres; }
  /// The SQLSTATE of the first failed statement: decides whether a retry can help.
  const std::string& first_sqlstate() const { return first_sqlstate_; }
  /// What ExecLater held back, unsent: in an optimistic batch it goes out with the next write's first
  /// statement (`HoldBack`), where a failure fails that write and so the batch, which then runs carefully.
  std::vector<Connection::Deferred> TakeHeldBack() { return TakeLater(); }
  void HoldBack(std::vector<Connection::Deferred> earlier) { later_ = std::move(earlier); }

 protected:
  // Statements held back by ExecLater travel in the same round trip as the next one.
  Result<Rows> DoQuery(std::string_view sql, const Params& params) override {
    if (later_.empty()) return Note(connection_.Query(sql, params));
    return Note(connection_.Query(TakeLater(), sql, params));
  }
  Result<int64_t> DoExec(std::string_view sql, const Params& params) override {
    if (later_.empty()) return Note(connection_.Exec(sql, params));
    return Note(connection_.Exec(TakeLater(), sql, params));
  }
  Result<void> DoExecScript(std::string_view sql) override {
    CLOZIT_TRY(DoFinish());
    return Note(connection_.ExecScript(sql));
  }
  Result<void> DoExecLater(std::string_view sql, const Params& params, int64_t expected_changes) override {
    later_.push_back({std::string(sql), params, expected_changes});
    return Ok();
  }
  Result<void> DoFinish() override { return Note(connection_.Run(TakeLater())); }

 private:
  template <typename T>
  T Note(T result) {
    if (!result.ok() && first_sqlstate_.empty()) first_sqlstate_ = connection_.last_sqlstate();
    return result;
  }

  std::vector<Connection::Deferred> TakeLater() { return std::exchange(later_, {}); }

  Connection& connection_;
  std::string first_sqlstate_;
  std::vector<Connection::Deferred> later_;
};

// Hands the connection back in a reusable state, or not at all.
void Tidy(Pool::Lease& lease) {
  if (lease->broken() && !lease->Reset()) {
    lease.Discard();
    return;
  }
  if (!lease->idle()) {
    (void)lease->Control("ROLLBACK", "ROLLBACK");
    if (!lease->idle()) lease.Discard();
  }
}

class PostgresDatabase final : public Database {
 public:
  PostgresDatabase(ConnectionParameters parameters, size_t pool_size, size_t write_batch_max, bool careful_writes)
      : parameters_(std::move(parameters)),
        pool_(pool_size, [this] { return Connection::Connect(parameters_); }),
        writes_(
            write_batch_max,
            [this](const std::vector<const Work*>& batch, bool careful) { return RunBatch(batch, careful); },
            careful_writes) {}

  void Seed(std::unique_ptr<Connection> connection) { pool_.Seed(std::move(connection)); }

  Dialect dialect() const override { return Dialect::kPostgres; }

  // Writes queue for this node's writer, which runs them in batches: one SERIALIZABLE transaction and one
  // commit (one WAL flush) per batch (detail/write_queue.hpp). Writes of one node therefore never fail each
  // other with serialization errors; only other nodes' transactions can, and then the batch is retried.
  Result<void> Write(const Work& work) override {
    if (detail::WorkScope::Inside(this)) return detail::WorkScope::NestedCallError();
    return writes_.Run(work);
  }

  Result<void> WriteAlone(const Work& work) override {
    for (int attempt = 0;; ++attempt) {
      bool retryable = false;
      auto result = RunOnce("BEGIN ISOLATION LEVEL READ COMMITTED", work, &retryable, true);
      if (result.ok() || !retryable || attempt == kMaxRetries) return result;
      std::this_thread::sleep_for(RetryDelay(attempt));
    }
  }

  Result<void> Read(const Work& work) override {
    bool retryable = false;
    return RunOnce("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", work, &retryable, false);
  }

  Result<void> Ping() override {
    return Read([](Tx& tx) -> Result<void> {
      CLOZIT_TRY(tx.Query("SELECT 1"));
      return Ok();
    });
  }

 private:
  // Starts a transaction; a connection that died while idle in the pool is
  // reconnected once, since nothing of this transaction has run yet.
  static Result<void> Begin(Pool::Lease& lease, const char* begin) {
    auto begun = lease->Control(begin, "BEGIN");
    if (begun.ok() || !lease->broken() || !lease->Reset()) return begun;
    return lease->Control(begin, "BEGIN");
  }

  using Outcome = detail::WriteQueue::Outcome;

  using BatchOutcome = detail::WriteQueue::BatchOutcome;

  // Without savepoints (WriteQueue) a batch also spares PostgreSQL a subtransaction per write (an XID, and a
  // MultiXact wherever two of them lock one row, e.g. a foreign key's parent) and the writer connection a
  // round trip per write.
  BatchOutcome RunBatch(const std::vector<const Work*>& batch, bool careful) {
    for (int attempt = 0;; ++attempt) {
      BatchOutcome ran;
      bool retryable = false;
      ran.outcomes = RunBatchOnce(batch, careful, &retryable, &ran.redo);
      if (ran.redo || !retryable || attempt == kMaxRetries) return ran;
      std::this_thread::sleep_for(RetryDelay(attempt));
    }
  }

  // One attempt at a batch. On a failure of the transaction itself (serialization failure, lost
  // connection, failed COMMIT) every write of the batch fails with it; `retryable` says whether running the
  // whole batch again can help (the work functions are re-runnable by contract). Not `careful`: a write that
  // fails after running statements rolls the batch back and sets `redo`.
  std::vector<Outcome> RunBatchOnce(const std::vector<const Work*>& batch, bool careful, bool* retryable, bool* redo) {
    std::vector<Outcome> outcomes(batch.size());
    auto fail_all = [&](const Error& error) {
      for (auto& outcome : outcomes) {
        if (outcome.result.ok() && !outcome.exception) outcome.result = error;
      }
      return outcomes;
    };
    auto leased = pool_.Acquire();
    if (!leased) return fail_all(leased.error());
    Pool::Lease lease = std::move(leased).value();
    if (auto begun = Begin(lease, "BEGIN ISOLATION LEVEL SERIALIZABLE"); !begun) {
      *retryable = lease->broken();
      Tidy(lease);
      return fail_all(begun.error());
    }
    // The transaction itself failed: nothing of the batch is committed.
    auto abandon = [&](const Error& error) {
      const std::string sqlstate = lease->last_sqlstate();
      *retryable = IsRetryable(sqlstate) || lease->broken();
      Tidy(lease);
      for (auto& outcome : outcomes) {
        outcome.exception = nullptr;
        outcome.result = error;
      }
      return outcomes;
    };
    // A serialization failure or deadlock dooms the whole transaction, not just one write: retry the batch.
    auto collided = [&] {
      *retryable = true;
      Tidy(lease);
      for (auto& each : outcomes) {
        each.exception = nullptr;
        each.result = Error::Make(ErrorCode::kUnavailable, "postgres serialization failure; retry the request");
      }
      return outcomes;
    };
    // Optimistic: a write failed after running statements; only rolling everything back undoes them.
    auto start_over = [&] {
      Tidy(lease);
      *redo = true;
      return outcomes;
    };
    // Each round trip on this one connection holds up the whole node's writes, so releasing one write's
    // savepoint and opening the next one's go in a single message.
    bool savepoint_open = false;
    // Optimistic: what the previous writes held back, still unsent (a round trip per write fewer).
    std::vector<Connection::Deferred> carried;
    detail::Additions additions;  // optimistic: what the kept writes added (Tx::AddLater)
    for (size_t index = 0; index < batch.size(); ++index) {
      Outcome& outcome = outcomes[index];
      if (careful && !savepoint_open) {
        if (auto saved = lease->Control("SAVEPOINT clozit_write", "SAVEPOINT"); !saved) return abandon(saved.error());
      }
      savepoint_open = false;
      PostgresTx tx(*lease);
      tx.set_careful(careful);
      if (!careful) tx.HoldBack(std::exchange(carried, {}));
      try {
        detail::WorkScope scope(this);
        outcome.result = (*batch[index])(tx);
      } catch (...) {
        outcome.exception = std::current_exception();
      }
      if (careful && outcome.result.ok() && !outcome.exception) {
        if (auto finished = tx.Finish(); !finished) outcome.result = finished.error();
      }
      if (outcome.result.ok() && !outcome.exception && tx.failed()) outcome.result = tx.AbortedError();
      outcome.after_commit = tx.TakeAfterCommit();
      if (IsRetryable(tx.first_sqlstate())) return collided();
      if (lease->broken()) {
        return abandon(Error::Make(ErrorCode::kUnavailable, "postgres connection lost during a write"));
      }
      const bool keep = outcome.result.ok() && !outcome.exception;
      if (!careful) {
        if (!keep && tx.used()) return start_over();
        carried = tx.TakeHeldBack();
        if (keep) additions.Merge(tx.TakeAdditions());
        continue;
      }
      if (keep && index + 1 < batch.size()) {
        auto next = lease->Control("RELEASE clozit_write; SAVEPOINT clozit_write", "SAVEPOINT");
        if (!next) return abandon(next.error());
        savepoint_open = true;
      } else if (keep) {
        if (auto released = lease->Control("RELEASE clozit_write", "RELEASE"); !released) {
          return abandon(released.error());
        }
      } else {
        auto undone = lease->Control("ROLLBACK TO clozit_write", "ROLLBACK");
        if (!undone) return abandon(undone.error());
        if (auto released = lease->Control("RELEASE clozit_write", "RELEASE"); !released) {
          return abandon(released.error());
        }
      }
    }
    if (!additions.empty()) {
      auto statements = additions.Statements();
      if (!statements) return start_over();
      for (auto& [sql, params] : *statements) carried.push_back({std::string(sql), std::move(params), 1});
    }
    if (!carried.empty()) {
      PostgresTx last(*lease);
      last.HoldBack(std::move(carried));
      if (auto finished = last.Finish(); !finished) {
        if (IsRetryable(last.first_sqlstate())) return collided();
        if (lease->broken()) {
          return abandon(Error::Make(ErrorCode::kUnavailable, "postgres connection lost during a write"));
        }
        return start_over();
      }
    }
    auto committed = lease->Control("COMMIT", "COMMIT");
    if (!committed.ok()) {
      if (lease->broken()) {
        Tidy(lease);
        return fail_all(Error::Make(ErrorCode::kUnavailable,
                                    "postgres connection lost during COMMIT; the transaction may or may not have "
                                    "committed"));
      }
      return abandon(committed.error());
    }
    return outcomes;
  }

  Result<void> RunOnce(const char* begin, const Work& work, bool* retryable, bool writes) {
    if (detail::WorkScope::Inside(this)) return detail::WorkScope::NestedCallError();
    CLOZIT_ASSIGN_OR_RETURN(auto lease, pool_.Acquire());
    auto begun = Begin(lease, begin);
    if (!begun) {
      Tidy(lease);
      return begun.error();
    }
    PostgresTx tx(*lease);
    Result<void> result;
    try {
      detail::WorkScope scope(this);
      result = work(tx);
    } catch (...) {
      Tidy(lease);
      throw;
    }
    if (result.ok()) {
      if (auto finished = tx.Finish(); !finished) result = finished.error();
    }
    if (result.ok() && tx.failed()) result = tx.AbortedError();
    if (!result.ok()) {
      *retryable = IsRetryable(tx.first_sqlstate());
      Tidy(lease);
      return result;
    }
    auto committed = lease->Control("COMMIT", "COMMIT");
    if (!committed.ok()) {
      *retryable = IsRetryable(lease->last_sqlstate());
      bool lost = lease->broken();
      Tidy(lease);
      if (lost) {
        return Error::Make(ErrorCode::kUnavailable,
                           "postgres connection lost during COMMIT; the transaction may or may not have committed");
      }
      return committed.error();
    }
    if (writes) {
      for (auto& done : tx.TakeAfterCommit()) done();
    }
    return Ok();
  }

  const ConnectionParameters parameters_;
  Pool pool_;
  detail::WriteQueue writes_;  // last: its thread runs batches once everything above exists
};

}  // namespace

Result<std::unique_ptr<Database>> OpenPostgresDatabase(const OpenOptions& options) {
  CLOZIT_ASSIGN_OR_RETURN(auto parameters, ParseConnectionUrl(options.url, options.password));
  CLOZIT_ASSIGN_OR_RETURN(auto first, Connection::Connect(parameters));
  auto database =
      std::make_unique<PostgresDatabase>(std::move(parameters), static_cast<size_t>(options.pool_size),
                                         static_cast<size_t>(options.write_batch_max), options.careful_writes);
  database->Seed(std::move(first));
  return std::unique_ptr<Database>(std::move(database));
}

}  // namespace clozit::storage::postgres
