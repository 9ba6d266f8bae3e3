// Routes for sign-up, sessions, the tenant, users, API keys, invitations and
// the tenant's audit log.
#include <nlohmann/json.hpp>

#include "api/api.hpp"
#include "api/json_body.hpp"
#include "api/serialize.hpp"

namespace clozit::api {
namespace {

using accounts::Role;
using json = nlohmann::json;

constexpr const char* kSessionCookie = "clozit_session";

void SetCookie(Context& context, const std::string& name, const std::string& value, const std::string& path,
               int64_t max_age_seconds) {
  std::string cookie =
      name + "=" + value + "; Path=" + path + "; HttpOnly; SameSite=Lax; Max-Age=" + std::to_string(max_age_seconds);
  if (context.request.tls) cookie += "; Secure";
  context.response_headers.Add("Set-Cookie", cookie);
}

Result<http::Response> SessionResponse(Context& context, const accounts::SessionCreated& session, int status, json body,
                                       const Clock& clock, const std::string& cookie_name,
                                       const std::string& cookie_path) {
  auto max_age = std::chrono::duration_cast<std::chrono::seconds>(session.expires_at - clock.Now()).count();
  SetCookie(context, cookie_name, session.token, cookie_path, max_age);
  body["csrf_token"] = session.csrf_token;
  body["session_expires_at"] = FormatRfc3339(session.expires_at);
  return http::Response::Json(status, body.dump());
}

Result<Role> ParseRoleField(const json& body, const std::string& field, Role fallback) {
  CLOZIT_ASSIGN_OR_RETURN(auto text, OptionalString(body, field));
  if (!text) return fallback;
  auto role = accounts::ParseRole(*text);
  if (!role) return Error::InvalidArgument(field, field + " must be one of owner, admin, member, viewer");
  return *role;
}

template <typename T>
Result<http::Response> JsonOr(const Result<T>& result, int status = 200) {
  if (!result) return result.error();
  return http::Response::Json(status, ToJson(*result).dump());
}

}  // namespace

void Api::AddAccountRoutes() {
  auto& accounts = deps_.accounts;
  const Clock& clock = deps_.clock;

  specs_.push_back({"POST", "/v1/signup", Access::kPublic, Role::kViewer, true,
                    [&accounts, &clock](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      accounts::SignUpInput input;
                      CLOZIT_ASSIGN_OR_RETURN(input.company, RequiredString(body, "company"));
                      CLOZIT_ASSIGN_OR_RETURN(input.name, RequiredString(body, "name"));
                      CLOZIT_ASSIGN_OR_RETURN(input.email, RequiredString(body, "email"));
                      CLOZIT_ASSIGN_OR_RETURN(input.phone, RequiredString(body, "phone"));
                      CLOZIT_ASSIGN_OR_RETURN(input.password, RequiredString(body, "password"));
                      CLOZIT_ASSIGN_OR_RETURN(auto session, accounts.SignUp(input, c.actor));
                      CLOZIT_ASSIGN_OR_RETURN(auto tenant, accounts.GetTenant(session.principal.tenant_id));
                      CLOZIT_ASSIGN_OR_RETURN(auto user,
                                              accounts.GetUser(session.principal.tenant_id, session.principal.id));
                      return SessionResponse(c, session, 201, {{"tenant", ToJson(tenant)}, {"user", ToJson(user)}},
                                             clock, kSessionCookie, "/");
                    }});

  specs_.push_back({"POST", "/v1/login", Access::kPublic, Role::kViewer, true,
                    [&accounts, &clock](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string email, RequiredString(body, "email"));
                      CLOZIT_ASSIGN_OR_RETURN(std::string password, RequiredString(body, "password"));
                      CLOZIT_ASSIGN_OR_RETURN(auto session, accounts.Login(email, password, c.actor));
                      CLOZIT_ASSIGN_OR_RETURN(auto user,
                                              accounts.GetUser(session.principal.tenant_id, session.principal.id));
                      return SessionResponse(c, session, 200, {{"user", ToJson(user)}}, clock, kSessionCookie, "/");
                    }});

  specs_.push_back(
      {"POST", "/v1/logout", Access::kSession, Role::kViewer, false, [&accounts](Context& c) -> Result<http::Response> {
         CLOZIT_TRY(accounts.Logout(*c.principal, c.actor));
         SetCookie(c, kSessionCookie, "", "/", 0);
         return http::Response::NoContent();
       }});

  specs_.push_back(
      {"GET", "/v1/me", Access::kTenant, Role::kViewer, false, [&accounts](Context& c) -> Result<http::Response> {
         const auto& p = *c.principal;
         CLOZIT_ASSIGN_OR_RETURN(auto tenant, accounts.GetTenant(p.tenant_id));
         json body = {{"principal", {{"kind", p.ActorKind()}, {"id", p.id}, {"role", RoleName(p.role)}}},
                      {"tenant", ToJson(tenant)}};
         if (p.kind == accounts::Principal::Kind::kUser) {
           CLOZIT_ASSIGN_OR_RETURN(auto user, accounts.GetUser(p.tenant_id, p.id));
           body["user"] = ToJson(user);
           body["csrf_token"] = p.csrf_token;
         }
         return http::Response::Json(200, body.dump());
       }});

