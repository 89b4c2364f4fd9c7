-- 0003: counts kept by triggers, so that "how many articles" and "which tags" never scan.
--
-- `article_total` holds one row: the number of articles. `tag_counts` holds each tag in use
-- with its number of articles (a tag disappears with its last article). Triggers keep both
-- exact inside the same transaction as the change; foreign-key cascades fire them too.

CREATE TABLE article_total (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL CHECK (value >= 0)
) STRICT;
INSERT INTO article_total (id, value) SELECT 1, count(*) FROM articles;

CREATE TRIGGER article_total_insert AFTER INSERT ON articles
BEGIN
    UPDATE article_total SET value = value + 1 WHERE id = 1;
END;
CREATE TRIGGER article_total_delete AFTER DELETE ON articles
BEGIN
    UPDATE article_total SET value = value - 1 WHERE id = 1;
END;

CREATE TABLE tag_counts (
    tag      TEXT    PRIMARY KEY,
    articles INTEGER NOT NULL CHECK (articles > 0)
) STRICT, WITHOUT ROWID;
INSERT INTO tag_counts (tag, articles) SELECT tag, count(*) FROM article_tags GROUP BY tag;

CREATE TRIGGER tag_counts_insert AFTER INSERT ON article_tags
BEGIN
    INSERT INTO tag_counts (tag, articles) VALUES (NEW.tag, 1)
        ON CONFLICT (tag) DO UPDATE SET articles = articles + 1;
END;
CREATE TRIGGER tag_counts_delete AFTER DELETE ON article_tags
BEGIN
    UPDATE tag_counts SET articles = articles - 1 WHERE tag = OLD.tag AND articles > 1;
    DELETE FROM tag_counts WHERE tag = OLD.tag AND articles = 1;
END;
