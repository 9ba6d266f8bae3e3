// api: request-body parsing with field-precise errors.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/page.hpp"
#include "common/result.hpp"
#include "http/message.hpp"

namespace clozit::api {

/// The body as a JSON object; malformed JSON or a non-object is invalid_argument on field "body".
Result<nlohmann::json> ParseObject(const http::Request& request);
/// A required string member; missing → "is required", wrong type → "must be a string".
Result<std::string> RequiredString(const nlohmann::json& body, const std::string& field);
Result<std::optional<std::string>> OptionalString(const nlohmann::json& body, const std::string& field);
/// An optional integer member within [min, max]; a float, a string, or a value out of the range (including
/// integers beyond int64) is invalid_argument naming the field.
Result<std::optional<int64_t>> OptionalInt(const nlohmann::json& body, const std::string& field,
                                           int64_t min = std::numeric_limits<int64_t>::min(),
                                           int64_t max = std::numeric_limits<int64_t>::max());
/// `limit` (1..200, default 50) and `cursor` from the query string.
Result<PageRequest> ParsePage(const http::Request& request);

}  // namespace clozit::api
