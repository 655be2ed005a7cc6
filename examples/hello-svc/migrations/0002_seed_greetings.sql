-- Seed rows; ON CONFLICT keeps existing (possibly edited) rows untouched.
INSERT INTO greetings (lang, text) VALUES
    ('en', 'hello'),
    ('de', 'hallo'),
    ('fr', 'bonjour'),
    ('es', 'hola')
ON CONFLICT (lang) DO NOTHING;
