#include "app/application.hpp"

#include <sys/stat.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "billing/jobs.hpp"
#include "billing/stripe/stripe_provider.hpp"
#include "common/encoding.hpp"
#include "emulator.hpp"
#include "storage/migrations.hpp"
#include "telephony/credentials.hpp"

namespace clozit::app {

/// The carrier emulator served on a loopback port of its own, on its own thread, for the life of Serve().
class EmbeddedEmulator {
 public:
  static Result<std::unique_ptr<EmbeddedEmulator>> Start(emulator::EmulatorOptions options, emulator::Scenario scenario,
                                                         const Clock& clock) {
    std::unique_ptr<EmbeddedEmulator> embedded(new EmbeddedEmulator());
    CLOZIT_ASSIGN_OR_RETURN(embedded->emulator_,
                            emulator::Emulator::Create(std::move(options), std::move(scenario), clock));
    http::ServerOptions server_options;
    server_options.address = "127.0.0.1";
    server_options.port = 0;
    server_options.io_threads = 1;
    server_options.worker_threads = 2;
    server_options.handle_signals = false;  // the platform's server owns SIGTERM/SIGINT
    server_options.shutdown_deadline = std::chrono::seconds(2);
    auto* emulator = embedded->emulator_.get();
    embedded->server_ = std::make_unique<http::Server>(
        server_options, [emulator](http::Request& request) { return emulator->Handle(request); });
    CLOZIT_TRY(embedded->server_->Start());
    embedded->thread_ = std::thread([server = embedded->server_.get()] { server->Run(); });
    return embedded;
  }
  ~EmbeddedEmulator() {
    if (server_) server_->Shutdown();
    if (thread_.joinable()) thread_.join();
  }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  const emulator::Emulator& emulator() const { return *emulator_; }

 private:
  EmbeddedEmulator() = default;
  std::unique_ptr<emulator::Emulator> emulator_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

/// Runs `work` every `interval` on its own thread until destroyed (which wakes it at once).
class PeriodicJob {
 public:
  PeriodicJob(std::chrono::milliseconds interval, std::function<void()> work)
      : interval_(interval), work_(std::move(work)), thread_([this] { Loop(); }) {}
  ~PeriodicJob() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      work_();
      lock.lock();
    }
  }

  const std::chrono::milliseconds interval_;
  const std::function<void()> work_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;     // last: starts once the state above exists
};

Application::~Application() = default;

void Application::RunNumberJob() {
  // BillingJobs charges the monthly fees and flags the numbers whose grace ran out; this releases those at the
  // carrier (then billing stops their fees).
  auto released = telephony_->numbers.ReleaseDue();
  if (!released) {
    spdlog::warn("number job: releasing numbers failed: {}", released.error().message);
  } else if (*released > 0) {
    spdlog::info("number job: {} numbers released for unpaid fees", *released);
  }
  // Numbers left `purchasing` (the carrier's answer to a buy was lost) are settled from its number list; ten
  // minutes are far longer than a purchase takes (two carrier requests of at most 10 s each).
  auto swept = telephony_->numbers.SweepPurchasing(std::chrono::minutes(10));
  if (!swept) {
    spdlog::warn("number job: settling half-bought numbers failed: {}", swept.error().message);
  } else if (*swept > 0) {
    spdlog::info("number job: {} half-bought numbers settled from their carrier's list", *swept);
  }
  // Calls whose final webhook was lost (Twilio does not retry status callbacks) are ended from the carrier's
  // own record; two quiet minutes leave in-flight webhooks time to land.
  auto reconciled = telephony_->calls.Reconcile(std::chrono::minutes(2));
  if (!reconciled) {
    spdlog::warn("call job: reconciling calls failed: {}", reconciled.error().message);
  } else if (*reconciled > 0) {
    spdlog::info("call job: {} calls ended from their carrier's record", *reconciled);
  }
}

Result<std::unique_ptr<storage::Database>> OpenDatabase(const Config& config) {
  storage::OpenOptions options;
  options.url = config.database.url;
  options.password = config.database.password;
  options.pool_size = static_cast<int>(config.database.pool_size);
  options.busy_timeout_ms = static_cast<int>(config.database.busy_timeout_ms);
  options.write_batch_max = static_cast<int>(config.database.write_batch_max);
  options.sqlite_checkpoint_pages = static_cast<int>(config.database.sqlite_checkpoint_pages);
  return storage::Open(options);
}

