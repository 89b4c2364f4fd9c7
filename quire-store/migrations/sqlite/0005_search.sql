-- 0005: full-text search of articles (FTS5).
--
-- `article_search` indexes each article's title, description and body, with the `articles`
-- table as its content (nothing is stored twice). Triggers keep it exact inside the same
-- transaction as every insert, edit and delete, so a search never finds what is gone nor
-- misses what was just written. Porter stemming over unicode61 tokens ("writes" finds
-- "writing"), diacritics folded.

CREATE VIRTUAL TABLE article_search USING fts5(
    title, description, body,
    content = 'articles', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
INSERT INTO article_search (article_search) VALUES ('rebuild');

CREATE TRIGGER article_search_insert AFTER INSERT ON articles
BEGIN
    INSERT INTO article_search (rowid, title, description, body)
    VALUES (NEW.id, NEW.title, NEW.description, NEW.body);
END;
CREATE TRIGGER article_search_delete AFTER DELETE ON articles
BEGIN
    INSERT INTO article_search (article_search, rowid, title, description, body)
    VALUES ('delete', OLD.id, OLD.title, OLD.description, OLD.body);
END;
CREATE TRIGGER article_search_update AFTER UPDATE OF title, description, body ON articles
BEGIN
    INSERT INTO article_search (article_search, rowid, title, description, body)
    VALUES ('delete', OLD.id, OLD.title, OLD.description, OLD.body);
    INSERT INTO article_search (rowid, title, description, body)
    VALUES (NEW.id, NEW.title, NEW.description, NEW.body);
END;
