//! `limit`/`offset` pagination as the RealWorld spec defines it (limit >= 1, default 20;
//! offset >= 0, default 0). Limits above [`MAX_LIMIT`] are clamped to it rather than refused,
//! as large public APIs do, so a client asking for "everything" gets the largest page.

use crate::FieldError;

/// The largest page served; documented in the README and the OpenAPI document.
pub const MAX_LIMIT: u32 = 100;
const DEFAULT_LIMIT: u32 = 20;

/// One page of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Page {
    pub limit: u32,
    pub offset: u64,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl Page {
    /// Parses the raw query values; absent values take their defaults.
    pub fn parse(limit: Option<&str>, offset: Option<&str>) -> Result<Self, FieldError> {
        let limit = match limit.map(str::trim) {
            None | Some("") => DEFAULT_LIMIT,
            Some(raw) => {
                let digits = raw.bytes().all(|b| b.is_ascii_digit());
                let positive = digits && raw.bytes().any(|b| b != b'0');
                if !positive {
                    return Err(FieldError::new("limit", "must be an integer of at least 1"));
                }
                // Any positive integer, however long, is at least as large as the maximum.
                raw.parse::<u32>().map_or(MAX_LIMIT, |n| n.min(MAX_LIMIT))
            }
        };
        let offset = match offset.map(str::trim) {
            None | Some("") => 0,
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|n| i64::try_from(*n).is_ok())
                .ok_or_else(|| FieldError::new("offset", "must be a non-negative integer"))?,
        };
        Ok(Self { limit, offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let ok = |l, o| Page::parse(l, o).unwrap();
        assert_eq!(
            ok(None, None),
            Page {
                limit: 20,
                offset: 0
            }
        );
        assert_eq!(
            ok(Some("5"), Some("10")),
            Page {
                limit: 5,
                offset: 10
            }
        );
        assert_eq!(ok(Some("1000"), None).limit, MAX_LIMIT);
        assert_eq!(ok(Some("99999999999999999999999"), None).limit, MAX_LIMIT);
        assert_eq!(ok(Some(""), Some("")), Page::default());
        assert_eq!(Page::parse(Some("0"), None).unwrap_err().field, "limit");
        assert_eq!(Page::parse(Some("-1"), None).unwrap_err().field, "limit");
        assert_eq!(Page::parse(Some("ten"), None).unwrap_err().field, "limit");
        assert_eq!(Page::parse(None, Some("-1")).unwrap_err().field, "offset");
        assert_eq!(Page::parse(None, Some("1.5")).unwrap_err().field, "offset");
        assert!(Page::parse(None, Some("18446744073709551615")).is_err());
    }
}
