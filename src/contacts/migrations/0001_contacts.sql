-- Contacts: lists, contacts, the consent they were imported or created under,
-- import jobs, and do-not-call lists. Everything is scoped by tenant_id.

-- The basis on which a tenant may call a contact. An import carries one for
-- all its rows; a contact created through the API carries its own.
CREATE TABLE consent_records (
  id             TEXT PRIMARY KEY,   -- cns_...
  tenant_id      TEXT NOT NULL REFERENCES tenants (id),
  consent_type   TEXT NOT NULL,      -- prior_express_written_consent | prior_express_consent | established_business_relationship | ...
  obtained_where TEXT NOT NULL,      -- where it was given: a web form, a call, a signed agreement
  obtained_at    BIGINT NOT NULL,    -- when it was given
  evidence       TEXT NOT NULL,      -- text, URL or reference
  attested_by    TEXT NOT NULL,      -- the tenant user (or API key) that vouched for it
  created_at     BIGINT NOT NULL
);
CREATE INDEX consent_records_tenant ON consent_records (tenant_id, id);

CREATE TABLE contact_lists (
  id         TEXT PRIMARY KEY,   -- lst_...
  tenant_id  TEXT NOT NULL REFERENCES tenants (id),
  name       TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX contact_lists_name ON contact_lists (tenant_id, name);
CREATE INDEX contact_lists_tenant ON contact_lists (tenant_id, id);

-- One row per number per tenant: imports and the API dedupe on (tenant_id, e164).
CREATE TABLE contacts (
  id                 TEXT PRIMARY KEY,   -- con_...
  tenant_id          TEXT NOT NULL REFERENCES tenants (id),
  e164               TEXT NOT NULL,
  number_type        TEXT NOT NULL,      -- fixed_line | mobile | fixed_line_or_mobile | toll_free | voip | uan
  country            TEXT NOT NULL,      -- ISO 3166-1 alpha-2 of the number
  region             TEXT NOT NULL,      -- ISO 3166-2 state/province ('US-CA'), a place name, or ''
  time_zones         TEXT NOT NULL,      -- candidate IANA zones, comma-separated, most likely first
  name               TEXT NOT NULL,
  email              TEXT NOT NULL,
  company            TEXT NOT NULL,
  custom_fields      TEXT NOT NULL,      -- JSON object of the columns not mapped to a field
  tags               TEXT NOT NULL,      -- JSON array of strings
  source             TEXT NOT NULL,      -- 'api', 'import:imp_...'
  consent_id         TEXT NOT NULL REFERENCES consent_records (id),
  consent_revoked_at BIGINT,             -- set once; the contact may not be called after it
  created_at         BIGINT NOT NULL,
  updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX contacts_number ON contacts (tenant_id, e164);
CREATE INDEX contacts_tenant ON contacts (tenant_id, id);

CREATE TABLE contact_list_members (
  list_id    TEXT NOT NULL REFERENCES contact_lists (id) ON DELETE CASCADE,
  contact_id TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
  PRIMARY KEY (list_id, contact_id)
);
CREATE INDEX contact_list_members_contact ON contact_list_members (contact_id);

-- A CSV import run as a resumable job: byte_offset and the counters are
-- committed in the same transaction as each batch of contacts.
CREATE TABLE contact_imports (
  id          TEXT PRIMARY KEY,   -- imp_...
  tenant_id   TEXT NOT NULL REFERENCES tenants (id),
  list_id     TEXT REFERENCES contact_lists (id) ON DELETE SET NULL,
  consent_id  TEXT NOT NULL REFERENCES consent_records (id),
  status      TEXT NOT NULL,      -- pending | running | completed | failed
  file_name   TEXT NOT NULL,
  file_path   TEXT NOT NULL,      -- the spooled upload or the CLI's file, read from byte_offset on resume
  file_bytes  BIGINT NOT NULL,
  options     TEXT NOT NULL,      -- JSON: default country, explicit column mapping, tags
  header      TEXT NOT NULL,      -- JSON: delimiter, header fields and the mapping chosen, once read
  byte_offset BIGINT NOT NULL,
  line        BIGINT NOT NULL,
  rows_read   BIGINT NOT NULL,
  accepted    BIGINT NOT NULL,
  rejected    BIGINT NOT NULL,
  duplicates  BIGINT NOT NULL,
  on_dnc      BIGINT NOT NULL,
  error       TEXT NOT NULL,
  created_by  TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  updated_at  BIGINT NOT NULL,
  finished_at BIGINT
);
CREATE INDEX contact_imports_tenant ON contact_imports (tenant_id, id);

CREATE TABLE contact_import_rejections (
  import_id  TEXT NOT NULL REFERENCES contact_imports (id) ON DELETE CASCADE,
  row_number BIGINT NOT NULL,   -- CSV record number; the header is row 1
  line       BIGINT NOT NULL,   -- physical line where the record starts
  reason     TEXT NOT NULL,
  raw        TEXT NOT NULL,     -- the record re-encoded as CSV, at most 4 KiB
  PRIMARY KEY (import_id, row_number)
);

-- Do-not-call entries. tenant_id '' holds the platform list kept by
-- operators. number is E.164 or a prefix wildcard ending in '*' ('+1415*').
-- kind: tenant (the tenant's own list and every opt-out), platform, registry
-- (a national registry file imported for the tenant). A lookup probes the
-- number and its few wildcard prefixes through the primary key: O(log n).
CREATE TABLE dnc_entries (
  tenant_id          TEXT NOT NULL,
  number             TEXT NOT NULL,
  kind               TEXT NOT NULL,
  source             TEXT NOT NULL,   -- 'api', 'agent', 'consent_revoked', 'import', 'registry:<id>', ...
  note               TEXT NOT NULL,
  registry_import_id TEXT,
  added_by           TEXT NOT NULL,
  added_at           BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, number, kind)
);
CREATE INDEX dnc_entries_registry ON dnc_entries (registry_import_id);

-- One national-registry file imported for a tenant; its date says how fresh the copy is.
CREATE TABLE dnc_registry_imports (
  id          TEXT PRIMARY KEY,   -- dri_...
  tenant_id   TEXT NOT NULL REFERENCES tenants (id),
  registry    TEXT NOT NULL,      -- e.g. 'us_national'
  file_date   BIGINT NOT NULL,    -- the registry's release date of the file
  entries     BIGINT NOT NULL,
  rejected    BIGINT NOT NULL,
  imported_by TEXT NOT NULL,
  imported_at BIGINT NOT NULL
);
CREATE INDEX dnc_registry_imports_tenant ON dnc_registry_imports (tenant_id, registry, id);
