// Behaviour both backends' transactions share.
//
// After one statement fails the transaction is aborted, as PostgreSQL does by
// itself: SQLite would let the work carry on and commit, so without this the
// same work function could commit on SQLite and silently roll back on
// PostgreSQL. Parameters are checked here too, so both backends refuse the
// same input. Not thread-safe: a Tx belongs to one call of a work function.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/database.hpp"

namespace clozit::storage::detail {

/// Optimistic AddLater calls summed per statement and row, in the order they go out (std::map: key order, so
/// nodes that send the same rows lock them in the same order).
class Additions {
 public:
  void Add(std::string_view sql, const std::string& key, const std::vector<int64_t>& deltas, Tx::AdditionParams params);
  void Merge(Additions other);
  bool empty() const { return sums_.empty(); }
  /// One statement per row, each to change exactly one row; an error if a sum overflowed.
  Result<std::vector<std::pair<std::string_view, Params>>> Statements() const;

 private:
  struct Sum {
    std::vector<int64_t> deltas;
    Tx::AdditionParams params = nullptr;
    bool overflowed = false;
  };
  static void AddTo(Sum& sum, const std::vector<int64_t>& deltas);
  std::map<std::pair<std::string_view, std::string>, Sum> sums_;
};

/// The error of a statement run by ExecLater that changed `changed` rows, not `expected`.
Error UnexpectedChanges(std::string_view sql, int64_t changed, int64_t expected);

class TxBase : public Tx {
 public:
  Result<Rows> Query(std::string_view sql, const Params& params = {}) final;
  Result<int64_t> Exec(std::string_view sql, const Params& params = {}) final;
  Result<void> ExecLater(std::string_view sql, const Params& params, int64_t expected_changes) final;
  Result<void> ExecScript(std::string_view sql) final;
  Result<void> AddLater(std::string_view sql, const std::string& key, const std::vector<int64_t>& deltas,
                        AdditionParams params) final;
  /// Sends what ExecLater held back; the backend calls it once work returned success, before committing.
  Result<void> Finish();
  using Tx::set_careful;  // for the batch runners

  /// The additions an optimistic work made (AddLater), for its batch to sum once the work succeeded.
  Additions TakeAdditions() { return std::exchange(additions_, {}); }

  bool failed() const { return first_error_.has_value(); }
  /// Whether the work ran or queued a statement, so may have changed something that only a rollback undoes.
  bool used() const { return used_; }
  /// What the Write or Read reports when work returned success although a
  /// statement failed (the transaction is rolled back, never committed).
  Error AbortedError() const;

 protected:
  virtual Result<Rows> DoQuery(std::string_view sql, const Params& params) = 0;
  virtual Result<int64_t> DoExec(std::string_view sql, const Params& params) = 0;
  virtual Result<void> DoExecScript(std::string_view sql) = 0;
  /// By default a statement is not held back: it runs at once.
  virtual Result<void> DoExecLater(std::string_view sql, const Params& params, int64_t expected_changes);
  virtual Result<void> DoFinish() { return Ok(); }

 private:
  std::optional<Error> Refuse(const Params& params) const;
  template <typename T>
  T Track(T result);

  std::optional<Error> first_error_;
  bool used_ = false;
  Additions additions_;
};

/// Marks the calling thread as running a work function of `database` for the
/// scope's lifetime. A Write or Read on the same database from inside work
/// would wait for the writer thread or a pooled connection that the outer
/// call holds, so both backends refuse it instead of deadlocking.
class WorkScope {
 public:
  explicit WorkScope(const Database* database);
  ~WorkScope();
  WorkScope(const WorkScope&) = delete;
  WorkScope& operator=(const WorkScope&) = delete;

  static bool Inside(const Database* database);
  static Error NestedCallError();

 private:
  const Database* previous_;
};

}  // namespace clozit::storage::detail
