//! Slugs: the URL names of articles, made from titles.

/// Longest slug made from a title (a uniqueness suffix may follow).
const SLUG_BASE_MAX: usize = 80;
/// Longest slug accepted from a URL; anything longer cannot exist.
const SLUG_MAX: usize = 255;

/// An article's URL name, e.g. `how-to-train-your-dragon`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slug(String);

impl Slug {
    /// Makes the base slug for a title: lower-case letters and digits joined by single hyphens.
    /// Titles with no letters or digits get `article`.
    pub fn from_title(title: &str) -> Self {
        let mut slug = String::with_capacity(title.len().min(SLUG_BASE_MAX));
        let mut chars = 0;
        let mut pending_hyphen = false;
        for c in title.chars() {
            if !c.is_alphanumeric() {
                pending_hyphen = true;
                continue;
            }
            let hyphen = pending_hyphen && !slug.is_empty();
            // Lower-casing can add combining marks ('İ' becomes "i\u{307}"): keep letters only.
            let lower: Vec<char> = c.to_lowercase().filter(|l| l.is_alphanumeric()).collect();
            if lower.is_empty() {
                continue;
            }
            let added = usize::from(hyphen) + lower.len();
            if chars + added > SLUG_BASE_MAX {
                break;
            }
            if hyphen {
                slug.push('-');
            }
            slug.extend(lower);
            chars += added;
            pending_hyphen = false;
        }
        if slug.is_empty() {
            slug.push_str("article");
        }
        Self(slug)
    }

    /// This slug with a suffix that makes it unique, e.g. `dragons-x7k2q`.
    pub fn with_suffix(&self, suffix: &str) -> Self {
        Self(format!("{}-{}", self.0, suffix))
    }

    /// A slug taken from a URL path. `None` when it could not name any article.
    pub fn parse(raw: &str) -> Option<Self> {
        (!raw.is_empty() && raw.len() <= SLUG_MAX).then(|| Self(raw.to_owned()))
    }

    pub fn from_trusted(slug: String) -> Self {
        Self(slug)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_from_titles() {
        let cases = [
            ("How to train your dragon", "how-to-train-your-dragon"),
            ("  Hello, World!  ", "hello-world"),
            ("Rust 2024 -- what's new?", "rust-2024-what-s-new"),
            ("Ünïcode Tïtle", "ünïcode-tïtle"),
            ("İstanbul", "istanbul"),
            ("!!!", "article"),
            ("", "article"),
        ];
        for (title, slug) in cases {
            assert_eq!(Slug::from_title(title).as_str(), slug, "{title:?}");
        }
    }

    #[test]
    fn long_titles_are_cut() {
        let slug = Slug::from_title(&"word ".repeat(100));
        assert!(slug.as_str().chars().count() <= SLUG_BASE_MAX);
        assert!(!slug.as_str().ends_with('-'));
    }

    #[test]
    fn parsing_from_paths() {
        assert!(Slug::parse("").is_none());
        assert!(Slug::parse(&"s".repeat(256)).is_none());
        assert_eq!(Slug::parse("a-b").unwrap().as_str(), "a-b");
        assert_eq!(Slug::from_title("a").with_suffix("x1").as_str(), "a-x1");
    }
}
