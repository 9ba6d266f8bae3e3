#include "app/application.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "storage/migrations.hpp"

namespace clozit::app {

Result<std::unique_ptr<storage::Database>> OpenDatabase(const Config& config) {
  storage::OpenOptions options;
  options.url = config.database.url;
  options.password = config.database.password;
  options.pool_size = static_cast<int>(config.database.pool_size);
  options.busy_timeout_ms = static_cast<int>(config.database.busy_timeout_ms);
  options.write_batch_max = static_cast<int>(config.database.write_batch_max);
  return storage::Open(options);
}

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
  app->billing_ =
      std::make_unique<billing::Billing>(*app->db_, *app->audit_, app->clock_, *app->random_, app->payment_provider_);
  app->api_ = std::make_unique<api::Api>(api::ApiDeps{*app->db_, *app->accounts_, *app->audit_, app->metrics_,
                                                      app->clock_, *app->random_, app->config_, app->billing_.get()});
  const auto& media = app->config_.media;
  CLOZIT_ASSIGN_OR_RETURN(auto media_handler, telephony::media::BuiltInHandler(media.handler));
  std::string media_secret = media.token_secret.empty() ? RandomToken(*app->random_, 32) : media.token_secret;
  app->media_tokens_ = std::make_unique<telephony::media::MediaTokens>(std::move(media_secret), app->clock_);
  app->media_ = std::make_unique<telephony::media::MediaEndpoints>(
      *app->media_tokens_, std::move(media_handler),
      telephony::media::MediaSettings{.max_queued_frames = static_cast<size_t>(media.max_queued_frames),
                                      .start_timeout = std::chrono::milliseconds(media.start_timeout_ms)});
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
  options.worker_threads = static_cast<int>(s.worker_threads);
  options.body_limit = static_cast<uint64_t>(s.body_limit_bytes);
  options.upload_limit = static_cast<uint64_t>(s.upload_limit_bytes);
  // Beside the import spool, so that keeping an upload is a rename, not a copy.
  options.upload_directory = DataDirectory(config_) + "/uploads";
  options.streams_body = [api = api_.get()](std::string_view method, std::string_view path) {
    return api->StreamsBody(method, path);
  };
  options.header_timeout = std::chrono::milliseconds(s.header_timeout_ms);
  options.idle_timeout = std::chrono::milliseconds(s.idle_timeout_ms);
  options.shutdown_deadline = std::chrono::milliseconds(s.shutdown_deadline_ms);
  options.tls_cert_file = s.tls_cert_file;
  options.tls_key_file = s.tls_key_file;
  options.allow_plaintext_public = s.allow_plaintext_public;
  options.websocket_routes = media_->Routes();  // /v1/media/{twilio,telnyx}
  http::Server server(options, api_->Handler());
  CLOZIT_TRY(server.Start());
  // Tests and scripts read this line to find the port when port = 0.
  spdlog::info("listening on {}://{}:{}", s.tls() ? "https" : "http", s.listen_address, server.port());
  server.Run();
  spdlog::info("server stopped");
  return Ok();
}

}  // namespace clozit::app
