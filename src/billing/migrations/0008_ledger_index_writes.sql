-- Fewer index writes per reserve + settle (ADR 0023).
--
-- Lot updates that touch no index. The two lot indexes were partial on
-- `remaining > reserved`, so every earmark, settle and release rewrote their
-- entries (SQLite: two more B-tree writes per lot update; PostgreSQL: no HOT
-- update, a new entry in all five indexes). A lot's remaining never grows
-- after its grant, so "nothing left" is a one-way mark: `exhausted` turns 1
-- in the update that takes remaining to zero and never changes again; the
-- indexes hold the lots not exhausted, and the queries skip the fully
-- reserved ones themselves.
ALTER TABLE ledger_lots ADD COLUMN exhausted BIGINT NOT NULL DEFAULT 0;
UPDATE ledger_lots SET exhausted = 1 WHERE remaining = 0;
DROP INDEX ledger_lots_account;
DROP INDEX ledger_lots_expiry;
CREATE INDEX ledger_lots_account ON ledger_lots (account_id, priority, expires_at) WHERE exhausted = 0;
CREATE INDEX ledger_lots_expiry ON ledger_lots (expires_at) WHERE exhausted = 0;

-- Every transfer wrote an entry at a random position of the reference index,
-- read only to find a settled reservation's usage items, whose ids are known
-- (`<reservation>/usage/<category>`): they are read by id now.
DROP INDEX ledger_transfers_reference;

-- The status row of a pending transfer kept a unique index on resolved_by:
-- three entries written per reserve + settle (the NULL, its removal, the
-- resolution) for a guarantee ledger_transfers already gives, since a
-- resolution names one pending transfer and pending_id is unique there
-- (and ledger-check verifies that each status names its resolution). SQLite cannot
-- drop a column's UNIQUE, so the table is rebuilt; nothing references it.
CREATE TABLE ledger_pending_next (
  transfer_id TEXT PRIMARY KEY REFERENCES ledger_transfers (id),
  expires_at  BIGINT,
  state       TEXT NOT NULL,
  resolved_by TEXT REFERENCES ledger_transfers (id),
  resolved_at BIGINT
);
INSERT INTO ledger_pending_next (transfer_id, expires_at, state, resolved_by, resolved_at)
  SELECT transfer_id, expires_at, state, resolved_by, resolved_at FROM ledger_pending;
DROP TABLE ledger_pending;
ALTER TABLE ledger_pending_next RENAME TO ledger_pending;
CREATE INDEX ledger_pending_open ON ledger_pending (expires_at, transfer_id) WHERE state = 'pending';
