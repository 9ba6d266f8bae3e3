// http: the router — (method, path pattern) → handler.
//
// Patterns are literal segments and `{name}` parameters ("/v1/api-keys/{id}").
// Literal segments win over parameters. A path that matches with another
// method gets 405 with an Allow header; no match gets 404. The route table is
// built once at start-up and read concurrently afterwards without locks.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "http/message.hpp"

namespace clozit::http {

using Handler = std::function<Response(Request&)>;
/// Decides on a request from its headers alone: a response refuses it, nothing lets it go on.
using Admission = std::function<std::optional<Response>(Request&)>;

struct Route {
  std::string method;
  std::string pattern;
  Handler handler;
  bool streamed_body = false;  // the server spools the body to a file (Request::body_file)
  Admission admit;             // streamed routes: who may send a body at all, asked before any of it is read
};

class Router {
 public:
  void Add(std::string method, std::string pattern, Handler handler, bool streamed_body = false, Admission admit = {});
  /// Whether the route this request would reach takes its body as a spooled file.
  bool StreamsBody(std::string_view method, std::string_view path) const;
  /// Matches, fills request.path_params and request.route, and runs the handler.
  Response Dispatch(Request& request) const;
  /// Matches as Dispatch does and runs the route's admission, if it has one, on a request without its body.
  std::optional<Response> Admit(Request& request) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  struct Compiled {
    std::vector<std::string> segments;  // "{x}" marks a parameter
    size_t route_index;
  };
  static bool Match(const Compiled& compiled, const std::vector<std::string_view>& path,
                    std::map<std::string, std::string>* params);
  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;
};

}  // namespace clozit::http
