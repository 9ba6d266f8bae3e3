// http: request metrics in Prometheus text format.
//
// Counts and latency histograms keyed by (method, route pattern, status).
// Route patterns, not raw paths, keep the label set small and free of ids or
// personal data. Thread-safe; Observe takes a short lock.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace clozit::http {

class Metrics {
 public:
  void Observe(const std::string& method, const std::string& route, int status, std::chrono::microseconds latency);
  void SetGauge(const std::string& name, const std::string& help, double value);
  /// The exposition text for GET /metrics.
  std::string Render() const;

  static constexpr std::array<double, 12> kBucketsSeconds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                             0.05,   0.1,   0.25,   0.5,   1,    5};

 private:
  struct Series {
    std::array<uint64_t, kBucketsSeconds.size()> buckets{};
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, Series> series_;  // guarded by mutex_
  std::map<std::string, std::pair<std::string, double>> gauges_;        // guarded by mutex_
};

}  // namespace clozit::http
