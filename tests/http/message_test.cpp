#include "http/message.hpp"

#include <iterator>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace clozit::http {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(PercentDecode, DecodesEscapesInBothCases) {
  EXPECT_EQ(PercentDecode("a%20b", false), "a b");
  EXPECT_EQ(PercentDecode("%2f%2F", false), "//");
  EXPECT_EQ(PercentDecode("%41%62c", false), "Abc");
  EXPECT_EQ(PercentDecode("%E2%82%AC", false), "\xE2\x82\xAC");  // €
}

TEST(PercentDecode, PlusIsSpaceOnlyWhenAsked) {
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a%2Bb", true), "a+b");
}

TEST(PercentDecode, MalformedEscapesStayLiteral) {
  EXPECT_EQ(PercentDecode("%", false), "%");
  EXPECT_EQ(PercentDecode("100%", false), "100%");
  EXPECT_EQ(PercentDecode("%4", false), "%4");
  EXPECT_EQ(PercentDecode("%zz", false), "%zz");
  EXPECT_EQ(PercentDecode("%g1x", false), "%g1x");
  EXPECT_EQ(PercentDecode("%%41", false), "%A");
  EXPECT_EQ(PercentDecode("a%2", false), "a%2");
  EXPECT_EQ(PercentDecode("", false), "");
}

TEST(PercentDecode, DecodesNulAndHighBytes) {
  EXPECT_EQ(PercentDecode("a%00b", false), std::string("a\0b", 3));
  EXPECT_EQ(PercentDecode("%ff", false), "\xff");
}

TEST(ParseQuery, SplitsAndDecodesPairs) {
  EXPECT_EQ(ParseQuery("a=1&b=x%20y&c=p+q"), (Pairs{{"a", "1"}, {"b", "x y"}, {"c", "p q"}}));
}

TEST(ParseQuery, HandlesEmptyPiecesKeysAndValues) {
  EXPECT_EQ(ParseQuery(""), Pairs{});
  EXPECT_EQ(ParseQuery("&&"), Pairs{});
  EXPECT_EQ(ParseQuery("flag"), (Pairs{{"flag", ""}}));
  EXPECT_EQ(ParseQuery("a=&=b"), (Pairs{{"a", ""}, {"", "b"}}));
  EXPECT_EQ(ParseQuery("a=1=2"), (Pairs{{"a", "1=2"}}));
  EXPECT_EQ(ParseQuery("k%3D=v%26w"), (Pairs{{"k=", "v&w"}}));
}

TEST(ParseQuery, KeepsRepeatsInOrder) {
  EXPECT_EQ(ParseQuery("x=1&x=2"), (Pairs{{"x", "1"}, {"x", "2"}}));
  Request request;
  request.query = ParseQuery("x=1&x=2&limit=10");
  EXPECT_EQ(request.QueryParam("x"), "1");
  EXPECT_EQ(request.QueryParam("limit"), "10");
  EXPECT_EQ(request.QueryParam("LIMIT"), std::nullopt);  // query names are case-sensitive
  EXPECT_EQ(request.QueryParam("nope"), std::nullopt);
}

TEST(Headers, LookupIsCaseInsensitive) {
  Headers headers;
  headers.Add("Content-Type", "application/json");
  EXPECT_EQ(headers.Get("content-type"), "application/json");
  EXPECT_EQ(headers.Get("CONTENT-TYPE"), "application/json");
  EXPECT_EQ(headers.Get("Content-Typ"), std::nullopt);
  EXPECT_EQ(headers.Get("Content-Type-X"), std::nullopt);
  EXPECT_EQ(headers.GetOr("X-Missing", "fallback"), "fallback");
}

TEST(Headers, SetReplacesAddAppends) {
  Headers headers;
  headers.Set("X-A", "1");
  headers.Set("x-a", "2");
  ASSERT_EQ(headers.all().size(), 1u);
  EXPECT_EQ(headers.Get("X-A"), "2");
  headers.Add("Set-Cookie", "a=1");
  headers.Add("set-cookie", "b=2");
  EXPECT_EQ(headers.all().size(), 3u);
  EXPECT_EQ(headers.Get("Set-Cookie"), "a=1");  // the first one
}

TEST(Cookie, FindsByExactName) {
  Request request;
  request.headers.Add("Cookie", "theme=dark; clozit_session=abc123; other=x");
  EXPECT_EQ(request.Cookie("clozit_session"), "abc123");
  EXPECT_EQ(request.Cookie("theme"), "dark");
  EXPECT_EQ(request.Cookie("other"), "x");
  EXPECT_EQ(request.Cookie("clozit"), std::nullopt);
  EXPECT_EQ(request.Cookie("session"), std::nullopt);
  EXPECT_EQ(request.Cookie("Theme"), std::nullopt);  // cookie names are case-sensitive
}

TEST(Cookie, DoesNotConfuseNamePrefixes) {
  Request request;
  request.headers.Add("Cookie", "clozit_operator_session=op; clozit_session=user");
  EXPECT_EQ(request.Cookie("clozit_session"), "user");
  EXPECT_EQ(request.Cookie("clozit_operator_session"), "op");
}

