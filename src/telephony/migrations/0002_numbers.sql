-- Phone numbers a tenant holds at a carrier: bought through Clozit (fees through billing) or imported from
-- the tenant's own account (no fees). status: purchasing → active → released, or failed when the carrier
-- refused the purchase. capabilities: JSON array.
CREATE TABLE telephony_numbers (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  account_id TEXT NOT NULL REFERENCES telephony_accounts(id),
  provider TEXT NOT NULL,
  provider_number_id TEXT NOT NULL DEFAULT '',
  e164 TEXT NOT NULL,
  country TEXT NOT NULL,
  number_type TEXT NOT NULL,
  capabilities TEXT NOT NULL,
  source TEXT NOT NULL,
  status TEXT NOT NULL,
  error_code TEXT NOT NULL DEFAULT '',
  purchased_at BIGINT,
  next_fee_at BIGINT,
  released_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
-- One live row per number and account: a second purchase or import of a held number collides here.
CREATE UNIQUE INDEX telephony_numbers_live ON telephony_numbers (account_id, e164)
  WHERE status IN ('purchasing', 'active');
CREATE INDEX telephony_numbers_tenant ON telephony_numbers (tenant_id, id);

-- Caller-id pools: sets of a tenant's numbers that calls present in turn (least recently used first).
CREATE TABLE telephony_caller_id_pools (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  name TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX telephony_caller_id_pools_name ON telephony_caller_id_pools (tenant_id, name);

CREATE TABLE telephony_caller_id_pool_numbers (
  pool_id TEXT NOT NULL REFERENCES telephony_caller_id_pools(id),
  number_id TEXT NOT NULL REFERENCES telephony_numbers(id),
  tenant_id TEXT NOT NULL,
  last_used_at BIGINT NOT NULL DEFAULT 0,
  added_at BIGINT NOT NULL,
  PRIMARY KEY (pool_id, number_id)
);
