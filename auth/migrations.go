package auth

import "github.com/abe-stack/abe/schema"

// Migrations are the system migrations of the auth tables, in order. A
// released migration is never edited: changes are new versions.
func Migrations() []schema.Migration {
	return []schema.Migration{
		{Component: "auth", Version: 1, Name: "users", SQL: usersV1},
		{Component: "auth", Version: 2, Name: "roles, refresh tokens, revocations, login attempts, security events, email tokens", SQL: authV2},
		{Component: "auth", Version: 3, Name: "role definitions, role change notifications", SQL: authV3},
		{Component: "auth", Version: 4, Name: "TOTP second factors, recovery codes, login challenges", SQL: authV4},
	}
}

const usersV1 = `
CREATE TABLE abe.users (
  id             uuid PRIMARY KEY DEFAULT abe.uuid_v7(),
  email          text NOT NULL,
  name           text NOT NULL DEFAULT '',
  password_hash  text,
  email_verified boolean NOT NULL DEFAULT false,
  version        bigint NOT NULL DEFAULT 1,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
-- Emails compare without case, as mail servers treat them.
CREATE UNIQUE INDEX users_email_key ON abe.users (lower(email));
`

const authV2 = `
CREATE TABLE abe.user_roles (
  user_id    uuid NOT NULL REFERENCES abe.users (id) ON DELETE CASCADE,
  role       text NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, role)
);

-- Refresh tokens are stored as SHA-256 hashes. Tokens of one login form a
-- family; a rotated token is kept (used_at, replaced_by) so that presenting
-- it again is recognised: within the grace window as a retry, which gets
-- the family's current token back (sealed in successor_sealed with a key
-- that is not in the database), after it as theft.
CREATE TABLE abe.refresh_tokens (
  id               uuid PRIMARY KEY,
  family_id        uuid NOT NULL,
  user_id          uuid NOT NULL REFERENCES abe.users (id) ON DELETE CASCADE,
  token_hash       bytea NOT NULL UNIQUE,
  created_at       timestamptz NOT NULL,
  expires_at       timestamptz NOT NULL,
  used_at          timestamptz,
  replaced_by      uuid,
  successor_sealed bytea,
  revoked_at       timestamptz,
  ip               text NOT NULL DEFAULT '',
  user_agent       text NOT NULL DEFAULT ''
);
CREATE INDEX refresh_tokens_family_idx ON abe.refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON abe.refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_idx ON abe.refresh_tokens (expires_at);

-- Revoked access tokens (by jti) and sessions (by family), until the last
-- access token they could cover has expired. Every node keeps them in
-- memory and hears of new ones through NOTIFY abe_revocations.
CREATE TABLE abe.revocations (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  jti        uuid,
  family_id  uuid,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((jti IS NULL) <> (family_id IS NULL))
);
CREATE INDEX revocations_expires_idx ON abe.revocations (expires_at);
CREATE FUNCTION abe.notify_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('abe_revocations', NEW.id::text);
  RETURN NULL;
END
$$;
CREATE TRIGGER revocations_notify AFTER INSERT ON abe.revocations
  FOR EACH ROW EXECUTE FUNCTION abe.notify_revocation();

-- Login attempts by email (known or not, so answers never tell) and IP:
-- the progressive delay and the lock are computed from them, and an unlock
-- deletes the account's rows.
CREATE TABLE abe.login_attempts (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email     text NOT NULL,
  ip        text NOT NULL,
  succeeded boolean NOT NULL,
  at        timestamptz NOT NULL
);
CREATE INDEX login_attempts_email_idx ON abe.login_attempts (email, at);
CREATE INDEX login_attempts_ip_idx ON abe.login_attempts (ip, at);

-- A lock starts at the failure that reaches the limit and lasts its full
-- duration, however the failures before it age.
CREATE TABLE abe.login_locks (
  email        text PRIMARY KEY,
  locked_at    timestamptz NOT NULL,
  locked_until timestamptz NOT NULL
);

-- The audit trail. No foreign key: events outlive the accounts they name.
CREATE TABLE abe.security_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id    uuid,
  type       text NOT NULL,
  ip         text NOT NULL DEFAULT '',
  user_agent text NOT NULL DEFAULT '',
  details    jsonb NOT NULL DEFAULT '{}',
  at         timestamptz NOT NULL
);
CREATE INDEX security_events_user_idx ON abe.security_events (user_id, id);
CREATE INDEX security_events_type_idx ON abe.security_events (type, id);
CREATE INDEX security_events_at_idx ON abe.security_events (at);

-- Single-use links sent by mail, stored as hashes.
CREATE TABLE abe.email_tokens (
  id         uuid PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES abe.users (id) ON DELETE CASCADE,
  kind       text NOT NULL CHECK (kind IN ('verify_email', 'reset_password')),
  token_hash bytea NOT NULL UNIQUE,
  email      text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz
);
CREATE INDEX email_tokens_user_idx ON abe.email_tokens (user_id, kind);
`

