#include "http/middleware.hpp"

#include <chrono>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/ids.hpp"

namespace clozit::http {
namespace {
bool AcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}
}  // namespace

Handler Instrument(Handler inner, Metrics& metrics, Random& random, InstrumentOptions options) {
  return [inner = std::move(inner), &metrics, &random, options = std::move(options)](Request& request) {
    auto started = std::chrono::steady_clock::now();
    auto incoming = request.headers.Get("X-Request-Id");
    if (incoming && AcceptableRequestId(*incoming)) {
      request.request_id = std::string(*incoming);
    } else {
      request.request_id = "req_" + RandomToken(random, 12);
    }
    Response response;
    try {
      response = inner(request);
    } catch (const std::exception& e) {
      spdlog::error("request {} failed with exception: {}", request.request_id, e.what());
      response = Problem(Error::Internal(e.what()), request.request_id);
    }
    response.headers.Set("X-Request-Id", request.request_id);
    auto latency = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    if (request.route.empty()) request.route = "(unrouted)";
    metrics.Observe(request.method, request.route, response.status, latency);
    if (options.access_log) {
      // Every field is either a number or drawn from a fixed alphabet (method, route pattern, request id), so
      // the line is formatted directly instead of through a JSON object on the hot path.
      std::string principal = options.principal_of ? options.principal_of(request) : std::string();
      spdlog::info(
          "access {{\"request_id\":\"{}\",\"method\":{},\"route\":{},\"status\":{},\"duration_us\":{},"
          "\"bytes_in\":{},\"bytes_out\":{}{}}}",
          request.request_id, nlohmann::json(request.method).dump(), nlohmann::json(request.route).dump(),
          response.status, latency.count(), request.body.size(), response.body.size(),
          principal.empty() ? std::string() : ",\"principal\":" + nlohmann::json(principal).dump());
    }
    return response;
  };
}

}  // namespace clozit::http
