// Group commit: callers of Database::Write queue their work and block; one
// writer thread takes up to `batch_max` queued requests at a time and hands
// them to the backend's batch runner, which runs them in one transaction (a
// savepoint each) and reports one outcome per request. Both backends use it:
// SQLite because it has one writer anyway, PostgreSQL because one
// transaction per batch turns N commits (N WAL flushes) into one and keeps
// this node's writers from failing each other's serializable transactions.
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
  /// Runs the works of one batch; returns one outcome per work, in order.
  using BatchRunner = std::function<std::vector<Outcome>(const std::vector<const Work*>& batch)>;

  WriteQueue(size_t batch_max, BatchRunner runner);
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
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::unique_ptr<Request>> queue_;  // guarded by mutex_
  bool stopping_ = false;                       // guarded by mutex_
  std::thread thread_;                          // last: it runs once everything above exists
};

}  // namespace clozit::storage::detail
