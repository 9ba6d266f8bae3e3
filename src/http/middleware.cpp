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
      nlohmann::json line = {{"request_id", request.request_id}, {"method", request.method},
                             {"route", request.route},           {"status", response.status},
                             {"duration_us", latency.count()},   {"bytes_in", request.body.size()},
                             {"bytes_out", response.body.size()}};
      if (options.principal_of) {
        auto principal = options.principal_of(request);
        if (!principal.empty()) line["principal"] = principal;
      }
      spdlog::info("access {}", line.dump());
    }
    return response;
  };
}

}  // namespace clozit::http
