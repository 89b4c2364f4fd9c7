//! Full-text search of articles (`GET /api/search?q=`, the search page): ranked matches, each
//! with a snippet of its text around the matched words, paged like the lists. The articles
//! themselves are read through the cache like every other read; the index is kept exact by
//! the store in the same transaction as every write that changes an article.

use quire_domain::{FieldError, Page};
pub use quire_store::{MARK_END, MARK_START};

use crate::{App, AppResult, SeenArticle, Viewer};

/// Words a query may hold at most; longer queries are refused.
const MAX_WORDS: usize = 16;
/// Characters of one word at most (longer ones are cut).
const MAX_WORD: usize = 64;

/// One match: the article as the reader sees it, and its snippet.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub article: SeenArticle,
    /// Plain text around the matches, each match between [`MARK_START`] and [`MARK_END`].
    pub snippet: String,
}

/// One page of matches, best first, and the number of all matches.
#[derive(Debug, Clone, Default)]
pub struct SearchPage {
    pub results: Vec<SearchResult>,
    pub total: u64,
}

/// The words of a query: runs of letters and digits, lowercased. Everything else (quotes,
/// operators, punctuation) separates words, so no input is read as query syntax.
pub fn search_words(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(|word| {
            word.chars()
                .take(MAX_WORD)
                .collect::<String>()
                .to_lowercase()
        })
        .collect()
}

/// A snippet of Markdown source as a reader would read it: link and image targets dropped
/// (their text kept), emphasis, heading and code marks removed, whitespace collapsed. The
/// match marks stay where they are.
pub fn readable(snippet: &str) -> String {
    let mut text = String::with_capacity(snippet.len());
    let mut chars = snippet.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // `](target)`: the target goes, the text before it stays.
            ']' if chars.peek() == Some(&'(') => {
                let mut depth = 0;
                for skipped in chars.by_ref() {
                    match skipped {
                        '(' => depth += 1,
                        ')' if depth <= 1 => break,
                        ')' => depth -= 1,
                        // A target has no spaces: one cut short by the snippet ends here.
                        w if w.is_whitespace() => {
                            text.push(' ');
                            break;
                        }
                        _ => {}
                    }
                }
            }
            '!' if chars.peek() == Some(&'[') => {}
            '[' | ']' | '#' | '*' | '`' | '~' => {}
            c if c.is_whitespace() => {
                if !text.ends_with(' ') && !text.is_empty() {
                    text.push(' ');
                }
            }
            c => text.push(c),
        }
    }
    text.trim_end().to_owned()
}

impl App {
    pub async fn search(
        &self,
        query: Option<&str>,
        limit: Option<&str>,
        offset: Option<&str>,
        viewer: Option<&Viewer>,
    ) -> AppResult<SearchPage> {
        let words = search_words(query.unwrap_or_default());
        if words.is_empty() {
            return Err(FieldError::new("q", "must contain a word to search for").into());
        }
        if words.len() > MAX_WORDS {
            return Err(FieldError::new("q", format!("has more than {MAX_WORDS} words")).into());
        }
        let page = Page::parse(limit, offset)?;
        let hits = self.store.search(words, page).await?;
        let ids: Vec<_> = hits.hits.iter().map(|hit| hit.id).collect();
        let articles = self.cached_articles(&ids).await?;
        let mut seen = self.seen_by(viewer, articles).await?.into_iter();
        // An article deleted between the search and the read is left out.
        let mut results = Vec::with_capacity(hits.hits.len());
        let mut next = seen.next();
        for hit in hits.hits {
            if let Some(article) = next.take_if(|a| a.record().id == hit.id) {
                results.push(SearchResult {
                    article,
                    snippet: readable(&hit.snippet),
                });
                next = seen.next();
            }
        }
        Ok(SearchPage {
            results,
            total: hits.total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::search_words;

    #[test]
    fn snippets_read_as_text() {
        use super::{MARK_END, MARK_START, readable};
        let marked = format!("# {MARK_START}Heading{MARK_END} with **bold** and `code`");
        assert_eq!(
            readable(&marked),
            format!("{MARK_START}Heading{MARK_END} with bold and code")
        );
        assert_eq!(
            readable(
                "see [the docs](https://x.example/a_(b)) and ![a cat](/media/1)\n\n```\nx\n```"
            ),
            "see the docs and a cat x"
        );
        assert_eq!(readable("cut [short](https://x.example/lo…"), "cut short");
        assert_eq!(
            readable("cut [short](https://x.ex next words"),
            "cut short next words"
        );
    }

    #[test]
    fn queries_are_words_never_syntax() {
        assert_eq!(
            search_words("Rust AND \"async\" -web*"),
            ["rust", "and", "async", "web"]
        );
        assert_eq!(
            search_words("NEAR(a b) title:x"),
            ["near", "a", "b", "title", "x"]
        );
        assert_eq!(search_words("  ¿Qué?  "), ["qué"]);
        assert!(search_words("\"\" () * :").is_empty());
    }
}
