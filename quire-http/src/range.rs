//! The `Range` request header (RFC 9110 §14.2), for a single byte range. Multiple ranges and
//! malformed headers are ignored (the whole representation is served), as the RFC allows;
//! a well-formed range that misses the content is unsatisfiable (416).

use std::ops::Range;

/// What a `Range` header asks of content of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// Serve everything (no header, or one to ignore).
    Full,
    /// Serve these bytes (206).
    Partial(Range<u64>),
    /// Nothing of the content matches (416).
    Unsatisfiable,
}

impl RangeRequest {
    pub fn parse(header: Option<&str>, size: u64) -> Self {
        let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
            return Self::Full;
        };
        if spec.contains(',') {
            return Self::Full;
        }
        let Some((first, last)) = spec.trim().split_once('-') else {
            return Self::Full;
        };
        let number = |s: &str| -> Option<u64> {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        match (first.trim(), last.trim()) {
            ("", suffix) => match number(suffix) {
                None => Self::Full,
                Some(0) => Self::Unsatisfiable,
                Some(_) if size == 0 => Self::Unsatisfiable,
                Some(n) => Self::Partial(size - n.min(size)..size),
            },
            (start, "") => match number(start) {
                None => Self::Full,
                Some(start) if start >= size => Self::Unsatisfiable,
                Some(start) => Self::Partial(start..size),
            },
            (start, end) => match (number(start), number(end)) {
                (Some(start), Some(end)) if start <= end => {
                    if start >= size {
                        Self::Unsatisfiable
                    } else {
                        Self::Partial(start..end.min(size - 1) + 1)
                    }
                }
                _ => Self::Full,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{self, *};

    #[test]
    fn ranges() {
        let cases: &[(Option<&str>, u64, RangeRequest)] = &[
            (None, 100, Full),
            (Some("bytes=0-9"), 100, Partial(0..10)),
            (Some("bytes=90-200"), 100, Partial(90..100)),
            (Some("bytes=10-"), 100, Partial(10..100)),
            (Some("bytes=-10"), 100, Partial(90..100)),
            (Some("bytes=-1000"), 100, Partial(0..100)),
            (Some("bytes=99-99"), 100, Partial(99..100)),
            (Some("bytes=100-"), 100, Unsatisfiable),
            (Some("bytes=100-200"), 100, Unsatisfiable),
            (Some("bytes=-0"), 100, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=-5"), 0, Unsatisfiable),
            (Some("bytes=5-1"), 100, Full),
            (Some("bytes=a-b"), 100, Full),
            (Some("bytes=0-1,5-6"), 100, Full),
            (Some("items=0-1"), 100, Full),
            (Some("bytes=-"), 100, Full),
            (Some("bytes=99999999999999999999999-"), 100, Full),
        ];
        for (header, size, expected) in cases {
            assert_eq!(
                RangeRequest::parse(*header, *size),
                *expected,
                "{header:?} of {size}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn partial_ranges_stay_inside_the_content(header in "\\PC{0,40}", size in 0u64..10_000) {
            if let Partial(range) = RangeRequest::parse(Some(&header), size) {
                proptest::prop_assert!(range.start < range.end && range.end <= size);
            }
        }

        #[test]
        fn well_formed_ranges_are_honoured(start in 0u64..20_000, len in 1u64..5_000, size in 1u64..10_000) {
            let header = format!("bytes={}-{}", start, start + len - 1);
            let expected = if start >= size { Unsatisfiable } else { Partial(start..(start + len).min(size)) };
            proptest::prop_assert_eq!(RangeRequest::parse(Some(&header), size), expected);
        }
    }
}
