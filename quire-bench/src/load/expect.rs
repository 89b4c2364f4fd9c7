//! What a run counts as a successful response: the expected status (any 2xx by default) and,
//! when asked, a body containing a given text. Anything else is an error of the row, so a
//! server answering fast with redirects, errors or empty bodies cannot pass for a fast server.

use super::stats::ErrorKind;

/// The success rule of one run.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Exactly this status; `None`: any 2xx.
    pub status: Option<u16>,
    /// Text the body must contain; `None`: the body is read but not checked.
    pub body: Option<Vec<u8>>,
    /// Successful bodies' ids are recorded (`--record-ids`).
    pub record_ids: bool,
}

impl Expect {
    /// Whether bodies must be kept (to be judged, or for their ids).
    pub fn needs_body(&self) -> bool {
        self.body.is_some() || self.record_ids
    }

    /// Why a response with `status` and `body` is not a success, or `None` if it is.
    pub fn judge(&self, status: u16, body: &[u8]) -> Option<ErrorKind> {
        let status_ok = match self.status {
            Some(expected) => status == expected,
            None => (200..300).contains(&status),
        };
        if !status_ok {
            return Some(match status {
                400..=499 => ErrorKind::Status4xx,
                500..=599 => ErrorKind::Status5xx,
                _ => ErrorKind::StatusOther,
            });
        }
        match &self.body {
            Some(needle) if !contains(body, needle) => Some(ErrorKind::Body),
            _ => None,
        }
    }
}

/// The number after the first `"id":` in a JSON body, if any.
pub fn first_id(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"id\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let rest = &body[at..];
    let rest = &rest[rest.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    let digits = &rest[..rest.iter().take_while(|b| b.is_ascii_digit()).count()];
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_only_2xx_succeeds() {
        let expect = Expect::default();
        assert_eq!(expect.judge(200, b""), None);
        assert_eq!(expect.judge(204, b""), None);
        assert_eq!(expect.judge(101, b""), Some(ErrorKind::StatusOther));
        assert_eq!(expect.judge(302, b""), Some(ErrorKind::StatusOther));
        assert_eq!(expect.judge(404, b""), Some(ErrorKind::Status4xx));
        assert_eq!(expect.judge(503, b""), Some(ErrorKind::Status5xx));
    }

    #[test]
    fn an_expected_status_replaces_the_2xx_rule() {
        let expect = Expect {
            status: Some(404),
            ..Expect::default()
        };
        assert_eq!(expect.judge(404, b""), None);
        assert_eq!(expect.judge(200, b""), Some(ErrorKind::StatusOther));
    }

    #[test]
    fn the_first_id_is_found() {
        assert_eq!(
            first_id(br#"{"comment":{"id":1234,"body":"x"}}"#),
            Some(1234)
        );
        assert_eq!(first_id(br#"{"comment":{"id": 7}}"#), Some(7));
        assert_eq!(first_id(br#"{"comment":{"uid":"x"}}"#), None);
        assert_eq!(first_id(br#"{"id":"abc"}"#), None);
    }

    #[test]
    fn bodies_must_contain_the_expected_text() {
        let expect = Expect {
            body: Some(b"\"slug\":".to_vec()),
            ..Expect::default()
        };
        assert_eq!(expect.judge(200, br#"{"article":{"slug":"a"}}"#), None);
        assert_eq!(expect.judge(200, b"{}"), Some(ErrorKind::Body));
        assert_eq!(expect.judge(500, b"\"slug\":"), Some(ErrorKind::Status5xx));
    }
}
