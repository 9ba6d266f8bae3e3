// A local stand-in for api.stripe.com, started by the test on 127.0.0.1 with
// the project's own http::Server. It speaks Stripe's wire format for what the
// adapter uses: form-encoded POST bodies with bracketed keys, Bearer (or Basic
// "key:") authentication with the secret key, Idempotency-Key replay (the
// first result for a key is stored and returned again with
// Idempotent-Replayed; the same key with other parameters is a 400
// idempotency_error), and errors as {"error": {type, code, message, param}}.
//
// State: checkout sessions, the PaymentIntents paid through them (or added by
// the test) and their refunds (listed by GET /v1/refunds?payment_intent=…). Pay() completes a session and returns the
// checkout.session.completed event Stripe would send; ChargeRefundedEvent()
// the charge.refunded event for a payment's current refunds, RefundEvent() a
// refund.created / refund.updated event; RefundOutside()
// refunds as the Stripe dashboard would (no API call from Clozit).
//
// Fault injection: FailNext(n, …) answers the next n API requests with an
// error; with `after_processing` the request is carried out (and its result
// stored under its idempotency key) before the error is sent — a response
// lost on the way back. Thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.hpp"
#include "http/message.hpp"
#include "http/server.hpp"

namespace clozit::billing::test {

class FakeStripe {
 public:
  using json = nlohmann::json;

  struct Recorded {
    std::string path;
    std::string authorization;
    std::string idempotency_key;
    std::map<std::string, std::string> form;
    int status = 0;
  };

  struct Payment {
    int64_t amount = 0;
    int64_t refunded = 0;
    std::string currency;  // lower case, as Stripe writes it
    std::string charge_id;
  };

  explicit FakeStripe(std::string secret_key) : secret_key_(std::move(secret_key)) {
    http::ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.io_threads = 1;
    options.worker_threads = 2;
    options.handle_signals = false;
    server_ = std::make_unique<http::Server>(options, [this](http::Request& request) { return Handle(request); });
    auto started = server_->Start();
    EXPECT_TRUE(started.ok()) << (started.ok() ? "" : started.error().message);
    thread_ = std::thread([this] { server_->Run(); });
  }

  ~FakeStripe() {
    server_->Shutdown();
    thread_.join();
  }

  std::string origin() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  void FailNext(int count, int status, std::string error_type, std::string code = {}, bool after_processing = false,
                std::optional<bool> should_retry = std::nullopt) {
    std::lock_guard lock(mu_);
    fail_count_ = count;
    fail_status_ = status;
    fail_type_ = std::move(error_type);
    fail_code_ = std::move(code);
    fail_after_processing_ = after_processing;
    fail_should_retry_ = should_retry;
  }

  std::vector<Recorded> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

  /// The status the refunds created from now on answer with: succeeded (default), pending, failed.
  /// The `created` (Unix seconds) of the events made from now on: when Stripe says it made them.
  void SetEventTime(int64_t seconds) { event_created_.store(seconds); }

  void SetRefundStatus(std::string status) {
    std::lock_guard lock(mu_);
    refund_status_ = std::move(status);
  }

  /// Refunds actually made (replays and refused requests excluded).
  std::vector<json> refunds() const {
    std::lock_guard lock(mu_);
    return refunds_;
  }

  void AddPayment(const std::string& payment_intent, int64_t amount, const std::string& currency) {
    std::lock_guard lock(mu_);
    payments_[payment_intent] = {amount, 0, currency, "ch_" + payment_intent.substr(3)};
  }

  Payment PaymentOf(const std::string& payment_intent) const {
    std::lock_guard lock(mu_);
    auto found = payments_.find(payment_intent);
    return found == payments_.end() ? Payment{} : found->second;
  }

  /// Completes a session's payment; the checkout.session.completed event, as JSON text.
  std::string Pay(const std::string& session_id, const std::string& event_id) {
    std::lock_guard lock(mu_);
    auto found = sessions_.find(session_id);
    EXPECT_NE(found, sessions_.end()) << "no session " << session_id;
    if (found == sessions_.end()) return {};
    json& session = found->second;
    const std::string payment_intent = "pi_" + std::to_string(++counter_) + "fake";
    payments_[payment_intent] = {session["amount_total"].get<int64_t>(), 0, session["currency"].get<std::string>(),
                                 "ch_" + payment_intent.substr(3)};
    session["payment_status"] = "paid";
    session["status"] = "complete";
    session["payment_intent"] = payment_intent;
    return Event(event_id, "checkout.session.completed", session).dump();
  }

