// contacts: the module's front door — contact lists, contacts and the
// consent they are held under.
//
// Every contact carries a consent basis (type, where and when obtained,
// evidence, the attesting user): without one it is refused. Consent is
// revoked per contact at once (the contact also goes on the tenant's
// do-not-call list) and the revocation is audited. Contacts are unique per
// tenant by E.164 number; deletion is real deletion (the privacy module's
// erasure builds on it). Every query is scoped by tenant id: another
// tenant's row is not_found, exactly like a missing one. Every change writes
// an audit entry in the same transaction; audit entries reference contacts by
// id and never copy their personal data.
//
// Thread-safe; methods block on the database (call from worker threads).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/page.hpp"
#include "common/result.hpp"
#include "contacts/dnc.hpp"
#include "contacts/model.hpp"
#include "contacts/phone_numbers.hpp"
#include "privacy/audit_log.hpp"
#include "storage/database.hpp"

namespace clozit::contacts {

class Contacts {
 public:
  Contacts(storage::Database& db, const Clock& clock, Random& random, privacy::AuditLog& audit,
           const PhoneNumbers& numbers);

  // Lists.
  Result<ContactList> CreateList(const TenantId& tenant, std::string_view name, const privacy::Actor& actor);
  Result<ContactList> RenameList(const TenantId& tenant, const std::string& list_id, std::string_view name,
                                 const privacy::Actor& actor);
  /// Deletes the list and its memberships; the contacts stay.
  Result<void> DeleteList(const TenantId& tenant, const std::string& list_id, const privacy::Actor& actor);
  Result<ContactList> GetList(const TenantId& tenant, const std::string& list_id);
  /// Newest first, with contact counts.
  Result<Page<ContactList>> ListLists(const TenantId& tenant, const PageRequest& page);

  // Consent.
  Result<ConsentRecord> CreateConsent(const TenantId& tenant, const ConsentInput& input, const privacy::Actor& actor);
  /// Inside a caller's transaction (imports record theirs with the job).
  Result<ConsentRecord> CreateConsent(storage::Tx& tx, const TenantId& tenant, const ConsentInput& input);
  Result<ConsentRecord> GetConsent(const TenantId& tenant, const std::string& consent_id);

  // Contacts.
  /// Creates a contact under its own consent basis; already_exists when the
  /// tenant has the number. invalid_argument names the field at fault.
  Result<Contact> CreateContact(const TenantId& tenant, const ContactInput& input, const ConsentInput& consent,
                                const privacy::Actor& actor);
  Result<Contact> GetContact(const TenantId& tenant, const std::string& contact_id);
  /// The tenant's contact with this E.164 number.
  Result<Contact> FindByNumber(const TenantId& tenant, std::string_view e164);
  /// Newest first; filters combine with AND.
  Result<Page<Contact>> ListContacts(const TenantId& tenant, const ContactQuery& query, const PageRequest& page);
  Result<Contact> UpdateContact(const TenantId& tenant, const std::string& contact_id, const ContactUpdate& update,
                                const privacy::Actor& actor);
  /// Deletes the contact and its list memberships for good.
  Result<void> DeleteContact(const TenantId& tenant, const std::string& contact_id, const privacy::Actor& actor);
  /// Adds (or removes) contacts to a list; unknown ids are not_found.
  Result<void> AddToList(const TenantId& tenant, const std::string& list_id,
                         const std::vector<std::string>& contact_ids, const privacy::Actor& actor);
  Result<void> RemoveFromList(const TenantId& tenant, const std::string& list_id, const std::string& contact_id,
                              const privacy::Actor& actor);
  /// Revokes the contact's consent now and puts its number on the tenant's
  /// do-not-call list (source "consent_revoked"). Idempotent.
  Result<Contact> RevokeConsent(const TenantId& tenant, const std::string& contact_id, const std::string& reason,
                                const privacy::Actor& actor);

  /// Streams matching contacts as CSV (a header row, then one row per
  /// contact, page by page: memory stays flat however many there are).
  Result<int64_t> ExportCsv(const TenantId& tenant, const ContactQuery& query, std::ostream& out);

 private:
  Result<Contact> Load(storage::Tx& tx, const TenantId& tenant, const std::string& contact_id);
  Result<void> RequireList(storage::Tx& tx, const TenantId& tenant, const std::string& list_id);

  storage::Database& db_;
  const Clock& clock_;
  Random& random_;
  privacy::AuditLog& audit_;
  const PhoneNumbers& numbers_;
};

/// The columns of a contacts export, in order.
const std::vector<std::string>& ContactCsvColumns();
/// Contact ↔ stored text of the list-valued columns.
std::string JoinZones(const std::vector<std::string>& zones);
std::vector<std::string> SplitZones(std::string_view text);
std::string TagsJson(const std::vector<std::string>& tags);

}  // namespace clozit::contacts
