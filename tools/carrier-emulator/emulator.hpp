// carrier-emulator: Twilio's and Telnyx's voice and number APIs, on loopback.
//
// Emulator::Handle answers the REST endpoints the Clozit adapters (and the
// official SDKs) use, with the carriers' real success and error shapes, and
// after a call is placed delivers that call's webhooks — signed exactly like
// the carrier would (X-Twilio-Signature with the auth token; Telnyx Ed25519
// over `timestamp|body` with a key derived from a seed) — in carrier order
// and with realistic timing, scaled by `time_scale`. The callee's behaviour
// comes from the Scenario's persona for the dialled number.
//
// It also keeps a generated number inventory (search, buy, release, list),
// queues Twilio calls at its calls-per-second, refuses Telnyx calls over its
// rate with 429 + Retry-After, injects faults (duplicate or reordered
// webhooks, a 500 or a lost answer for the n-th
// request, an unreachable endpoint for the n-th webhook) and records everything it received
// and sent under /_emulator/{calls,events,requests}.
//
// Thread-safety: Handle is called concurrently by the HTTP server's workers;
// all state is guarded by one mutex, and webhooks are sent from
// `webhook_senders` delivery threads owned by the Emulator (started in the
// constructor, joined in the destructor); one call's webhooks all go through
// the same thread. Secrets are never logged nor exposed under /_emulator.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>

#include "common/clock.hpp"
#include "http/message.hpp"
#include "scenario.hpp"

namespace clozit::emulator {

struct EmulatorOptions {
  /// Where webhooks go when a call names no callback URL ("http://127.0.0.1:8080"):
  /// Twilio to {base}/webhooks/twilio/status, Telnyx to {base}/webhooks/telnyx. Empty: nowhere.
  std::string webhook_base;
  std::string twilio_auth_token = "emulator-twilio-auth-token";
  std::string telnyx_api_key;  // empty: any bearer token is accepted
  /// 32-byte Ed25519 seed, hex. Default: the RFC 8032 TEST 1 seed of providers.md.
  std::string telnyx_seed_hex = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
  double time_scale = 1.0;  // 0.01: a 5 s call lasts 50 ms
  double twilio_calls_per_second = 1.0;
  int telnyx_calls_per_second = 10;
  /// Webhooks in flight at once (a carrier delivers from many workers; one is enough for tests and keeps the
  /// n-th delivery the n-th due). Each call's webhooks still arrive one at a time, in order.
  int webhook_senders = 1;
  bool duplicate_webhooks = false;
  bool reorder_webhooks = false;
  std::set<int> fail_requests;  // 1-based numbers of REST requests answered with a 500 (not processed)
  /// 1-based numbers of REST requests that are processed but whose answer is lost (a 504 instead).
  std::set<int> lose_responses;
  /// 1-based numbers of webhook deliveries the platform's endpoint is down for (Telnyx: then the failover URL).
  std::set<int> fail_webhooks;
  /// > 0: every media stream is dropped (socket closed, no `stop`) this long after it opened.
  std::chrono::milliseconds drop_media_after{0};
  uint64_t seed = 1;
};

class Emulator {
 public:
  /// Fails (invalid_argument) on a malformed seed.
  static Result<std::unique_ptr<Emulator>> Create(EmulatorOptions options, Scenario scenario, const Clock& clock);
  ~Emulator();
  Emulator(const Emulator&) = delete;
  Emulator& operator=(const Emulator&) = delete;

  /// The HTTP handler (thread-safe).
  http::Response Handle(http::Request& request);

  /// The Telnyx webhook public key, base64 (what the Telnyx portal shows).
  std::string telnyx_public_key_base64() const;
  /// Replaces fault injection at run time (clearing lost answers and webhook faults too); `fail_next` counts
  /// from the next REST request (1 = the next one).
  void SetFaults(bool duplicate_webhooks, bool reorder_webhooks, const std::set<int>& fail_next);
  /// Adds one-shot faults counted from the next REST request / webhook delivery (1 = the next one).
  void InjectFaults(const std::set<int>& fail_requests, const std::set<int>& lose_responses,
                    const std::set<int>& fail_webhooks);
  /// How many injected REST or webhook faults have fired so far.
  int FaultsTriggered() const;
  /// Blocks until no webhook is waiting to be sent, or `timeout` passes. True when idle.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  struct Impl;
  explicit Emulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace clozit::emulator
