#include "storage/detail/write_queue.hpp"

#include <algorithm>
#include <utility>

namespace clozit::storage::detail {

WriteQueue::WriteQueue(size_t batch_max, BatchRunner runner, bool always_careful)
    : batch_max_(std::max<size_t>(batch_max, 1)),
      runner_(std::move(runner)),
      always_careful_(always_careful),
      thread_([this] { Loop(); }) {}

WriteQueue::~WriteQueue() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

Result<void> WriteQueue::Run(const Work& work) {
  auto request = std::make_unique<Request>();
  request->work = &work;
  std::future<Result<void>> done = request->done.get_future();
  {
    std::lock_guard lock(mutex_);
    // Unbounded in type but not in practice: every queued request has a caller blocked on it.
    if (stopping_) return Error::Make(ErrorCode::kUnavailable, "database is closing");
    queue_.push_back(std::move(request));
  }
  changed_.notify_one();
  return done.get();
}

void WriteQueue::Loop() {
  for (;;) {
    std::vector<std::unique_ptr<Request>> batch;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and nothing left to drain
      while (!queue_.empty() && batch.size() < batch_max_) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<const Work*> works;
    works.reserve(batch.size());
    for (const auto& request : batch) works.push_back(request->work);
    const bool careful = always_careful_ || careful_batches_ > 0;
    if (careful_batches_ > 0) --careful_batches_;
    BatchOutcome ran = runner_(works, careful);
    if (ran.redo) {
      careful_batches_ = kCarefulBatchesAfterRedo;
      ran = runner_(works, true);
    }
    std::vector<Outcome>& outcomes = ran.outcomes;
    for (size_t index = 0; index < batch.size(); ++index) {
      if (outcomes[index].exception) {
        batch[index]->done.set_exception(outcomes[index].exception);
      } else {
        // A runner leaves a result ok only once the batch's COMMIT succeeded.
        if (outcomes[index].result.ok()) {
          for (auto& done : outcomes[index].after_commit) done();
        }
        batch[index]->done.set_value(std::move(outcomes[index].result));
      }
    }
  }
}

}  // namespace clozit::storage::detail
