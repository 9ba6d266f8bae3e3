-- Subscriptions (billing/subscriptions.hpp): a plan from the price book,
-- billed per monthly cycle from the tenant's credits, anchored at started_at.
-- Money BIGINT micro-credits; instants BIGINT Unix milliseconds.
CREATE TABLE billing_subscriptions (
  id                   TEXT PRIMARY KEY,   -- sub_<ULID>
  tenant_id            TEXT NOT NULL REFERENCES tenants (id),
  idempotency_key      TEXT NOT NULL,
  status               TEXT NOT NULL,      -- active | past_due | canceled
  plan_code            TEXT NOT NULL,
  next_plan_code       TEXT,               -- a downgrade scheduled for the next cycle
  cancel_at_period_end BIGINT NOT NULL,    -- 0/1
  period               BIGINT NOT NULL,    -- the current cycle, 0 = first
  started_at           BIGINT NOT NULL,
  period_start         BIGINT NOT NULL,
  period_end           BIGINT NOT NULL,
  canceled_at          BIGINT,
  ended_at             BIGINT,
  created_at           BIGINT NOT NULL,
  updated_at           BIGINT NOT NULL,
  UNIQUE (tenant_id, idempotency_key)
);
-- At most one live subscription per tenant.
CREATE UNIQUE INDEX billing_subscriptions_live ON billing_subscriptions (tenant_id) WHERE status <> 'canceled';
CREATE INDEX billing_subscriptions_due ON billing_subscriptions (status, period_end);

-- What each cycle (and each upgrade within one) charged and granted, with the
-- price-book version it was priced with.
CREATE TABLE billing_subscription_charges (
  subscription_id    TEXT NOT NULL REFERENCES billing_subscriptions (id),
  period             BIGINT NOT NULL,
  kind               TEXT NOT NULL,      -- cycle | upgrade:<plan>
  plan_code          TEXT NOT NULL,
  price              BIGINT NOT NULL,
  included_credits   BIGINT NOT NULL,
  price_version      BIGINT NOT NULL,
  charge_transfer_id TEXT NOT NULL REFERENCES ledger_transfers (id),
  lot_id             TEXT REFERENCES ledger_lots (id),
  created_at         BIGINT NOT NULL,
  PRIMARY KEY (subscription_id, period, kind)
);
