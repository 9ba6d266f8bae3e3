-- Idempotency-Key records: the first response to a POST, replayed for
-- retries. status = 0 while the first request is still in flight.
CREATE TABLE idempotency_keys (
  scope        TEXT NOT NULL,   -- principal (tenant + actor) the key belongs to
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,   -- SHA-256 of method, route and body
  status       INTEGER NOT NULL,
  content_type TEXT NOT NULL,
  body         TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
