-- contact_list_members loses its foreign keys: an import adds a membership
-- per contact, and the two parent lookups per row cost about a tenth of a
-- million-row import. Contacts::DeleteContact and Contacts::DeleteList delete
-- the memberships in the same transaction; so must anything else that deletes
-- contacts or lists. (SQLite cannot drop a constraint: the table is rebuilt.)
CREATE TABLE contact_list_members_v2 (
  list_id    TEXT NOT NULL,
  contact_id TEXT NOT NULL,
  PRIMARY KEY (list_id, contact_id)
);
INSERT INTO contact_list_members_v2 (list_id, contact_id) SELECT list_id, contact_id FROM contact_list_members;
DROP TABLE contact_list_members;
ALTER TABLE contact_list_members_v2 RENAME TO contact_list_members;
CREATE INDEX contact_list_members_contact ON contact_list_members (contact_id);
