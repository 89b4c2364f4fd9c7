//! Property tests of the parsers every client input goes through: for arbitrary input they
//! never panic, and what they accept satisfies the rules the rest of quire relies on.

use proptest::prelude::*;
use quire_domain::{Email, MAX_LIMIT, Page, Slug, TagList, Username};

proptest! {
    #[test]
    fn pages_are_always_in_range(limit in proptest::option::of(".{0,30}"), offset in proptest::option::of(".{0,30}")) {
        if let Ok(page) = Page::parse(limit.as_deref(), offset.as_deref()) {
            prop_assert!((1..=MAX_LIMIT).contains(&page.limit));
            prop_assert!(i64::try_from(page.offset).is_ok());
        }
    }

    #[test]
    fn numeric_pages_parse(limit in 1u64..1_000_000, offset in 0u64..1_000_000_000) {
        let page = Page::parse(Some(&limit.to_string()), Some(&offset.to_string())).unwrap();
        prop_assert_eq!(u64::from(page.limit), limit.min(u64::from(MAX_LIMIT)));
        prop_assert_eq!(page.offset, offset);
    }

    #[test]
    fn usernames_are_clean_and_stable(raw in "\\PC{0,50}") {
        if let Ok(name) = Username::parse(&raw) {
            let text = name.as_str();
            prop_assert!(!text.is_empty() && text.chars().count() <= 40);
            prop_assert!(text.chars().all(|c| c.is_alphanumeric() || "_-.".contains(c)));
            prop_assert_eq!(Username::parse(text).unwrap(), name.clone());
        }
    }

    #[test]
    fn emails_are_lowercase_and_stable(raw in "[a-zA-Z0-9@. _-]{0,40}") {
        if let Ok(email) = Email::parse(&raw) {
            let text = email.as_str();
            prop_assert_eq!(text.to_lowercase(), text);
            prop_assert_eq!(text.matches('@').count(), 1);
            prop_assert_eq!(Email::parse(text).unwrap(), email.clone());
        }
    }

    #[test]
    fn slugs_from_any_title_are_url_names(title in "\\PC{0,300}") {
        let slug = Slug::from_title(&title);
        let text = slug.as_str();
        prop_assert!(!text.is_empty() && text.chars().count() <= 80);
        prop_assert!(!text.starts_with('-') && !text.ends_with('-') && !text.contains("--"));
        prop_assert!(text.chars().all(|c| c.is_alphanumeric() || c == '-'));
    }

    #[test]
    fn tag_lists_are_sorted_unique_and_bounded(tags in proptest::collection::vec("\\PC{0,20}", 0..30)) {
        if let Ok(list) = TagList::parse(&tags) {
            let names: Vec<&str> = list.as_slice().iter().map(|t| t.as_str()).collect();
            prop_assert!(names.len() <= 20);
            prop_assert!(names.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(names.iter().all(|t| !t.is_empty() && *t == t.trim()));
        }
    }
}
