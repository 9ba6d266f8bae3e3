-- Why a tenant was suspended: spam | illegal_calling | fraud | non_payment | other.
-- Refunds are refused for the first three (Cancellation & Refund Policy §5, billing P5).
ALTER TABLE tenants ADD COLUMN suspension_reason TEXT;
