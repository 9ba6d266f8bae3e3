// The frame pacer: never wakes anything before it is due, shares one timer expiry among what falls due
// within the same millisecond, re-arms for an earlier deadline, and lets go of what it holds when its
// io_context goes away.
#include "telephony/media/detail/frame_pacer.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

namespace clozit::telephony::media::detail {
namespace {

using namespace std::chrono_literals;
using Clock = FramePacer::Clock;

struct Wake {
  int id;
  Clock::time_point due;
  Clock::time_point woken;
};

/// Records each wake-up; stops its io_context after `expected` of them.
struct Log {
  std::mutex mutex;
  std::vector<Wake> wakes;  // guarded by mutex
  size_t expected = 0;
};

class Recorder final : public Paced {
 public:
  Recorder(int id, Clock::time_point due, boost::asio::io_context& io, Log& log)
      : id_(id), due_(due), io_(io), log_(log) {}
  void OnPace() override {
    std::lock_guard lock(log_.mutex);
    log_.wakes.push_back({id_, due_, Clock::now()});
    if (log_.wakes.size() == log_.expected) io_.stop();
  }
  boost::asio::any_io_executor executor() const override { return io_.get_executor(); }

 private:
  int id_;
  Clock::time_point due_;
  boost::asio::io_context& io_;
  Log& log_;
};

/// A single-threaded io_context (as each server I/O thread has) with its pacer and a wake log.
class FramePacerTest : public ::testing::Test {
 protected:
  boost::asio::io_context io{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard{io.get_executor()};
  Log log;
  FramePacer& pacer = FramePacer::Of(io.get_executor());
};

TEST_F(FramePacerTest, WakesNothingEarlyAndSharesATimerExpiryPerMillisecond) {
  log.expected = 100;
  auto base = std::chrono::ceil<std::chrono::milliseconds>(Clock::now()) + 20ms;
  // 100 wakes over 10 ms, handed over out of order: at most 11 distinct milliseconds.
  for (int i = 0; i < 100; ++i) {
    int k = (i * 37) % 100;
    auto due = base + std::chrono::microseconds(100 * k);
    pacer.WakeAt(due, std::make_shared<Recorder>(k, due, io, log));
  }
  EXPECT_EQ(pacer.Waiting(), 100u);
  io.run_for(5s);
  std::lock_guard lock(log.mutex);
  ASSERT_EQ(log.wakes.size(), 100u);
  for (const auto& wake : log.wakes) EXPECT_GE(wake.woken, wake.due) << "wake " << wake.id << " came early";
  // Woken in deadline order: each expiry hands its entries over earliest first.
  for (size_t i = 1; i < log.wakes.size(); ++i) EXPECT_LE(log.wakes[i - 1].due, log.wakes[i].due);
  EXPECT_GE(pacer.Fires(), 1u);
  EXPECT_LE(pacer.Fires(), 11u);
  EXPECT_EQ(pacer.Waiting(), 0u);
}

TEST_F(FramePacerTest, AnEarlierDeadlineReArmsTheTimer) {
  log.expected = 1;
  auto now = Clock::now();
  pacer.WakeAt(now + 2s, std::make_shared<Recorder>(1, now + 2s, io, log));
  pacer.WakeAt(now + 10ms, std::make_shared<Recorder>(2, now + 10ms, io, log));
  io.run_for(5s);
  std::lock_guard lock(log.mutex);
  ASSERT_EQ(log.wakes.size(), 1u);
  EXPECT_EQ(log.wakes[0].id, 2);
  EXPECT_LT(log.wakes[0].woken - now, 1s) << "the 10 ms wake waited for the 2 s timer";
  EXPECT_EQ(pacer.Waiting(), 1u);
}

TEST(FramePacer, ReleasesWhatItHoldsWhenTheContextGoesAway) {
  Log log;
  std::weak_ptr<Recorder> held;
  {
    boost::asio::io_context io(1);
    auto recorder = std::make_shared<Recorder>(1, Clock::now() + 1h, io, log);
    held = recorder;
    FramePacer::Of(io.get_executor()).WakeAt(Clock::now() + 1h, std::move(recorder));
    EXPECT_FALSE(held.expired());
  }
  EXPECT_TRUE(held.expired());
  EXPECT_TRUE(log.wakes.empty());
}

TEST(FramePacer, OneContextOnePacerWhicheverExecutorAsks) {
  boost::asio::io_context io(1);
  auto strand = boost::asio::make_strand(io);
  EXPECT_EQ(&FramePacer::Of(io.get_executor()), &FramePacer::Of(boost::asio::any_io_executor(strand)));
  boost::asio::io_context other(1);
  EXPECT_NE(&FramePacer::Of(io.get_executor()), &FramePacer::Of(other.get_executor()));
}

}  // namespace
}  // namespace clozit::telephony::media::detail
