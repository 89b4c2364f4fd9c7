//! Article bodies and comments as HTML: Markdown (CommonMark with tables and strikethrough,
//! by pulldown-cmark), then sanitized by ammonia, which keeps only a safe
//! allow-list of tags, attributes and URL schemes: no `<script>`, no `on*=` handlers, no
//! `javascript:` or `data:` URLs, no SVG, no `style`. Links get `rel="noopener noreferrer
//! nofollow"`. Whatever an author writes, the result runs no code in a reader's browser.

use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

/// The sanitizer, built once.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect());
    builder
});

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
