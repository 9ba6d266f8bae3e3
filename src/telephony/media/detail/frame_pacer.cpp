#include "telephony/media/detail/frame_pacer.hpp"

#include <algorithm>

#include <boost/asio.hpp>

namespace clozit::telephony::media::detail {
namespace {

/// `at` rounded up to a whole millisecond of the steady clock: what falls due within one millisecond
/// shares one wake-up, and nothing is woken before it is due.
FramePacer::Clock::time_point CeilToMillisecond(FramePacer::Clock::time_point at) {
  return std::chrono::ceil<std::chrono::milliseconds>(at);
}

}  // namespace

FramePacer::FramePacer(boost::asio::execution_context& context) : boost::asio::execution_context::service(context) {}

FramePacer& FramePacer::Of(const boost::asio::any_io_executor& executor) {
  auto& context = boost::asio::query(executor, boost::asio::execution::context);
  auto& pacer = boost::asio::use_service<FramePacer>(context);
  std::lock_guard lock(pacer.mutex_);
  if (!pacer.timer_) {
    // The context's own executor, not the (possibly strand-wrapped) one of the connection that asked first.
    using IoExecutor = boost::asio::io_context::executor_type;
    if (const auto* strand = executor.target<boost::asio::strand<IoExecutor>>()) {
      pacer.executor_ = strand->get_inner_executor();
    } else {
      pacer.executor_ = executor;
    }
    pacer.timer_.emplace(pacer.executor_);
  }
  return pacer;
}

void FramePacer::WakeAt(Clock::time_point due, std::shared_ptr<Paced> paced) {
  std::lock_guard lock(mutex_);
  if (!timer_) return;  // shut down
  entries_.push_back({due, std::move(paced)});
  std::push_heap(entries_.begin(), entries_.end(), Later{});
  ArmLocked();
}

size_t FramePacer::Waiting() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

uint64_t FramePacer::Fires() const {
  std::lock_guard lock(mutex_);
  return fires_;
}

void FramePacer::ArmLocked() {
  if (entries_.empty()) return;
  auto at = CeilToMillisecond(entries_.front().due);
  if (armed_for_ && *armed_for_ <= at) return;
  armed_for_ = at;
  uint64_t generation = ++generation_;
  timer_->expires_at(at);  // cancels an earlier wait, whose handler then finds its generation stale
  timer_->async_wait([this, generation](boost::system::error_code ec) {
    if (!ec) Fire(generation);
  });
}

void FramePacer::Fire(uint64_t generation) {
  std::vector<std::shared_ptr<Paced>> due;
  {
    std::lock_guard lock(mutex_);
    if (generation != generation_ || !timer_) return;
    ++fires_;
    armed_for_.reset();
    auto now = Clock::now();
    while (!entries_.empty() && entries_.front().due <= now) {
      std::pop_heap(entries_.begin(), entries_.end(), Later{});
      due.push_back(std::move(entries_.back().paced));
      entries_.pop_back();
    }
    ArmLocked();
  }
  for (auto& paced : due) {
    auto executor = paced->executor();
    boost::asio::dispatch(executor, [paced = std::move(paced)] { paced->OnPace(); });
  }
}

void FramePacer::shutdown() {
  std::lock_guard lock(mutex_);
  if (timer_) timer_->cancel();
  entries_.clear();
  timer_.reset();
}

}  // namespace clozit::telephony::media::detail
