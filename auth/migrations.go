// Package auth provides abe's built-in accounts. It owns the abe.users
// table that relations to the "users" collection point at.
package auth

import "github.com/abe-stack/abe/schema"

// Migrations are the system migrations of the auth tables, in order.
func Migrations() []schema.Migration {
	return []schema.Migration{{Component: "auth", Version: 1, Name: "users", SQL: usersV1}}
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
