#include "billing/detail/periods.hpp"

#include <chrono>

namespace clozit::billing::detail {

TimePoint AddMonthsClamped(TimePoint anchor, int64_t months) {
  using namespace std::chrono;
  const sys_days day = floor<days>(anchor);
  const auto time_of_day = anchor - day;
  const year_month_day ymd{day};
  const year_month target = year_month(ymd.year(), ymd.month()) + std::chrono::months(months);
  const year_month_day_last last{target.year(), month_day_last{target.month()}};
  const std::chrono::day clamped = ymd.day() > last.day() ? last.day() : ymd.day();
  return sys_days(year_month_day(target.year(), target.month(), clamped)) + time_of_day;
}

}  // namespace clozit::billing::detail
