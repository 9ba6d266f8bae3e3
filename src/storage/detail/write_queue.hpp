// Group commit: callers of Database::Write queue their work and block; one
// writer thread takes up to `batch_max` queued requests at a time and hands
// them to the backend's batch runner, which runs them in one transaction and
// reports one outcome per request. Both backends use it: SQLite because it
// has one writer anyway, PostgreSQL because one transaction per batch turns
// N commits (N WAL flushes) into one and keeps this node's writers from
// failing each other's serializable transactions.
//
// A batch runs optimistically first: no savepoints, since nearly every write
// succeeds. A write that fails after it ran statements cannot be undone alone
// then, so the runner rolls the batch back and asks for a redo, and the batch
// runs again carefully, in a savepoint per write (work functions may be re-run
// by contract). The next few batches stay careful, so that a stream of
// failing writes does not run every batch twice (ADR 0021).
//
// Thread-safe. The destructor drains the queue before the thread exits.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/result.hpp"
#include "storage/database.hpp"

namespace clozit::storage::detail {

class WriteQueue {
 public:
  using Work = std::function<Result<void>(Tx&)>;
  struct Outcome {
    Result<void> result;
    std::exception_ptr exception;                     // what the work threw; rethrown in the caller's thread
    std::vector<std::function<void()>> after_commit;  // the work's Tx::AfterCommit; run only if result is ok
  };
  struct BatchOutcome {
    std::vector<Outcome> outcomes;  // one per work, in order; ignored when `redo`
    bool redo = false;              // not careful, a write failed after running statements: nothing committed
  };
  /// Runs the works of one batch in one transaction, a savepoint per work when `careful`.
  using BatchRunner = std::function<BatchOutcome(const std::vector<const Work*>& batch, bool careful)>;
  /// How many batches after a redo run carefully from the start.
  static constexpr int kCarefulBatchesAfterRedo = 8;

  /// `always_careful`: never an optimistic first pass (OpenOptions::careful_writes).
  WriteQueue(size_t batch_max, BatchRunner runner, bool always_careful = false);
  ~WriteQueue();
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  /// Queues `work` and blocks until its batch is done; rethrows what it threw.
  Result<void> Run(const Work& work);

 private:
  struct Request {
    const Work* work = nullptr;  // the caller blocks in Run until done is set, so this stays valid
    std::promise<Result<void>> done;
  };
  void Loop();

  const size_t batch_max_;
  const BatchRunner runner_;
  const bool always_careful_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<Request>> queue_;  // guarded by mutex_
  bool stopping_ = false;                       // guarded by mutex_
  int careful_batches_ = 0;                     // only the writer thread touches it
  std::thread thread_;                          // last: it runs once everything above exists
};

}  // namespace clozit::storage::detail
