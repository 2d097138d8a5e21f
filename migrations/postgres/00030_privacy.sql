-- Privacy (docs/privacy.md): erasure jobs, the segment engine's pending erasures,
-- retention settings and what retention dropped, and browser-facing key settings.

-- +goose Up
-- One row per DELETE /api/v1/users/{id}. The ids to erase are kept only while the job
-- runs; the subject (the pseudonym, or the SHA-256 of the id) stays, so that anyone who
-- knows the id can check that it was erased without the row naming the person.
CREATE TABLE erasure_jobs (
    id           text PRIMARY KEY,
    subject      text NOT NULL,
    user_ids     text[],
    status       text NOT NULL CHECK (status IN ('pending', 'running', 'done')),
    steps        jsonb NOT NULL DEFAULT '[]',
    requested_by text NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    error        text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasure_jobs_open_idx ON erasure_jobs (requested_at) WHERE status IN ('pending', 'running');
CREATE INDEX erasure_jobs_subject_idx ON erasure_jobs (subject);

-- Users each segment engine shard must forget; the shard deletes its rows once a
-- checkpoint without them is saved.
CREATE TABLE segment_erasures (
    job_id  text NOT NULL,
    shard   integer NOT NULL,
    user_id text NOT NULL,
    PRIMARY KEY (job_id, shard, user_id)
);
CREATE INDEX segment_erasures_shard_idx ON segment_erasures (shard);

-- Retention per ClickHouse table, where it differs from LIFT_RETENTION_MONTHS.
CREATE TABLE retention_policies (
    table_name text PRIMARY KEY,
    months     integer NOT NULL CHECK (months > 0 AND months <= 1200),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);

-- Every partition retention dropped, for the settings page and for accountability.
CREATE TABLE retention_drops (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    table_name text NOT NULL,
    partition  text NOT NULL,
    newest     timestamptz NOT NULL,
    rows       bigint NOT NULL
);
CREATE INDEX retention_drops_at_idx ON retention_drops (at);

-- Browser origins a client key may be used from (CORS), and when a rotated key stops
-- working (NULL: until revoked).
ALTER TABLE api_keys ADD COLUMN allowed_origins text[] NOT NULL DEFAULT '{}';
ALTER TABLE api_keys ADD COLUMN expires_at timestamptz;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN expires_at;
ALTER TABLE api_keys DROP COLUMN allowed_origins;
DROP TABLE retention_drops, retention_policies, segment_erasures, erasure_jobs;
