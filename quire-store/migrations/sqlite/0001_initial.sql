-- 0001: the RealWorld schema.
--
-- Times are integer milliseconds since the Unix epoch (UTC). Ids are INTEGER PRIMARY KEY
-- (rowids), so "newest first" is "highest id first" and needs no extra index.
-- STRICT tables reject values of the wrong type instead of silently storing them.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    -- NOCASE: "Jake" and "jake" are the same user, for uniqueness and for lookups.
    username      TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    -- Stored lower-cased by the domain layer, so a plain UNIQUE is case-insensitive.
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    bio           TEXT,
    image         TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- Who follows whom. The primary key answers "does A follow B" and "whom does A follow"
-- (the feed); the second index answers "who follows B".
CREATE TABLE follows (
    follower_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX follows_by_followee ON follows (followee_id, follower_id);

CREATE TABLE articles (
    id              INTEGER PRIMARY KEY,
    slug            TEXT    NOT NULL UNIQUE,
    author_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    -- Denormalised count of `favorites` rows, kept exact by updating it in the same
    -- transaction as every favorite/unfavorite; lists show it without counting.
    favorites_count INTEGER NOT NULL DEFAULT 0 CHECK (favorites_count >= 0),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
-- Filter by author (and the feed's join on followed authors), newest first.
CREATE INDEX articles_by_author ON articles (author_id, id DESC);

CREATE TABLE article_tags (
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    tag        TEXT    NOT NULL,
    PRIMARY KEY (article_id, tag)
) STRICT, WITHOUT ROWID;
-- Filter by tag, newest first; also serves the distinct tag list.
CREATE INDEX article_tags_by_tag ON article_tags (tag, article_id DESC);

CREATE TABLE favorites (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, article_id)
) STRICT, WITHOUT ROWID;
-- Cascading deletes of an article find its favorites by article.
CREATE INDEX favorites_by_article ON favorites (article_id, user_id);

CREATE TABLE comments (
    id         INTEGER PRIMARY KEY,
    article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    author_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX comments_by_article ON comments (article_id, id DESC);
CREATE INDEX comments_by_author ON comments (author_id);
