// call_setup_bench: call set-ups per second through a running `clozit serve`
// and a running carrier emulator (bench/call_setup_bench.sh starts both).
//
//   call_setup_bench --platform http://127.0.0.1:P --emulator http://127.0.0.1:E --provider twilio
//       --database-url sqlite:/tmp/x/clozit.db --rate 200 --seconds 30
//       [--platform-pid N --emulator-pid M]   (operator password in CLOZIT_OPERATOR_PASSWORD)
//
// Set-up: an operator session, a tenant, and a platform provider account of
// the chosen carrier whose api_base is the emulator. Then calls are offered
// open-loop: call i is due at t0 + i/rate and is sent by the first of
// --connections client threads to be free, as POST /v1/admin/calls. A call is
// set up when the platform accepted it (201: stored, and the carrier's REST
// API answered with a call id) and the carrier's `answered` webhook reached
// the platform and was applied to the call. Latencies start at the due time,
// so a platform that falls behind shows it (no coordinated omission).
//
// After the offer, the driver waits until every accepted call has ended, then
// reads the outcome from the platform's database (when the answered event was
// received, in platform time; the effect of every stored event) and the
// emulator's delivery log (the HTTP status the platform gave each webhook).
// Prints one JSON line.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench_stats.hpp"
#include "http/client.hpp"
#include "storage/database.hpp"

