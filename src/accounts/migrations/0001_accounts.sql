CREATE TABLE tenants (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  status     TEXT NOT NULL DEFAULT 'active',  -- active | suspended
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);

-- A user belongs to exactly one tenant; `role` is the membership.
CREATE TABLE users (
  id            TEXT PRIMARY KEY,
  tenant_id     TEXT NOT NULL REFERENCES tenants (id),
  email         TEXT NOT NULL UNIQUE,   -- normalised (trimmed, lower case)
  name          TEXT NOT NULL,
  phone         TEXT NOT NULL,          -- E.164
  password_hash TEXT NOT NULL,          -- argon2id encoded string
  role          TEXT NOT NULL,          -- owner | admin | member | viewer
  created_at    BIGINT NOT NULL,
  updated_at    BIGINT NOT NULL
);
CREATE INDEX users_tenant ON users (tenant_id, id);

-- Platform staff; created only from the CLI.
CREATE TABLE operators (
  id            TEXT PRIMARY KEY,
  email         TEXT NOT NULL UNIQUE,
  name          TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  created_at    BIGINT NOT NULL
);

-- Login sessions of users and operators. Only the token's SHA-256 is stored.
CREATE TABLE sessions (
  id             TEXT PRIMARY KEY,
  token_hash     TEXT NOT NULL UNIQUE,
  principal_kind TEXT NOT NULL,   -- user | operator
  principal_id   TEXT NOT NULL,
  tenant_id      TEXT REFERENCES tenants (id),
  csrf_token     TEXT NOT NULL,
  ip             TEXT NOT NULL,
  created_at     BIGINT NOT NULL,
  last_seen_at   BIGINT NOT NULL,
  expires_at     BIGINT NOT NULL,   -- absolute expiry
  revoked_at     BIGINT
);
CREATE INDEX sessions_principal ON sessions (principal_id);

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,
  tenant_id    TEXT NOT NULL REFERENCES tenants (id),
  name         TEXT NOT NULL,
  prefix       TEXT NOT NULL UNIQUE,   -- shown in listings; finds the row
  secret_hash  TEXT NOT NULL,          -- SHA-256 of the whole key
  role         TEXT NOT NULL,
  created_by   TEXT NOT NULL,
  created_at   BIGINT NOT NULL,
  last_used_at BIGINT,
  revoked_at   BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE invitations (
  id          TEXT PRIMARY KEY,
  tenant_id   TEXT NOT NULL REFERENCES tenants (id),
  email       TEXT NOT NULL,
  role        TEXT NOT NULL,
  token_hash  TEXT NOT NULL UNIQUE,
  invited_by  TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  expires_at  BIGINT NOT NULL,
  accepted_at BIGINT,
  revoked_at  BIGINT
);
CREATE INDEX invitations_tenant ON invitations (tenant_id, id);

-- Mail waiting for delivery (the mailer comes later; tests read it).
CREATE TABLE email_outbox (
  id         TEXT PRIMARY KEY,
  tenant_id  TEXT,
  to_address TEXT NOT NULL,
  subject    TEXT NOT NULL,
  body       TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  sent_at    BIGINT
);
