//! The API's bearer token: loaded from a file or the environment, never printed, and compared in
//! constant time so a client cannot learn it byte by byte from response times.

use std::fmt;
use std::path::Path;

use super::ApiError;

/// Shortest token accepted: shorter ones are guessable by brute force over the network.
pub const MIN_TOKEN_LEN: usize = 16;

/// A secret every request must present as `Authorization: Bearer <token>`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl fmt::Debug for ApiToken {
    /// Never shows the secret, so a token in a logged struct stays secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// Checks `secret` (from `origin`, e.g. a file path or an env var name): printable ASCII without
    /// spaces, at least [`MIN_TOKEN_LEN`] bytes. The error names the origin, never the secret.
    pub fn new(secret: &str, origin: &str) -> Result<ApiToken, ApiError> {
        let secret = secret.trim();
        if secret.len() < MIN_TOKEN_LEN {
            return Err(ApiError::BadToken { origin: origin.to_owned(), reason: format!("shorter than {MIN_TOKEN_LEN} characters") });
        }
        if !secret.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(ApiError::BadToken {
                origin: origin.to_owned(),
                reason: "holds characters other than printable ASCII (no spaces)".to_owned(),
            });
        }
        Ok(ApiToken(secret.to_owned()))
    }

    /// Reads the token from `path`; surrounding whitespace (a trailing newline) is ignored.
    pub fn from_file(path: &Path) -> Result<ApiToken, ApiError> {
        let text = std::fs::read_to_string(path).map_err(|source| ApiError::TokenFile { path: path.display().to_string(), source })?;
        ApiToken::new(&text, &path.display().to_string())
    }

    /// Whether an `Authorization` header value carries this token.
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(header) = authorization else { return false };
        let header = header.trim();
        // The scheme is case-insensitive (RFC 7235); the credentials are not.
        let Some((scheme, credentials)) = header.split_once(' ') else { return false };
        scheme.eq_ignore_ascii_case("bearer") && constant_time_eq(self.0.as_bytes(), credentials.trim().as_bytes())
    }
}

/// Compares `expected` with `given` in time that depends only on `given`'s length, not on where
/// the first differing byte is. `expected` must not be empty.
pub fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    if expected.is_empty() {
        return false;
    }
    // Fold every difference, including a length mismatch, into one accumulator and look at it once.
    let mut difference = u64::from(expected.len() != given.len());
    for (index, byte) in given.iter().enumerate() {
        let wanted = expected[index % expected.len()];
        difference |= u64::from(std::hint::black_box(byte ^ wanted));
    }
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cret-token-0123456789";

    #[test]
    fn equal_inputs_compare_equal_and_any_difference_does_not() {
        assert!(constant_time_eq(b"abcdef", b"abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcdeg"));
        assert!(!constant_time_eq(b"abcdef", b"Abcdef"));
        assert!(!constant_time_eq(b"abcdef", b"abcde"));
        assert!(!constant_time_eq(b"abcdef", b"abcdefabcdef"), "a repeat of the secret is not the secret");
        assert!(!constant_time_eq(b"abcdef", b""));
        assert!(!constant_time_eq(b"", b""), "an empty secret never matches");
    }

    #[test]
    fn the_bearer_header_is_parsed_strictly() {
        let token = ApiToken::new(SECRET, "test").unwrap();
        assert!(token.accepts(Some(&format!("Bearer {SECRET}"))));
        assert!(token.accepts(Some(&format!("bearer {SECRET}"))));
        assert!(!token.accepts(None));
        assert!(!token.accepts(Some(SECRET)));
        assert!(!token.accepts(Some(&format!("Basic {SECRET}"))));
        assert!(!token.accepts(Some(&format!("Bearer {}", SECRET.to_uppercase()))));
        assert!(!token.accepts(Some("Bearer ")));
    }

    #[test]
    fn tokens_are_checked_and_never_shown() {
        let token = ApiToken::new(&format!("  {SECRET}\n"), "file").unwrap();
        assert!(token.accepts(Some(&format!("Bearer {SECRET}"))));
        assert!(!format!("{token:?}").contains(SECRET));
        let short = ApiToken::new("abc123xyz", "USAGEBILL_API_TOKEN").unwrap_err().to_string();
        assert!(short.contains("USAGEBILL_API_TOKEN") && !short.contains("abc123xyz"), "{short}");
        let spaced = ApiToken::new("has a space inside it!", "file").unwrap_err().to_string();
        assert!(!spaced.contains("has a space"), "the error must not echo the secret: {spaced}");
    }
}
