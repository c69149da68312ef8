-- One table of JSONB documents. `body` keeps the document exactly as written (key order is part of
-- RERUM's wire behaviour and jsonb does not keep it); `doc` is the same document for querying.
-- `slug` and `prime` are derived from `doc`, so they can never disagree with it.
CREATE TABLE IF NOT EXISTS rerum_objects (
    seq   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id    text  NOT NULL,
    body  text  NOT NULL,
    doc   jsonb NOT NULL,
    slug  text  GENERATED ALWAYS AS (doc #>> '{__rerum,slug}') STORED,
    prime text  GENERATED ALWAYS AS (doc #>> '{__rerum,history,prime}') STORED
);
CREATE UNIQUE INDEX IF NOT EXISTS rerum_objects_id ON rerum_objects (id);
CREATE UNIQUE INDEX IF NOT EXISTS rerum_objects_slug ON rerum_objects (slug) WHERE slug IS NOT NULL;
CREATE INDEX IF NOT EXISTS rerum_objects_prime ON rerum_objects (prime) WHERE prime IS NOT NULL;
