-- 0002: media metadata. The bytes live in the blob store (files named by their SHA-256), so
-- identical uploads share one blob; each upload still gets its own row and id, owned by its
-- uploader. A blob is removed once no row names its hash.

CREATE TABLE media (
    -- 32 lowercase hex characters, random: unguessable and safe in a path.
    id           TEXT    PRIMARY KEY,
    sha256       TEXT    NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    content_type TEXT    NOT NULL,
    uploader_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- "Is this blob still used?" when a media row is deleted.
CREATE INDEX media_by_sha256 ON media (sha256);
