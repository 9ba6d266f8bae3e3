// app: wiring. Builds every module from the configuration in one place and
// owns them for the life of the process. No other code constructs modules.
#pragma once

#include <memory>

#include "accounts/accounts.hpp"
#include "api/api.hpp"
#include "billing/billing.hpp"
#include "billing/stripe/webhooks.hpp"
#include "common/clock.hpp"
#include "common/config.hpp"
#include "http/metrics.hpp"
#include "http/server.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"
#include "telephony/telephony.hpp"

namespace clozit::emulator {
class Emulator;
}
#include "telephony/media/media_endpoints.hpp"

namespace clozit::app {

class EmbeddedEmulator;

/// Opens the configured database (creating the SQLite file's folder).
Result<std::unique_ptr<storage::Database>> OpenDatabase(const Config& config);

class Application {
 public:
  /// Opens the database, applies pending migrations, and builds the modules.
  static Result<std::unique_ptr<Application>> Create(Config config);
  ~Application();
  /// Seeds the demo tenant when configured and absent.
  Result<void> SeedDemo();
  /// Binds and serves until SIGTERM/SIGINT.
  Result<void> Serve();

  accounts::Accounts& accounts() { return *accounts_; }
  api::Api& api() { return *api_; }
  storage::Database& db() { return *db_; }
  billing::Billing& billing() { return *billing_; }
  telephony::Telephony& telephony() { return *telephony_; }
  /// Mints the token a call's media stream must present (telephony/media/media_token.hpp).
  const telephony::media::MediaTokens& media_tokens() { return *media_tokens_; }

 private:
  Application() = default;
  /// Starts the in-process carrier emulator and points the platform's managed accounts at it.
  Result<void> StartEmbeddedEmulator();
  /// Charges due number fees and releases numbers billing flagged (fees unpaid past grace).
  void RunNumberJob();

  Config config_;
  SystemClock clock_;
  std::unique_ptr<SystemRandom> random_;
  std::unique_ptr<storage::Database> db_;
  std::unique_ptr<privacy::AuditLog> audit_;
  std::unique_ptr<accounts::Accounts> accounts_;
  /// Stripe when [billing.stripe] is configured, else one that refuses checkouts and refunds.
  std::unique_ptr<billing::PaymentProvider> payment_provider_;
  std::unique_ptr<billing::Billing> billing_;
  std::unique_ptr<telephony::Telephony> telephony_;
  std::unique_ptr<billing::stripe::StripeWebhooks> stripe_webhooks_;  // null without Stripe
  http::Metrics metrics_;
  std::unique_ptr<api::Api> api_;
  std::unique_ptr<EmbeddedEmulator> emulator_;  // Serve() only; stops before the modules above go away
  std::unique_ptr<telephony::media::MediaTokens> media_tokens_;
  std::unique_ptr<telephony::media::MediaEndpoints> media_;
};

}  // namespace clozit::app
