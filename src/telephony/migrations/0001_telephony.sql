-- Provider accounts: the platform's own carrier credentials (tenant_id NULL, managed by operators) and
-- tenants' own Twilio or Telnyx accounts ("bring your own"). The secret (Twilio auth token, Telnyx API key)
-- is sealed with libsodium secretbox; only a masked hint is readable.
CREATE TABLE telephony_accounts (
  id TEXT PRIMARY KEY,
  tenant_id TEXT REFERENCES tenants(id),
  provider TEXT NOT NULL,
  name TEXT NOT NULL,
  api_base TEXT NOT NULL,
  account_sid TEXT NOT NULL DEFAULT '',
  connection_id TEXT NOT NULL DEFAULT '',
  public_key TEXT NOT NULL DEFAULT '',
  sealed_secret TEXT NOT NULL,
  secret_hint TEXT NOT NULL,
  is_default INTEGER NOT NULL DEFAULT 0,
  managed_by TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  deleted_at BIGINT
);
CREATE INDEX telephony_accounts_tenant ON telephony_accounts (tenant_id, id);

-- Calls. provider_call_id is NULL until the carrier accepted the call; status_rank only grows
-- (queued 0, initiated 1, ringing 2, in_progress 3, final 4), so a late event never moves a call back.
CREATE TABLE telephony_calls (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  account_id TEXT NOT NULL REFERENCES telephony_accounts(id),
  provider TEXT NOT NULL,
  provider_call_id TEXT,
  direction TEXT NOT NULL,
  from_number TEXT NOT NULL,
  to_number TEXT NOT NULL,
  status TEXT NOT NULL,
  status_rank INTEGER NOT NULL,
  machine_detection INTEGER NOT NULL DEFAULT 0,
  answered_by TEXT NOT NULL DEFAULT '',
  hangup_cause TEXT NOT NULL DEFAULT '',
  error_code TEXT NOT NULL DEFAULT '',
  duration_seconds BIGINT,
  created_at BIGINT NOT NULL,
  ringing_at BIGINT,
  answered_at BIGINT,
  ended_at BIGINT,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX telephony_calls_provider_call ON telephony_calls (account_id, provider_call_id);
CREATE INDEX telephony_calls_tenant ON telephony_calls (tenant_id, id);

-- Parsed call events, one row per distinct provider event (Telnyx data.id; Twilio CallSid + status +
-- SequenceNumber): duplicates collide on the unique index. effect: applied | stale (would have moved the
-- call backwards) | pending (the call's provider id was not known yet; applied when it is).
CREATE TABLE telephony_call_events (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  provider_event_id TEXT NOT NULL,
  provider_call_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  outcome TEXT NOT NULL,
  answered_by TEXT NOT NULL,
  detail TEXT NOT NULL,
  sequence_number BIGINT,
  duration_seconds BIGINT,
  occurred_at BIGINT,
  received_at BIGINT NOT NULL,
  effect TEXT NOT NULL
);
CREATE UNIQUE INDEX telephony_call_events_provider_event ON telephony_call_events (account_id, provider_event_id);
CREATE INDEX telephony_call_events_call ON telephony_call_events (account_id, provider_call_id);

-- Every signature-verified webhook as received, duplicates included, for audit.
CREATE TABLE telephony_raw_events (
  id TEXT PRIMARY KEY,
  account_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  url TEXT NOT NULL,
  body TEXT NOT NULL,
  outcome TEXT NOT NULL,
  received_at BIGINT NOT NULL
);
CREATE INDEX telephony_raw_events_account ON telephony_raw_events (account_id, id);
