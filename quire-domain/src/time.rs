//! Timestamps: stored as milliseconds since the Unix epoch, shown as RFC 3339 with milliseconds
//! and `Z` (`2026-11-22T03:19:13.000Z`), the form RealWorld clients parse.

use chrono::{DateTime, SecondsFormat, Utc};

/// A UTC instant with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    pub fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    pub fn as_millis(self) -> i64 {
        self.0
    }

    /// RFC 3339, always with three fractional digits and `Z`.
    pub fn to_rfc3339(self) -> String {
        DateTime::<Utc>::from_timestamp_millis(self.0)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_763_781_553_007, "2025-11-22T03:19:13.007Z"),
            (1_763_781_553_120, "2025-11-22T03:19:13.120Z"),
        ];
        for (millis, text) in cases {
            assert_eq!(Timestamp::from_millis(millis).to_rfc3339(), text);
        }
    }
}
