#include "http/router.hpp"

#include <stdexcept>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace clozit::http {
namespace {

Request Make(std::string method, std::string path) {
  Request request;
  request.method = std::move(method);
  request.path = path;
  request.target = std::move(path);
  request.request_id = "req_test";
  return request;
}

/// A handler that answers with its own name and the parameters it saw.
Handler Named(std::string name) {
  return [name = std::move(name)](Request& request) {
    nlohmann::json body = {{"handler", name}, {"route", request.route}, {"params", request.path_params}};
    return Response::Json(200, body.dump());
  };
}

nlohmann::json Body(const Response& response) { return nlohmann::json::parse(response.body); }

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Registered parameter-first on purpose: the literal must still win.
    router_.Add("GET", "/v1/invitations/{id}", Named("get_invitation"));
    router_.Add("DELETE", "/v1/invitations/{id}", Named("revoke_invitation"));
    router_.Add("POST", "/v1/invitations/accept", Named("accept"));
    router_.Add("GET", "/v1/invitations", Named("list"));
    router_.Add("POST", "/v1/invitations", Named("create"));
    router_.Add("GET", "/v1/tenants/{tenant}/users/{user}", Named("tenant_user"));
  }
  Router router_;
};

TEST_F(RouterTest, LiteralSegmentBeatsParameter) {
  auto request = Make("POST", "/v1/invitations/accept");
  auto response = router_.Dispatch(request);
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(Body(response)["handler"], "accept");
  EXPECT_EQ(request.route, "/v1/invitations/accept");
  EXPECT_TRUE(request.path_params.empty());
}

TEST_F(RouterTest, ParameterMatchesAnyOtherSegment) {
  auto request = Make("GET", "/v1/invitations/inv_123");
  auto response = router_.Dispatch(request);
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(Body(response)["handler"], "get_invitation");
  EXPECT_EQ(request.route, "/v1/invitations/{id}");
  EXPECT_EQ(request.Param("id"), "inv_123");
  EXPECT_EQ(request.Param("missing"), "");
}

TEST_F(RouterTest, ExtractsSeveralParameters) {
  auto request = Make("GET", "/v1/tenants/ten_1/users/usr_2");
  auto response = router_.Dispatch(request);
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(request.Param("tenant"), "ten_1");
  EXPECT_EQ(request.Param("user"), "usr_2");
  EXPECT_EQ(Body(response)["params"], (nlohmann::json{{"tenant", "ten_1"}, {"user", "usr_2"}}));
}

TEST_F(RouterTest, SameMethodOnListAndItemAreDistinct) {
  auto list = Make("GET", "/v1/invitations");
  EXPECT_EQ(Body(router_.Dispatch(list))["handler"], "list");
  auto create = Make("POST", "/v1/invitations");
  EXPECT_EQ(Body(router_.Dispatch(create))["handler"], "create");
  auto revoke = Make("DELETE", "/v1/invitations/inv_9");
  EXPECT_EQ(Body(router_.Dispatch(revoke))["handler"], "revoke_invitation");
}

TEST_F(RouterTest, UnknownPathIs404Problem) {
  for (const char* path : {"/v1/nope", "/v1/invitations/a/b", "/", "/v1"}) {
    auto request = Make("GET", path);
    auto response = router_.Dispatch(request);
    EXPECT_EQ(response.status, 404) << path;
    EXPECT_EQ(response.headers.GetOr("Content-Type", ""), "application/problem+json");
    auto body = Body(response);
    EXPECT_EQ(body["code"], "not_found");
    EXPECT_EQ(body["request_id"], "req_test");
    EXPECT_FALSE(response.headers.Get("Allow").has_value());
    EXPECT_EQ(request.route, "(unmatched)");
  }
}

TEST_F(RouterTest, KnownPathWithOtherMethodIs405WithAllow) {
  auto request = Make("PUT", "/v1/invitations");
  auto response = router_.Dispatch(request);
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(Body(response)["code"], "method_not_allowed");
  auto allow = response.headers.Get("Allow");
  ASSERT_TRUE(allow.has_value());
  EXPECT_NE(allow->find("GET"), std::string_view::npos);
  EXPECT_NE(allow->find("POST"), std::string_view::npos);
  EXPECT_EQ(allow->find("DELETE"), std::string_view::npos);
  EXPECT_EQ(request.route, "(method not allowed)");
}

TEST_F(RouterTest, AllowListsEveryMethodOfAParameterRoute) {
  auto request = Make("PATCH", "/v1/invitations/inv_1");
  auto response = router_.Dispatch(request);
  EXPECT_EQ(response.status, 405);
  auto allow = std::string(response.headers.GetOr("Allow", ""));
  EXPECT_NE(allow.find("GET"), std::string::npos) << allow;
  EXPECT_NE(allow.find("DELETE"), std::string::npos) << allow;
}

TEST_F(RouterTest, DuplicateRouteThrows) {
  EXPECT_THROW(router_.Add("GET", "/v1/invitations", Named("again")), std::logic_error);
  EXPECT_THROW(router_.Add("POST", "/v1/invitations/accept", Named("again")), std::logic_error);
  // Another method on an existing pattern is fine.
  EXPECT_NO_THROW(router_.Add("PATCH", "/v1/invitations/{id}", Named("update")));
}

// Regression: a second route differing only in its parameter's name could never be reached, yet was accepted.
TEST_F(RouterTest, DuplicateRouteWithRenamedParameterThrows) {
  EXPECT_THROW(router_.Add("GET", "/v1/invitations/{invitation_id}", Named("shadowed")), std::logic_error);
}

TEST_F(RouterTest, RoutesKeepsRegistrationOrder) {
  const auto& routes = router_.routes();
  ASSERT_EQ(routes.size(), 6u);
  EXPECT_EQ(routes[0].pattern, "/v1/invitations/{id}");
  EXPECT_EQ(routes[2].method, "POST");
  EXPECT_EQ(routes[2].pattern, "/v1/invitations/accept");
}

TEST(Router, EmptySegmentDoesNotMatchAParameter) {
  Router router;
  router.Add("GET", "/items/{id}", Named("item"));
  auto request = Make("GET", "/items/");
  EXPECT_EQ(router.Dispatch(request).status, 404);
}

}  // namespace
}  // namespace clozit::http
