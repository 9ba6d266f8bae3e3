// http: the outermost middleware every request passes through.
//
// Instrument() gives each request an id (a well-formed incoming X-Request-Id
// is kept, so a caller can correlate), turns an escaped exception into a
// problem+json 500 instead of a dropped connection, records the metrics, and
// writes one JSON access-log line. The log carries the route pattern, never
// the raw path or query, which may hold phone numbers or tokens.
#pragma once

#include <functional>
#include <string>

#include "common/clock.hpp"
#include "http/metrics.hpp"
#include "http/router.hpp"

namespace clozit::http {

struct InstrumentOptions {
  bool access_log = true;
  /// Extra fields for the access log (e.g. tenant id), computed after the handler ran.
  std::function<std::string(const Request&)> principal_of;
};

Handler Instrument(Handler inner, Metrics& metrics, Random& random, InstrumentOptions options);

}  // namespace clozit::http
