#include "common/ids.hpp"

#include <gtest/gtest.h>

#include <set>

namespace clozit {
namespace {

TEST(Ids, UlidsSortByCreationTime) {
  ManualClock clock(FromUnixMillis(1'700'000'000'000));
  SeededRandom random(42);
  std::string previous;
  for (int i = 0; i < 100; ++i) {
    clock.Advance(std::chrono::milliseconds(1));
    auto id = NewUlid(clock, random);
    EXPECT_TRUE(IsUlid(id)) << id;
    EXPECT_LT(previous, id);
    previous = id;
  }
}

TEST(Ids, TypedIdsCarryTheirPrefixAndValidate) {
  ManualClock clock(FromUnixMillis(1'700'000'000'000));
  SeededRandom random(1);
  auto tenant = TenantId::New(clock, random);
  EXPECT_EQ(tenant.str().substr(0, 4), "ten_");
  EXPECT_TRUE(TenantId::Valid(tenant.str()));
  EXPECT_FALSE(UserId::Valid(tenant.str()));
  EXPECT_FALSE(TenantId::Valid("ten_short"));
  EXPECT_FALSE(TenantId::Valid("ten_01HZZZZZZZZZZZZZZZZZZZZZZI"));  // I is not Crockford
}

TEST(Ids, SeededRandomIsRepeatableAndDistinct) {
  ManualClock clock(FromUnixMillis(0));
  SeededRandom a(7), b(7);
  EXPECT_EQ(NewUlid(clock, a), NewUlid(clock, b));
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewUlid(clock, a));
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(Clock, FormatsRfc3339InUtc) {
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(1'764'163'986'123)), "2025-11-26T13:33:06.123Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(-1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatRfc3339(FromUnixMillis(951'782'400'000)), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339(TimePoint(std::chrono::microseconds(1'999))), "1970-01-01T00:00:00.001Z");
}

}  // namespace
}  // namespace clozit
