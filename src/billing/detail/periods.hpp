// Calendar arithmetic for billing periods anchored at a start instant: the
// n-th monthly anniversary keeps the start's day of month and time of day,
// clamped to the month's last day (Jan 31 → Feb 28/29 → Mar 31). Anchoring
// every period at the start, not at the previous period, keeps a clamped
// February from shifting every later anniversary. Pure functions.
#pragma once

#include <cstdint>

#include "common/clock.hpp"

namespace clozit::billing::detail {

/// `anchor` plus `months` calendar months (UTC), the day clamped to the target month's end.
TimePoint AddMonthsClamped(TimePoint anchor, int64_t months);

}  // namespace clozit::billing::detail
