-- 0004: secrets every quire process on this database shares (the same table as PostgreSQL's
-- 0004, so both dialects keep one schema and one numbering). The SQLite store keeps its token
-- secret in the `<db>.jwt-secret` file beside the database for now (existing deployments keep
-- their users signed in); this table is empty here until that moves.

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL CHECK (length(value) >= 32)
) STRICT, WITHOUT ROWID;
