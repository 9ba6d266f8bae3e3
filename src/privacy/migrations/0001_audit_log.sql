-- Who did what, when, from where: one row per state change, written in the
-- same transaction as the change. tenant_id is NULL for platform-level events.
CREATE TABLE audit_log (
  id          TEXT PRIMARY KEY,
  tenant_id   TEXT,
  actor_kind  TEXT NOT NULL,   -- user | api_key | operator | system | anonymous
  actor_id    TEXT NOT NULL,
  action      TEXT NOT NULL,   -- e.g. api_key.create
  target_type TEXT NOT NULL,
  target_id   TEXT NOT NULL,
  ip          TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  details     TEXT NOT NULL,   -- JSON, never secrets
  at          BIGINT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
