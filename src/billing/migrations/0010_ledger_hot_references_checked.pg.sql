-- The ledger's hot tables keep their references without foreign keys on
-- PostgreSQL (ADR 0024). Every row a reserve + settle writes ran about 18
-- foreign-key checks, each a query of its own in PostgreSQL (an SPI call and
-- a row lock on the referenced row): a third of the writer's server time.
-- The engine only writes ids it has just read or created (accounts come from
-- the account directory, lots and transfers from the same transaction), and
-- `clozit admin ledger-check` reports any reference that names nothing.
-- Names are PostgreSQL's defaults; ledger_pending's date from 0008, which
-- rebuilt it as ledger_pending_next.
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_debit_account_id_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_credit_account_id_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_pending_id_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_corrects_id_fkey;
ALTER TABLE ledger_transfers DROP CONSTRAINT ledger_transfers_tenant_id_fkey;
ALTER TABLE ledger_pending DROP CONSTRAINT ledger_pending_next_transfer_id_fkey;
ALTER TABLE ledger_pending DROP CONSTRAINT ledger_pending_next_resolved_by_fkey;
ALTER TABLE ledger_lot_history DROP CONSTRAINT ledger_lot_history_lot_id_fkey;
ALTER TABLE ledger_lot_history DROP CONSTRAINT ledger_lot_history_transfer_id_fkey;
ALTER TABLE billing_reservations DROP CONSTRAINT billing_reservations_tenant_id_fkey;
ALTER TABLE billing_reservations DROP CONSTRAINT billing_reservations_hold_transfer_id_fkey;