  specs_.push_back({"GET", "/v1/tenant", Access::kTenant, Role::kViewer, false,
                    [&accounts](Context& c) { return JsonOr(accounts.GetTenant(c.principal->tenant_id)); }});

  specs_.push_back(
      {"PATCH", "/v1/tenant", Access::kTenant, Role::kAdmin, false, [&accounts](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
         CLOZIT_ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
         return JsonOr(accounts.RenameTenant(c.principal->tenant_id, name, c.actor));
       }});

  specs_.push_back(
      {"GET", "/v1/users", Access::kTenant, Role::kViewer, false, [&accounts](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
         CLOZIT_ASSIGN_OR_RETURN(auto users, accounts.ListUsers(c.principal->tenant_id, page));
         return PageResponse(users);
       }});

  specs_.push_back({"GET", "/v1/users/{id}", Access::kTenant, Role::kViewer, false, [&accounts](Context& c) {
                      return JsonOr(accounts.GetUser(c.principal->tenant_id, c.request.Param("id")));
                    }});

  specs_.push_back({"PATCH", "/v1/users/{id}", Access::kTenant, Role::kViewer, false,
                    [&accounts](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      accounts::UserUpdate update;
                      CLOZIT_ASSIGN_OR_RETURN(update.name, OptionalString(body, "name"));
                      CLOZIT_ASSIGN_OR_RETURN(update.phone, OptionalString(body, "phone"));
                      // null leaves the role unchanged, as for name and phone.
                      if (body.contains("role") && !body.at("role").is_null()) {
                        CLOZIT_ASSIGN_OR_RETURN(Role role, ParseRoleField(body, "role", Role::kViewer));
                        update.role = role;
                      }
                      return JsonOr(accounts.UpdateUser(*c.principal, c.request.Param("id"), update, c.actor));
                    }});

  specs_.push_back({"DELETE", "/v1/users/{id}", Access::kTenant, Role::kAdmin, false,
                    [&accounts](Context& c) -> Result<http::Response> {
                      CLOZIT_TRY(accounts.RemoveUser(*c.principal, c.request.Param("id"), c.actor));
                      return http::Response::NoContent();
                    }});

  specs_.push_back(
      {"POST", "/v1/api-keys", Access::kTenant, Role::kAdmin, false, [&accounts](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
         CLOZIT_ASSIGN_OR_RETURN(std::string name, RequiredString(body, "name"));
         CLOZIT_ASSIGN_OR_RETURN(Role role, ParseRoleField(body, "role", Role::kMember));
         CLOZIT_ASSIGN_OR_RETURN(auto created, accounts.CreateApiKey(*c.principal, name, role, c.actor));
         json out = ToJson(created.key);
         out["secret"] = created.secret;
         return http::Response::Json(201, out.dump());
       }});

  specs_.push_back(
      {"GET", "/v1/api-keys", Access::kTenant, Role::kAdmin, false, [&accounts](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
         CLOZIT_ASSIGN_OR_RETURN(auto keys, accounts.ListApiKeys(c.principal->tenant_id, page));
         return PageResponse(keys);
       }});

  specs_.push_back({"GET", "/v1/api-keys/{id}", Access::kTenant, Role::kAdmin, false, [&accounts](Context& c) {
                      return JsonOr(accounts.GetApiKey(c.principal->tenant_id, c.request.Param("id")));
                    }});

  specs_.push_back({"DELETE", "/v1/api-keys/{id}", Access::kTenant, Role::kAdmin, false, [&accounts](Context& c) {
                      return JsonOr(accounts.RevokeApiKey(c.principal->tenant_id, c.request.Param("id"), c.actor));
                    }});

