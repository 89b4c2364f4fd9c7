-- 0003: counts kept by triggers (PostgreSQL dialect of migrations/sqlite/0003_counts.sql), so
-- that "how many articles" and "which tags" never scan.
--
-- `article_total` holds one row: the number of articles. `tag_counts` holds each tag in use
-- with its number of articles (a tag disappears with its last article). Triggers keep both
-- exact inside the same transaction as the change; foreign-key cascades fire them too. Row
-- locks on these rows order concurrent writers, so the counts stay exact under concurrency.

CREATE TABLE article_total (
    id    integer PRIMARY KEY CHECK (id = 1),
    value bigint  NOT NULL CHECK (value >= 0)
);
INSERT INTO article_total (id, value) SELECT 1, count(*) FROM articles;

CREATE FUNCTION article_total_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE article_total SET value = value + 1 WHERE id = 1;
    ELSE
        UPDATE article_total SET value = value - 1 WHERE id = 1;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER article_total_change AFTER INSERT OR DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION article_total_change();

CREATE TABLE tag_counts (
    tag      text   PRIMARY KEY,
    articles bigint NOT NULL CHECK (articles > 0)
);
INSERT INTO tag_counts (tag, articles) SELECT tag, count(*) FROM article_tags GROUP BY tag;

CREATE FUNCTION tag_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tag_counts (tag, articles) VALUES (NEW.tag, 1)
            ON CONFLICT (tag) DO UPDATE SET articles = tag_counts.articles + 1;
    ELSE
        -- Lock the row first and decide on its newest value: a bare conditional UPDATE
        -- would judge `articles > 1` on a snapshot a concurrent insert has already changed.
        SELECT articles INTO n FROM tag_counts WHERE tag = OLD.tag FOR UPDATE;
        IF n > 1 THEN
            UPDATE tag_counts SET articles = articles - 1 WHERE tag = OLD.tag;
        ELSE
            DELETE FROM tag_counts WHERE tag = OLD.tag;
        END IF;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER tag_counts_change AFTER INSERT OR DELETE ON article_tags
    FOR EACH ROW EXECUTE FUNCTION tag_counts_change();
