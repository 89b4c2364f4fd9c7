-- 0005: full-text search of articles.
--
-- `search` is a generated column (title weighted A, description B, body C, English
-- stemming), so PostgreSQL keeps it exact in the same statement as every insert and edit;
-- a GIN index answers `@@` queries without scanning.

ALTER TABLE articles ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A') ||
    setweight(to_tsvector('english', description), 'B') ||
    setweight(to_tsvector('english', body), 'C')
) STORED;
CREATE INDEX articles_search ON articles USING gin (search);
