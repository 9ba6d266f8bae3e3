#include "privacy/audit_log.hpp"

#include "common/ids.hpp"

namespace clozit::privacy {

Result<void> AuditLog::Record(storage::Tx& tx, const Actor& actor, const AuditEvent& event,
                              const std::string& tenant_id) {
  const std::string& scope = tenant_id.empty() ? actor.tenant_id : tenant_id;
  auto result = tx.Exec(
      "INSERT INTO audit_log (id, tenant_id, actor_kind, actor_id, action, target_type, target_id, ip, request_id, "
      "details, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
      {"aud_" + NewUlid(clock_, random_), scope.empty() ? storage::Value(nullptr) : storage::Value(scope), actor.kind,
       actor.id, event.action, event.target_type, event.target_id, actor.ip, actor.request_id, event.details_json,
       ToUnixMillis(clock_.Now())});
  if (!result) return result.error();
  return Ok();
}

Result<Page<AuditEntry>> AuditLog::List(storage::Database& db, const std::string& tenant_id, const PageRequest& page) {
  std::string sql =
      "SELECT id, tenant_id, actor_kind, actor_id, action, target_type, target_id, ip, request_id, details, at "
      "FROM audit_log WHERE ";
  sql += tenant_id.empty() ? "tenant_id IS NULL AND $1 = ''" : "tenant_id = $1";
  sql += " AND ($2 = '' OR id < $2) ORDER BY id DESC LIMIT $3";
  CLOZIT_ASSIGN_OR_RETURN(auto rows, db.Query(sql, {tenant_id, page.cursor, page.limit + 1}));
  Page<AuditEntry> out;
  for (size_t i = 0; i < rows.size() && static_cast<int64_t>(i) < page.limit; ++i) {
    const auto& row = rows[i];
    AuditEntry entry;
    entry.id = row.Text(0);
    entry.tenant_id = row.Text(1);
    entry.actor = {row.Text(2), row.Text(3), row.Text(1), row.Text(7), row.Text(8)};
    entry.event = {row.Text(4), row.Text(5), row.Text(6), row.Text(9)};
    entry.at = FromUnixMillis(row.Int(10));
    out.items.push_back(std::move(entry));
  }
  if (static_cast<int64_t>(rows.size()) > page.limit) out.next_cursor = out.items.back().id;
  return out;
}

}  // namespace clozit::privacy
