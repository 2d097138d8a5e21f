-- Behavioural segment memberships, written by the segment engine and followed by
-- every decision process (by seq, woken by NOTIFY), and the engine's checkpoints.

-- +goose Up
CREATE SEQUENCE segment_membership_seq;

CREATE TABLE segment_memberships (
    segment    text NOT NULL,
    user_id    text NOT NULL,
    member     boolean NOT NULL,
    entered_at timestamptz,
    exited_at  timestamptz,
    expires_at timestamptz,
    -- Every change takes the next seq, so followers fetch what changed since the
    -- last seq they saw.
    seq        bigint NOT NULL DEFAULT nextval('segment_membership_seq'),
    PRIMARY KEY (segment, user_id)
);
CREATE INDEX segment_memberships_seq_idx ON segment_memberships (seq);

CREATE TABLE segment_checkpoints (
    shard       integer PRIMARY KEY,
    definitions text NOT NULL,
    state       bytea NOT NULL,
    saved_at    timestamptz NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION lift_notify_memberships() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('lift_memberships', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER segment_memberships_notify AFTER INSERT OR UPDATE OR DELETE ON segment_memberships
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_memberships();

-- +goose Down
DROP TABLE segment_checkpoints;
DROP TABLE segment_memberships;
DROP SEQUENCE segment_membership_seq;
DROP FUNCTION lift_notify_memberships();
