//! Article bodies and comments as HTML: Markdown (CommonMark with tables and strikethrough,
//! by pulldown-cmark), then sanitized by ammonia, which keeps only a safe
//! allow-list of tags, attributes and URL schemes: no `<script>`, no `on*=` handlers, no
//! `javascript:` or `data:` URLs, no SVG, no `style`. Links get `rel="noopener noreferrer
//! nofollow"`. Whatever an author writes, the result runs no code in a reader's browser.

use std::sync::{Arc, LazyLock};

use pulldown_cmark::{Options, Parser, html};

/// The sanitizer, built once.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect());
    builder
});

/// Comment bodies already rendered, by their text: a pure function's memo, so always exact
/// (a comment's HTML depends on nothing but its body), bounded by bytes.
static COMMENTS: LazyLock<moka::sync::Cache<String, Arc<str>>> = LazyLock::new(|| {
    moka::sync::Cache::builder()
        .weigher(|body: &String, html: &Arc<str>| {
            u32::try_from(body.len() + html.len()).unwrap_or(u32::MAX)
        })
        .max_capacity(COMMENT_CACHE_BYTES)
        .build()
});

/// Bytes of comment text and HTML kept rendered.
const COMMENT_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// A comment's body as sanitized HTML, rendered once while it stays in the memo.
pub(crate) fn comment_html(body: &str) -> Arc<str> {
    if let Some(html) = COMMENTS.get(body) {
        return html;
    }
    let html: Arc<str> = to_html(body).into();
    COMMENTS.insert(body.to_owned(), html.clone());
    html
}

/// `markdown` rendered to sanitized HTML.
pub(crate) fn to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(markdown, options));
    SANITIZER.clean(&raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn markdown_is_rendered() {
        assert_eq!(
            to_html("# Hi\n\n**b**"),
            "<h1>Hi</h1>\n<p><strong>b</strong></p>\n"
        );
        assert!(to_html("```\nlet x = 1;\n```").contains("<pre><code>let x = 1;"));
    }

    #[test]
    fn nothing_an_author_writes_runs_code() {
        for hostile in [
            "<script>alert(1)</script>",
            "[x](javascript:alert(1))",
            "<a href=\"JaVaScRiPt:alert(1)\">x</a>",
            "<img src=x onerror=alert(1)>",
            "<svg><script>alert(1)</script></svg>",
            "<svg onload=alert(1)>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<a href=\"data:text/html,<script>alert(1)</script>\">x</a>",
            "<p style=\"background:url(javascript:alert(1))\">x</p>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<form action=\"https://evil.example\"><button>x</button></form>",
        ] {
            let html = to_html(hostile);
            for bad in [
                "<script",
                "javascript:",
                "onerror",
                "onload",
                "<svg",
                "<iframe",
                "data:",
                "style=",
                "<form",
            ] {
                assert!(
                    !html
                        .to_ascii_lowercase()
                        .contains(&bad.to_ascii_lowercase()),
                    "{hostile} gave {html}"
                );
            }
        }
    }

    #[test]
    fn links_do_not_leak_the_reader() {
        assert!(
            to_html("[x](https://example.com)").contains("rel=\"noopener noreferrer nofollow\"")
        );
    }
}
