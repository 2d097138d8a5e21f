-- Every definition a segment has had (experiments/segment_versions.go): written with
-- the audit entry of each create and update of a segment, for the published
-- definition and the draft, and kept when the segment is deleted.

-- +goose Up
CREATE TABLE segment_versions (
    key        text NOT NULL,
    version    integer NOT NULL CHECK (version > 0),
    doc        jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL DEFAULT '',
    PRIMARY KEY (key, version)
);
-- Segments written before versions existed are their version 1.
INSERT INTO segment_versions (key, version, doc, created_at)
    SELECT key, 1, doc || '{"version":1}', created_at FROM segments;

-- +goose Down
DROP TABLE segment_versions;