  specs_.push_back({"POST", "/v1/invitations", Access::kTenant, Role::kAdmin, false,
                    [&accounts](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string email, RequiredString(body, "email"));
                      CLOZIT_ASSIGN_OR_RETURN(Role role, ParseRoleField(body, "role", Role::kMember));
                      CLOZIT_ASSIGN_OR_RETURN(auto created, accounts.Invite(*c.principal, email, role, c.actor));
                      // The token travels by email only: whoever created the invitation must not be able to accept it.
                      return http::Response::Json(201, ToJson(created.invitation).dump());
                    }});

  specs_.push_back({"GET", "/v1/invitations", Access::kTenant, Role::kAdmin, false,
                    [&accounts](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto list, accounts.ListInvitations(c.principal->tenant_id, page));
                      return PageResponse(list);
                    }});

  specs_.push_back({"GET", "/v1/invitations/{id}", Access::kTenant, Role::kAdmin, false, [&accounts](Context& c) {
                      return JsonOr(accounts.GetInvitation(c.principal->tenant_id, c.request.Param("id")));
                    }});

  specs_.push_back({"DELETE", "/v1/invitations/{id}", Access::kTenant, Role::kAdmin, false, [&accounts](Context& c) {
                      return JsonOr(accounts.RevokeInvitation(c.principal->tenant_id, c.request.Param("id"), c.actor));
                    }});

  specs_.push_back({"POST", "/v1/invitations/accept", Access::kPublic, Role::kViewer, true,
                    [&accounts, &clock](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      accounts::AcceptInvitationInput input;
                      CLOZIT_ASSIGN_OR_RETURN(input.token, RequiredString(body, "token"));
                      CLOZIT_ASSIGN_OR_RETURN(input.name, RequiredString(body, "name"));
                      CLOZIT_ASSIGN_OR_RETURN(input.phone, RequiredString(body, "phone"));
                      CLOZIT_ASSIGN_OR_RETURN(input.password, RequiredString(body, "password"));
                      CLOZIT_ASSIGN_OR_RETURN(auto session, accounts.AcceptInvitation(input, c.actor));
                      CLOZIT_ASSIGN_OR_RETURN(auto user,
                                              accounts.GetUser(session.principal.tenant_id, session.principal.id));
                      return SessionResponse(c, session, 201, {{"user", ToJson(user)}}, clock, kSessionCookie, "/");
                    }});

  specs_.push_back(
      {"GET", "/v1/audit-log", Access::kTenant, Role::kAdmin, false, [this](Context& c) -> Result<http::Response> {
         CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
         CLOZIT_ASSIGN_OR_RETURN(auto entries, deps_.audit.List(deps_.db, c.principal->tenant_id.str(), page));
         return PageResponse(entries);
       }});
}

void Api::AddAdminRoutes() {
  auto& accounts = deps_.accounts;
  const Clock& clock = deps_.clock;
  constexpr const char* kOperatorCookie = "clozit_operator_session";

  specs_.push_back({"POST", "/v1/admin/login", Access::kPublic, Role::kViewer, true,
                    [&accounts, &clock](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string email, RequiredString(body, "email"));
                      CLOZIT_ASSIGN_OR_RETURN(std::string password, RequiredString(body, "password"));
                      CLOZIT_ASSIGN_OR_RETURN(auto session, accounts.OperatorLogin(email, password, c.actor));
                      return SessionResponse(c, session, 200, {{"operator", {{"id", session.principal.id}}}}, clock,
                                             kOperatorCookie, "/v1/admin");
                    }});

  specs_.push_back({"POST", "/v1/admin/logout", Access::kOperator, Role::kViewer, false,
                    [&accounts](Context& c) -> Result<http::Response> {
                      CLOZIT_TRY(accounts.Logout(*c.principal, c.actor));
                      SetCookie(c, "clozit_operator_session", "", "/v1/admin", 0);
                      return http::Response::NoContent();
                    }});

  specs_.push_back({"GET", "/v1/admin/tenants", Access::kOperator, Role::kViewer, false,
                    [&accounts](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(auto tenants, accounts.ListTenants(page));
                      return PageResponse(tenants);
                    }});

  specs_.push_back({"GET", "/v1/admin/tenants/{id}", Access::kOperator, Role::kViewer, false,
                    [&accounts](Context& c) { return JsonOr(accounts.GetTenant(TenantId(c.request.Param("id")))); }});

  specs_.push_back({"PUT", "/v1/admin/tenants/{id}/suspension", Access::kOperator, Role::kViewer, false,
                    [&accounts](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(json body, ParseObject(c.request));
                      CLOZIT_ASSIGN_OR_RETURN(std::string reason, RequiredString(body, "reason"));
                      CLOZIT_ASSIGN_OR_RETURN(auto note, OptionalString(body, "note"));
                      return JsonOr(
                          accounts.SuspendTenant(TenantId(c.request.Param("id")), reason, note.value_or(""), c.actor));
                    }});

  specs_.push_back(
      {"DELETE", "/v1/admin/tenants/{id}/suspension", Access::kOperator, Role::kViewer, false,
       [&accounts](Context& c) { return JsonOr(accounts.ReinstateTenant(TenantId(c.request.Param("id")), c.actor)); }});

  specs_.push_back({"GET", "/v1/admin/audit-log", Access::kOperator, Role::kViewer, false,
                    [this](Context& c) -> Result<http::Response> {
                      CLOZIT_ASSIGN_OR_RETURN(auto page, ParsePage(c.request));
                      std::string tenant = c.request.QueryParam("tenant_id").value_or("");
                      CLOZIT_ASSIGN_OR_RETURN(auto entries, deps_.audit.List(deps_.db, tenant, page));
                      return PageResponse(entries);
                    }});
}

}  // namespace clozit::api