namespace {

billing::BillingSettings BillingSettingsFrom(const Config& config) {
  billing::BillingSettings settings;
  settings.number_fees.grace = std::chrono::hours(24 * config.billing.number_fee_grace_days);
  return settings;
}

}  // namespace

Result<std::unique_ptr<Application>> Application::Create(Config config) {
  std::unique_ptr<Application> app(new Application());
  app->config_ = std::move(config);
  app->random_ = std::make_unique<SystemRandom>();
  CLOZIT_ASSIGN_OR_RETURN(app->db_, OpenDatabase(app->config_));
  CLOZIT_ASSIGN_OR_RETURN(auto applied, storage::Migrate(*app->db_, app->clock_));
  for (const auto& name : applied) spdlog::info("applied migration {}", name);
  app->audit_ = std::make_unique<privacy::AuditLog>(app->clock_, *app->random_);
  app->accounts_ =
      std::make_unique<accounts::Accounts>(*app->db_, app->clock_, *app->random_, *app->audit_, app->config_.accounts);
  const Config& config_ref = app->config_;
  billing::CheckoutSettings checkout;
  CLOZIT_ASSIGN_OR_RETURN(checkout.packs, billing::ParseCreditPacks(config_ref.billing.credit_packs));
  const std::string base = !config_ref.server.public_base_url.empty()
                               ? config_ref.server.public_base_url
                               : std::string(config_ref.server.tls() ? "https://" : "http://") +
                                     config_ref.server.listen_address + ":" + std::to_string(config_ref.server.port);
  checkout.success_url = config_ref.billing.checkout_success_url.empty() ? base + "/billing/success"
                                                                         : config_ref.billing.checkout_success_url;
  checkout.cancel_url = config_ref.billing.checkout_cancel_url.empty() ? base + "/billing/cancelled"
                                                                       : config_ref.billing.checkout_cancel_url;
  const StripeConfig& stripe = config_ref.billing.stripe;
  if (stripe.configured()) {
    billing::stripe::StripeSettings settings;
    settings.secret_key = stripe.secret_key;
    settings.api_base = stripe.api_base;
    app->payment_provider_ = std::make_unique<billing::stripe::StripePaymentProvider>(std::move(settings));
    spdlog::info("payments: stripe at {} ({} credit packs)", stripe.api_base, checkout.packs.size());
  } else {
    app->payment_provider_ = std::make_unique<billing::UnconfiguredPaymentProvider>();
  }
  billing::BillingSettings billing_settings = BillingSettingsFrom(app->config_);
  billing_settings.checkout = std::move(checkout);
  app->billing_ = std::make_unique<billing::Billing>(*app->db_, *app->audit_, app->clock_, *app->random_,
                                                     *app->payment_provider_, std::move(billing_settings));
  if (stripe.configured()) {
    app->stripe_webhooks_ = std::make_unique<billing::stripe::StripeWebhooks>(
        *app->db_, app->billing_->checkouts, app->clock_,
        billing::stripe::WebhookSettings{stripe.webhook_secret,
                                         std::chrono::seconds(stripe.timestamp_tolerance_seconds)});
  }
  // Without a configured key, a key file beside the database seals provider credentials (see docs/adr/0009).
  const std::string key_file = DataDirectory(app->config_) + "/telephony-credentials.key";
  if (app->config_.telephony.credentials_key.empty() && app->config_.database.url.rfind("sqlite:", 0) != 0) {
    spdlog::warn(
        "telephony.credentials_key is not set: provider credentials are sealed with {}; every node must "
        "share one key",
        key_file);
  }
  CLOZIT_ASSIGN_OR_RETURN(
      auto box, telephony::CredentialBox::Load(app->config_.telephony.credentials_key, key_file, *app->random_));
  app->telephony_ =
      std::make_unique<telephony::Telephony>(*app->db_, *app->audit_, app->clock_, *app->random_, std::move(box),
                                             telephony::ProviderAccountSettings{}, &app->billing_->number_fees);
  app->telephony_->SetPublicBaseUrl(app->config_.server.public_base_url);
  api::ApiDeps deps{*app->db_,   *app->accounts_, *app->audit_, app->metrics_,
                    app->clock_, *app->random_,   app->config_, app->billing_.get()};
  deps.stripe_webhooks = app->stripe_webhooks_.get();
  deps.telephony = app->telephony_.get();
  app->api_ = std::make_unique<api::Api>(deps);
  const auto& media = app->config_.media;
  CLOZIT_ASSIGN_OR_RETURN(auto media_handler, telephony::media::BuiltInHandler(media.handler));
  std::string media_secret = media.token_secret.empty() ? RandomToken(*app->random_, 32) : media.token_secret;
  app->media_tokens_ = std::make_unique<telephony::media::MediaTokens>(std::move(media_secret), app->clock_);
  app->media_ = std::make_unique<telephony::media::MediaEndpoints>(
      *app->media_tokens_, std::move(media_handler),
      telephony::media::MediaSettings{.max_queued_frames = static_cast<size_t>(media.max_queued_frames),
                                      .start_timeout = std::chrono::milliseconds(media.start_timeout_ms)});
  // Every call the platform places streams its audio to these endpoints, with a token only they accept.
  app->telephony_->SetMediaTokenIssuer(
      [tokens = app->media_tokens_.get(), ttl = std::chrono::seconds(media.token_ttl_seconds)](
          const std::string& call_id) { return tokens->Issue(call_id, ttl); });
  return app;
}