  /// A refund made in the Stripe dashboard: no API request from Clozit.
  void RefundOutside(const std::string& payment_intent, int64_t amount) {
    std::lock_guard lock(mu_);
    payments_[payment_intent].refunded += amount;
  }

  /// The charge.refunded event for the payment's refunds so far; with `list_refunds` the charge lists the refunds
  /// made through the API, as API versions before 2022-11-15 did.
  std::string ChargeRefundedEvent(const std::string& payment_intent, const std::string& event_id,
                                  bool list_refunds = false) const {
    std::lock_guard lock(mu_);
    const Payment& payment = payments_.at(payment_intent);
    json charge = {{"id", payment.charge_id},
                   {"object", "charge"},
                   {"amount", payment.amount},
                   {"amount_refunded", payment.refunded},
                   {"currency", payment.currency},
                   {"payment_intent", payment_intent},
                   {"refunded", payment.refunded == payment.amount},
                   {"status", "succeeded"}};
    if (list_refunds) {
      json data = json::array();
      for (const json& refund : refunds_) {
        if (refund["payment_intent"] == payment_intent) data.push_back(refund);
      }
      charge["refunds"] = {{"object", "list"}, {"data", data}, {"has_more", false}};
    }
    return Event(event_id, "charge.refunded", charge).dump();
  }

  /// A charge.dispute.created / charge.dispute.closed event for a dispute of the payment, in Stripe's `status`
  /// (needs_response, won, lost, warning_closed, …), for the whole payment unless `amount` says otherwise.
  std::string DisputeEvent(const std::string& payment_intent, const std::string& dispute_id, const std::string& type,
                           const std::string& status, const std::string& event_id,
                           std::optional<int64_t> amount = std::nullopt) const {
    std::lock_guard lock(mu_);
    const Payment& payment = payments_.at(payment_intent);
    json dispute = {{"id", dispute_id},
                    {"object", "dispute"},
                    {"amount", amount.value_or(payment.amount)},
                    {"charge", payment.charge_id},
                    {"currency", payment.currency},
                    {"payment_intent", payment_intent},
                    {"reason", "fraudulent"},
                    {"status", status}};
    return Event(event_id, type, dispute).dump();
  }

  /// A refund.created / refund.updated event for refund `index` of refunds(), in `status`.
  std::string RefundEvent(size_t index, const std::string& type, const std::string& event_id,
                          const std::string& status = "succeeded") const {
    std::lock_guard lock(mu_);
    json refund = refunds_.at(index);
    refund["status"] = status;
    return Event(event_id, type, refund).dump();
  }

  /// Refund `index` fails after it succeeded or while pending (a closed card account): Stripe gives its amount back
  /// to the charge's refundable amount and sends refund.updated; the event.
  std::string FailRefund(size_t index, const std::string& event_id) {
    std::lock_guard lock(mu_);
    json& refund = refunds_.at(index);
    if (refund["status"] == "succeeded" || refund["status"] == "pending") {
      payments_.at(refund["payment_intent"].get<std::string>()).refunded -= refund["amount"].get<int64_t>();
    }
    refund["status"] = "failed";
    return Event(event_id, "refund.updated", refund).dump();
  }

  /// Takes the session's JSON as Stripe returned it.
  json Session(const std::string& session_id) const {
    std::lock_guard lock(mu_);
    return sessions_.at(session_id);
  }

 private:
  json Event(const std::string& id, const std::string& type, const json& object) const {
    return {{"id", id},          {"object", "event"}, {"api_version", "2024-06-20"}, {"created", event_created_.load()},
            {"livemode", false}, {"type", type},      {"data", {{"object", object}}}};
  }

  static http::Response Error(int status, const std::string& type, const std::string& code, const std::string& message,
                              const std::string& param = {}) {
    json error = {{"type", type}, {"message", message}};
    if (!code.empty()) error["code"] = code;
    if (!param.empty()) error["param"] = param;
    return http::Response::Json(status, json{{"error", error}}.dump());
  }

  bool Authorized(std::string_view header) const {
    if (header == "Bearer " + secret_key_) return true;
    // Basic with the key as user name and no password, as the Stripe CLI and curl -u sk_…: send it.
    const std::string basic = secret_key_ + ":";
    const std::string expected = "Basic " + BasicBase64(basic);
    return header == expected;
  }

