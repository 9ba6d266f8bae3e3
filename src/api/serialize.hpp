// api: JSON renderings of module values. Secrets never appear here except the
// one-time `secret`/`token` fields of creation responses.
#pragma once

#include <nlohmann/json.hpp>

#include "accounts/accounts.hpp"
#include "common/page.hpp"
#include "http/message.hpp"
#include "privacy/audit_log.hpp"

namespace clozit::api {

nlohmann::json ToJson(const accounts::Tenant& tenant);
nlohmann::json ToJson(const accounts::User& user);
nlohmann::json ToJson(const accounts::ApiKey& key);
nlohmann::json ToJson(const accounts::Invitation& invitation);
nlohmann::json ToJson(const privacy::AuditEntry& entry);

template <typename T>
http::Response PageResponse(const Page<T>& page) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& item : page.items) items.push_back(ToJson(item));
  nlohmann::json body = {{"data", items}, {"has_more", !page.next_cursor.empty()}};
  body["next_cursor"] = page.next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(page.next_cursor);
  return http::Response::Json(200, body.dump());
}

/// A page rendered item by item with `render` (for types whose ToJson is local to a routes file).
template <typename T, typename Render>
http::Response PageResponse(const Page<T>& page, Render render) {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& item : page.items) items.push_back(render(item));
  nlohmann::json body = {{"data", items}, {"has_more", !page.next_cursor.empty()}};
  body["next_cursor"] = page.next_cursor.empty() ? nlohmann::json(nullptr) : nlohmann::json(page.next_cursor);
  return http::Response::Json(200, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace clozit::api
