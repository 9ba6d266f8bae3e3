// common/realtime: real-time scheduling for latency-bound threads.
//
// The media path sends a frame every 20 ms per call; under the default
// time-sharing scheduler a busy machine can leave a runnable I/O thread waiting
// a whole time slice (several ms) behind other threads, which shows up as frame
// jitter. Telephony servers run their media threads under SCHED_RR for that
// reason (Asterisk `-p`, FreeSWITCH `-rp`); Clozit does when
// `server.io_realtime_priority` is set (ADR 0018). The kernel's real-time
// throttling (sched_rt_runtime_us, 95 % by default) still leaves other
// threads 5 % of every second, so a runaway I/O thread slows the machine
// without locking it up. Threads started from a real-time thread would
// inherit its policy: SetRealtimePriority asks the kernel to reset it in
// them (SCHED_RESET_ON_FORK).
#pragma once

#include "common/result.hpp"

namespace clozit {

/// The calling thread's scheduling, to give back what RunRealtime took.
struct ThreadScheduling {
  int policy = 0;
  int priority = 0;
};

/// Moves the calling thread to SCHED_RR at `priority` (1..99). Returns what it
/// had before. Errors: invalid_argument (priority out of range), permission_denied
/// (no CAP_SYS_NICE and no RLIMIT_RTPRIO allowance) — the thread is unchanged then.
Result<ThreadScheduling> SetRealtimePriority(int priority);

/// Puts the calling thread back to what SetRealtimePriority returned.
void RestoreScheduling(const ThreadScheduling& previous);

}  // namespace clozit
