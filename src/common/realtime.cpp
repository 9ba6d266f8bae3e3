#include "common/realtime.hpp"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace clozit {

Result<ThreadScheduling> SetRealtimePriority(int priority) {
  const int lowest = sched_get_priority_min(SCHED_RR);
  const int highest = sched_get_priority_max(SCHED_RR);
  if (priority < lowest || priority > highest) {
    return Error::InvalidArgument(
        "priority", "real-time priority must be " + std::to_string(lowest) + ".." + std::to_string(highest));
  }
  ThreadScheduling previous;
  sched_param param{};
  if (int code = pthread_getschedparam(pthread_self(), &previous.policy, &param); code != 0) {
    return Error::Internal(std::string("pthread_getschedparam: ") + std::strerror(code));
  }
  previous.priority = param.sched_priority;
  param.sched_priority = priority;
  // sched_setscheduler on thread id 0 is the calling thread; RESET_ON_FORK keeps threads it starts (Asio's
  // resolver, say) time-shared.
  if (sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &param) != 0) {
    const int code = errno;
    ErrorCode kind = code == EPERM ? ErrorCode::kPermissionDenied : ErrorCode::kInternal;
    return Error::Make(kind, std::string("cannot schedule the thread SCHED_RR: ") + std::strerror(code));
  }
  return previous;
}

void RestoreScheduling(const ThreadScheduling& previous) {
  sched_param param{};
  param.sched_priority = previous.priority;
  // Going back to time-sharing never needs a privilege; dropping RESET_ON_FORK would, so it stays (it changes
  // nothing for a time-shared thread).
  sched_setscheduler(0, previous.policy | SCHED_RESET_ON_FORK, &param);
}

}  // namespace clozit
