-- A number may be on several registries (a national one and a state's). With one 'registry' row per number, the
-- second registry's import took the row over, and replacing that registry's copy later deleted it while the first
-- registry still listed the number. Each registry's listing is now a row of its own: `registry` joins the key
-- ('' for every other kind). SQLite cannot change a primary key: the table is rebuilt.
CREATE TABLE dnc_entries_v2 (
  tenant_id          TEXT NOT NULL,
  number             TEXT NOT NULL,
  kind               TEXT NOT NULL,
  registry           TEXT NOT NULL DEFAULT '',  -- the registry's name for kind 'registry', else ''
  source             TEXT NOT NULL,
  note               TEXT NOT NULL,
  registry_import_id TEXT,
  added_by           TEXT NOT NULL,
  added_at           BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, number, kind, registry)
);
INSERT INTO dnc_entries_v2 (tenant_id, number, kind, registry, source, note, registry_import_id, added_by, added_at)
  SELECT e.tenant_id, e.number, e.kind, CASE WHEN e.kind = 'registry' THEN COALESCE(r.registry, '') ELSE '' END,
         e.source, e.note, e.registry_import_id, e.added_by, e.added_at
  FROM dnc_entries e LEFT JOIN dnc_registry_imports r ON r.id = e.registry_import_id;
DROP TABLE dnc_entries;
ALTER TABLE dnc_entries_v2 RENAME TO dnc_entries;
CREATE INDEX dnc_entries_registry ON dnc_entries (registry_import_id);
