-- Bandit weights: every version the updater computes, with the inputs it used, so the
-- dashboard can show weights over time and anyone can check a published allocation.
-- The decision snapshot serves the latest version per experiment and segment.

-- +goose Up
CREATE TABLE bandit_weights (
    id          bigserial PRIMARY KEY,
    experiment  text NOT NULL,
    segment     text NOT NULL DEFAULT '',
    version     bigint NOT NULL,
    variants    jsonb NOT NULL,
    weights     jsonb NOT NULL,
    p_best      jsonb NOT NULL,
    posteriors  jsonb NOT NULL,
    counts      jsonb NOT NULL,
    burn_in     boolean NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (experiment, segment, version)
);
CREATE INDEX bandit_weights_latest_idx ON bandit_weights (experiment, segment, version DESC);

CREATE TRIGGER bandit_weights_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON bandit_weights
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();

-- +goose Down
DROP TABLE bandit_weights;
