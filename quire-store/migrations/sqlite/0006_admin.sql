-- 0006: what `quire user` needs. A disabled account keeps its content but signs nobody in:
-- its tokens stop working at once. `admin_changes` carries the cache invalidations of changes
-- made outside the server (by `quire user`, in the same transaction): every running instance
-- polls it and forgets what the change touched.

ALTER TABLE users ADD COLUMN disabled_at INTEGER;

CREATE TABLE admin_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    changes    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
