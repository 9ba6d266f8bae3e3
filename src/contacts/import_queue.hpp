// contacts: runs import jobs in the background, one at a time, on a thread
// of its own — what the API hands an upload to after spooling it to disk.
//
// Uploads are written under the spool directory, the job is created, then
// queued; the worker runs jobs in order and deletes a spooled file once its
// job has completed (the rejected rows stay in the database). At start-up,
// ResumeUnfinished() queues the jobs a previous process left pending or
// running whose file is on this node, so a restart resumes imports from their
// last committed batch. (With several nodes, a job belongs to the node that
// spooled its upload; there is no lease between nodes yet.)
// The queue holds at most 1,000 jobs; beyond that Enqueue refuses.
//
// Thread-safe. The destructor asks the running job to stop after its current
// batch (it stays resumable) and joins the worker.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "contacts/importer.hpp"

namespace clozit::contacts {

class ImportQueue {
 public:
  ImportQueue(Importer& importer, Random& random, std::string spool_directory);
  ~ImportQueue();
  ImportQueue(const ImportQueue&) = delete;
  ImportQueue& operator=(const ImportQueue&) = delete;

  /// Writes an upload under the spool directory; returns its path.
  Result<std::string> Spool(std::string_view data);
  /// Moves an upload the server already wrote to disk into the spool (a rename
  /// on the same file system); returns its new path.
  Result<std::string> Adopt(const std::string& path);
  /// Queues a created job; unavailable when the queue is full.
  Result<void> Enqueue(const TenantId& tenant, const ImportId& id);
  /// Queues every unfinished job whose file is on this node; returns how many.
  Result<int> ResumeUnfinished();
  /// Blocks until the queue is empty and no job runs (tests).
  void WaitIdle();

 private:
  void Work();

  Importer& importer_;
  Random& random_;
  std::string spool_directory_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  // State below is guarded by mutex_.
  std::deque<std::pair<TenantId, ImportId>> queue_;
  bool busy_ = false;
  std::thread worker_;  // started last, joined first
};

}  // namespace clozit::contacts
