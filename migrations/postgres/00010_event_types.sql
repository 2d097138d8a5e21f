-- Custom event types (ingest/typereg): every version of each type's properties schema.
-- Versions are never changed or deleted: events already stored were validated against
-- them. The schema is kept as sent (text, not jsonb) so clients read back what they wrote.

-- +goose Up
CREATE TABLE event_types (
    name       text NOT NULL,
    version    integer NOT NULL CHECK (version > 0),
    schema     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL DEFAULT '',
    PRIMARY KEY (name, version)
);
-- Running processes reload their registry when a type changes, like configuration.
CREATE TRIGGER event_types_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON event_types
    FOR EACH STATEMENT EXECUTE FUNCTION lift_notify_config();

-- +goose Down
DROP TABLE event_types;