namespace {

using namespace clozit;
using nlohmann::json;
using SysClock = std::chrono::system_clock;

int64_t UnixMillis(SysClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

struct Options {
  std::string platform;
  std::string emulator;
  std::string provider = "twilio";
  std::string database_url;
  std::string operator_email = "bench-operator@clozit.local";
  std::string twilio_auth_token = "emulator-twilio-auth-token";
  std::string telnyx_public_key;
  double rate = 200;
  int seconds = 30;
  int connections = 64;
  double ring_seconds = 1;
  int platform_pid = 0;
  int emulator_pid = 0;
  int drain_seconds = 60;
};

/// One HTTP exchange with a JSON body; dies on a transport failure or an unexpected status (set-up only).
json MustSend(http::Client& client, const std::string& method, const std::string& target, const json& body,
              const http::Headers& headers, int expect, http::ClientResponse* raw = nullptr) {
  http::Headers all = headers;
  all.Set("Content-Type", "application/json");
  auto response = client.Send(method, target, all, body.is_null() ? std::string() : body.dump());
  if (!response || response->status != expect) {
    std::cerr << method << " " << target << " failed: "
              << (response ? std::to_string(response->status) + " " + response->body : response.error().message)
              << "\n";
    std::exit(1);
  }
  if (raw) *raw = *response;
  return response->body.empty() ? json() : json::parse(response->body, nullptr, false);
}

std::string CookieValue(const http::ClientResponse& response, const std::string& name) {
  for (const auto& [field, value] : response.headers.all()) {
    if (strcasecmp(field.c_str(), "Set-Cookie") != 0 || !value.starts_with(name + "=")) continue;
    return value.substr(name.size() + 1, value.find(';') - name.size() - 1);
  }
  return "";
}

struct Offered {
  int64_t due_ms = 0;  // unix ms
  int64_t answered_ms = -1;
  double accept_ms = -1;  // due → 201
  std::string call_id;
  std::string error;  // why it was not accepted
};

struct Setup {
  http::Headers operator_headers;
  std::string tenant_id;
  std::string account_id;
};

Setup Prepare(const Options& options, const std::string& password) {
  auto created = http::Client::Create(options.platform);
  if (!created) {
    std::cerr << created.error().message << "\n";
    std::exit(1);
  }
  auto& client = **created;
  Setup setup;
  http::ClientResponse login;
  json session = MustSend(client, "POST", "/v1/admin/login",
                          {{"email", options.operator_email}, {"password", password}}, {}, 200, &login);
  setup.operator_headers.Set("Cookie", "clozit_operator_session=" + CookieValue(login, "clozit_operator_session"));
  setup.operator_headers.Set("X-CSRF-Token", session.value("csrf_token", ""));
  const std::string unique = std::to_string(UnixMillis(SysClock::now()));
  json signup = MustSend(client, "POST", "/v1/signup",
                         {{"company", "Bench " + unique + " Ltd"},
                          {"name", "Bench Owner"},
                          {"email", "bench-" + unique + "@example.com"},
                          {"phone", "+14155552671"},
                          {"password", "Quiet-Harbor-" + unique}},
                         {}, 201);
  setup.tenant_id = signup["tenant"].value("id", "");
  json account = {{"provider", options.provider},
                  {"name", "Bench " + options.provider},
                  {"api_base", options.emulator},
                  {"is_default", false}};
  if (options.provider == "twilio") {
    account["account_sid"] = "AC" + std::string(32, 'b');
    account["auth_token"] = options.twilio_auth_token;
  } else {
    account["api_key"] = "KEYbench";
    account["connection_id"] = "bench-connection";
    account["public_key"] = options.telnyx_public_key;
  }
  setup.account_id =
      MustSend(client, "POST", "/v1/admin/provider-accounts", account, setup.operator_headers, 201).value("id", "");
  return setup;
}

/// Offers options.rate × options.seconds calls on the schedule; fills `offered` (indexed by call number).
void Offer(const Options& options, const Setup& setup, std::vector<Offered>& offered, SysClock::time_point t0) {
  std::atomic<size_t> next{0};
  const auto steady0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < options.connections; ++c) {
    threads.emplace_back([&] {
      auto created = http::Client::Create(options.platform, {.timeout = std::chrono::seconds(30)});
      if (!created) return;
      auto& client = **created;
      http::Headers headers = setup.operator_headers;
      headers.Set("Content-Type", "application/json");
      for (size_t i = next++; i < offered.size(); i = next++) {
        const auto offset = std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * 1e9 / options.rate));
        std::this_thread::sleep_until(steady0 + offset);
        Offered& call = offered[i];
        call.due_ms = UnixMillis(t0 + std::chrono::duration_cast<SysClock::duration>(offset));
        const json body = {{"tenant_id", setup.tenant_id}, {"account_id", setup.account_id},
                           {"from", "+15550009999"},       {"to", "+1555" + std::to_string(2'000'000 + i)},
                           {"ring_timeout_seconds", 30},   {"max_duration_seconds", 60}};
        auto response = client.Send("POST", "/v1/admin/calls", headers, body.dump());
        const auto done = std::chrono::steady_clock::now();
        call.accept_ms = std::chrono::duration<double, std::milli>(done - (steady0 + offset)).count();
        if (!response) {
          call.error = "transport";
          client.Close();
          continue;
        }
        json parsed = json::parse(response->body, nullptr, false);
        if (response->status != 201) {
          call.error = "http_" + std::to_string(response->status) + "_" +
                       (parsed.is_object() ? parsed.value("code", "?") : std::string("?"));
          continue;
        }
        call.call_id = parsed.value("id", "");
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Call set-ups per second through clozit serve and the carrier emulator"};
  Options options;
  app.add_option("--platform", options.platform, "Platform origin (http://127.0.0.1:PORT)")->required();
  app.add_option("--emulator", options.emulator, "Carrier emulator origin")->required();
  app.add_option("--provider", options.provider, "twilio or telnyx")->check(CLI::IsMember({"twilio", "telnyx"}));
  app.add_option("--database-url", options.database_url, "The platform's database (read after the run)")->required();
  app.add_option("--operator-email", options.operator_email, "Operator who places the calls");
  app.add_option("--twilio-auth-token", options.twilio_auth_token, "The emulator's Twilio auth token");
  app.add_option("--telnyx-public-key", options.telnyx_public_key, "The emulator's Telnyx public key (base64)");
  app.add_option("--rate", options.rate, "Calls offered per second");
  app.add_option("--seconds", options.seconds, "How long calls are offered");
  app.add_option("--connections", options.connections, "Client threads (one keep-alive connection each)");
  app.add_option("--ring-seconds", options.ring_seconds, "The callee persona's ring time (reported beside latency)");
  app.add_option("--platform-pid", options.platform_pid, "For CPU time");
  app.add_option("--emulator-pid", options.emulator_pid, "For CPU time");
  app.add_option("--drain-seconds", options.drain_seconds, "How long to wait for accepted calls to end");
  CLI11_PARSE(app, argc, argv);
  const char* password = std::getenv("CLOZIT_OPERATOR_PASSWORD");
  if (password == nullptr) {
    std::cerr << "CLOZIT_OPERATOR_PASSWORD is not set\n";
    return 2;
  }

  const Setup setup = Prepare(options, password);
  auto opened = storage::Open({.url = options.database_url, .pool_size = 2});
  if (!opened) {
    std::cerr << opened.error().message << "\n";
    return 1;
  }
  auto& db = **opened;

  std::vector<Offered> offered(static_cast<size_t>(options.rate * options.seconds));
  const double platform_cpu0 = options.platform_pid ? bench::ProcessCpuSeconds(options.platform_pid) : 0;
  const double emulator_cpu0 = options.emulator_pid ? bench::ProcessCpuSeconds(options.emulator_pid) : 0;
  const auto t0 = SysClock::now();
  Offer(options, setup, offered, t0);
  const auto offered_until = SysClock::now();
  const double offer_seconds = std::chrono::duration<double>(offered_until - t0).count();
  const double platform_cpu = options.platform_pid ? bench::ProcessCpuSeconds(options.platform_pid) - platform_cpu0 : 0;
  const double emulator_cpu = options.emulator_pid ? bench::ProcessCpuSeconds(options.emulator_pid) - emulator_cpu0 : 0;
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);

  // Wait for the accepted calls to end (their later events may still be in flight).
  const std::string account = setup.account_id;
  int64_t open_calls = -1;
  for (int waited = 0; waited < options.drain_seconds * 10; ++waited) {
    auto rows = db.Query("SELECT COUNT(*) FROM telephony_calls WHERE account_id = $1 AND status_rank < 4", {account});
    open_calls = rows && !rows->empty() ? (*rows)[0].Int(0) : -1;
    if (open_calls == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  std::map<std::string, int64_t> answered_at;  // call id → when the platform applied `answered`
  std::map<std::string, int64_t> final_status;
  auto answered = db.Query(
      "SELECT c.id, e.received_at FROM telephony_calls c JOIN telephony_call_events e ON e.account_id = c.account_id "
      "AND e.provider_call_id = c.provider_call_id WHERE c.account_id = $1 AND e.kind = 'answered' AND e.effect = "
      "'applied'",
      {account});
  auto statuses =
      db.Query("SELECT status, COUNT(*) FROM telephony_calls WHERE account_id = $1 GROUP BY status", {account});
  auto effects = db.Query(
      "SELECT kind || ':' || effect, COUNT(*) FROM telephony_call_events WHERE account_id = $1 GROUP BY 1", {account});
  auto raw = db.Query("SELECT COUNT(*) FROM telephony_raw_events WHERE account_id = $1", {account});
  if (!answered || !statuses || !effects || !raw) {
    std::cerr << "reading the outcome failed\n";
    return 1;
  }
  for (const auto& row : *answered) answered_at[row.Text(0)] = row.Int(1);
  json status_counts = json::object(), effect_counts = json::object();
  for (const auto& row : *statuses) status_counts[row.Text(0)] = row.Int(1);
  for (const auto& row : *effects) effect_counts[row.Text(0)] = row.Int(1);

  // What the platform answered to each webhook, from the emulator's delivery log.
  json deliveries = json::object();
  if (auto client = http::Client::Create(options.emulator, {.timeout = std::chrono::seconds(60)})) {
    if (auto events = (*client)->Send("GET", "/_emulator/events"); events && events->status == 200) {
      for (const auto& event : json::parse(events->body, nullptr, false)) {
        const std::string key = std::to_string(event.value("status", 0));
        deliveries[key] = deliveries.value(key, 0) + 1;
      }
    }
  }

  // The callee's script: the emulator answers `ring` after ringing starts, which is 0.6 s after the call is placed
  // on Twilio and 0.1 s on Telnyx (emulator.cpp, *Timeline); what exceeds it is the platform's and the wire's.
  const double scripted_ms = 1000.0 * (options.ring_seconds + (options.provider == "twilio" ? 0.6 : 0.1));
  std::vector<double> setup_ms, accept_ms, beyond_script_ms;
  std::map<std::string, int64_t> errors;
  int64_t accepted = 0, in_window = 0;
  // Steady state: answers applied after the first ring, within the offer window.
  const int64_t window_start = UnixMillis(t0) + static_cast<int64_t>(options.ring_seconds * 1000) + 1000;
  const int64_t window_end = UnixMillis(t0) + static_cast<int64_t>(options.seconds) * 1000;
  for (auto& call : offered) {
    if (!call.error.empty()) {
      ++errors[call.error];
      continue;
    }
    ++accepted;
    accept_ms.push_back(call.accept_ms);
    auto it = answered_at.find(call.call_id);
    if (it == answered_at.end()) {
      ++errors["accepted_not_answered"];
      continue;
    }
    setup_ms.push_back(static_cast<double>(it->second - call.due_ms));
    beyond_script_ms.push_back(setup_ms.back() - scripted_ms);
    if (it->second >= window_start && it->second < window_end) ++in_window;
  }
  const double window_seconds = static_cast<double>(window_end - window_start) / 1000.0;
  const double cores = offer_seconds > 0 ? 1.0 / offer_seconds : 0;
  json out = {
      {"provider", options.provider},
      {"offered_per_second", options.rate},
      {"offered", offered.size()},
      {"offer_seconds", offer_seconds},
      {"accepted", accepted},
      {"set_up", setup_ms.size()},
      {"set_ups_per_second_steady", window_seconds > 0 ? static_cast<double>(in_window) / window_seconds : 0},
      {"ring_seconds", options.ring_seconds},
      {"setup_latency_ms",
       {{"p50", bench::Percentile(setup_ms, 0.50)},
        {"p99", bench::Percentile(setup_ms, 0.99)},
        {"max", setup_ms.empty() ? 0.0 : *std::max_element(setup_ms.begin(), setup_ms.end())}}},
      {"setup_latency_beyond_script_ms",
       {{"p50", bench::Percentile(beyond_script_ms, 0.50)}, {"p99", bench::Percentile(beyond_script_ms, 0.99)}}},
      {"accept_latency_ms", {{"p50", bench::Percentile(accept_ms, 0.50)}, {"p99", bench::Percentile(accept_ms, 0.99)}}},
      {"errors", errors},
      {"calls_not_ended", open_calls},
      {"final_status", status_counts},
      {"events", effect_counts},
      {"raw_events", (*raw)[0].Int(0)},
      {"webhook_http_status", deliveries},
      {"platform_cpu_percent", 100.0 * platform_cpu * cores},
      {"emulator_cpu_percent", 100.0 * emulator_cpu * cores},
      {"platform_cpu_ms_per_call", accepted ? 1000.0 * platform_cpu / static_cast<double>(accepted) : 0},
      {"load_average_1m", load[0]}};
  std::cout << out.dump() << std::endl;
  return 0;
}
