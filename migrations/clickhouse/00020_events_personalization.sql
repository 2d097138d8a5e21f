-- Whether the user consented to personalisation when the event was sent (docs/privacy.md):
-- the segment engine rebuilds behavioural segments from stored events, and may use
-- only these. Events stored before this column existed count as consented, as they
-- did then.

-- +goose Up
ALTER TABLE events ADD COLUMN personalization UInt8 DEFAULT 1;

-- +goose Down
ALTER TABLE events DROP COLUMN personalization;
