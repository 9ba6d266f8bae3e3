// privacy: the audit log — who (user, API key, operator), did what, when,
// from which address, for every state change.
//
// Record() takes the caller's transaction, so the entry commits or rolls back
// with the change it describes. Details never carry secrets; personal data is
// referenced by id rather than copied. Thread-safe.
#pragma once

#include <string>

#include "common/clock.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "storage/database.hpp"

namespace clozit::privacy {

/// Who is acting, as authenticated by the API layer.
struct Actor {
  std::string kind = "anonymous";  // user | api_key | operator | system | anonymous
  std::string id = "-";
  std::string tenant_id;  // empty for operators and anonymous callers
  std::string ip;
  std::string request_id;

  /// "kind:id", as billing records who decided something (grants, refunds, price-book versions).
  std::string Label() const { return kind + ":" + id; }
};

struct AuditEvent {
  std::string action;       // "api_key.create"
  std::string target_type;  // "api_key"
  std::string target_id;
  std::string details_json = "{}";
};

struct AuditEntry {
  std::string id;
  std::string tenant_id;
  Actor actor;
  AuditEvent event;
  TimePoint at;
};

class AuditLog {
 public:
  AuditLog(const Clock& clock, Random& random) : clock_(clock), random_(random) {}
  /// Writes one entry inside `tx`. `tenant_id` scopes the entry (defaults to the actor's).
  Result<void> Record(storage::Tx& tx, const Actor& actor, const AuditEvent& event, const std::string& tenant_id = {});
  /// Newest first. An empty tenant_id lists platform-level entries.
  Result<Page<AuditEntry>> List(storage::Database& db, const std::string& tenant_id, const PageRequest& page);

 private:
  const Clock& clock_;
  Random& random_;
};

}  // namespace clozit::privacy
