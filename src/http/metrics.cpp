#include "http/metrics.hpp"

#include <fmt/format.h>

namespace clozit::http {
namespace {
std::string Escape(const std::string& label) {
  std::string out;
  for (char c : label) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// A client chooses the method token, so an unknown one is counted as OTHER: one series per invented method
// would let anyone grow the registry (and every scrape) without bound.
std::string_view MethodLabel(std::string_view method) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == known) return known;
  }
  return "OTHER";
}
}  // namespace

void Metrics::Observe(const std::string& method, const std::string& route, int status,
                      std::chrono::microseconds latency) {
  double seconds = static_cast<double>(latency.count()) / 1e6;
  std::lock_guard lock(mutex_);
  auto& series = series_[{std::string(MethodLabel(method)), route, status}];
  for (size_t i = 0; i < kBucketsSeconds.size(); ++i)
    if (seconds <= kBucketsSeconds[i]) ++series.buckets[i];
  ++series.count;
  series.sum_seconds += seconds;
}

void Metrics::SetGauge(const std::string& name, const std::string& help, double value) {
  std::lock_guard lock(mutex_);
  gauges_[name] = {help, value};
}

std::string Metrics::Render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  out += "# HELP clozit_http_requests_total HTTP requests by route and status.\n";
  out += "# TYPE clozit_http_requests_total counter\n";
  for (const auto& [key, series] : series_) {
    const auto& [method, route, status] = key;
    out += fmt::format("clozit_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n", method,
                       Escape(route), status, series.count);
  }
  out += "# HELP clozit_http_request_duration_seconds HTTP request latency by route and status.\n";
  out += "# TYPE clozit_http_request_duration_seconds histogram\n";
  for (const auto& [key, series] : series_) {
    const auto& [method, route, status] = key;
    std::string labels = fmt::format("method=\"{}\",route=\"{}\",status=\"{}\"", method, Escape(route), status);
    for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
      out += fmt::format("clozit_http_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels, kBucketsSeconds[i],
                         series.buckets[i]);
    }
    out += fmt::format("clozit_http_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n", labels, series.count);
    out += fmt::format("clozit_http_request_duration_seconds_sum{{{}}} {}\n", labels, series.sum_seconds);
    out += fmt::format("clozit_http_request_duration_seconds_count{{{}}} {}\n", labels, series.count);
  }
  for (const auto& [name, gauge] : gauges_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n{} {}\n", name, gauge.first, name, name, gauge.second);
  }
  return out;
}

}  // namespace clozit::http
