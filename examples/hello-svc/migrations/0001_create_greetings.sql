-- Greetings per language. Applied by the deploy role with psql, one
-- transaction per file (so no BEGIN/COMMIT here). IF NOT EXISTS keeps a
-- re-run after a half-recorded apply harmless.
CREATE TABLE IF NOT EXISTS greetings (
    id   serial PRIMARY KEY,
    lang text   NOT NULL UNIQUE,
    text text   NOT NULL
);
