// Clozit's configuration: one TOML file, every key overridable from the
// environment as CLOZIT_<SECTION>__<KEY> (e.g. CLOZIT_SERVER__PORT=9000); a
// nested table's keys as CLOZIT_<SECTION>__<TABLE>__<KEY>
// ([billing.stripe] secret_key: CLOZIT_BILLING__STRIPE__SECRET_KEY).
//
// Secrets (database.password, ...) are refused in the file: they come only
// from the environment or from a `<key>_file` path the file may name. Unknown
// keys and wrong types are errors that name the key, so `clozit config check`
// can tell the operator exactly what is wrong. Loading is pure; the result is
// an immutable value shared by reference.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/result.hpp"

namespace clozit {

struct ServerConfig {
  std::string listen_address = "127.0.0.1";
  int64_t port = 8080;
  /// Without TLS the server refuses non-loopback addresses unless this is set.
  bool allow_plaintext_public = false;
  /// Reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For names the client.
  std::string trusted_proxies;
  int64_t io_threads = 2;
  /// 1..99: I/O threads run SCHED_RR at this priority (ADR 0018); 0: off.
  int64_t io_realtime_priority = 0;
  int64_t worker_threads = 4;
  int64_t body_limit_bytes = 1 << 20;
  int64_t upload_limit_bytes = int64_t{16} << 30;  // streamed uploads (CSV imports), spooled to disk
  int64_t header_timeout_ms = 10'000;
  int64_t idle_timeout_ms = 60'000;
  int64_t shutdown_deadline_ms = 10'000;
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string public_base_url;  // for links in emails and carrier webhooks; defaults from address and port
  bool tls() const { return !tls_cert_file.empty(); }
};

struct DatabaseConfig {
  /// "sqlite:PATH" (embedded default) or "postgresql://user@host:port/db".
  std::string url = "sqlite:var/clozit.db";
  std::string password;  // secret: CLOZIT_DATABASE__PASSWORD or database.password_file
  int64_t pool_size = 8;
  int64_t busy_timeout_ms = 5'000;
  int64_t write_batch_max = 64;
  int64_t sqlite_checkpoint_pages = 64'000;
};

struct AccountsConfig {
  int64_t session_idle_minutes = 12 * 60;
  int64_t session_absolute_hours = 7 * 24;
  int64_t password_min_length = 10;
  /// argon2id cost; defaults are libsodium's "interactive" limits.
  int64_t argon2_opslimit = 2;
  int64_t argon2_memlimit_kib = 64 * 1024;
  int64_t login_max_failures = 5;  // per account and client address; ten times this per account from anywhere
  int64_t login_lockout_seconds = 15 * 60;
  int64_t invitation_valid_hours = 72;
};

struct RateLimitConfig {
  /// Token bucket per API key or session.
  int64_t per_principal_per_second = 100;
  int64_t per_principal_burst = 200;
  /// Sign-up, login and invitation acceptance per client IP.
  int64_t auth_per_ip_per_minute = 30;
};

struct LogConfig {
  std::string level = "info";
  bool access_log = true;
};

struct DemoConfig {
  /// Seed a demo tenant (owner demo@clozit.local) on first start.
  bool seed = false;
  std::string owner_password;  // secret
};

/// [billing.stripe]: the Stripe account that sells credit packs. Unset secret_key: no Stripe.
struct StripeConfig {
  std::string secret_key;      // secret: CLOZIT_BILLING__STRIPE__SECRET_KEY or billing.stripe.secret_key_file
  std::string webhook_secret;  // secret: the endpoint's signing secret (whsec_…)
  std::string api_base = "https://api.stripe.com";
  int64_t timestamp_tolerance_seconds = 300;  // webhook signatures older or newer than this are refused
  bool configured() const { return !secret_key.empty(); }
};

struct BillingConfig {
  /// How long a phone number whose monthly fee could not be charged is kept before it is flagged for release.
  int64_t number_fee_grace_days = 7;
  /// How often the billing jobs (number fees, subscription renewals, expiries) run.
  int64_t jobs_interval_seconds = 60;
  /// Credit packs on sale: "id:credits:price_minor:CURRENCY" comma-separated, e.g. "starter:100:1000:USD".
  std::string credit_packs;
  /// Where the payment page sends the payer back; default: public_base_url + /billing/success|cancelled.
  std::string checkout_success_url;
  std::string checkout_cancel_url;
  StripeConfig stripe;
};

struct TelephonyConfig {
  /// 32 bytes (64 hex digits or base64) sealing provider credentials; secret. Empty: a key file
  /// beside the SQLite database (var/ with PostgreSQL), created on first start.
  std::string credentials_key;
  /// `clozit serve` starts the carrier emulator in-process and makes it the platform's default account.
  bool embedded_emulator = true;
  /// The embedded emulator's delays in percent of real time (1: a 20 s call lasts 0.2 s).
  int64_t emulator_time_scale_percent = 100;
  /// Scenario file (JSON) mapping callee numbers to personas; empty: everyone answers.
  std::string emulator_scenario;
  /// How often `clozit serve` charges due number fees and releases numbers whose fees went unpaid.
  int64_t number_job_interval_seconds = 3600;
};

struct MediaConfig {
  /// What answers on a call's media stream until the voice agent lands: "echo" or "silence".
  std::string handler = "echo";
  /// HMAC key of the per-call media tokens (secret: CLOZIT_MEDIA__TOKEN_SECRET or media.token_secret_file).
  /// Empty: a random key per process (tokens then die with a restart, which only ends live streams).
  std::string token_secret;
  int64_t token_ttl_seconds = 6 * 3600;
  int64_t max_queued_frames = 3000;  // 60 s of outbound audio per call
  int64_t start_timeout_ms = 10'000;
};

struct Config {
  ServerConfig server;
  DatabaseConfig database;
  AccountsConfig accounts;
  RateLimitConfig rate_limit;
  LogConfig log;
  DemoConfig demo;
  BillingConfig billing;
  TelephonyConfig telephony;
  MediaConfig media;
};

using Environment = std::map<std::string, std::string>;

/// The process environment, as a map (only CLOZIT_* entries).
Environment ProcessEnvironment();

/// Where the server keeps its files (uploads, import spools): beside the SQLite
/// database, or var/ with PostgreSQL.
std::string DataDirectory(const Config& config);

/// Loads `path` (empty: defaults only) and applies `env` overrides. Errors name
/// the key in `field` as "section.key".
Result<Config> LoadConfig(const std::string& path, const Environment& env);

}  // namespace clozit
