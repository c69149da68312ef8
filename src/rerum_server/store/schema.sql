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

-- Queries: MongoDB-style filters compile to containment (`@>`) and jsonpath (`@?`) tests that this
-- index serves for equality on any path.
CREATE INDEX IF NOT EXISTS rerum_objects_doc ON rerum_objects USING gin (doc jsonb_path_ops);

-- Full-text search over the text fields of RERUM's two Atlas search indexes (Web Annotation /
-- IIIF Presentation 3 bodies, and IIIF Presentation 2 `chars`), accent- and case-insensitive.
CREATE EXTENSION IF NOT EXISTS unaccent;

-- unaccent() is only STABLE (its dictionary could change); pinning the dictionary makes it safe to use
-- in a generated column.
CREATE OR REPLACE FUNCTION rerum_unaccent(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN unaccent('unaccent'::regdictionary, $1);

-- Lax jsonpath unwraps arrays at every step, as Atlas's embeddedDocument paths traverse lists.
CREATE OR REPLACE FUNCTION rerum_search_text(doc jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN (
        SELECT coalesce(string_agg(value #>> '{}', ' '), '')
        FROM unnest(ARRAY[
            'lax $.body.value[*]', 'lax $.bodyValue[*]',
            'lax $.items.body.value[*]', 'lax $.items.bodyValue[*]',
            'lax $.annotations.items.body.value[*]', 'lax $.annotations.items.bodyValue[*]',
            'lax $.items.annotations.items.body.value[*]', 'lax $.items.annotations.items.bodyValue[*]',
            'lax $.resource.chars[*]', 'lax $.resource."cnt:chars"[*]',
            'lax $.resources.resource.chars[*]', 'lax $.resources.resource."cnt:chars"[*]',
            'lax $.otherContent.resources.resource.chars[*]',
            'lax $.otherContent.resources.resource."cnt:chars"[*]',
            'lax $.sequences.canvases.otherContent.resources.resource.chars[*]',
            'lax $.sequences.canvases.otherContent.resources.resource."cnt:chars"[*]'
        ]::jsonpath[]) AS path,
        LATERAL jsonb_path_query(doc, path) AS value
        WHERE jsonb_typeof(value) = 'string'
    );

ALTER TABLE rerum_objects ADD COLUMN IF NOT EXISTS search tsvector
    GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, rerum_unaccent(rerum_search_text(doc)))) STORED;
CREATE INDEX IF NOT EXISTS rerum_objects_search ON rerum_objects USING gin (search);
