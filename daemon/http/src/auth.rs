//! Bearer tokens for `/tickets/{id}`: the token is read from a file at start
//! (`[http] token_file`), and compared in constant time so response timing
//! tells nothing about how much of a guess was right.

use std::path::Path;

/// A token the server accepts.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// Why a token file is refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the HTTP token file {path}: {source} (set [http] token_file, or create it)")]
    Read { path: String, source: std::io::Error },
    #[error(
        "the HTTP token file {path} holds {len} characters; use at least 16 (e.g. `openssl rand -hex 32`)"
    )]
    TooShort { path: String, len: usize },
}

impl Token {
    /// The token in `path`: its first line, trimmed; at least 16 characters.
    ///
    /// # Errors
    /// An unreadable file or a token too short to resist guessing.
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| TokenError::Read { path: path.display().to_string(), source })?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.len() < 16 {
            return Err(TokenError::TooShort { path: path.display().to_string(), len: token.len() });
        }
        Ok(Token(token.as_bytes().to_vec()))
    }

    /// Whether an `Authorization` header value carries this token (`Bearer <token>`).
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else { return false };
        let Some(presented) = strip_bearer(value) else { return false };
        constant_time_eq(presented, &self.0)
    }
}

fn strip_bearer(value: &[u8]) -> Option<&[u8]> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(value[7..].trim_ascii())
}

/// Equal slices, in time that depends only on the lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let token = Token(b"0123456789abcdef".to_vec());
        assert!(token.accepts(Some(b"Bearer 0123456789abcdef")));
        assert!(token.accepts(Some(b"bearer 0123456789abcdef ")));
        assert!(!token.accepts(Some(b"Bearer 0123456789abcdeF")));
        assert!(!token.accepts(Some(b"Bearer 0123456789abcde")));
        assert!(!token.accepts(Some(b"Bearer 0123456789abcdef0")));
        assert!(!token.accepts(Some(b"Basic 0123456789abcdef")));
        assert!(!token.accepts(Some(b"Bearer ")));
        assert!(!token.accepts(None));
    }

    #[test]
    fn a_prefix_is_not_equal() {
        assert!(!constant_time_eq(b"", b"\xff"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn a_short_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(Token::from_file(&path), Err(TokenError::TooShort { len: 5, .. })));
        std::fs::write(&path, "  0123456789abcdef0123  \nsecond line\n").unwrap();
        assert!(Token::from_file(&path).unwrap().accepts(Some(b"Bearer 0123456789abcdef0123")));
        assert!(matches!(Token::from_file(&dir.path().join("none")), Err(TokenError::Read { .. })));
    }
}
