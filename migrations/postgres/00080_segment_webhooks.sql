-- Webhooks for behavioural segment changes (docs/segments.md#webhooks): where to
-- send every enter and exit, and the outbox of changes still to deliver. Outbox rows
-- are written in the transaction that records the membership change, so a change is
-- never lost across a restart and never waits for a receiver; the dispatcher deletes
-- a row once delivered, or marks it dead after the last attempt.

-- +goose Up
CREATE TABLE segment_webhooks (
    key        text PRIMARY KEY,
    url        text NOT NULL,
    -- The HMAC key of the Lift-Signature header; never returned by the API after
    -- creation and never written to the audit log.
    secret     text NOT NULL,
    -- Segments whose changes are sent; empty: every published segment.
    segments   text[] NOT NULL DEFAULT '{}',
    enabled    boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE segment_webhook_outbox (
    id              bigserial PRIMARY KEY,
    webhook         text NOT NULL REFERENCES segment_webhooks (key) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('enter', 'exit')),
    segment         text NOT NULL,
    user_id         text NOT NULL,
    at              timestamptz NOT NULL,
    expires_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    -- A dispatcher holds the rows it is delivering until then; a crashed one's
    -- rows become due again when the lease runs out.
    locked_until    timestamptz,
    last_error      text,
    dead_at         timestamptz
);
CREATE INDEX segment_webhook_outbox_due_idx ON segment_webhook_outbox (webhook, next_attempt_at, id)
    WHERE dead_at IS NULL;
CREATE INDEX segment_webhook_outbox_dead_idx ON segment_webhook_outbox (webhook, id)
    WHERE dead_at IS NOT NULL;

-- +goose Down
DROP TABLE segment_webhook_outbox;
DROP TABLE segment_webhooks;
