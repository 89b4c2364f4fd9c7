//! A user's fields as clients send them: username, email, password, bio, image.

use crate::FieldError;

/// Longest username accepted; usernames appear in URLs (`/api/profiles/{username}`).
pub const USERNAME_MAX: usize = 40;
/// Shortest password accepted (NIST SP 800-63B's minimum for user-chosen secrets).
pub const PASSWORD_MIN: usize = 8;
/// Longest password accepted; bounds the work one login can cost.
pub const PASSWORD_MAX: usize = 256;
const EMAIL_MAX: usize = 254;
const BIO_MAX: usize = 4096;
const IMAGE_MAX: usize = 2048;

/// A username: 1 to 40 letters, digits, `_`, `-` or `.`; unique regardless of case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(FieldError::blank("username"));
        }
        if name.chars().count() > USERNAME_MAX {
            return Err(FieldError::too_long("username", USERNAME_MAX));
        }
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.');
        if !name.chars().all(allowed) {
            return Err(FieldError::new(
                "username",
                "may contain only letters, digits, '_', '-' and '.'",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// Wraps a username read back from the store, which only ever holds parsed ones.
    pub fn from_trusted(name: String) -> Self {
        Self(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// An email address, trimmed and lower-cased so that lookups ignore case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let email = raw.trim().to_lowercase();
        if email.is_empty() {
            return Err(FieldError::blank("email"));
        }
        if email.len() > EMAIL_MAX {
            return Err(FieldError::too_long("email", EMAIL_MAX));
        }
        let invalid = || FieldError::new("email", "is invalid");
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let well_formed = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.contains('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !well_formed {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn from_trusted(email: String) -> Self {
        Self(email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A plaintext password on its way to the hasher. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Checks a new password against the length rules.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::blank("password"));
        }
        let len = raw.chars().count();
        if len < PASSWORD_MIN {
            return Err(FieldError::new(
                "password",
                format!("is too short (minimum is {PASSWORD_MIN} characters)"),
            ));
        }
        if len > PASSWORD_MAX {
            return Err(FieldError::too_long("password", PASSWORD_MAX));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A password offered at login: only emptiness and the upper bound are checked, so that
    /// accounts created under older rules can still sign in.
    pub fn parse_login(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::blank("password"));
        }
        if raw.chars().count() > PASSWORD_MAX {
            return Err(FieldError::too_long("password", PASSWORD_MAX));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A profile's free-text bio; an empty one is stored as no bio (`null`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bio(String);

impl Bio {
    /// `Ok(None)` for an empty or blank bio.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        let bio = raw.trim();
        if bio.is_empty() {
            return Ok(None);
        }
        if bio.chars().count() > BIO_MAX {
            return Err(FieldError::too_long("bio", BIO_MAX));
        }
        Ok(Some(Self(bio.to_owned())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A profile image: an absolute `http(s)` URL or a path on this server (`/media/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUrl(String);

impl ImageUrl {
    /// `Ok(None)` for an empty image, which clears it.
    pub fn parse(raw: &str) -> Result<Option<Self>, FieldError> {
        let url = raw.trim();
        if url.is_empty() {
            return Ok(None);
        }
        if url.len() > IMAGE_MAX {
            return Err(FieldError::too_long("image", IMAGE_MAX));
        }
        let lower = url.to_ascii_lowercase();
        let scheme_ok = lower.starts_with("https://")
            || lower.starts_with("http://")
            || (url.starts_with('/') && !url.starts_with("//"));
        if !scheme_ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(FieldError::new(
                "image",
                "must be an http(s) URL or a path on this server",
            ));
        }
        Ok(Some(Self(url.to_owned())))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let cases: &[(&str, Option<&str>)] = &[
            ("jake", Some("jake")),
            ("  jake_1.x-y ", Some("jake_1.x-y")),
            ("Jürgen", Some("Jürgen")),
            ("", None),
            ("   ", None),
            ("jake smith", None),
            ("jake/..", None),
            ("<script>", None),
            (&"a".repeat(41), None),
        ];
        for (raw, expected) in cases {
            let parsed = Username::parse(raw).ok();
            assert_eq!(parsed.as_ref().map(Username::as_str), *expected, "{raw:?}");
        }
        assert_eq!(Username::parse(&"a".repeat(40)).unwrap().as_str().len(), 40);
    }

    #[test]
    fn emails() {
        let cases: &[(&str, Option<&str>)] = &[
            ("jake@jake.jake", Some("jake@jake.jake")),
            (" Jake@Example.COM ", Some("jake@example.com")),
            ("", None),
            ("jake", None),
            ("jake@", None),
            ("@example.com", None),
            ("jake@example", None),
            ("jake@@example.com", None),
            ("ja ke@example.com", None),
            ("jake@.example.com", None),
        ];
        for (raw, expected) in cases {
            let parsed = Email::parse(raw).ok();
            assert_eq!(parsed.as_ref().map(Email::as_str), *expected, "{raw:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("").is_err());
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"x".repeat(257)).is_err());
        assert!(Password::parse_login("short").is_ok());
        assert!(Password::parse_login("").is_err());
        assert_eq!(
            format!("{:?}", Password::parse("hunter2hunter2").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn bios_and_images() {
        assert_eq!(Bio::parse("").unwrap(), None);
        assert_eq!(Bio::parse("  ").unwrap(), None);
        assert_eq!(Bio::parse(" hi ").unwrap().unwrap().into_string(), "hi");
        assert!(Bio::parse(&"b".repeat(4097)).is_err());
        assert_eq!(ImageUrl::parse("").unwrap(), None);
        assert!(ImageUrl::parse("https://x.test/a.png").unwrap().is_some());
        assert!(ImageUrl::parse("/media/abc").unwrap().is_some());
        assert!(ImageUrl::parse("//evil.test/a.png").is_err());
        assert!(ImageUrl::parse("javascript:alert(1)").is_err());
        assert!(ImageUrl::parse("https://x.test/a b.png").is_err());
    }
}
