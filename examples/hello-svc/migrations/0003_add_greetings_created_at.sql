-- Track when a greeting was added; existing rows get the migration time.
ALTER TABLE greetings
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();

CREATE INDEX IF NOT EXISTS greetings_created_at_idx ON greetings (created_at);
