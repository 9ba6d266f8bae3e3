#include "api/json_body.hpp"

#include <charconv>
#include <limits>

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

Result<std::optional<int64_t>> OptionalInt(const nlohmann::json& body, const std::string& field, int64_t min,
                                           int64_t max) {
  auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::optional<int64_t>();
  auto range = [&] {
    if (min == std::numeric_limits<int64_t>::min() && max == std::numeric_limits<int64_t>::max()) {
      return Error::InvalidArgument(field, field + " is out of range");
    }
    return Error::InvalidArgument(
        field, field + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  };
  if (!it->is_number_integer()) return Error::InvalidArgument(field, field + " must be an integer");
  // nlohmann keeps integers above INT64_MAX unsigned; get<int64_t> would wrap them to negatives.
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return range();
  }
  int64_t value = it->get<int64_t>();
  if (value < min || value > max) return range();
  return std::optional<int64_t>(value);
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
    bool ok = cursor->size() <= PageRequest::kMaxCursorLength;
    for (char c : *cursor) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    if (!ok) return Error::InvalidArgument("cursor", "malformed cursor");
    page.cursor = *cursor;
  }
  return page;
}

}  // namespace clozit::api