Result<void> Application::SeedDemo() {
  if (!config_.demo.seed) return Ok();
  const std::string email = "demo@clozit.local";
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db_->Query("SELECT id FROM users WHERE email = $1", {email}));
  if (!rows.empty()) return Ok();
  std::string password = config_.demo.owner_password;
  if (password.empty()) {
    // Never log a secret: write it to a private file beside the database instead.
    password = "Cz-" + RandomToken(*random_, 12) + "-9";
    std::filesystem::create_directories("var");
    std::string path = "var/demo-owner-password";
    {
      std::ofstream out(path, std::ios::trunc);
      out << password << "\n";
    }
    ::chmod(path.c_str(), 0600);
    spdlog::info("demo owner password written to {}", path);
  }
  privacy::Actor system{"system", "seed", "", "127.0.0.1", "seed"};
  auto created = accounts_->SignUp({"Demo Company", "Demo Owner", email, "+14155552671", password}, system);
  if (!created) return created.error();
  spdlog::info("seeded demo tenant {} (owner {})", created->principal.tenant_id.str(), email);
  return Ok();
}

Result<void> Application::Serve() {
  http::ServerOptions options;
  const auto& s = config_.server;
  options.address = s.listen_address;
  options.port = static_cast<uint16_t>(s.port);
  options.io_threads = static_cast<int>(s.io_threads);
  options.io_realtime_priority = static_cast<int>(s.io_realtime_priority);
  options.worker_threads = static_cast<int>(s.worker_threads);
  options.body_limit = static_cast<uint64_t>(s.body_limit_bytes);
  options.upload_limit = static_cast<uint64_t>(s.upload_limit_bytes);
  CLOZIT_ASSIGN_OR_RETURN(options.trusted_proxies, http::TrustedProxies::Parse(s.trusted_proxies));
  // Beside the import spool, so that keeping an upload is a rename, not a copy.
  options.upload_directory = DataDirectory(config_) + "/uploads";
  options.streams_body = [api = api_.get()](std::string_view method, std::string_view path) {
    return api->StreamsBody(method, path);
  };
  options.admit_upload = [api = api_.get()](http::Request& headers_only) { return api->AdmitUpload(headers_only); };
  options.header_timeout = std::chrono::milliseconds(s.header_timeout_ms);
  options.idle_timeout = std::chrono::milliseconds(s.idle_timeout_ms);
  options.shutdown_deadline = std::chrono::milliseconds(s.shutdown_deadline_ms);
  options.tls_cert_file = s.tls_cert_file;
  options.tls_key_file = s.tls_key_file;
  options.allow_plaintext_public = s.allow_plaintext_public;
  if (config_.telephony.embedded_emulator) CLOZIT_TRY(StartEmbeddedEmulator());
  options.websocket_routes = media_->Routes();  // /v1/media/{twilio,telnyx}
  http::Server server(options, api_->Handler());
  CLOZIT_TRY(server.Start());
  if (s.public_base_url.empty()) {
    // Carriers (here: the embedded emulator) post webhooks to the address the server listens on.
    const bool any = s.listen_address == "0.0.0.0" || s.listen_address == "::";
    telephony_->SetPublicBaseUrl(std::string(s.tls() ? "https" : "http") + "://" +
                                 (any ? std::string("127.0.0.1") : s.listen_address) + ":" +
                                 std::to_string(server.port()));
  }
  // Tests and scripts read this line to find the port when port = 0.
  spdlog::info("listening on {}://{}:{}", s.tls() ? "https" : "http", s.listen_address, server.port());
  // Fees, renewals and expiries run beside the server and stop before the modules they use go away.
  billing::BillingJobsSettings job_settings;
  job_settings.interval = std::chrono::seconds(config_.billing.jobs_interval_seconds);
  billing::BillingJobs jobs(*billing_, clock_, job_settings);
  jobs.Start();
  {
    PeriodicJob number_job(std::chrono::seconds(config_.telephony.number_job_interval_seconds),
                           [this] { RunNumberJob(); });
    server.Run();
  }
  jobs.Stop();
  emulator_.reset();
  spdlog::info("server stopped");
  return Ok();
}