  static std::string BasicBase64(const std::string& text) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    size_t i = 0;
    for (; i + 2 < text.size(); i += 3) {
      uint32_t n = (uint8_t(text[i]) << 16) | (uint8_t(text[i + 1]) << 8) | uint8_t(text[i + 2]);
      for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
    }
    if (i + 1 == text.size()) {
      uint32_t n = uint8_t(text[i]) << 16;
      out += kAlphabet[(n >> 18) & 63];
      out += kAlphabet[(n >> 12) & 63];
      out += "==";
    } else if (i + 2 == text.size()) {
      uint32_t n = (uint8_t(text[i]) << 16) | (uint8_t(text[i + 1]) << 8);
      for (int shift : {18, 12, 6}) out += kAlphabet[(n >> shift) & 63];
      out += "=";
    }
    return out;
  }

  http::Response Handle(http::Request& request) {
    std::lock_guard lock(mu_);
    Recorded recorded;
    recorded.path = request.path;
    recorded.authorization = std::string(request.headers.GetOr("Authorization", ""));
    recorded.idempotency_key = std::string(request.headers.GetOr("Idempotency-Key", ""));
    for (auto& [name, value] : http::ParseQuery(request.body)) recorded.form[name] = value;
    http::Response response = Dispatch(request, recorded);
    recorded.status = response.status;
    requests_.push_back(std::move(recorded));
    return response;
  }

  // Called with mu_ held.
  http::Response Dispatch(const http::Request& request, const Recorded& recorded) {
    if (!Authorized(recorded.authorization)) {
      return Error(401, "invalid_request_error", "", "Invalid API Key provided: sk_****");
    }
    if (request.method == "GET" && request.path == "/v1/refunds") {
      if (fail_count_ > 0) {
        --fail_count_;
        return Failure();
      }
      return ListRefunds(request);
    }
    if (request.method != "POST") return Error(405, "invalid_request_error", "", "Unrecognized request URL");
    if (request.headers.GetOr("Content-Type", "").find("application/x-www-form-urlencoded") == std::string::npos) {
      return Error(400, "invalid_request_error", "", "Invalid request: form-encoded bodies only");
    }
    const bool failing = fail_count_ > 0;
    if (failing) --fail_count_;
    if (failing && !fail_after_processing_) return Failure();

    const std::string fingerprint = request.path + "\n" + Sha256Hex(request.body);
    if (!recorded.idempotency_key.empty()) {
      auto stored = idempotent_.find(recorded.idempotency_key);
      if (stored != idempotent_.end()) {
        if (stored->second.first != fingerprint) {
          return Error(400, "idempotency_error", "",
                       "Keys for idempotent requests can only be used with the same parameters they were first "
                       "used with.");
        }
        if (failing) return Failure();
        http::Response replay = stored->second.second;
        replay.headers.Set("Idempotent-Replayed", "true");
        return replay;
      }
    }
    http::Response response = Process(request.path, recorded.form);
    // Stripe stores the result of a request that started executing (not one refused before it ran).
    if (!recorded.idempotency_key.empty() && response.status != 401 && response.status != 429) {
      idempotent_[recorded.idempotency_key] = {fingerprint, response};
    }
    return failing ? Failure() : response;
  }

  http::Response Failure() const {
    http::Response response = Error(fail_status_, fail_type_, fail_code_, "injected failure");
    if (fail_should_retry_) response.headers.Set("Stripe-Should-Retry", *fail_should_retry_ ? "true" : "false");
    return response;
  }

  static std::string Field(const std::map<std::string, std::string>& form, const std::string& name) {
    auto found = form.find(name);
    return found == form.end() ? std::string() : found->second;
  }

  http::Response Process(const std::string& path, const std::map<std::string, std::string>& form) {
    if (path == "/v1/refunds") return CreateRefund(form);
    if (path == "/v1/checkout/sessions") return CreateSession(form);
    return Error(404, "invalid_request_error", "", "Unrecognized request URL (POST: " + path + ")");
  }

  // GET /v1/refunds?payment_intent=… (or charge=…): newest first, as Stripe lists.
  http::Response ListRefunds(const http::Request& request) const {
    const std::string payment_intent = request.QueryParam("payment_intent").value_or("");
    const std::string charge = request.QueryParam("charge").value_or("");
    json data = json::array();
    for (auto refund = refunds_.rbegin(); refund != refunds_.rend(); ++refund) {
      if ((!payment_intent.empty() && (*refund)["payment_intent"] == payment_intent) ||
          (!charge.empty() && (*refund)["charge"] == charge)) {
        data.push_back(*refund);
      }
    }
    return http::Response::Json(200, json{{"object", "list"}, {"data", data}, {"has_more", false}}.dump());
  }

