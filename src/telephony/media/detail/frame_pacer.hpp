// The pacing clock of the media sessions that live on one io_context. A session sending audio asks to
// be woken when its next 20 ms frame is due; the pacer wakes every session due within the same
// millisecond from one timer, so 1,000 streams cost about one timer wake-up per millisecond per I/O
// thread instead of one steady_timer re-arm (and its timerfd_settime) per frame per stream.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp needs std::exchange

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace clozit::telephony::media::detail {

/// What the pacer wakes: a media session (or a test's recorder).
class Paced {
 public:
  virtual ~Paced() = default;
  /// The wake-up. Runs on executor().
  virtual void OnPace() = 0;
  virtual boost::asio::any_io_executor executor() const = 0;
};

class FramePacer final : public boost::asio::execution_context::service {
 public:
  using Clock = std::chrono::steady_clock;
  using key_type = FramePacer;
  static inline boost::asio::execution_context::id id;  // NOLINT: Asio's service identity

  explicit FramePacer(boost::asio::execution_context& context);

  /// The pacer of the io_context behind `executor` (created on first use).
  static FramePacer& Of(const boost::asio::any_io_executor& executor);

  /// Calls `paced->OnPace()` on its executor at `due` or within the millisecond after it (never before).
  /// One wake per call; a media session keeps at most one pending (its `pacing_`).
  void WakeAt(Clock::time_point due, std::shared_ptr<Paced> paced);

  /// Wakes waiting (tests).
  size_t Waiting() const;
  /// Timer expiries that woke something so far: what falls due in one millisecond shares one (tests).
  uint64_t Fires() const;

 private:
  struct Entry {
    Clock::time_point due;
    std::shared_ptr<Paced> paced;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const { return a.due > b.due; }
  };

  void shutdown() override;
  /// Arms the timer for the earliest entry unless it is already armed that early. Under mutex_.
  void ArmLocked();
  void Fire(uint64_t generation);

  boost::asio::any_io_executor executor_;
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;  // guarded by mutex_; a heap on Later (earliest at front), so entries move out
  std::optional<boost::asio::steady_timer> timer_;  // guarded by mutex_
  std::optional<Clock::time_point> armed_for_;      // guarded by mutex_
  uint64_t generation_ = 0;                         // guarded by mutex_: stale fires do nothing
  uint64_t fires_ = 0;                              // guarded by mutex_
};

}  // namespace clozit::telephony::media::detail