Result<void> Application::StartEmbeddedEmulator() {
  emulator::EmulatorOptions options;
  // Fresh credentials on every start: the emulator keeps nothing across restarts, and the managed accounts
  // are rewritten below. The token and seed go to the sealed account row only, never to the log.
  options.twilio_auth_token = RandomToken(*random_, 24);
  uint8_t seed[32];
  random_->Fill(seed);
  options.telnyx_seed_hex = Hex(seed);
  options.time_scale = static_cast<double>(config_.telephony.emulator_time_scale_percent) / 100.0;
  uint64_t emulator_seed = 0;
  random_->Fill(std::span<uint8_t>(reinterpret_cast<uint8_t*>(&emulator_seed), sizeof emulator_seed));
  options.seed = emulator_seed;
  emulator::Scenario scenario;
  if (!config_.telephony.emulator_scenario.empty()) {
    CLOZIT_ASSIGN_OR_RETURN(scenario, emulator::Scenario::Load(config_.telephony.emulator_scenario));
  }
  const std::string twilio_token = options.twilio_auth_token;
  CLOZIT_ASSIGN_OR_RETURN(emulator_, EmbeddedEmulator::Start(std::move(options), std::move(scenario), clock_));
  const std::string origin = emulator_->origin();
  telephony_->accounts.AllowTenantApiBase(origin);

  uint8_t sid[16];
  random_->Fill(sid);
  telephony::ProviderAccountInput twilio;
  twilio.provider = telephony::ProviderKind::kTwilio;
  twilio.name = "Embedded carrier emulator (Twilio)";
  twilio.api_base = origin;
  twilio.account_sid = "AC" + Hex(sid);
  twilio.secret = twilio_token;
  twilio.is_default = true;
  CLOZIT_ASSIGN_OR_RETURN(auto twilio_account, telephony_->accounts.UpsertManaged("embedded-emulator-twilio", twilio));

  telephony::ProviderAccountInput telnyx;
  telnyx.provider = telephony::ProviderKind::kTelnyx;
  telnyx.name = "Embedded carrier emulator (Telnyx)";
  telnyx.api_base = origin;
  telnyx.connection_id = "embedded-emulator";
  telnyx.public_key = emulator_->emulator().telnyx_public_key_base64();
  telnyx.secret = RandomToken(*random_, 24);  // the emulator accepts any API key
  CLOZIT_ASSIGN_OR_RETURN(auto telnyx_account, telephony_->accounts.UpsertManaged("embedded-emulator-telnyx", telnyx));
  spdlog::info("embedded carrier emulator on {} (platform accounts {} and {})", origin, twilio_account.id.str(),
               telnyx_account.id.str());
  return Ok();
}

}  // namespace clozit::app
