-- Paid credit packs through a payment provider (Stripe): checkouts waiting
-- for payment, every provider event received (audit), refunds made outside
-- Clozit and what they could not take back. Money: prices BIGINT minor units,
-- credits BIGINT micro-credits; instants BIGINT Unix milliseconds.

-- A checkout opened for a credit pack. purchase_id is reserved at once and
-- becomes the billing_purchases row when the payment completes (exactly once:
-- status moves pending → completed in the transaction that grants the lot).
CREATE TABLE billing_checkouts (
  purchase_id       TEXT PRIMARY KEY,   -- pur_<ULID>
  tenant_id         TEXT NOT NULL REFERENCES tenants (id),
  idempotency_key   TEXT NOT NULL,
  pack_id           TEXT NOT NULL,
  credits           BIGINT NOT NULL,    -- copied from the pack when opened
  price_minor       BIGINT NOT NULL,
  currency          TEXT NOT NULL,
  provider          TEXT NOT NULL,      -- stripe
  session_id        TEXT,               -- the provider's checkout session, once created
  session_url       TEXT,
  status            TEXT NOT NULL,      -- pending | completed
  payment_reference TEXT,               -- completed: the provider's payment (PaymentIntent)
  created_by        TEXT NOT NULL,
  created_at        BIGINT NOT NULL,
  completed_at      BIGINT,
  UNIQUE (tenant_id, idempotency_key)
);
CREATE INDEX billing_checkouts_session ON billing_checkouts (session_id);

-- Every verified provider event, as received. The primary key makes a
-- redelivery a no-op; outcome says what it did.
CREATE TABLE billing_provider_events (
  provider          TEXT NOT NULL,
  event_id          TEXT NOT NULL,
  type              TEXT NOT NULL,
  payload           TEXT NOT NULL,      -- the raw body
  payment_reference TEXT,               -- the payment it concerns, when it names one
  amount_minor      BIGINT,             -- charge.refunded: the charge's cumulative amount_refunded
  outcome           TEXT NOT NULL,      -- processed | duplicate | ignored | rejected | deferred
  detail            TEXT NOT NULL,
  received_at       BIGINT NOT NULL,
  PRIMARY KEY (provider, event_id)
);
CREATE INDEX billing_provider_events_payment ON billing_provider_events (payment_reference, outcome);

-- Per purchase, the refunds seen at the provider that Clozit did not make
-- (dashboard, disputes): cumulative, so duplicate and out-of-order events
-- change nothing twice.
CREATE TABLE billing_provider_refunds (
  purchase_id       TEXT PRIMARY KEY REFERENCES billing_purchases (id),
  refunded_minor    BIGINT NOT NULL,    -- the highest external refund total applied
  credits_due       BIGINT NOT NULL,    -- its share of the purchase's credits
  removed           BIGINT NOT NULL,    -- taken back from the purchase's lot
  shortfall         BIGINT NOT NULL,    -- could not be taken back (already spent)
  updated_at        BIGINT NOT NULL
);

-- What an external refund could not take back because the credits were
-- already spent, reserved or expired: for operators to settle by hand.
CREATE TABLE billing_refund_shortfalls (
  id                TEXT PRIMARY KEY,   -- rsf_<ULID>
  tenant_id         TEXT NOT NULL REFERENCES tenants (id),
  purchase_id       TEXT NOT NULL REFERENCES billing_purchases (id),
  provider          TEXT NOT NULL,
  event_id          TEXT NOT NULL,
  refunded_minor    BIGINT NOT NULL,    -- the external refund total at that event
  currency          TEXT NOT NULL,
  credits_due       BIGINT NOT NULL,    -- what this event should have taken back
  removed           BIGINT NOT NULL,
  shortfall         BIGINT NOT NULL,
  created_at        BIGINT NOT NULL
);
CREATE INDEX billing_refund_shortfalls_created ON billing_refund_shortfalls (id);
