#include "api/idempotency.hpp"

#include <sodium.h>

#include <array>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/encoding.hpp"

namespace clozit::api {
namespace {
// Secrets are shown once and never stored readable; a replay gets the response without them.
std::string RedactSecrets(const std::string& body) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return body;
  bool redacted = false;
  for (const char* field : {"secret", "csrf_token", "token"}) {
    if (json.contains(field)) {
      json[field] = nullptr;
      redacted = true;
    }
  }
  if (!redacted) return body;
  json["secrets_redacted"] = true;
  return json.dump();
}

// What makes two requests "the same" for a key: method, path, the decoded query (a contact import's consent and
// mapping travel there) and the body, read from its spool file when the route streamed it. Without a query or a
// spooled body the digest is SHA-256 of "METHOD path\nbody", as stored before queries and files counted, so keys
// claimed before an upgrade still replay. Nullopt when the spool file cannot be read.
std::optional<std::string> RequestFingerprint(const http::Request& request) {
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  auto add = [&state](std::string_view text) {
    crypto_hash_sha256_update(&state, reinterpret_cast<const uint8_t*>(text.data()), text.size());
  };
  add(request.method);
  add(" ");
  add(request.path);
  if (!request.query.empty()) {
    add("?");
    // Length-prefixed, so no choice of names and values can make two different queries read alike.
    for (const auto& [name, value] : request.query) {
      add(std::to_string(name.size()) + ":" + name + std::to_string(value.size()) + ":" + value + ";");
    }
  }
  add("\n");
  add(request.body);
  if (!request.body_file.empty()) {
    std::ifstream file(request.body_file, std::ios::binary);
    if (!file) return std::nullopt;
    std::array<char, 64 * 1024> buffer;
    while (file.read(buffer.data(), buffer.size()) || file.gcount() > 0) {
      add(std::string_view(buffer.data(), static_cast<size_t>(file.gcount())));
    }
    if (file.bad()) return std::nullopt;
  }
  std::array<uint8_t, crypto_hash_sha256_BYTES> digest;
  crypto_hash_sha256_final(&state, digest.data());
  return Hex(digest);
}
}  // namespace

http::Response IdempotencyStore::Run(const std::string& scope, const http::Request& request,
                                     const std::function<http::Response()>& handler) {
  std::string key(request.headers.GetOr("Idempotency-Key", ""));
  if (key.empty() || key.size() > 255) {
    return http::Problem(Error::InvalidArgument("Idempotency-Key", "Idempotency-Key must be 1 to 255 characters"),
                         request.request_id);
  }
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7E) {
      return http::Problem(Error::InvalidArgument("Idempotency-Key", "Idempotency-Key must be printable ASCII"),
                           request.request_id);
    }
  }
  PurgeExpired();
  auto fingerprint = RequestFingerprint(request);
  if (!fingerprint) {
    return http::Problem(Error::Internal("cannot read the request body to compare it with the key's"),
                         request.request_id);
  }
  const std::string& request_hash = *fingerprint;
  int64_t now = ToUnixMillis(clock_.Now());

  // Claim the key, or learn what happened to it, in one transaction.
  enum class Outcome { kClaimed, kReplay, kInFlight, kMismatch } outcome = Outcome::kClaimed;
  http::Response stored;
  auto claimed = db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_ASSIGN_OR_RETURN(auto rows, tx.Query("SELECT request_hash, status, content_type, body, created_at FROM "
                                                "idempotency_keys WHERE scope = $1 AND key = $2",
                                                {scope, key}));
    if (!rows.empty()) {
      const auto& row = rows[0];
      bool abandoned = row.Int(1) == 0 && now - row.Int(4) > kInFlightTakeover.count() * 1000;
      if (row.Text(0) != request_hash) {
        outcome = Outcome::kMismatch;
        return Ok();
      }
      if (row.Int(1) == 0 && !abandoned) {
        outcome = Outcome::kInFlight;
        return Ok();
      }
      if (row.Int(1) != 0) {
        outcome = Outcome::kReplay;
        stored.status = static_cast<int>(row.Int(1));
        if (!row.Text(2).empty()) stored.headers.Set("Content-Type", row.Text(2));
        stored.body = row.Text(3);
        return Ok();
      }
      CLOZIT_TRY(tx.Exec("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2", {scope, key}));
    }
    CLOZIT_TRY(
        tx.Exec("INSERT INTO idempotency_keys (scope, key, request_hash, status, content_type, body, created_at) "
                "VALUES ($1, $2, $3, 0, '', '', $4)",
                {scope, key, request_hash, now}));
    return Ok();
  });
  if (!claimed) return http::Problem(claimed.error(), request.request_id);
  switch (outcome) {
    case Outcome::kMismatch:
      return http::Problem(Error::Make(ErrorCode::kIdempotencyMismatch,
                                       "this Idempotency-Key was used with a different request", "Idempotency-Key"),
                           request.request_id);
    case Outcome::kInFlight:
      return http::Problem(Error::Make(ErrorCode::kConflict, "a request with this Idempotency-Key is still in progress",
                                       "Idempotency-Key"),
                           request.request_id);
    case Outcome::kReplay:
      stored.headers.Set("Idempotent-Replayed", "true");
      return stored;
    case Outcome::kClaimed:
      break;
  }

  http::Response response = handler();
  bool retryable = response.status >= 500 || response.status == 409 || response.status == 429;
  auto finished = db_.Write([&](storage::Tx& tx) -> Result<void> {
    if (retryable) {
      return tx.Exec("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2", {scope, key}).ok()
                 ? Ok()
                 : Error::Internal("cannot release idempotency key");
    }
    auto updated = tx.Exec(
        "UPDATE idempotency_keys SET status = $3, content_type = $4, body = $5 WHERE scope = $1 AND "
        "key = $2",
        {scope, key, int64_t{response.status}, std::string(response.headers.GetOr("Content-Type", "")),
         RedactSecrets(response.body)});
    if (!updated) return updated.error();
    return Ok();
  });
  (void)finished;  // the response stands; a failed store only means a retry re-runs after the takeover window
  return response;
}

void IdempotencyStore::PurgeExpired() {
  int64_t now = ToUnixMillis(clock_.Now());
  int64_t last = last_purge_ms_.load();
  if (now - last < 3'600'000 || !last_purge_ms_.compare_exchange_strong(last, now)) return;
  int64_t cutoff = now - std::chrono::duration_cast<std::chrono::milliseconds>(kRetention).count();
  auto purged = db_.Write([&](storage::Tx& tx) -> Result<void> {
    CLOZIT_TRY(tx.Exec("DELETE FROM idempotency_keys WHERE created_at < $1", {cutoff}));
    return Ok();
  });
  (void)purged;  // retried at the next hourly opportunity
}

}  // namespace clozit::api
