//! Article and comment text: title, description, body, tags, comment body.

use crate::FieldError;

const TITLE_MAX: usize = 200;
const DESCRIPTION_MAX: usize = 1_000;
/// Bodies are bounded by characters here and by bytes at the HTTP layer (`--max-body-bytes`).
const BODY_MAX: usize = 1_000_000;
const COMMENT_MAX: usize = 10_000;
const TAG_MAX: usize = 64;
/// Most tags one article may carry.
pub const TAGS_PER_ARTICLE_MAX: usize = 20;

/// Non-blank text with an upper bound on its length in characters.
fn required_text(field: &'static str, raw: &str, max: usize) -> Result<String, FieldError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(FieldError::blank(field));
    }
    if text.chars().count() > max {
        return Err(FieldError::too_long(field, max));
    }
    Ok(text.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                required_text($field, raw, $max).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }
    };
}

text_type!(
    /// An article's title, from which its slug is made.
    Title, "title", TITLE_MAX
);
text_type!(
    /// An article's one-line description, shown in lists.
    Description, "description", DESCRIPTION_MAX
);
text_type!(
    /// An article's body (Markdown, stored as given).
    ArticleBody, "body", BODY_MAX
);
text_type!(
    /// A comment's text.
    CommentBody, "body", COMMENT_MAX
);

/// One tag: trimmed, 1 to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(String);

impl Tag {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let tag = raw.trim();
        if tag.is_empty() {
            return Err(FieldError::new("tagList", "can't contain a blank tag"));
        }
        if tag.chars().count() > TAG_MAX {
            return Err(FieldError::new(
                "tagList",
                format!("can't contain a tag longer than {TAG_MAX} characters"),
            ));
        }
        if tag.chars().any(char::is_control) {
            return Err(FieldError::new(
                "tagList",
                "can't contain control characters",
            ));
        }
        Ok(Self(tag.to_owned()))
    }

    pub fn from_trusted(tag: String) -> Self {
        Self(tag)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An article's tags: sorted, without duplicates, at most [`TAGS_PER_ARTICLE_MAX`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagList(Vec<Tag>);

impl TagList {
    pub fn parse<S: AsRef<str>>(raw: &[S]) -> Result<Self, FieldError> {
        let mut tags = raw
            .iter()
            .map(|t| Tag::parse(t.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        tags.sort();
        tags.dedup();
        if tags.len() > TAGS_PER_ARTICLE_MAX {
            return Err(FieldError::new(
                "tagList",
                format!("can't have more than {TAGS_PER_ARTICLE_MAX} tags"),
            ));
        }
        Ok(Self(tags))
    }

    pub fn as_slice(&self) -> &[Tag] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Tag> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_texts() {
        assert_eq!(
            Title::parse(" How to train ").unwrap().as_str(),
            "How to train"
        );
        assert_eq!(Title::parse("  ").unwrap_err().message, "can't be blank");
        assert_eq!(Title::parse("").unwrap_err().field, "title");
        assert!(Title::parse(&"t".repeat(200)).is_ok());
        assert!(Title::parse(&"t".repeat(201)).is_err());
        assert_eq!(Description::parse("").unwrap_err().field, "description");
        assert_eq!(ArticleBody::parse("\n").unwrap_err().field, "body");
        assert_eq!(CommentBody::parse("").unwrap_err().field, "body");
        assert!(CommentBody::parse(&"c".repeat(10_001)).is_err());
    }

    #[test]
    fn tag_lists_are_sorted_and_deduplicated() {
        let tags = TagList::parse(&["zebra", " apple", "mango", "apple"]).unwrap();
        let names: Vec<_> = tags.as_slice().iter().map(Tag::as_str).collect();
        assert_eq!(names, ["apple", "mango", "zebra"]);
        assert!(TagList::parse::<&str>(&[]).unwrap().as_slice().is_empty());
    }

    #[test]
    fn bad_tags() {
        assert!(TagList::parse(&["ok", " "]).is_err());
        assert!(TagList::parse(&["a\u{0}b"]).is_err());
        assert!(TagList::parse(&["t".repeat(65)]).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(TagList::parse(&many).is_err());
        let many_dupes: Vec<String> = (0..40).map(|i| format!("t{}", i % 20)).collect();
        assert_eq!(TagList::parse(&many_dupes).unwrap().as_slice().len(), 20);
    }
}
