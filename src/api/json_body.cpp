#include "api/json_body.hpp"

#include <charconv>

namespace clozit::api {

Result<nlohmann::json> ParseObject(const http::Request& request) {
  auto content_type = request.headers.GetOr("Content-Type", "");
  if (!content_type.empty() && content_type.find("json") == std::string_view::npos) {
    return Error::InvalidArgument("body", "expected Content-Type: application/json");
  }
  auto parsed = nlohmann::json::parse(request.body, nullptr, false);
  if (parsed.is_discarded()) return Error::InvalidArgument("body", "request body is not valid JSON");
  if (!parsed.is_object()) return Error::InvalidArgument("body", "request body must be a JSON object");
  return parsed;
}

Result<std::string> RequiredString(const nlohmann::json& body, const std::string& field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return Error::InvalidArgument(field, field + " is required");
  if (!it->is_string()) return Error::InvalidArgument(field, field + " must be a string");
  return it->get<std::string>();
}

Result<std::optional<std::string>> OptionalString(const nlohmann::json& body, const std::string& field) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Error::InvalidArgument(field, field + " must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

Result<PageRequest> ParsePage(const http::Request& request) {
  PageRequest page;
  if (auto limit = request.QueryParam("limit")) {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(limit->data(), limit->data() + limit->size(), value);
    if (ec != std::errc() || end != limit->data() + limit->size() || value < 1 || value > PageRequest::kMaxLimit) {
      return Error::InvalidArgument("limit", "limit must be an integer from 1 to 200");
    }
    page.limit = value;
  }
  if (auto cursor = request.QueryParam("cursor")) {
    bool ok = cursor->size() <= 64;
    for (char c : *cursor) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!ok) return Error::InvalidArgument("cursor", "malformed cursor");
    page.cursor = *cursor;
  }
  return page;
}

}  // namespace clozit::api
