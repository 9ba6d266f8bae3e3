#include "http/rate_limiter.hpp"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "common/clock.hpp"

namespace clozit::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TimePoint Start() { return TimePoint(std::chrono::microseconds(1'767'225'600'000'000)); }  // 2026-01-01

TEST(RateLimiter, AllowsTheBurstThenRefuses) {
  ManualClock clock(Start());
  RateLimiter limiter(clock, 1, seconds(1), 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.Take("k").allowed) << i;
  auto refused = limiter.Take("k");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(1));
}

TEST(RateLimiter, PeekDecidesAsTakeWouldWithoutTakingAToken) {
  ManualClock clock(Start());
  RateLimiter limiter(clock, 1, seconds(1), 2);
  EXPECT_TRUE(limiter.Peek("k").allowed) << "an unknown key has its whole burst";
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.Peek("k").allowed);
  ASSERT_TRUE(limiter.Take("k").allowed);
  ASSERT_TRUE(limiter.Take("k").allowed);
  auto peeked = limiter.Peek("k");
  EXPECT_FALSE(peeked.allowed);
  EXPECT_EQ(peeked.retry_after, seconds(1));
  clock.Advance(seconds(1));
  EXPECT_TRUE(limiter.Peek("k").allowed);
  EXPECT_TRUE(limiter.Take("k").allowed) << "peeking took nothing";
  EXPECT_FALSE(limiter.Take("k").allowed);
}

TEST(RateLimiter, RefillsWithTimeUpToTheBurst) {
  ManualClock clock(Start());
  RateLimiter limiter(clock, 2, seconds(1), 4);  // one token per 500 ms
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(limiter.Take("k").allowed);
  ASSERT_FALSE(limiter.Take("k").allowed);

  clock.Advance(milliseconds(499));
  EXPECT_FALSE(limiter.Take("k").allowed);
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(limiter.Take("k").allowed);
  EXPECT_FALSE(limiter.Take("k").allowed);

  // A long pause refills only up to the burst.
  clock.Advance(seconds(3600));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limiter.Take("k").allowed) << i;
  EXPECT_FALSE(limiter.Take("k").allowed);
}

TEST(RateLimiter, RetryAfterIsTheWaitForOneTokenRoundedUp) {
  ManualClock clock(Start());
  RateLimiter limiter(clock, 30, std::chrono::minutes(1), 30);  // one token per 2 s
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(limiter.Take("ip:1.2.3.4").allowed);
  auto refused = limiter.Take("ip:1.2.3.4");
  ASSERT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(2));

  clock.Advance(milliseconds(1500));
  refused = limiter.Take("ip:1.2.3.4");
  ASSERT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, seconds(1));  // 0.5 s left, rounded up

  clock.Advance(milliseconds(500));
  EXPECT_TRUE(limiter.Take("ip:1.2.3.4").allowed);
}

TEST(RateLimiter, KeysHaveSeparateBuckets) {
  ManualClock clock(Start());
  RateLimiter limiter(clock, 1, seconds(10), 1);
  EXPECT_TRUE(limiter.Take("a").allowed);
  EXPECT_FALSE(limiter.Take("a").allowed);
  EXPECT_TRUE(limiter.Take("b").allowed);
  EXPECT_FALSE(limiter.Take("b").allowed);
  auto refused = limiter.Take("a");
  EXPECT_EQ(refused.retry_after, seconds(10));
}

TEST(RateLimiter, ManyIdleKeysAreForgottenAndStartFull) {
  ManualClock clock(Start());
  RateLimiter limiter(clock, 1, seconds(1), 2);
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(limiter.Take("key" + std::to_string(i)).allowed);
  ASSERT_TRUE(limiter.Take("hot").allowed);
  ASSERT_TRUE(limiter.Take("hot").allowed);
  ASSERT_FALSE(limiter.Take("hot").allowed);
  // After a full refill period the sweep may drop idle buckets; a dropped key comes back with a full burst,
  // exactly as if it had been kept and refilled.
  clock.Advance(seconds(5));
  EXPECT_TRUE(limiter.Take("key7").allowed);
  EXPECT_TRUE(limiter.Take("key7").allowed);
  EXPECT_FALSE(limiter.Take("key7").allowed);
  EXPECT_TRUE(limiter.Take("hot").allowed);
}

TEST(RateLimiter, ClockGoingBackwardsGrantsNothing) {
  ManualClock clock(Start());
  RateLimiter limiter(clock, 1, seconds(1), 1);
  ASSERT_TRUE(limiter.Take("k").allowed);
  clock.Advance(-seconds(30));
  EXPECT_FALSE(limiter.Take("k").allowed);
}

}  // namespace
}  // namespace clozit::http
