#include "http/router.hpp"

#include <algorithm>
#include <stdexcept>

namespace clozit::http {
namespace {
std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
  }
  return out;
}

bool IsParam(const std::string& segment) { return segment.size() > 2 && segment.front() == '{'; }

int Specificity(const std::vector<std::string>& segments) {
  int literal = 0;
  for (const auto& s : segments) literal += IsParam(s) ? 0 : 1;
  return literal;
}
}  // namespace

void Router::Add(std::string method, std::string pattern, Handler handler, bool streamed_body, Admission admit) {
  Compiled compiled;
  for (auto segment : SplitPath(pattern)) compiled.segments.emplace_back(segment);
  compiled.route_index = routes_.size();
  // Parameter names do not matter for matching: "/x/{a}" and "/x/{b}" are the same route.
  auto same_shape = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const std::string& x, const std::string& y) { return (IsParam(x) && IsParam(y)) || x == y; });
  };
  for (const auto& existing : compiled_) {
    if (same_shape(existing.segments, compiled.segments) && routes_[existing.route_index].method == method) {
      throw std::logic_error("duplicate route " + method + " " + pattern);
    }
  }
  routes_.push_back({std::move(method), std::move(pattern), std::move(handler), streamed_body, std::move(admit)});
  compiled_.push_back(std::move(compiled));
  // Most literal segments first, so "/v1/invitations/accept" beats "/v1/invitations/{id}".
  std::stable_sort(compiled_.begin(), compiled_.end(), [](const Compiled& a, const Compiled& b) {
    return Specificity(a.segments) > Specificity(b.segments);
  });
}

bool Router::Match(const Compiled& compiled, const std::vector<std::string_view>& path,
                   std::map<std::string, std::string>* params) {
  if (compiled.segments.size() != path.size()) return false;
  for (size_t i = 0; i < path.size(); ++i) {
    const auto& segment = compiled.segments[i];
    if (IsParam(segment)) {
      if (path[i].empty()) return false;
      if (params) (*params)[segment.substr(1, segment.size() - 2)] = std::string(path[i]);
    } else if (segment != path[i]) {
      return false;
    }
  }
  return true;
}

bool Router::StreamsBody(std::string_view method, std::string_view path) const {
  auto segments = SplitPath(path);
  for (const auto& compiled : compiled_) {
    const Route& route = routes_[compiled.route_index];
    if (route.method == method && Match(compiled, segments, nullptr)) return route.streamed_body;
  }
  return false;
}

std::optional<Response> Router::Admit(Request& request) const {
  auto path = SplitPath(request.path);
  for (const auto& compiled : compiled_) {
    const Route& route = routes_[compiled.route_index];
    if (route.method != request.method || !Match(compiled, path, nullptr)) continue;
    request.path_params.clear();
    Match(compiled, path, &request.path_params);
    request.route = route.pattern;
    if (!route.admit) return std::nullopt;
    return route.admit(request);
  }
  return std::nullopt;
}

Response Router::Dispatch(Request& request) const {
  auto path = SplitPath(request.path);
  std::string allowed;
  for (const auto& compiled : compiled_) {
    if (!Match(compiled, path, nullptr)) continue;
    const Route& route = routes_[compiled.route_index];
    if (route.method != request.method) {
      if (allowed.find(route.method) == std::string::npos) allowed += (allowed.empty() ? "" : ", ") + route.method;
      continue;
    }
    request.path_params.clear();
    Match(compiled, path, &request.path_params);
    request.route = route.pattern;
    return route.handler(request);
  }
  if (!allowed.empty()) {
    request.route = "(method not allowed)";
    auto response =
        Problem(Error::Make(ErrorCode::kMethodNotAllowed, request.method + " is not allowed here; allowed: " + allowed),
                request.request_id);
    response.headers.Set("Allow", allowed);
    return response;
  }
  request.route = "(unmatched)";
  return Problem(Error::NotFound("no route for " + request.method + " " + request.path), request.request_id);
}

}  // namespace clozit::http
