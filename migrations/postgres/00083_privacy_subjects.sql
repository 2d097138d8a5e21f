-- Erasure and export without naming the user (docs/privacy.md): the installation's
-- secret that subjects are keyed with, and the linked ids an operator confirmed for
-- an erasure, as subjects.

-- +goose Up
-- Secrets lift generates for itself, by name; lift writes 'subjects' (32 random
-- bytes) on first use. Jobs and audit entries name users by
-- HMAC-SHA-256(secret, id), which nobody can match to an id without the secret.
CREATE TABLE privacy_keys (
    name       text PRIMARY KEY,
    key        bytea NOT NULL CHECK (length(key) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Linked ids the operator confirmed (include=), as subjects: kept after the job
-- forgot its user ids, like the audit entry of the request.
ALTER TABLE erasure_jobs ADD COLUMN confirmed_links text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE erasure_jobs DROP COLUMN confirmed_links;
DROP TABLE privacy_keys;
