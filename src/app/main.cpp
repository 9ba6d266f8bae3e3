// clozit: the command-line entry point. Subcommands: serve, migrate,
// config check, admin create-operator, admin ledger-check, import.
#include <unistd.h>

#include <iostream>

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "app/application.hpp"
#include "billing/ledger_check.hpp"
#include "contacts/import_command.hpp"
#include "storage/migrations.hpp"

namespace {

using clozit::Config;
using clozit::Error;
using clozit::Result;

int Fail(const Error& error) {
  std::cerr << "error: " << error.message;
  if (!error.field.empty() && error.message.find(error.field) == std::string::npos)
    std::cerr << " (" << error.field << ")";
  std::cerr << "\n";
  return error.code == clozit::ErrorCode::kInvalidArgument ? 2 : 1;
}

Result<Config> Load(const std::string& path) {
  auto config = clozit::LoadConfig(path, clozit::ProcessEnvironment());
  if (config) {
    auto level = spdlog::level::from_str(config->log.level);
    spdlog::set_level(level);
  }
  return config;
}

}  // namespace

int Main(int argc, char** argv);

int main(int argc, char** argv) {
  int status = Main(argc, argv);
  spdlog::shutdown();  // flush the async queue
  return status;
}

int Main(int argc, char** argv) {
  // Logging off the request path: a writer thread drains a bounded queue (blocking when full, so no line is lost).
  spdlog::init_thread_pool(16384, 1);
  auto logger = spdlog::stderr_logger_mt<spdlog::async_factory>("clozit");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);

  CLI::App cli{"Clozit — self-hostable AI calling platform"};
  cli.require_subcommand(1);
  std::string config_path;
  if (const char* env = std::getenv("CLOZIT_CONFIG")) config_path = env;
  cli.add_option("-c,--config", config_path, "TOML configuration file (env CLOZIT_CONFIG)");

  auto* serve = cli.add_subcommand("serve", "Apply migrations and serve the API");
  auto* migrate = cli.add_subcommand("migrate", "Apply pending database migrations");
  bool status_only = false;
  migrate->add_flag("--status", status_only, "List migrations and whether each is applied; change nothing");
  auto* config_cmd = cli.add_subcommand("config", "Configuration tools");
  config_cmd->require_subcommand(1);
  auto* check = config_cmd->add_subcommand("check", "Validate the configuration and name any bad key");
  auto* admin = cli.add_subcommand("admin", "Platform operator tools");
  admin->require_subcommand(1);
  auto* create_operator = admin->add_subcommand("create-operator", "Create a platform operator account");
  std::string operator_email, operator_name;
  create_operator->add_option("--email", operator_email, "Operator email")->required();
  create_operator->add_option("--name", operator_name, "Operator name")->required();
  create_operator->footer("The password is read from CLOZIT_OPERATOR_PASSWORD or, if unset, from standard input.");
  auto* ledger_check = admin->add_subcommand(
      "ledger-check", "Verify the credit ledger's invariants; exit 1 and list every breach if any fails");

  auto* import_cmd = cli.add_subcommand("import", "Import contacts from a CSV file (streamed, resumable)");
  clozit::contacts::ImportCommand import;
  import_cmd->add_option("FILE", import.file, "CSV file: a CRM export or any file with a phone column");
  import_cmd->add_option("--tenant", import.tenant_id, "Tenant id (ten_...)")->required();
  import_cmd->add_option("--list", import.list_name, "Contact list name (created when missing)");
  import_cmd->add_option("--consent-type", import.consent_type,
                         "prior_express_written_consent | prior_express_consent | established_business_relationship | "
                         "opt_in");
  import_cmd->add_option("--consent-where", import.consent_where, "Where the consent was obtained");
  import_cmd->add_option("--consent-at", import.consent_at, "When it was obtained (2025-11-01 or RFC 3339)");
  import_cmd->add_option("--consent-evidence", import.consent_evidence, "Evidence: text, URL or reference");
  import_cmd->add_option("--attested-by", import.attested_by, "Id of the tenant user who attests the consent");
  import_cmd->add_option("--default-country", import.default_country, "Country of national numbers (default US)");
  import_cmd->add_option("--map", import.mappings, "Explicit column: field=Header (repeatable), e.g. phone=Cell");
  import_cmd->add_option("--tag", import.tags, "Tag every imported contact (repeatable)");
  import_cmd->add_option("--resume", import.resume_id, "Continue an interrupted import (imp_...)");
  import_cmd->add_option("--rejected-out", import.rejected_out, "Write the rejected rows here as CSV");
  import_cmd->add_option("--batch-rows", import.batch_rows,
                         "Rows per transaction (default: 100000 on SQLite, 5000 on PostgreSQL)");
  import_cmd->add_flag(
      "--no-progress", [&import](int64_t) { import.progress_bar = false; }, "No progress bar");

  CLI11_PARSE(cli, argc, argv);

  try {
    auto config = Load(config_path);
    if (!config) return Fail(config.error());

    if (check->parsed()) {
      auto db = clozit::app::OpenDatabase(*config);
      if (!db) return Fail(db.error());
      if (auto ping = (*db)->Ping(); !ping) return Fail(ping.error());
      std::cout << "configuration OK" << (config_path.empty() ? " (defaults)" : " (" + config_path + ")") << "\n";
      return 0;
    }
    if (migrate->parsed()) {
      auto db = clozit::app::OpenDatabase(*config);
      if (!db) return Fail(db.error());
      if (status_only) {
        auto status = clozit::storage::Status(**db);
        if (!status) return Fail(status.error());
        for (const auto& m : *status)
          std::cout << (m.applied ? "applied " : "pending ") << m.module << "/" << m.name << "\n";
        return 0;
      }
      clozit::SystemClock clock;
      auto applied = clozit::storage::Migrate(**db, clock);
      if (!applied) return Fail(applied.error());
      for (const auto& name : *applied) std::cout << "applied " << name << "\n";
      std::cout << (applied->empty() ? "nothing to apply: schema is current\n" : "schema is current\n");
      return 0;
    }
    if (ledger_check->parsed()) {
      auto db = clozit::app::OpenDatabase(*config);
      if (!db) return Fail(db.error());
      auto breaches = clozit::billing::CheckLedger(**db);
      if (!breaches) return Fail(breaches.error());
      for (const auto& breach : *breaches) std::cout << "breach: " << breach << "\n";
      std::cout << (breaches->empty() ? "ledger OK\n" : std::to_string(breaches->size()) + " breaches\n");
      return breaches->empty() ? 0 : 1;
    }
    if (create_operator->parsed()) {
      std::string password;
      if (const char* env = std::getenv("CLOZIT_OPERATOR_PASSWORD")) {
        password = env;
      } else {
        if (isatty(STDIN_FILENO)) std::cerr << "operator password: ";
        std::getline(std::cin, password);
      }
      auto app = clozit::app::Application::Create(*config);
      if (!app) return Fail(app.error());
      clozit::privacy::Actor cli_actor{"system", "cli", "", "local", "cli"};
      auto created = (*app)->accounts().CreateOperator(operator_email, operator_name, password, cli_actor);
      if (!created) return Fail(created.error());
      std::cout << "created operator " << created->id.str() << " <" << created->email << ">\n";
      return 0;
    }
    if (import_cmd->parsed()) {
      if (import.file.empty() && import.resume_id.empty())
        return Fail(Error::InvalidArgument("FILE", "name a CSV file"));
      auto app = clozit::app::Application::Create(*config);
      if (!app) return Fail(app.error());
      clozit::TenantId tenant(import.tenant_id);
      if (auto found = (*app)->accounts().GetTenant(tenant); !found) return Fail(found.error());
      if (import.resume_id.empty()) {
        if (import.attested_by.empty()) {
          return Fail(Error::InvalidArgument("attested-by", "a tenant user must attest the consent (--attested-by)"));
        }
        if (auto user = (*app)->accounts().GetUser(tenant, import.attested_by); !user) {
          return Fail(Error::InvalidArgument("attested-by", "--attested-by is not a user of this tenant"));
        }
      }
      auto summary = clozit::contacts::RunImportCommand((*app)->db(), import, std::cerr, isatty(STDERR_FILENO) != 0);
      if (!summary) return Fail(summary.error());
      std::cout << "imported " << *summary << "\n";
      return 0;
    }
    if (serve->parsed()) {
      auto app = clozit::app::Application::Create(*config);
      if (!app) return Fail(app.error());
      if (auto seeded = (*app)->SeedDemo(); !seeded) return Fail(seeded.error());
      if (auto served = (*app)->Serve(); !served) return Fail(served.error());
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "fatal: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