// authV3 keeps role definitions in the database, so they can be managed
// through the API; abe.yaml's roles are synced into it by migrate. Every
// change to roles or to who holds them notifies abe_roles, and every node
// drops what changed from its cache.
const authV3 = `
CREATE TABLE abe.roles (
  name        text PRIMARY KEY,
  description text NOT NULL DEFAULT '',
  permissions text[] NOT NULL DEFAULT '{}',
  is_default  boolean NOT NULL DEFAULT false,
  builtin     boolean NOT NULL DEFAULT false,
  config_hash text,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Deferred: the roles of abe.yaml are inserted later in the same migration.
ALTER TABLE abe.user_roles ADD CONSTRAINT user_roles_role_fkey
  FOREIGN KEY (role) REFERENCES abe.roles (name) ON DELETE CASCADE ON UPDATE CASCADE
  DEFERRABLE INITIALLY DEFERRED;

CREATE FUNCTION abe.notify_roles() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'user_roles' THEN
    PERFORM pg_notify('abe_roles', 'user:' || coalesce(NEW.user_id, OLD.user_id)::text);
  ELSE
    PERFORM pg_notify('abe_roles', 'role');
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER roles_notify AFTER INSERT OR UPDATE OR DELETE ON abe.roles
  FOR EACH ROW EXECUTE FUNCTION abe.notify_roles();
CREATE TRIGGER user_roles_notify AFTER INSERT OR UPDATE OR DELETE ON abe.user_roles
  FOR EACH ROW EXECUTE FUNCTION abe.notify_roles();
`

// authV4 adds TOTP. Secrets are sealed with AES-GCM under a key that is
// not in the database (key_id names it, for rotation); last_step is the
// newest time step accepted, so a code works once. Recovery codes and
// challenge tokens are stored as keyed hashes. A session remembers
// whether its login passed the second factor, so refreshed access tokens
// say so too.
const authV4 = `
CREATE TABLE abe.mfa_totp (
  user_id    uuid PRIMARY KEY REFERENCES abe.users (id) ON DELETE CASCADE,
  key_id     text NOT NULL,
  secret     bytea NOT NULL,
  last_step  bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  enabled_at timestamptz
);

CREATE TABLE abe.mfa_recovery_codes (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES abe.users (id) ON DELETE CASCADE,
  code_hash  bytea NOT NULL,
  created_at timestamptz NOT NULL,
  used_at    timestamptz
);
CREATE INDEX mfa_recovery_codes_user_idx ON abe.mfa_recovery_codes (user_id);

CREATE TABLE abe.mfa_challenges (
  id         uuid PRIMARY KEY,
  user_id    uuid NOT NULL REFERENCES abe.users (id) ON DELETE CASCADE,
  token_hash bytea NOT NULL UNIQUE,
  ip         text NOT NULL DEFAULT '',
  failures   int NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz
);
CREATE INDEX mfa_challenges_expires_idx ON abe.mfa_challenges (expires_at);

ALTER TABLE abe.refresh_tokens ADD COLUMN mfa boolean NOT NULL DEFAULT false;
`
