#include "api/serialize.hpp"

namespace clozit::api {
namespace {
nlohmann::json Time(const std::optional<TimePoint>& t) {
  return t ? nlohmann::json(FormatRfc3339(*t)) : nlohmann::json(nullptr);
}
}  // namespace

nlohmann::json ToJson(const accounts::Tenant& tenant) {
  return {{"id", tenant.id.str()},
          {"object", "tenant"},
          {"name", tenant.name},
          {"status", tenant.status},
          {"suspension_reason",
           tenant.suspension_reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(tenant.suspension_reason)},
          {"created_at", FormatRfc3339(tenant.created_at)}};
}

nlohmann::json ToJson(const accounts::User& user) {
  return {{"id", user.id.str()},
          {"object", "user"},
          {"tenant_id", user.tenant_id.str()},
          {"email", user.email},
          {"name", user.name},
          {"phone", user.phone},
          {"role", RoleName(user.role)},
          {"created_at", FormatRfc3339(user.created_at)}};
}

nlohmann::json ToJson(const accounts::ApiKey& key) {
  return {{"id", key.id.str()},
          {"object", "api_key"},
          {"name", key.name},
          {"prefix", key.prefix},
          {"role", RoleName(key.role)},
          {"created_by", key.created_by},
          {"created_at", FormatRfc3339(key.created_at)},
          {"last_used_at", Time(key.last_used_at)},
          {"revoked_at", Time(key.revoked_at)}};
}

nlohmann::json ToJson(const accounts::Invitation& invitation) {
  return {{"id", invitation.id.str()},
          {"object", "invitation"},
          {"email", invitation.email},
          {"role", RoleName(invitation.role)},
          {"invited_by", invitation.invited_by},
          {"status", invitation.status},
          {"created_at", FormatRfc3339(invitation.created_at)},
          {"expires_at", FormatRfc3339(invitation.expires_at)}};
}

nlohmann::json ToJson(const privacy::AuditEntry& entry) {
  auto details = nlohmann::json::parse(entry.event.details_json, nullptr, false);
  return {{"id", entry.id},
          {"object", "audit_entry"},
          {"actor", {{"kind", entry.actor.kind}, {"id", entry.actor.id}}},
          {"action", entry.event.action},
          {"target", {{"type", entry.event.target_type}, {"id", entry.event.target_id}}},
          {"ip", entry.actor.ip},
          {"request_id", entry.actor.request_id},
          {"details", details.is_discarded() ? nlohmann::json::object() : details},
          {"at", FormatRfc3339(entry.at)}};
}

}  // namespace clozit::api
