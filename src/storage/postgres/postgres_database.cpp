#include "storage/postgres/postgres_database.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "storage/detail/connection_pool.hpp"
#include "storage/detail/tx_base.hpp"
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

 protected:
  Result<Rows> DoQuery(std::string_view sql, const Params& params) override {
    return Note(connection_.Query(sql, params));
  }
  Result<int64_t> DoExec(std::string_view sql, const Params& params) override {
    return Note(connection_.Exec(sql, params));
  }
  Result<void> DoExecScript(std::string_view sql) override { return Note(connection_.ExecScript(sql)); }

 private:
  template <typename T>
  T Note(T result) {
    if (!result.ok() && first_sqlstate_.empty()) first_sqlstate_ = connection_.last_sqlstate();
    return result;
  }

  Connection& connection_;
  std::string first_sqlstate_;
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
  PostgresDatabase(ConnectionParameters parameters, size_t pool_size)
      : parameters_(std::move(parameters)), pool_(pool_size, [this] { return Connection::Connect(parameters_); }) {}

  void Seed(std::unique_ptr<Connection> connection) { pool_.Seed(std::move(connection)); }

  Dialect dialect() const override { return Dialect::kPostgres; }

  Result<void> Write(const Work& work) override {
    for (int attempt = 0;; ++attempt) {
      bool retryable = false;
      auto result = RunOnce("BEGIN ISOLATION LEVEL SERIALIZABLE", work, &retryable);
      if (result.ok() || !retryable || attempt == kMaxRetries) return result;
      std::this_thread::sleep_for(RetryDelay(attempt));
    }
  }

  Result<void> Read(const Work& work) override {
    bool retryable = false;
    return RunOnce("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", work, &retryable);
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

  Result<void> RunOnce(const char* begin, const Work& work, bool* retryable) {
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
    return Ok();
  }

  const ConnectionParameters parameters_;
  Pool pool_;
};

}  // namespace

Result<std::unique_ptr<Database>> OpenPostgresDatabase(const OpenOptions& options) {
  CLOZIT_ASSIGN_OR_RETURN(auto parameters, ParseConnectionUrl(options.url, options.password));
  CLOZIT_ASSIGN_OR_RETURN(auto first, Connection::Connect(parameters));
  auto database = std::make_unique<PostgresDatabase>(std::move(parameters), static_cast<size_t>(options.pool_size));
  database->Seed(std::move(first));
  return std::unique_ptr<Database>(std::move(database));
}

}  // namespace clozit::storage::postgres
