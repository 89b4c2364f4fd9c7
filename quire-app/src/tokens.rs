//! Session tokens: HS256 JWTs whose subject is the user id, with an expiry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use quire_domain::UserId;
use serde::{Deserialize, Serialize};

use crate::{AppError, AppResult, AuthFailure};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string (JWT's `sub` is a string).
    sub: String,
    iat: u64,
    exp: u64,
}

/// The keys that sign and verify tokens, and how long a token lives.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// A fresh token for `user`.
    pub fn issue(&self, user: UserId) -> AppResult<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: user.0.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(format!("cannot sign token: {e}")))
    }

    /// The user a token names, if it is well signed and not expired.
    /// How long an issued token stays valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn verify(&self, token: &str) -> Result<UserId, AuthFailure> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthFailure::Expired,
                _ => AuthFailure::Invalid,
            })?;
        data.claims
            .sub
            .parse()
            .map(UserId)
            .map_err(|_| AuthFailure::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let keys = TokenKeys::new(b"secret-secret-secret-secret-0000", Duration::from_secs(60));
        let token = keys.issue(UserId(42)).unwrap();
        assert_eq!(keys.verify(&token), Ok(UserId(42)));
    }

    #[test]
    fn rejects_other_keys_garbage_and_expired() {
        let keys = TokenKeys::new(b"one-secret-one-secret-one-secret", Duration::from_secs(60));
        let other = TokenKeys::new(b"two-secret-two-secret-two-secret", Duration::from_secs(60));
        let token = other.issue(UserId(1)).unwrap();
        assert_eq!(keys.verify(&token), Err(AuthFailure::Invalid));
        assert_eq!(keys.verify("not.a.jwt"), Err(AuthFailure::Invalid));
        assert_eq!(keys.verify(""), Err(AuthFailure::Invalid));

        let expired = Claims {
            sub: "1".into(),
            iat: 1,
            exp: 2,
        };
        let token = jsonwebtoken::encode(&Header::default(), &expired, &keys.encoding).unwrap();
        assert_eq!(keys.verify(&token), Err(AuthFailure::Expired));
    }

    #[test]
    fn rejects_the_none_algorithm() {
        let keys = TokenKeys::new(b"one-secret-one-secret-one-secret", Duration::from_secs(60));
        // {"alg":"none"} . {"sub":"1","exp":9999999999} . (no signature)
        let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.";
        assert_eq!(keys.verify(token), Err(AuthFailure::Invalid));
    }
}
