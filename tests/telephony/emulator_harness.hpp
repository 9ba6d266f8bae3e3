// Test harness for the telephony integration tests: an http::Server on its
// own thread, and the platform-side webhook receiver that verifies every
// delivery with telephony/*/signature.hpp before parsing it into CallEvents.
// Both are thread-safe; the receiver's state is guarded by its mutex.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "http/server.hpp"
#include "telephony/call_event.hpp"
#include "telephony/telnyx/signature.hpp"
#include "telephony/twilio/signature.hpp"

namespace clozit::telephony {

/// An http::Server running on its own thread until destroyed.
class RunningServer {
 public:
  explicit RunningServer(http::Handler handler) {
    http::ServerOptions options;
    options.io_threads = 1;
    options.worker_threads = 2;
    options.handle_signals = false;
    options.shutdown_deadline = std::chrono::seconds(2);
    server_ = std::make_unique<http::Server>(options, std::move(handler));
    auto started = server_->Start();
    EXPECT_TRUE(started.ok());
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~RunningServer() {
    server_->Shutdown();
    thread_.join();
  }
  uint16_t port() const { return server_->port(); }
  std::string origin() const { return "http://127.0.0.1:" + std::to_string(port()); }

 private:
  std::unique_ptr<http::Server> server_;
  std::thread thread_;
};

/// The platform's side: verifies signatures first (403 otherwise), then parses into CallEvents.
class WebhookReceiver {
 public:
  WebhookReceiver(std::string twilio_token, std::string telnyx_public_key)
      : twilio_token_(std::move(twilio_token)),
        telnyx_public_key_(std::move(telnyx_public_key)),
        server_([this](http::Request& request) { return Handle(request); }) {}

  std::string url(const std::string& path) const { return server_.origin() + path; }

  /// Every event of `call_id` in arrival order, once its final event has arrived.
  std::vector<CallEvent> WaitForEnd(const std::string& call_id,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    std::unique_lock lock(mutex_);
    arrived_.wait_for(lock, timeout, [&] {
      return std::any_of(events_.begin(), events_.end(),
                         [&](const CallEvent& e) { return e.call_id == call_id && e.kind == CallEventKind::kEnded; });
    });
    return EventsLocked(call_id);
  }
  std::vector<CallEvent> WaitFor(const std::string& call_id, CallEventKind kind,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    std::unique_lock lock(mutex_);
    arrived_.wait_for(lock, timeout, [&] {
      return std::any_of(events_.begin(), events_.end(),
                         [&](const CallEvent& e) { return e.call_id == call_id && e.kind == kind; });
    });
    return EventsLocked(call_id);
  }
  std::vector<CallEvent> Events(const std::string& call_id) {
    std::lock_guard lock(mutex_);
    return EventsLocked(call_id);
  }
  int rejected() {
    std::lock_guard lock(mutex_);
    return rejected_;
  }

 private:
  std::vector<CallEvent> EventsLocked(const std::string& call_id) const {
    std::vector<CallEvent> out;
    for (const auto& event : events_)
      if (event.call_id == call_id) out.push_back(event);
    return out;
  }

  http::Response Handle(http::Request& request) {
    std::string url = server_.origin() + request.target;
    Result<CallEvent> event = Error::Internal("unrouted");
    if (request.path == "/twilio/status") {
      twilio::FormParams params;
      for (auto& [name, value] : http::ParseQuery(request.body)) params.emplace(name, value);
      auto signature = request.headers.Get("X-Twilio-Signature");
      if (!signature || !twilio::VerifyRequest(twilio_token_, url, params, request.body, *signature)) {
        return Reject();
      }
      event = ParseTwilioStatusCallback(params);
    } else if (request.path == "/telnyx") {
      auto signature = request.headers.Get("telnyx-signature-ed25519");
      auto timestamp = request.headers.Get("telnyx-timestamp");
      if (!signature || !timestamp ||
          !telnyx::VerifyWebhook(telnyx_public_key_, *timestamp, request.body, *signature, SystemClock().Now())) {
        return Reject();
      }
      event = ParseTelnyxWebhook(request.body);
    }
    if (!event) return http::Response::Text(400, event.error().message);
    {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(event).value());
    }
    arrived_.notify_all();
    return http::Response::Text(200, "ok");
  }
  http::Response Reject() {
    std::lock_guard lock(mutex_);
    ++rejected_;
    return http::Response::Text(403, "bad signature");
  }

  std::string twilio_token_;
  std::string telnyx_public_key_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<CallEvent> events_;  // guarded by mutex_
  int rejected_ = 0;               // guarded by mutex_
  RunningServer server_;           // last: stops before the state above goes away
};

}  // namespace clozit::telephony
