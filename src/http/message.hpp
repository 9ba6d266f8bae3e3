// http: plain request and response values, free of Beast.
//
// Handlers everywhere in Clozit see only these types, so business modules and
// most of the http module compile without Boost.Beast (whose translation
// units are slow). A Request is owned by the one worker that handles it.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.hpp"

namespace clozit::http {

/// Header fields in arrival order; lookup is case-insensitive.
class Headers {
 public:
  std::optional<std::string_view> Get(std::string_view name) const;
  std::string_view GetOr(std::string_view name, std::string_view fallback) const;
  void Set(std::string name, std::string value);  // replaces
  void Add(std::string name, std::string value);  // appends (Set-Cookie)
  const std::vector<std::pair<std::string, std::string>>& all() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct Request {
  std::string method;                                      // "GET", "POST", ...
  std::string target;                                      // as received: path and query
  std::string path;                                        // percent-decoded path without the query
  std::vector<std::pair<std::string, std::string>> query;  // decoded
  Headers headers;
  std::string body;
  // For routes that stream their upload (Router::StreamsBody): the body is in this file instead of `body`. The
  // server removes the file after the response; a handler that keeps it moves it elsewhere first.
  std::string body_file;
  std::string remote_ip;
  bool tls = false;

  // Filled in by the router and middleware:
  std::map<std::string, std::string> path_params;
  std::string route;  // the matched pattern, e.g. "/v1/api-keys/{id}"; used for metrics and logs
  std::string request_id;

  std::optional<std::string> QueryParam(std::string_view name) const;
  std::optional<std::string> Cookie(std::string_view name) const;
  const std::string& Param(const std::string& name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static Response NoContent();
};

/// RFC 9457 problem+json for an Error; the `code` member is ErrorCode's stable name.
Response Problem(const Error& error, std::string_view request_id = {});
/// The HTTP status an ErrorCode maps to.
int StatusFor(ErrorCode code);

std::string PercentDecode(std::string_view text, bool plus_as_space);
/// Splits "a=1&b=x%20y" into decoded pairs.
std::vector<std::pair<std::string, std::string>> ParseQuery(std::string_view query);

}  // namespace clozit::http
