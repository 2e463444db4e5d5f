//! Repository names, tags and references as the OCI Distribution Spec defines them.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Longest repository name accepted, as in the CNCF Distribution registry.
pub const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A repository name: `/`-separated components of `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name is empty")]
    Empty,
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error(
        "repository name component {0:?} is invalid: use lower-case letters and digits, separated by '.', '_', '__' or '-'"
    )]
    Component(String),
}

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-", always followed by alnum.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

impl FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        for c in s.split('/') {
            if !valid_component(c) {
                return Err(NameError::Component(c.chars().take(64).collect()));
            }
        }
        Ok(RepoName(s.to_string()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag {0:?} is invalid: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'")]
pub struct TagError(pub String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = TagError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= MAX_TAG_LEN
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter().all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x));
        if ok { Ok(Tag(s.to_string())) } else { Err(TagError(s.chars().take(140).collect())) }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// What follows `/manifests/`: a tag or a digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Tag(#[from] TagError),
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Tags cannot contain ':', so a colon means the client meant a digest.
        if s.contains(':') { Ok(Reference::Digest(s.parse()?)) } else { Ok(Reference::Tag(s.parse()?)) }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}
impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names() {
        for ok in ["a", "library/busybox", "a/b/c/d/e/f/g/h/i", "a.b_c__d---e", "0", "x-y/z.9"] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok}");
        }
        for bad in ["", "A", "a//b", "/a", "a/", "a..b", "a___b", "-a", "a-", "a_", "a b", "a:b", "ä"] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
        assert_eq!("a".repeat(256).parse::<RepoName>(), Err(NameError::TooLong));
        assert!("a".repeat(255).parse::<RepoName>().is_ok());
    }

    #[test]
    fn tags_and_references() {
        assert!("latest".parse::<Tag>().is_ok());
        assert!("_x.Y-1".parse::<Tag>().is_ok());
        assert!(".x".parse::<Tag>().is_err());
        assert!("-x".parse::<Tag>().is_err());
        assert!("a".repeat(129).parse::<Tag>().is_err());
        assert!("a".repeat(128).parse::<Tag>().is_ok());
        assert!(matches!("v1".parse::<Reference>(), Ok(Reference::Tag(_))));
        let d = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!(matches!("sha256:xyz".parse::<Reference>(), Err(ReferenceError::Digest(_))));
    }

    /// Reference implementation of the spec's regular expression, written differently
    /// from `valid_component`, to cross-check it.
    fn spec_component(c: &str) -> bool {
        let b = c.as_bytes();
        let mut tokens: Vec<(bool, String)> = Vec::new(); // (is_sep, text)
        for &x in b {
            let sep = !(x.is_ascii_lowercase() || x.is_ascii_digit());
            match tokens.last_mut() {
                Some((s, t)) if *s == sep => t.push(x as char),
                _ => tokens.push((sep, (x as char).to_string())),
            }
        }
        if tokens.is_empty() || tokens[0].0 || tokens.last().unwrap().0 {
            return false;
        }
        tokens.iter().filter(|t| t.0).all(|(_, t)| t == "." || t == "_" || t == "__" || t.chars().all(|ch| ch == '-'))
    }

    proptest! {
        #[test]
        fn name_parser_matches_spec_grammar(s in "[a-z0-9._/-]{1,40}") {
            let expected = s.split('/').all(spec_component);
            prop_assert_eq!(s.parse::<RepoName>().is_ok(), expected, "{}", s);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,300}") {
            let _ = s.parse::<RepoName>();
            let _ = s.parse::<Tag>();
            let _ = s.parse::<Reference>();
        }

        #[test]
        fn valid_tags_roundtrip(s in "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}") {
            let t: Tag = s.parse().unwrap();
            prop_assert_eq!(t.to_string(), s);
        }
    }
}
