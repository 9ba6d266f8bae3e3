-- Chargebacks and inquiries: a card holder disputed a credit-pack payment. When it opens, the disputed amount's
-- share of the purchase's credits is frozen by a hold on the purchase lot that does not lapse (what the lot no
-- longer had is the shortfall); when it closes, a lost dispute posts the hold (the credits go for good, and a
-- shortfall is recorded for operators like one of a refund made outside Clozit), a won one or a closed inquiry
-- voids it. One row per dispute: a redelivered or repeated report changes nothing twice.
CREATE TABLE billing_disputes (
  id               TEXT PRIMARY KEY,   -- the provider's dispute id (dp_…)
  provider         TEXT NOT NULL,
  tenant_id        TEXT NOT NULL REFERENCES tenants (id),
  purchase_id      TEXT NOT NULL REFERENCES billing_purchases (id),
  amount_minor     BIGINT NOT NULL,
  currency         TEXT NOT NULL,
  reason           TEXT NOT NULL,      -- the provider's: fraudulent, product_not_received, …
  status           TEXT NOT NULL,      -- open | won | lost | warning_closed
  credits_due      BIGINT NOT NULL,    -- the disputed amount's share of the purchase's credits
  held             BIGINT NOT NULL,    -- what the lot still had unreserved, frozen by hold_transfer_id
  shortfall        BIGINT NOT NULL,    -- credits_due - held: spent, reserved or expired before the dispute
  hold_transfer_id TEXT,              -- null when nothing could be held
  opened_at        BIGINT NOT NULL,
  closed_at        BIGINT
);
CREATE INDEX billing_disputes_tenant ON billing_disputes (tenant_id, id);
CREATE INDEX billing_disputes_purchase ON billing_disputes (purchase_id);
