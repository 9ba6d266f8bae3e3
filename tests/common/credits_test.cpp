#include "common/credits.hpp"

#include <gtest/gtest.h>

namespace clozit {
namespace {

TEST(Credits, ParsesAndFormatsExactDecimals) {
  EXPECT_EQ(Credits::Parse("12.5")->micros(), 12'500'000);
  EXPECT_EQ(Credits::Parse("-0.000001")->micros(), -1);
  EXPECT_EQ(Credits::Parse("0")->ToString(), "0");
  EXPECT_EQ(Credits::FromMicros(12'500'000).ToString(), "12.5");
  EXPECT_EQ(Credits::FromMicros(-1).ToString(), "-0.000001");
  EXPECT_EQ(Credits::FromMicros(INT64_MIN).ToString(), "-9223372036854.775808");
}

TEST(Credits, RefusesMalformedAmounts) {
  for (const char* bad : {"", "1.", ".5", "1.0000001", "1e6", "abc", "1,5", "--1", "99999999999999999999"}) {
    auto parsed = Credits::Parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().field, "amount");
  }
}

TEST(Credits, ParseRefusesAFractionThatOverflowsTheWholePart) {
  EXPECT_EQ(Credits::Parse("9223372036854.775807")->micros(), INT64_MAX);
  EXPECT_EQ(Credits::Parse("-9223372036854.775807")->micros(), -INT64_MAX);
  for (const char* bad : {"9223372036854.775808", "9223372036854.9", "-9223372036854.9"}) {
    auto parsed = Credits::Parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(parsed.error().field, "amount");
  }
}

TEST(Credits, ArithmeticRefusesOverflow) {
  auto max = Credits::FromMicros(INT64_MAX);
  EXPECT_FALSE(max.Add(Credits::FromMicros(1)).ok());
  EXPECT_FALSE(Credits::FromMicros(INT64_MIN).Subtract(Credits::FromMicros(1)).ok());
  EXPECT_FALSE(max.Multiply(2).ok());
  EXPECT_FALSE(Credits::FromWhole(INT64_MAX / 1000).ok());
  EXPECT_EQ(Credits::FromMicros(5).Add(Credits::FromMicros(7))->micros(), 12);
  EXPECT_EQ(Credits::FromMicros(5).Subtract(Credits::FromMicros(7))->micros(), -2);
}

}  // namespace
}  // namespace clozit
