-- Fewer index writes per transfer (ADR 0015). Every index below was written
-- by each transfer at a random position (one tenant's account among all), and
-- none is needed any more:
-- * a tenant's statement finds its transfers by tenant_id alone, since a
--   transfer touches at most one tenant's accounts and carries that tenant;
--   ledger-check reads the transfers whole.
-- * the expiry sweep reads only open pending transfers, so only they are
--   indexed: a resolution removes its entry instead of moving it.
DROP INDEX ledger_transfers_debit;
DROP INDEX ledger_transfers_credit;
DROP INDEX ledger_pending_open;
CREATE INDEX ledger_pending_open ON ledger_pending (expires_at, transfer_id) WHERE state = 'pending';
