-- Phone-number fees (policy P4) and the billing events other work delivers.
-- Money: BIGINT micro-credits; instants BIGINT Unix milliseconds.

-- A phone number a tenant holds through a telephony provider. Its monthly and
-- regulatory fees are charged at purchase (period 0) and at each monthly
-- anniversary of purchased_at (period n: n months later, the day clamped to
-- the month's end) until it is released.
CREATE TABLE billing_number_holdings (
  tenant_id        TEXT NOT NULL REFERENCES tenants (id),
  number_id        TEXT NOT NULL,      -- the telephony module's id for the number
  e164             TEXT NOT NULL,
  country          TEXT NOT NULL,      -- ISO 3166-1 alpha-2
  number_type      TEXT NOT NULL,      -- local | toll_free | mobile
  idempotency_key  TEXT NOT NULL,
  status           TEXT NOT NULL,      -- active | past_due | release_due | released | aborted
  purchased_at     BIGINT NOT NULL,
  periods_charged  BIGINT NOT NULL,    -- fee periods charged so far (1 after the purchase)
  next_fee_at      BIGINT,             -- NULL once released or aborted
  grace_until      BIGINT,             -- past_due: when the number is flagged for release
  release_due_at   BIGINT,             -- when it was flagged
  released_at      BIGINT,
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, number_id),
  UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX billing_number_holdings_due ON billing_number_holdings (next_fee_at);
CREATE INDEX billing_number_holdings_status ON billing_number_holdings (status, release_due_at);

-- One row per charged fee period: the fees as priced and the price-book
-- version they were priced with. The primary key makes a period chargeable once.
CREATE TABLE billing_number_fee_charges (
  tenant_id      TEXT NOT NULL REFERENCES tenants (id),
  number_id      TEXT NOT NULL,
  period         BIGINT NOT NULL,      -- 0 = at purchase
  monthly_fee    BIGINT NOT NULL,
  regulatory_fee BIGINT NOT NULL,
  price_version  BIGINT NOT NULL,      -- 0: priced from configuration defaults
  due_at         BIGINT NOT NULL,
  charged_at     BIGINT NOT NULL,
  reversed_at    BIGINT,               -- AbortNumberPurchase gave it back
  PRIMARY KEY (tenant_id, number_id, period)
);

-- Events for the tenant's outbound webhooks (delivered later by that work):
-- number.past_due, number.release_due, subscription.past_due, ...
CREATE TABLE billing_events (
  id           TEXT PRIMARY KEY,        -- evt_<ULID>
  tenant_id    TEXT NOT NULL REFERENCES tenants (id),
  kind         TEXT NOT NULL,
  subject_id   TEXT NOT NULL,           -- the number, subscription ...
  details      TEXT NOT NULL,           -- JSON
  created_at   BIGINT NOT NULL,
  delivered_at BIGINT
);
CREATE INDEX billing_events_tenant ON billing_events (tenant_id, id);
CREATE INDEX billing_events_undelivered ON billing_events (delivered_at, id);