  http::Response CreateRefund(const std::map<std::string, std::string>& form) {
    std::string payment_intent = Field(form, "payment_intent");
    if (payment_intent.empty()) {
      for (const auto& [id, payment] : payments_) {
        if (payment.charge_id == Field(form, "charge")) payment_intent = id;
      }
    }
    auto found = payments_.find(payment_intent);
    if (found == payments_.end()) {
      return Error(404, "invalid_request_error", "resource_missing", "No such payment_intent: '" + payment_intent + "'",
                   "payment_intent");
    }
    Payment& payment = found->second;
    const int64_t amount =
        Field(form, "amount").empty() ? payment.amount - payment.refunded : std::stoll(Field(form, "amount"));
    if (payment.refunded >= payment.amount) {
      return Error(400, "invalid_request_error", "charge_already_refunded",
                   "Charge " + payment.charge_id + " has already been refunded.");
    }
    if (amount <= 0 || amount > payment.amount - payment.refunded) {
      return Error(400, "invalid_request_error", "amount_too_large",
                   "Refund amount is greater than the unrefunded amount on the charge.", "amount");
    }
    if (refund_status_ != "failed" && refund_status_ != "canceled") payment.refunded += amount;
    json metadata = json::object();
    for (const auto& [name, value] : form) {
      if (name.starts_with("metadata[") && name.back() == ']') metadata[name.substr(9, name.size() - 10)] = value;
    }
    json refund = {{"id", "re_" + std::to_string(++counter_) + "fake"},
                   {"object", "refund"},
                   {"amount", amount},
                   {"currency", payment.currency},
                   {"charge", payment.charge_id},
                   {"payment_intent", payment_intent},
                   {"reason", Field(form, "reason")},
                   {"metadata", metadata},
                   {"status", refund_status_}};
    refunds_.push_back(refund);
    return http::Response::Json(200, refund.dump());
  }

  http::Response CreateSession(const std::map<std::string, std::string>& form) {
    if (Field(form, "mode") != "payment") {
      return Error(400, "invalid_request_error", "parameter_missing", "Missing required param: mode.", "mode");
    }
    for (const char* required :
         {"success_url", "line_items[0][price_data][currency]", "line_items[0][price_data][unit_amount]",
          "line_items[0][price_data][product_data][name]", "line_items[0][quantity]"}) {
      if (Field(form, required).empty()) {
        return Error(400, "invalid_request_error", "parameter_missing",
                     std::string("Missing required param: ") + required + ".", required);
      }
    }
    const std::string id = "cs_test_" + std::to_string(++counter_) + "fake";
    json metadata = json::object();
    for (const auto& [name, value] : form) {
      if (name.starts_with("metadata[") && name.back() == ']') metadata[name.substr(9, name.size() - 10)] = value;
    }
    const int64_t unit_amount = std::stoll(Field(form, "line_items[0][price_data][unit_amount]"));
    const int64_t quantity = std::stoll(Field(form, "line_items[0][quantity]"));
    json session = {{"id", id},
                    {"object", "checkout.session"},
                    {"mode", "payment"},
                    {"url", "https://checkout.stripe.com/c/pay/" + id},
                    {"client_reference_id", Field(form, "client_reference_id")},
                    {"metadata", metadata},
                    {"amount_total", unit_amount * quantity},
                    {"currency", Field(form, "line_items[0][price_data][currency]")},
                    {"payment_status", "unpaid"},
                    {"status", "open"},
                    {"payment_intent", nullptr},
                    {"success_url", Field(form, "success_url")},
                    {"cancel_url", Field(form, "cancel_url")}};
    sessions_[id] = session;
    return http::Response::Json(200, session.dump());
  }

  const std::string secret_key_;
  std::unique_ptr<http::Server> server_;
  std::thread thread_;

  mutable std::mutex mu_;  // guards everything below
  int fail_count_ = 0;
  int fail_status_ = 500;
  std::string fail_type_;
  std::string fail_code_;
  bool fail_after_processing_ = false;
  std::optional<bool> fail_should_retry_;
  int counter_ = 0;
  std::vector<Recorded> requests_;
  std::vector<json> refunds_;
  std::atomic<int64_t> event_created_{1790000000};
  std::string refund_status_ = "succeeded";
  std::map<std::string, Payment> payments_;
  std::map<std::string, json> sessions_;
  std::map<std::string, std::pair<std::string, http::Response>> idempotent_;
};

}  // namespace clozit::billing::test
