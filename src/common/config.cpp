#include "common/config.hpp"

#include <filesystem>

#include <cctype>
#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>
#include <variant>
#include <vector>

#include <toml++/toml.h>

extern char** environ;

namespace clozit {
namespace {

using Target = std::variant<std::string*, int64_t*, bool*>;

struct Key {
  std::string section;
  std::string name;
  Target target;
  bool secret = false;
  int64_t min = INT64_MIN;
  int64_t max = INT64_MAX;
};

std::vector<Key> Schema(Config& c) {
  return {
      {"server", "listen_address", &c.server.listen_address},
      {"server", "port", &c.server.port, false, 0, 65535},
      {"server", "allow_plaintext_public", &c.server.allow_plaintext_public},
      {"server", "trusted_proxies", &c.server.trusted_proxies},
      {"server", "io_threads", &c.server.io_threads, false, 1, 256},
      {"server", "io_realtime_priority", &c.server.io_realtime_priority, false, 0, 99},
      {"server", "worker_threads", &c.server.worker_threads, false, 1, 1024},
      {"server", "body_limit_bytes", &c.server.body_limit_bytes, false, 1024, int64_t{1} << 34},
      {"server", "upload_limit_bytes", &c.server.upload_limit_bytes, false, 1024, int64_t{1} << 40},
      {"server", "header_timeout_ms", &c.server.header_timeout_ms, false, 10, 3'600'000},
      {"server", "idle_timeout_ms", &c.server.idle_timeout_ms, false, 10, 3'600'000},
      {"server", "shutdown_deadline_ms", &c.server.shutdown_deadline_ms, false, 0, 600'000},
      {"server", "tls_cert_file", &c.server.tls_cert_file},
      {"server", "tls_key_file", &c.server.tls_key_file},
      {"server", "public_base_url", &c.server.public_base_url},
      {"database", "url", &c.database.url},
      {"database", "password", &c.database.password, true},
      {"database", "pool_size", &c.database.pool_size, false, 1, 512},
      {"database", "busy_timeout_ms", &c.database.busy_timeout_ms, false, 0, 600'000},
      {"database", "write_batch_max", &c.database.write_batch_max, false, 1, 10'000},
      {"database", "sqlite_checkpoint_pages", &c.database.sqlite_checkpoint_pages, false, 100, 10'000'000},
      {"accounts", "session_idle_minutes", &c.accounts.session_idle_minutes, false, 1, 60 * 24 * 30},
      {"accounts", "session_absolute_hours", &c.accounts.session_absolute_hours, false, 1, 24 * 90},
      {"accounts", "password_min_length", &c.accounts.password_min_length, false, 8, 128},
      {"accounts", "argon2_opslimit", &c.accounts.argon2_opslimit, false, 1, 20},
      {"accounts", "argon2_memlimit_kib", &c.accounts.argon2_memlimit_kib, false, 8, 4 * 1024 * 1024},
      {"accounts", "login_max_failures", &c.accounts.login_max_failures, false, 1, 1000},
      {"accounts", "login_lockout_seconds", &c.accounts.login_lockout_seconds, false, 1, 86'400},
      {"accounts", "invitation_valid_hours", &c.accounts.invitation_valid_hours, false, 1, 24 * 30},
      {"rate_limit", "per_principal_per_second", &c.rate_limit.per_principal_per_second, false, 1, 1'000'000},
      {"rate_limit", "per_principal_burst", &c.rate_limit.per_principal_burst, false, 1, 10'000'000},
      {"rate_limit", "auth_per_ip_per_minute", &c.rate_limit.auth_per_ip_per_minute, false, 1, 1'000'000},
      {"log", "level", &c.log.level},
      {"log", "access_log", &c.log.access_log},
      {"demo", "seed", &c.demo.seed},
      {"demo", "owner_password", &c.demo.owner_password, true},
      {"billing", "number_fee_grace_days", &c.billing.number_fee_grace_days, false, 0, 365},
      {"telephony", "credentials_key", &c.telephony.credentials_key, true},
      {"telephony", "embedded_emulator", &c.telephony.embedded_emulator},
      {"telephony", "emulator_time_scale_percent", &c.telephony.emulator_time_scale_percent, false, 1, 10'000},
      {"telephony", "emulator_scenario", &c.telephony.emulator_scenario},
      {"billing", "credit_packs", &c.billing.credit_packs},
      {"billing", "checkout_success_url", &c.billing.checkout_success_url},
      {"billing", "checkout_cancel_url", &c.billing.checkout_cancel_url},
      {"billing.stripe", "secret_key", &c.billing.stripe.secret_key, true},
      {"billing.stripe", "webhook_secret", &c.billing.stripe.webhook_secret, true},
      {"billing.stripe", "api_base", &c.billing.stripe.api_base},
      {"billing.stripe", "timestamp_tolerance_seconds", &c.billing.stripe.timestamp_tolerance_seconds, false, 1,
       86'400},
      {"billing", "jobs_interval_seconds", &c.billing.jobs_interval_seconds, false, 1, 86'400},
      {"telephony", "number_job_interval_seconds", &c.telephony.number_job_interval_seconds, false, 1, 86'400},
      {"media", "handler", &c.media.handler},
      {"media", "token_secret", &c.media.token_secret, true},
      {"media", "token_ttl_seconds", &c.media.token_ttl_seconds, false, 60, 7 * 86'400},
      {"media", "max_queued_frames", &c.media.max_queued_frames, false, 50, 30'000},
      {"media", "start_timeout_ms", &c.media.start_timeout_ms, false, 100, 600'000},
  };
}

std::string Dotted(const Key& key) { return key.section + "." + key.name; }

Error BadKey(const std::string& dotted, const std::string& why) {
  return Error::InvalidArgument(dotted, "configuration key " + dotted + ": " + why);
}

Result<void> CheckRange(const Key& key, int64_t value) {
  if (value < key.min || value > key.max) {
    return BadKey(Dotted(key), "must be between " + std::to_string(key.min) + " and " + std::to_string(key.max));
  }
  return Ok();
}

Result<void> SetFromToml(const Key& key, const toml::node& node) {
  const std::string dotted = Dotted(key);
  if (auto* s = std::get_if<std::string*>(&key.target)) {
    auto v = node.value<std::string>();
    if (!node.is_string() || !v) return BadKey(dotted, "expected a string");
    **s = *v;
  } else if (auto* i = std::get_if<int64_t*>(&key.target)) {
    if (!node.is_integer()) return BadKey(dotted, "expected an integer");
    int64_t v = *node.value<int64_t>();
    CLOZIT_TRY(CheckRange(key, v));
    **i = v;
  } else if (auto* b = std::get_if<bool*>(&key.target)) {
    if (!node.is_boolean()) return BadKey(dotted, "expected true or false");
    **b = *node.value<bool>();
  }
  return Ok();
}

Result<void> SetFromText(const Key& key, const std::string& text, const std::string& origin) {
  const std::string dotted = Dotted(key);
  if (auto* s = std::get_if<std::string*>(&key.target)) {
    **s = text;
  } else if (auto* i = std::get_if<int64_t*>(&key.target)) {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return BadKey(dotted, "expected an integer in " + origin);
    }
    CLOZIT_TRY(CheckRange(key, v));
    **i = v;
  } else if (auto* b = std::get_if<bool*>(&key.target)) {
    if (text == "true" || text == "1") {
      **b = true;
    } else if (text == "false" || text == "0") {
      **b = false;
    } else {
      return BadKey(dotted, "expected true or false in " + origin);
    }
  }
  return Ok();
}

Result<std::string> ReadSecretFile(const std::string& dotted, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return BadKey(dotted + "_file", "cannot read " + path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string value = buffer.str();
  while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
  return value;
}

std::string EnvName(const std::string& section, const std::string& name) {
  std::string out = "CLOZIT_";
  for (char c : section) {
    if (c == '.') {
      out += "__";  // a nested table: billing.stripe → BILLING__STRIPE
    } else {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
  }
  out += "__";
  for (char c : name) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Result<void> Validate(const Config& c) {
  if (c.server.tls_cert_file.empty() != c.server.tls_key_file.empty()) {
    return BadKey(c.server.tls_cert_file.empty() ? "server.tls_cert_file" : "server.tls_key_file",
                  "tls_cert_file and tls_key_file must be set together");
  }
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "off"};
  bool level_ok = false;
  for (const char* level : kLevels) level_ok = level_ok || c.log.level == level;
  if (!level_ok) return BadKey("log.level", "expected one of trace, debug, info, warn, error, off");
  if (c.database.url.rfind("sqlite:", 0) != 0 && c.database.url.rfind("postgresql://", 0) != 0 &&
      c.database.url.rfind("postgres://", 0) != 0) {
    return BadKey("database.url", "expected sqlite:PATH or postgresql://...");
  }
  if (c.database.url == "sqlite:") return BadKey("database.url", "sqlite: needs a file path");
  if (c.billing.stripe.configured() && c.billing.stripe.webhook_secret.empty()) {
    return BadKey("billing.stripe.webhook_secret",
                  "set it with secret_key: payments complete only through signed webhooks");
  }
  if (c.billing.stripe.api_base.rfind("https://", 0) != 0 && c.billing.stripe.api_base.rfind("http://", 0) != 0) {
    return BadKey("billing.stripe.api_base", "expected an origin such as https://api.stripe.com");
  }
  return Ok();
}

}  // namespace

Environment ProcessEnvironment() {
  Environment env;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view text(*entry);
    auto eq = text.find('=');
    if (eq == std::string_view::npos || text.substr(0, 7) != "CLOZIT_") continue;
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return env;
}

std::string DataDirectory(const Config& config) {
  const std::string& url = config.database.url;
  if (url.rfind("sqlite:", 0) == 0) {
    auto parent = std::filesystem::path(url.substr(7)).parent_path();
    return parent.empty() ? "." : parent.string();
  }
  return "var";
}

Result<Config> LoadConfig(const std::string& path, const Environment& env) {
  Config config;
  std::vector<Key> schema = Schema(config);
  auto find = [&](const std::string& section, const std::string& name) -> const Key* {
    for (const auto& key : schema)
      if (key.section == section && key.name == name) return &key;
    return nullptr;
  };

  if (!path.empty()) {
    toml::table table;
    try {
      table = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      return Error::InvalidArgument("config", "cannot parse " + path + " at line " + std::to_string(where.line) + ": " +
                                                  std::string(e.description()));
    }
    // Sections may nest one level ([billing.stripe]): the inner table's keys belong to section "billing.stripe".
    std::vector<std::pair<std::string, const toml::table*>> sections;
    for (const auto& [section_key, section_node] : table) {
      std::string section(section_key.str());
      const auto* section_table = section_node.as_table();
      if (!section_table) return BadKey(section, "expected a [" + section + "] table");
      sections.emplace_back(section, section_table);
      for (const auto& [name_key, node] : *section_table) {
        if (const auto* nested = node.as_table())
          sections.emplace_back(section + "." + std::string(name_key.str()), nested);
      }
    }
    for (const auto& [section, section_table] : sections) {
      for (const auto& [name_key, node] : *section_table) {
        std::string name(name_key.str());
        std::string dotted = section + "." + name;
        if (node.is_table()) {
          if (section.find('.') != std::string::npos) return BadKey(dotted, "tables nest one level at most");
          continue;  // a nested section, handled in its own turn
        }
        if (name.size() > 5 && name.ends_with("_file")) {
          const Key* secret = find(section, name.substr(0, name.size() - 5));
          if (secret && secret->secret) {
            if (!node.is_string()) return BadKey(dotted, "expected a file path");
            CLOZIT_ASSIGN_OR_RETURN(std::string value, ReadSecretFile(Dotted(*secret), *node.value<std::string>()));
            *std::get<std::string*>(secret->target) = value;
            continue;
          }
        }
        const Key* key = find(section, name);
        if (!key) return BadKey(dotted, "unknown key");
        if (key->secret) {
          return BadKey(dotted, "is a secret: set " + EnvName(section, name) + " or " + dotted +
                                    "_file instead of writing it in the file");
        }
        CLOZIT_TRY(SetFromToml(*key, node));
      }
    }
  }

  for (const auto& [name, value] : env) {
    if (name.rfind("CLOZIT_", 0) != 0 || name == "CLOZIT_CONFIG") continue;
    const Key* matched = nullptr;
    bool is_file = false;
    for (const auto& key : schema) {
      if (EnvName(key.section, key.name) == name) matched = &key;
      if (key.secret && EnvName(key.section, key.name) + "_FILE" == name) {
        matched = &key;
        is_file = true;
      }
    }
    if (!matched) {
      if (name.find("__") == std::string::npos) continue;  // not a config override (e.g. CLOZIT_HOME)
      return BadKey(name, "environment variable names no configuration key");
    }
    if (is_file) {
      CLOZIT_ASSIGN_OR_RETURN(std::string secret, ReadSecretFile(Dotted(*matched), value));
      *std::get<std::string*>(matched->target) = secret;
    } else {
      CLOZIT_TRY(SetFromText(*matched, value, name));
    }
  }
  CLOZIT_TRY(Validate(config));
  return config;
}

}  // namespace clozit
