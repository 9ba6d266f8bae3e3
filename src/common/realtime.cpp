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
  if (int code = pthread_setschedparam(pthread_self(), SCHED_RR, &param); code != 0) {
    ErrorCode kind = code == EPERM ? ErrorCode::kPermissionDenied : ErrorCode::kInternal;
    return Error::Make(kind, std::string("cannot schedule the thread SCHED_RR: ") + std::strerror(code));
  }
  return previous;
}

void RestoreScheduling(const ThreadScheduling& previous) {
  sched_param param{};
  param.sched_priority = previous.priority;
  // Going back to time-sharing never needs a privilege.
  pthread_setschedparam(pthread_self(), previous.policy, &param);
}

}  // namespace clozit
