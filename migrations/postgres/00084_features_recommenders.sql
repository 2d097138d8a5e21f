-- Real-time user features and item recommenders (docs/recommendations.md): their
-- configuration documents, the feature values the segment engine publishes for the
-- decision processes (followed by seq, woken by NOTIFY, like segment memberships), and
-- the recommenders' trained models, versioned.

-- +goose Up
CREATE TABLE features (
    key        text PRIMARY KEY,
    doc        jsonb NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE recommenders (
    key        text PRIMARY KEY,
    doc        jsonb NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER features_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON features
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();
CREATE TRIGGER recommenders_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON recommenders
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();

-- One row per user and feature: the value last published (NULL once no event is left
-- in the window). Every change takes the next seq, so followers fetch what changed
-- since the last seq they saw.
CREATE SEQUENCE user_feature_seq;
CREATE TABLE user_features (
    feature text NOT NULL,
    user_id text NOT NULL,
    value   jsonb,
    at      timestamptz NOT NULL,
    seq     bigint NOT NULL DEFAULT nextval('user_feature_seq'),
    PRIMARY KEY (feature, user_id)
);
CREATE INDEX user_features_seq_idx ON user_features (seq);
CREATE INDEX user_features_user_idx ON user_features (user_id);

-- +goose StatementBegin
CREATE FUNCTION lift_notify_features() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('lift_features', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER user_features_notify AFTER INSERT OR UPDATE OR DELETE ON user_features
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_features();

-- Trained models: the item-to-item neighbours and the popular items, in the compact
-- binary format of experiments/recommend, a few MB for 10,000 items. The decision
-- processes load the newest version of each recommender when notified.
CREATE TABLE recommender_models (
    recommender text NOT NULL,
    version     bigint NOT NULL,
    trained_at  timestamptz NOT NULL DEFAULT now(),
    stats       jsonb NOT NULL,
    model       bytea NOT NULL,
    PRIMARY KEY (recommender, version)
);
-- +goose StatementBegin
CREATE FUNCTION lift_notify_models() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('lift_models', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER recommender_models_notify AFTER INSERT OR DELETE ON recommender_models
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_models();

-- Training asked for through the API (POST /api/v1/recommenders/{key}/train), taken
-- by the trainer that leads.
CREATE TABLE recommender_train_requests (
    recommender  text PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    requested_by text NOT NULL
);

-- +goose Down
DROP TABLE recommender_train_requests, recommender_models, user_features, recommenders, features;
DROP SEQUENCE user_feature_seq;
DROP FUNCTION lift_notify_features();
DROP FUNCTION lift_notify_models();
