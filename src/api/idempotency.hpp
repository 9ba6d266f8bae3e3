// api: Idempotency-Key handling for POST requests.
//
// The first request with a key claims it (a row with status 0 = in flight),
// runs, and stores its response; a retry with the same key and the same
// request (method, path, query and body, a streamed body by its spooled
// file) gets the stored response again; the same key with a different
// request is refused (422); a retry while the first is still running gets
// 409. Responses that say "try again" (5xx, 409, 429) release the key. Stored
// responses have their one-time secrets (API-key secret, CSRF token) nulled:
// the database never holds them readable, so a replay omits them. Keys
// are kept 7 days. Scoped per principal, so tenants cannot collide.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "common/clock.hpp"
#include "http/message.hpp"
#include "storage/database.hpp"

namespace clozit::api {

class IdempotencyStore {
 public:
  IdempotencyStore(storage::Database& db, const Clock& clock) : db_(db), clock_(clock) {}
  /// Runs `handler` at most once per (scope, key) and replays its response.
  http::Response Run(const std::string& scope, const http::Request& request,
                     const std::function<http::Response()>& handler);

  static constexpr std::chrono::hours kRetention{7 * 24};
  static constexpr std::chrono::seconds kInFlightTakeover{120};

 private:
  void PurgeExpired();
  storage::Database& db_;
  const Clock& clock_;
  std::atomic<int64_t> last_purge_ms_{0};
};

}  // namespace clozit::api
