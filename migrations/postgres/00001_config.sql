-- Configuration store: every document the dashboard and the management API edit.
-- Documents are kept whole as jsonb (the JSON contract in docs/api.md is the source of
-- truth); columns beside them exist only for lookups and constraints.

-- +goose Up
CREATE TABLE experiments (
    key        text PRIMARY KEY,
    doc        jsonb NOT NULL,
    status     text NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE flags (
    key        text PRIMARY KEY,
    doc        jsonb NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE segments (
    key        text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('attribute', 'behavioral')),
    doc        jsonb NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Saved groups are named lists of values referenced by $inGroup / $notInGroup.
CREATE TABLE saved_groups (
    key        text PRIMARY KEY,
    doc        jsonb NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- API keys are stored as SHA-256 of the secret: keys are long random strings, so a
-- fast hash is enough and lets the decision path check a key without a slow KDF.
CREATE TABLE api_keys (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('client', 'server')),
    hash       bytea NOT NULL UNIQUE,
    prefix     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    role          text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE audit_log (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,
    entity     text NOT NULL,
    entity_key text NOT NULL,
    before     jsonb,
    after      jsonb
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_key, at);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Every change to what the decision snapshot holds notifies the api processes, whoever
-- made it (API, dashboard or plain SQL), so snapshots follow within a second.
-- +goose StatementBegin
CREATE FUNCTION lift_notify_config() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('lift_config', TG_TABLE_NAME);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER experiments_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON experiments
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();
CREATE TRIGGER flags_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON flags
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();
CREATE TRIGGER segments_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON segments
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();
CREATE TRIGGER saved_groups_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON saved_groups
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();
CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();

-- +goose Down
DROP TABLE audit_log, users, api_keys, saved_groups, segments, flags, experiments;
DROP FUNCTION lift_notify_config();
