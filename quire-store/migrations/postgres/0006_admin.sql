-- 0006: what `quire user` needs (see the SQLite migration of the same number).

ALTER TABLE users ADD COLUMN disabled_at bigint;

CREATE TABLE admin_changes (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    changes    text   NOT NULL,
    created_at bigint NOT NULL
);
