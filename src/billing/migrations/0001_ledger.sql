-- The credit ledger (TigerBeetle-style double entry) and its credit lots.
-- Money is BIGINT micro-credits; instants BIGINT Unix milliseconds. Transfers
-- are never updated or deleted; balances and lot amounts are maintained in
-- the same transaction as the transfer that changes them, and
-- `clozit admin ledger-check` re-derives them from the transfers.

-- An account: one side of every transfer. Ids are deterministic, e.g.
-- "ten_…/credits" or "platform/revenue.call_minutes/07" (platform accounts
-- are sharded so no single row is hot).
CREATE TABLE ledger_accounts (
  id              TEXT PRIMARY KEY,
  ledger          BIGINT NOT NULL,   -- 1 = credits
  tenant_id       TEXT REFERENCES tenants (id),  -- NULL for platform accounts
  code            TEXT NOT NULL,     -- tenant.credits | platform.holds | platform.revenue.call_minutes | ...
  flags           BIGINT NOT NULL,   -- bit set, see billing/ledger.hpp AccountFlag
  debits_pending  BIGINT NOT NULL,
  debits_posted   BIGINT NOT NULL,
  credits_pending BIGINT NOT NULL,
  credits_posted  BIGINT NOT NULL,
  created_at      BIGINT NOT NULL
);
CREATE INDEX ledger_accounts_tenant ON ledger_accounts (tenant_id, code);

-- Immutable transfers. The id is chosen by the client before submitting and
-- is the idempotency key. A post/void/expire row resolves the pending transfer
-- named in pending_id; the UNIQUE constraint makes that happen at most once.
CREATE TABLE ledger_transfers (
  id                TEXT PRIMARY KEY,
  ledger            BIGINT NOT NULL,
  kind              TEXT NOT NULL,     -- single | pending | post_pending | void_pending | expire_pending
  debit_account_id  TEXT NOT NULL REFERENCES ledger_accounts (id),
  credit_account_id TEXT NOT NULL REFERENCES ledger_accounts (id),
  amount            BIGINT NOT NULL,   -- post: the amount posted; void/expire: the pending amount released
  pending_id        TEXT UNIQUE REFERENCES ledger_transfers (id),
  expires_at        BIGINT,            -- pending only; NULL: never expires
  code              TEXT NOT NULL,     -- why: grant, reserve, usage.call_minutes, lot_expiry, correction ...
  corrects_id       TEXT REFERENCES ledger_transfers (id),
  reference         TEXT NOT NULL,     -- the business object: reservation, lot, purchase ...
  tenant_id         TEXT REFERENCES tenants (id),  -- on whose behalf (statements); NULL: platform only
  debit_lot_id      TEXT,              -- the lot a targeted debit takes from (expiry, refund)
  lot_kind          TEXT,              -- credit to a lot account: the lot it opens
  lot_priority      BIGINT,
  lot_expires_at    BIGINT,
  created_at        BIGINT NOT NULL
);
CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id);
CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id);
CREATE INDEX ledger_transfers_tenant ON ledger_transfers (tenant_id, id);
CREATE INDEX ledger_transfers_reference ON ledger_transfers (reference);

-- The mutable status of each pending transfer (the transfers stay immutable).
CREATE TABLE ledger_pending (
  transfer_id TEXT PRIMARY KEY REFERENCES ledger_transfers (id),
  expires_at  BIGINT,                -- copied from the transfer; NULL: never
  state       TEXT NOT NULL,         -- pending | posted | voided | expired
  resolved_by TEXT UNIQUE REFERENCES ledger_transfers (id),
  resolved_at BIGINT
);
CREATE INDEX ledger_pending_open ON ledger_pending (state, expires_at);

-- Credit lots: the sub-ledger of a tenant's credit account. remaining is the
-- posted amount left (reserved included); reserved is earmarked by pending
-- transfers. Consumed in burn-down order: priority, soonest expiry,
-- granted before paid (kind_rank), oldest.
CREATE TABLE ledger_lots (
  id                 TEXT PRIMARY KEY,   -- lot_<ULID>
  account_id         TEXT NOT NULL REFERENCES ledger_accounts (id),
  tenant_id          TEXT NOT NULL REFERENCES tenants (id),
  kind               TEXT NOT NULL,      -- purchase | subscription | promotional | replacement
  kind_rank          BIGINT NOT NULL,    -- promotional, replacement 0; subscription 1; purchase 2
  priority           BIGINT NOT NULL,    -- lower burns first
  expires_at         BIGINT,             -- NULL: never
  original           BIGINT NOT NULL,
  remaining          BIGINT NOT NULL,
  reserved           BIGINT NOT NULL,
  version            BIGINT NOT NULL,    -- history rows so far; the last row's seq
  source_transfer_id TEXT NOT NULL UNIQUE REFERENCES ledger_transfers (id),
  reference          TEXT NOT NULL,
  created_at         BIGINT NOT NULL
);
CREATE INDEX ledger_lots_account ON ledger_lots (account_id, priority, expires_at) WHERE remaining > reserved;
CREATE INDEX ledger_lots_expiry ON ledger_lots (expires_at) WHERE remaining > reserved;
CREATE INDEX ledger_lots_tenant ON ledger_lots (tenant_id, id);

-- Every change to a lot, linked to the transfer that made it: a lot's
-- remaining and reserved always equal the sums of its history.
CREATE TABLE ledger_lot_history (
  lot_id          TEXT NOT NULL REFERENCES ledger_lots (id),
  seq             BIGINT NOT NULL,   -- 1, 2, ... per lot
  transfer_id     TEXT NOT NULL REFERENCES ledger_transfers (id),
  ordinal         BIGINT NOT NULL,   -- position within the transfer (burn-down order)
  change          TEXT NOT NULL,     -- grant | consume | earmark | settle | release | expire
  delta_remaining BIGINT NOT NULL,
  delta_reserved  BIGINT NOT NULL,
  remaining_after BIGINT NOT NULL,
  reserved_after  BIGINT NOT NULL,
  at              BIGINT NOT NULL,
  PRIMARY KEY (lot_id, seq),
  UNIQUE (transfer_id, lot_id)
);

-- Reservations for live work (billing/charging.hpp). Amount, expiry and state
-- are read from the current hold transfer and its pending status, never
-- stored twice.
CREATE TABLE billing_reservations (
  id               TEXT PRIMARY KEY,   -- rsv_<ULID>
  tenant_id        TEXT NOT NULL REFERENCES tenants (id),
  idempotency_key  TEXT NOT NULL,
  purpose          TEXT NOT NULL,
  estimate         BIGINT NOT NULL,    -- as first requested (a replay must match)
  first_expires_at BIGINT NOT NULL,    -- as first requested
  hold_transfer_id TEXT NOT NULL REFERENCES ledger_transfers (id),
  version          BIGINT NOT NULL,    -- 0, then +1 per Extend that replaced the hold
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  UNIQUE (tenant_id, idempotency_key)
);

CREATE TABLE billing_reservation_extensions (
  reservation_id   TEXT NOT NULL REFERENCES billing_reservations (id),
  idempotency_key  TEXT NOT NULL,
  additional       BIGINT NOT NULL,
  expires_at       BIGINT,             -- as requested; NULL: keep the expiry
  hold_transfer_id TEXT NOT NULL REFERENCES ledger_transfers (id),
  created_at       BIGINT NOT NULL,
  PRIMARY KEY (reservation_id, idempotency_key)
);
