// carrier-emulator: Twilio and Telnyx on loopback, for tests, demos and benchmarks.
//
//   carrier-emulator --port 8089 --webhook-base http://127.0.0.1:8080 --scenario personas.json --time-scale 0.1
//
// Prints one JSON line with the bound port and the Telnyx webhook public key,
// then serves until SIGINT/SIGTERM. The auth token is never printed.
#include <limits>
#include <utility>

#include <cstdio>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "emulator.hpp"
#include "http/server.hpp"

int main(int argc, char** argv) {
  using namespace clozit;
  CLI::App app{"Clozit carrier emulator: Twilio and Telnyx voice and number APIs on loopback"};
  emulator::EmulatorOptions options;
  std::string address = "127.0.0.1";
  uint16_t port = 8089;
  std::string scenario_path;
  std::vector<int> fail_requests;
  std::vector<int> lose_responses;
  std::vector<int> fail_webhooks;
  app.add_option("--address", address, "Address to bind (loopback by default)");
  app.add_option("--port", port, "Port to listen on (0: any free port)");
  app.add_option("--webhook-base", options.webhook_base, "Default webhook origin when a call names none");
  app.add_option("--twilio-auth-token", options.twilio_auth_token, "Twilio auth token (any AccountSid is accepted)");
  app.add_option("--telnyx-api-key", options.telnyx_api_key, "Telnyx API key (empty: accept any)");
  app.add_option("--telnyx-private-key-seed-hex", options.telnyx_seed_hex, "32-byte Ed25519 seed, hex");
  app.add_option("--scenario", scenario_path, "Scenario file (JSON): numbers or patterns -> personas");
  app.add_option("--time-scale", options.time_scale, "Multiply every delay (0.01: 100x faster)");
  app.add_option("--twilio-cps", options.twilio_calls_per_second, "Twilio calls per second before queueing");
  app.add_option("--telnyx-cps", options.telnyx_calls_per_second, "Telnyx calls per second before 429");
  app.add_option("--webhook-senders", options.webhook_senders, "Webhooks delivered concurrently (per call: in order)");
  app.add_flag("--duplicate-webhooks", options.duplicate_webhooks, "Deliver every webhook twice");
  app.add_flag("--reorder-webhooks", options.reorder_webhooks, "Swap neighbouring webhooks");
  app.add_option("--fail-request", fail_requests, "Answer the n-th REST request with a 500 (repeatable)")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_option("--lose-response", lose_responses,
                 "Process the n-th REST request but answer 504, as if the answer was lost (repeatable)")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_option("--fail-webhook", fail_webhooks,
                 "The platform's endpoint is down for the n-th webhook delivery (repeatable)")
      ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  app.add_option("--seed", options.seed, "Seed for ids, ring times and the number inventory");
  int64_t drop_media_after_ms = 0;
  app.add_option("--drop-media-after-ms", drop_media_after_ms, "Drop every media stream this long after it opened");
  CLI11_PARSE(app, argc, argv);
  options.fail_requests.insert(fail_requests.begin(), fail_requests.end());
  options.lose_responses.insert(lose_responses.begin(), lose_responses.end());
  options.fail_webhooks.insert(fail_webhooks.begin(), fail_webhooks.end());
  options.drop_media_after = std::chrono::milliseconds(drop_media_after_ms);

  emulator::Scenario scenario;
  if (!scenario_path.empty()) {
    auto loaded = emulator::Scenario::Load(scenario_path);
    if (!loaded) {
      std::cerr << "carrier-emulator: " << loaded.error().message << "\n";
      return 2;
    }
    scenario = std::move(loaded).value();
  }
  SystemClock clock;
  auto created = emulator::Emulator::Create(std::move(options), std::move(scenario), clock);
  if (!created) {
    std::cerr << "carrier-emulator: " << created.error().message << "\n";
    return 2;
  }
  auto& emulator = *created.value();
  http::ServerOptions server_options;
  server_options.address = address;
  server_options.port = port;
  http::Server server(server_options, [&emulator](http::Request& request) { return emulator.Handle(request); });
  if (auto started = server.Start(); !started) {
    std::cerr << "carrier-emulator: " << started.error().message << "\n";
    return 1;
  }
  std::cout
      << nlohmann::json{{"port", server.port()}, {"telnyx_public_key", emulator.telnyx_public_key_base64()}}.dump()
      << std::endl;
  server.Run();
  return 0;
}
