-- Purchases, refund requests (P2, P4, P5, P7), platform-error adjustments (P6)
-- and balance notifications. Money: BIGINT micro-credits, prices BIGINT minor
-- currency units; instants BIGINT Unix milliseconds.

-- A credit pack bought (for now: granted by an operator against a payment
-- taken elsewhere). The lot it opened is the only thing a refund may take from.
CREATE TABLE billing_purchases (
  id                TEXT PRIMARY KEY,   -- pur_<ULID>
  tenant_id         TEXT NOT NULL REFERENCES tenants (id),
  credits           BIGINT NOT NULL,
  price_minor       BIGINT NOT NULL,    -- what was paid, minor units of `currency`
  currency          TEXT NOT NULL,      -- ISO 4217, upper case
  provider          TEXT NOT NULL,      -- operator_grant | stripe ...
  payment_reference TEXT NOT NULL,      -- the provider's charge / payment intent
  lot_id            TEXT NOT NULL UNIQUE REFERENCES ledger_lots (id),
  idempotency_key   TEXT NOT NULL,
  created_by        TEXT NOT NULL,      -- actor "kind:id"
  created_at        BIGINT NOT NULL,
  UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX billing_purchases_tenant ON billing_purchases (tenant_id, id);

-- A tenant's request for a refund. Every request is kept: an ineligible one
-- is stored as refused with its reason code.
CREATE TABLE billing_refund_requests (
  id                  TEXT PRIMARY KEY,   -- rfd_<ULID>
  tenant_id           TEXT NOT NULL REFERENCES tenants (id),
  subject_id          TEXT NOT NULL,      -- what the tenant asked about: a purchase, lot or transfer id
  purchase_id         TEXT REFERENCES billing_purchases (id),
  reason              TEXT NOT NULL,      -- the tenant's words
  status              TEXT NOT NULL,      -- pending | approved | rejected | refused
  reason_code         TEXT NOT NULL,      -- eligible, or why not (billing/purchases.hpp)
  requested_credits   BIGINT NOT NULL,    -- the refundable remainder when asked
  refunded_credits    BIGINT,             -- approved: what left the lot
  refunded_minor      BIGINT,             -- approved: what the provider returned
  provider_refund_id  TEXT,
  hold_transfer_id    TEXT REFERENCES ledger_transfers (id),  -- the earmark while the provider is called
  attempts            BIGINT NOT NULL,
  last_error          TEXT,
  decision_reason     TEXT,
  decided_by          TEXT,
  decided_at          BIGINT,
  created_at          BIGINT NOT NULL,
  updated_at          BIGINT NOT NULL
);
CREATE INDEX billing_refund_requests_tenant ON billing_refund_requests (tenant_id, id);
CREATE INDEX billing_refund_requests_purchase ON billing_refund_requests (purchase_id, status);

-- A claim that credits were deducted by a platform error (P6).
CREATE TABLE billing_adjustment_requests (
  id              TEXT PRIMARY KEY,   -- adj_<ULID>
  tenant_id       TEXT NOT NULL REFERENCES tenants (id),
  description     TEXT NOT NULL,
  status          TEXT NOT NULL,      -- pending | approved | rejected
  resolution      TEXT,               -- credit_adjustment | replacement_credits
  restored        BIGINT NOT NULL,    -- total restored by the approval
  lot_id          TEXT REFERENCES ledger_lots (id),
  decision_reason TEXT,
  decided_by      TEXT,
  decided_at      BIGINT,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL
);
CREATE INDEX billing_adjustment_requests_tenant ON billing_adjustment_requests (tenant_id, id);

-- The charges a claim disputes, with the evidence copied from their source
-- record. restored: what the approval gave back for this charge; the sum over
-- all claims never exceeds charged.
CREATE TABLE billing_adjustment_items (
  request_id  TEXT NOT NULL REFERENCES billing_adjustment_requests (id),
  transfer_id TEXT NOT NULL REFERENCES ledger_transfers (id),
  charged     BIGINT NOT NULL,
  evidence    TEXT NOT NULL,     -- JSON
  restored    BIGINT NOT NULL,
  PRIMARY KEY (request_id, transfer_id)
);
CREATE INDEX billing_adjustment_items_transfer ON billing_adjustment_items (transfer_id);

-- The tenant's low-balance threshold, and the balance events waiting for webhooks.
CREATE TABLE billing_balance_settings (
  tenant_id           TEXT PRIMARY KEY REFERENCES tenants (id),
  low_balance_micros  BIGINT NOT NULL,
  low_notified        BIGINT NOT NULL,   -- 1 while below the threshold and already reported
  depleted_notified   BIGINT NOT NULL,
  updated_at          BIGINT NOT NULL
);

CREATE TABLE billing_balance_events (
  id         TEXT PRIMARY KEY,   -- bev_<ULID>
  tenant_id  TEXT NOT NULL REFERENCES tenants (id),
  kind       TEXT NOT NULL,      -- balance.low | credits.depleted
  available  BIGINT NOT NULL,
  threshold  BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  delivered_at BIGINT
);
CREATE INDEX billing_balance_events_tenant ON billing_balance_events (tenant_id, id);
