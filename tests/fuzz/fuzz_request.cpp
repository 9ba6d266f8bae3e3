// libFuzzer target for the parsers that see untrusted request bytes first.
//
// Each input is used three ways:
//  (a) as a raw HTTP/1.1 request, parsed by Beast exactly as the server's
//      sessions configure it (64 KiB body limit, 16 KiB header limit), then
//      converted to a clozit::http::Request the way src/http/detail/session.cpp
//      does and run through the accessors and body parsing every handler uses;
//  (b) as a JSON request body through api::ParseObject / RequiredString /
//      OptionalString;
//  (c) as a query string / path through http::PercentDecode, http::ParseQuery
//      and api::ParsePage.
// Besides memory errors (ASan) and undefined behaviour (UBSan), it checks the
// contracts those functions promise, and that every error they produce renders
// as a valid problem+json document without throwing.
#include <utility>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "api/json_body.hpp"
#include "http/message.hpp"

namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using clozit::Error;
using clozit::http::Request;

constexpr uint64_t kBodyLimit = 64 * 1024;
constexpr uint32_t kHeaderLimit = 16 * 1024;

[[noreturn]] void Violation(const char* what, int line) {
  std::fprintf(stderr, "fuzz_request.cpp:%d: invariant violated: %s\n", line, what);
  std::abort();
}
#define FUZZ_CHECK(condition)                          \
  do {                                                 \
    if (!(condition)) Violation(#condition, __LINE__); \
  } while (false)

/// Every error must render as a problem+json object whose status matches, without throwing.
void CheckProblemRenders(const Error& error) {
  clozit::http::Response response;
  try {
    response = clozit::http::Problem(error, "req_fuzz");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "Problem() threw: %s\n", e.what());
    Violation("Problem() must not throw", __LINE__);
  }
  FUZZ_CHECK(response.status >= 400 && response.status <= 599);
  auto parsed = nlohmann::json::parse(response.body, nullptr, false);
  FUZZ_CHECK(!parsed.is_discarded() && parsed.is_object());
  FUZZ_CHECK(parsed.value("status", 0) == response.status);
  FUZZ_CHECK(parsed.contains("code") && parsed.contains("type") && parsed.contains("detail"));
}

void ExerciseJsonBody(const Request& request) {
  auto object = clozit::api::ParseObject(request);
  if (!object) {
    FUZZ_CHECK(object.error().code == clozit::ErrorCode::kInvalidArgument);
    FUZZ_CHECK(object.error().field == "body");
    CheckProblemRenders(object.error());
    return;
  }
  FUZZ_CHECK(object->is_object());
  // Parsed strings are valid UTF-8, so strict serialization must succeed.
  std::string dumped = object->dump();
  FUZZ_CHECK(!nlohmann::json::parse(dumped, nullptr, false).is_discarded());

  for (const char* field : {"email", "name", "password", "company", "phone", "role", "token"}) {
    auto required = clozit::api::RequiredString(*object, field);
    auto optional = clozit::api::OptionalString(*object, field);
    if (required) {
      FUZZ_CHECK(optional && optional->has_value() && **optional == *required);
    } else {
      FUZZ_CHECK(required.error().field == field);
      CheckProblemRenders(required.error());
      // Missing or null: optional is empty; any other type: both refuse.
      if (optional) FUZZ_CHECK(!optional->has_value());
    }
  }
  // Any member name the body chose is looked up safely too.
  for (const auto& [name, value] : object->items()) {
    auto required = clozit::api::RequiredString(*object, name);
    FUZZ_CHECK(required.ok() == value.is_string());
    if (!required) CheckProblemRenders(required.error());
    break;
  }
}

void ExercisePage(const Request& request) {
  auto page = clozit::api::ParsePage(request);
  if (page) {
    FUZZ_CHECK(page->limit >= 1 && page->limit <= clozit::PageRequest::kMaxLimit);
    FUZZ_CHECK(page->cursor.size() <= clozit::PageRequest::kMaxCursorLength);
  } else {
    FUZZ_CHECK(page.error().field == "limit" || page.error().field == "cursor");
    CheckProblemRenders(page.error());
  }
}

void ExerciseQuery(std::string_view text) {
  std::string as_query = clozit::http::PercentDecode(text, true);
  std::string as_path = clozit::http::PercentDecode(text, false);
  FUZZ_CHECK(as_query.size() <= text.size());
  FUZZ_CHECK(as_path.size() <= text.size());
  if (text.find('%') == std::string_view::npos) FUZZ_CHECK(as_path == text);

  auto pairs = clozit::http::ParseQuery(text);
  FUZZ_CHECK(pairs.size() <= static_cast<size_t>(std::count(text.begin(), text.end(), '&')) + 1);
  for (const auto& [name, value] : pairs) FUZZ_CHECK(name.size() + value.size() <= text.size());

  Request request;
  request.query = std::move(pairs);
  ExercisePage(request);
  // The router quotes the decoded path in its 404.
  CheckProblemRenders(Error::NotFound("no route for GET " + as_path));
}

/// Mirrors ToRequest in src/http/detail/session.cpp.
Request ToRequest(const bhttp::request<bhttp::string_body>& in) {
  Request out;
  out.method = std::string(in.method_string());
  out.target = std::string(in.target());
  std::string_view target = in.target();
  auto question = target.find('?');
  out.path = clozit::http::PercentDecode(target.substr(0, question), false);
  if (question != std::string_view::npos) out.query = clozit::http::ParseQuery(target.substr(question + 1));
  for (const auto& field : in) out.headers.Add(std::string(field.name_string()), std::string(field.value()));
  out.body = in.body();
  out.remote_ip = "127.0.0.1";
  return out;
}

void ExerciseHttp(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(kBodyLimit);
  parser.header_limit(kHeaderLimit);
  parser.eager(true);
  beast::error_code ec;
  size_t offset = 0;
  while (offset < size && !parser.is_done()) {
    size_t used = parser.put(boost::asio::buffer(data + offset, size - offset), ec);
    FUZZ_CHECK(used <= size - offset);
    offset += used;
    if (ec == bhttp::error::need_more) {
      ec = {};
      if (used == 0) break;  // truncated: the parser wants bytes we do not have
      continue;
    }
    if (ec) return;
  }
  if (!parser.is_done()) {
    if (!parser.got_some()) return;  // put_eof's precondition (what async_read guarantees)
    parser.put_eof(ec);              // a body delimited by end of stream, if allowed
    if (ec || !parser.is_done()) return;
  }

  Request request = ToRequest(parser.get());
  FUZZ_CHECK(request.body.size() <= kBodyLimit);
  FUZZ_CHECK(!request.method.empty());
  for (const auto& [name, value] : request.headers.all()) FUZZ_CHECK(request.headers.Get(name).has_value());
  (void)request.Cookie("clozit_session");
  (void)request.Cookie("clozit_operator_session");
  (void)request.QueryParam("tenant_id");
  (void)request.headers.GetOr("Authorization", "");
  (void)request.headers.GetOr("X-CSRF-Token", "");
  (void)request.headers.GetOr("Idempotency-Key", "");
  ExerciseJsonBody(request);
  ExercisePage(request);
  CheckProblemRenders(Error::NotFound("no route for " + request.method + " " + request.path));
  CheckProblemRenders(Error::Make(clozit::ErrorCode::kMethodNotAllowed, request.method + " is not allowed here"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  ExerciseHttp(data, size);

  Request json_request;
  json_request.method = "POST";
  json_request.body = std::string(input);
  json_request.headers.Set("Content-Type", "application/json");
  ExerciseJsonBody(json_request);

  ExerciseQuery(input);
  return 0;
}
