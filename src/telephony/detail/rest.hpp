// telephony/detail: what both carrier adapters share — a small pool of
// keep-alive HTTP clients to one API origin, form/percent encoding, and the
// retry loop that honours Retry-After.
//
// RestPool is thread-safe: each Send borrows a client (or opens one) and gives
// it back when the exchange succeeded; a failed connection is dropped.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "http/client.hpp"
#include "http/form.hpp"

namespace clozit::telephony::detail {

/// How an adapter retries. `sleep` is injectable so tests do not wait.
struct RetryPolicy {
  int max_retries = 2;
  std::chrono::seconds max_retry_wait{5};  // a Retry-After beyond this is returned to the caller instead
  std::function<void(std::chrono::milliseconds)> sleep;
};

class RestPool {
 public:
  RestPool(std::string origin, http::ClientOptions options);
  /// A transport failure is kUnavailable.
  Result<http::ClientResponse> Send(const std::string& method, const std::string& target, const http::Headers& headers,
                                    const std::string& body);

 private:
  std::string origin_;
  http::ClientOptions options_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<http::Client>> idle_;  // guarded by mutex_
};

using http::FormBody;
using http::FormEncode;
std::string XmlEscape(std::string_view text);
std::string Base64(std::string_view bytes);
/// The Retry-After header in seconds (delta-seconds form), if present.
std::optional<int> RetryAfterHeader(const http::ClientResponse& response);
void SleepFor(const RetryPolicy& policy, std::chrono::milliseconds duration);

}  // namespace clozit::telephony::detail
