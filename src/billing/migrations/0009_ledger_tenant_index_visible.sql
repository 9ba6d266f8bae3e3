-- The tenant index of transfers served only statements, which never show a
-- reservation's hold or its settling post (two of the three transfers of
-- each reserve + settle): it now holds only the transfers statements show
-- (ADR 0023; billing/statements.cpp kVisible, repeated word for word by every
-- query by tenant so both planners use the partial index).
DROP INDEX ledger_transfers_tenant;
CREATE INDEX ledger_transfers_tenant ON ledger_transfers (tenant_id, id)
  WHERE kind IN ('single', 'post_pending') AND code <> 'settle';
