-- 0002: media metadata (PostgreSQL dialect of migrations/sqlite/0002_media.sql). The bytes
-- live in the blob store (files named by their SHA-256), so identical uploads share one blob;
-- each upload still gets its own row and id, owned by its uploader.

CREATE TABLE media (
    -- 32 lowercase hex characters, random: unguessable and safe in a path.
    id           text   PRIMARY KEY,
    sha256       text   NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    content_type text   NOT NULL,
    uploader_id  bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   bigint NOT NULL
);
-- "Is this blob still used?" when a media row is deleted.
CREATE INDEX media_by_sha256 ON media (sha256);