TEST(Cookie, ReadsEveryCookieHeaderAnyCaseAndOddSpacing) {
  Request request;
  request.headers.Add("cookie", "a=1");
  request.headers.Add("COOKIE", "b=2;c=3;   d=");
  EXPECT_EQ(request.Cookie("a"), "1");
  EXPECT_EQ(request.Cookie("b"), "2");
  EXPECT_EQ(request.Cookie("c"), "3");
  EXPECT_EQ(request.Cookie("d"), "");
  EXPECT_EQ(request.Cookie("e"), std::nullopt);
}

TEST(Cookie, IgnoresMalformedPairsAndKeepsEqualsInValues) {
  Request request;
  request.headers.Add("Cookie", "novalue; ;=x; token=a=b==");
  EXPECT_EQ(request.Cookie("novalue"), std::nullopt);
  EXPECT_EQ(request.Cookie("token"), "a=b==");
}

TEST(Response, Constructors) {
  auto json = Response::Json(201, R"({"a":1})");
  EXPECT_EQ(json.status, 201);
  EXPECT_EQ(json.headers.Get("Content-Type"), "application/json");
  auto text = Response::Text(200, "hi");
  EXPECT_EQ(text.headers.Get("Content-Type"), "text/plain; charset=utf-8");
  auto none = Response::NoContent();
  EXPECT_EQ(none.status, 204);
  EXPECT_TRUE(none.body.empty());
}

struct CodeCase {
  ErrorCode code;
  int status;
  const char* name;
};

const CodeCase kCodes[] = {
    {ErrorCode::kInvalidArgument, 400, "invalid_argument"},
    {ErrorCode::kNotFound, 404, "not_found"},
    {ErrorCode::kAlreadyExists, 409, "already_exists"},
    {ErrorCode::kConflict, 409, "conflict"},
    {ErrorCode::kUnauthenticated, 401, "unauthenticated"},
    {ErrorCode::kPermissionDenied, 403, "permission_denied"},
    {ErrorCode::kRateLimited, 429, "rate_limited"},
    {ErrorCode::kPayloadTooLarge, 413, "payload_too_large"},
    {ErrorCode::kMethodNotAllowed, 405, "method_not_allowed"},
    {ErrorCode::kIdempotencyMismatch, 422, "idempotency_key_reused"},
    {ErrorCode::kInsufficientCredits, 402, "insufficient_credits"},
    {ErrorCode::kUnavailable, 503, "unavailable"},
    {ErrorCode::kInternal, 500, "internal"},
};

TEST(Problem, MapsEveryErrorCodeToItsStatus) {
  // kInternal is the last enumerator: the table must cover them all.
  ASSERT_EQ(std::size(kCodes), static_cast<size_t>(ErrorCode::kInternal) + 1);
  for (const auto& c : kCodes) {
    EXPECT_EQ(StatusFor(c.code), c.status) << c.name;
    auto response = Problem(Error::Make(c.code, "the detail"), "req_1");
    EXPECT_EQ(response.status, c.status) << c.name;
    EXPECT_EQ(response.headers.Get("Content-Type"), "application/problem+json");
    auto body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["status"], c.status);
    EXPECT_EQ(body["code"], c.name);
    EXPECT_EQ(body["type"], std::string("https://docs.clozit.tech/problems/") + c.name);
    EXPECT_TRUE(body["title"].is_string() && !body["title"].get<std::string>().empty()) << c.name;
    EXPECT_EQ(body["request_id"], "req_1");
    if (c.code != ErrorCode::kInternal) {
      EXPECT_EQ(body["detail"], "the detail") << c.name;
    }
  }
}

TEST(Problem, TitlesAreDistinct) {
  std::set<std::string> titles;
  for (const auto& c : kCodes) {
    titles.insert(nlohmann::json::parse(Problem(Error::Make(c.code, "x")).body)["title"].get<std::string>());
  }
  EXPECT_EQ(titles.size(), std::size(kCodes));
}

TEST(Problem, InternalErrorHidesDetail) {
  auto response = Problem(Error::Internal("SQLITE_CORRUPT at /var/lib/clozit/clozit.db"), "req_9");
  auto body = nlohmann::json::parse(response.body);
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(body["detail"], "an internal error occurred");
  EXPECT_EQ(response.body.find("SQLITE"), std::string::npos);
  EXPECT_EQ(body["request_id"], "req_9");
}

TEST(Problem, FieldAndRequestIdOnlyWhenPresent) {
  auto with_field = nlohmann::json::parse(Problem(Error::InvalidArgument("email", "email is required")).body);
  EXPECT_EQ(with_field["field"], "email");
  EXPECT_FALSE(with_field.contains("request_id"));
  auto without = nlohmann::json::parse(Problem(Error::NotFound("nothing")).body);
  EXPECT_FALSE(without.contains("field"));
}

}  // namespace
}  // namespace clozit::http
