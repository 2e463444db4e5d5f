//! Natural (version-aware) order of tag names, as a byte string the databases compare
//! with `memcmp` (SQLite `BLOB`, PostgreSQL `bytea`): `v1.2` before `v1.10`, `1.9.0`
//! before `1.10.0`.
//!
//! The order: a name is a sequence of tokens, each either a run of ASCII digits (a
//! number) or one byte of anything else. Tokens compare left to right; two numbers by
//! value (leading zeros ignored), a number against a byte as the digit `0` would (so
//! `v-1` < `v1` < `va`, as in bytewise order), two bytes bytewise; a name that runs out
//! first is smaller. Names equal so far (`v01`, `v1`) are then ordered bytewise, which
//! makes the order total: no two distinct names have the same key, and a keyset page
//! can continue after any name.
//!
//! The key is computed here, once, and stored with every tag by both metadata stores (the
//! tags table's `sort_key`, indexed with the repository): SQL cannot compute it (SQLite
//! has no function for it, and a PL/pgSQL copy would be a second definition to keep in
//! step), so both stores fill it from Rust on every tag insert and, for rows written before
//! the column existed or by an older binary during a rolling upgrade, in batches at start
//! and before a natural-order read of a repository that still has one (docs/ui.md).

/// Marks a number in a key. It is `b'0'`, so a number sorts among other bytes where a
/// digit does; no other token's encoding starts with an ASCII digit.
const NUMBER: u8 = b'0';
/// Ends the natural part of a key, before the name's own bytes: smaller than the first
/// byte of any token's encoding (bytes 0 and 1 are escaped as `01 01` and `01 02`).
const END: u8 = 0;

/// The sort key of `name` in natural order (see the module documentation): comparing two
/// keys bytewise orders their names naturally.
pub fn natural_key(name: &str) -> Vec<u8> {
    let mut key = natural_prefix(name.as_bytes());
    key.push(END);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The natural part of a key: each token's encoding, without the end mark.
fn natural_prefix(name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 8);
    let mut i = 0;
    while i < name.len() {
        if name[i].is_ascii_digit() {
            let start = i;
            while i < name.len() && name[i].is_ascii_digit() {
                i += 1;
            }
            let run = &name[start..i];
            let digits = &run[run.iter().position(|d| *d != b'0').unwrap_or(run.len())..];
            key.push(NUMBER);
            // The count of significant digits first, so a longer number is larger
            // whatever its digits; 255 and more (never in a tag, at most 128 characters)
            // as 0xFF and eight big-endian bytes, which sort after every single byte.
            match u8::try_from(digits.len()) {
                Ok(n) if n < 0xFF => key.push(n),
                _ => {
                    key.push(0xFF);
                    key.extend_from_slice(&(digits.len() as u64).to_be_bytes());
                }
            }
            key.extend_from_slice(digits);
        } else {
            match name[i] {
                b @ (0 | 1) => key.extend_from_slice(&[1, b + 1]),
                b => key.push(b),
            }
            i += 1;
        }
    }
    key
}

/// The keys of every name that starts with `prefix`, as a range `[low, high)` (`high`
/// `None`: unbounded), for a keyset scan of the key index bounded like the name index is
/// by a literal prefix. `None` when the prefix bounds nothing useful: it is empty, or
/// only digits (a trailing run of digits may continue in a name, `v1` → `v10`, which
/// changes its number, so the range is that of the prefix without it). The range may hold
/// keys of names without the prefix: callers still filter by name.
pub fn natural_key_range(prefix: &str) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let fixed = prefix.trim_end_matches(|c: char| c.is_ascii_digit());
    if fixed.is_empty() {
        return None;
    }
    let low = natural_prefix(fixed.as_bytes());
    let mut high = low.clone();
    while high.last() == Some(&0xFF) {
        high.pop();
    }
    let high = high.last_mut().map(|b| *b += 1).map(|()| high);
    Some((low, high))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;

    /// The order the module documentation states, written from the definition rather than
    /// from the key: what the key must agree with.
    fn natural_cmp(a: &str, b: &str) -> Ordering {
        #[derive(PartialEq, Eq)]
        enum Tok<'a> {
            Num(&'a [u8]),
            Byte(u8),
        }
        fn tokens(s: &[u8]) -> Vec<Tok<'_>> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < s.len() {
                if s[i].is_ascii_digit() {
                    let start = i;
                    while i < s.len() && s[i].is_ascii_digit() {
                        i += 1;
                    }
                    let run = &s[start..i];
                    out.push(Tok::Num(&run[run.iter().position(|d| *d != b'0').unwrap_or(run.len())..]));
                } else {
                    out.push(Tok::Byte(s[i]));
                    i += 1;
                }
            }
            out
        }
        let cmp_tok = |x: &Tok<'_>, y: &Tok<'_>| match (x, y) {
            (Tok::Num(p), Tok::Num(q)) => p.len().cmp(&q.len()).then_with(|| p.cmp(q)),
            (Tok::Num(_), Tok::Byte(c)) => b'0'.cmp(c),
            (Tok::Byte(c), Tok::Num(_)) => c.cmp(&b'0'),
            (Tok::Byte(c), Tok::Byte(d)) => c.cmp(d),
        };
        let (ta, tb) = (tokens(a.as_bytes()), tokens(b.as_bytes()));
        for (x, y) in ta.iter().zip(&tb) {
            match cmp_tok(x, y) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        ta.len().cmp(&tb.len()).then_with(|| a.as_bytes().cmp(b.as_bytes()))
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        v.sort_by_key(|n| natural_key(n));
        v
    }

    #[test]
    fn versions_sort_by_number() {
        assert_eq!(sorted(&["v1.10", "v1.2", "v1.1"]), ["v1.1", "v1.2", "v1.10"]);
        assert_eq!(sorted(&["1.10.0", "1.9.0", "1.9.10", "1.9.9"]), ["1.9.0", "1.9.9", "1.9.10", "1.10.0"]);
        assert_eq!(
            sorted(&["v2", "v10", "v1.0-rc", "v1.0", "latest", "V2", "v-1", "va"]),
            ["V2", "latest", "v-1", "v1.0", "v1.0-rc", "v2", "v10", "va"],
            "other bytes bytewise, a number where a digit sorts"
        );
    }

    #[test]
    fn ties_and_zeros_are_total() {
        // Same numbers: bytewise on the name, so distinct names never share a key.
        assert_eq!(sorted(&["v1", "v01", "v001", "v0"]), ["v0", "v001", "v01", "v1"]);
        assert_ne!(natural_key("v01"), natural_key("v1"));
        assert_eq!(sorted(&["a0", "a", "a00"]), ["a", "a0", "a00"]);
    }

    #[test]
    fn long_digit_runs_compare_by_value() {
        let big = format!("v{}", "9".repeat(127));
        let bigger = format!("v1{}", "0".repeat(127));
        assert_eq!(sorted(&[&bigger, &big, "v10"]), ["v10".to_owned(), big, bigger]);
        // 300 digits: the escaped length still orders by length.
        let (n255, n300) = ("1".repeat(255), "1".repeat(300));
        assert!(natural_key(&n255) < natural_key(&n300));
        assert!(natural_key(&"9".repeat(254)) < natural_key(&n255));
    }

    #[test]
    fn non_ascii_and_control_bytes() {
        // Only ASCII digits are numbers; other characters compare by their UTF-8 bytes
        // (code point order). Tags are ASCII, but the key is defined for any string.
        assert_eq!(sorted(&["é2", "e10", "é10", "e2", "٣"]), ["e2", "e10", "é2", "é10", "٣"]);
        assert_eq!(sorted(&["a\u{1}", "a", "a\u{0}", "a\u{0}b"]), ["a", "a\u{0}", "a\u{0}b", "a\u{1}"]);
    }

    #[test]
    fn prefix_ranges_hold_their_names() {
        assert_eq!(natural_key_range(""), None);
        assert_eq!(natural_key_range("12"), None);
        let (low, high) = natural_key_range("v1.").unwrap();
        let high = high.unwrap();
        for n in ["v1.", "v1.0", "v1.10-rc", "v1.9"] {
            let k = natural_key(n);
            assert!(low <= k && k < high, "{n}");
        }
        for n in ["v1", "v10.1", "v2.0", "u9", "w"] {
            let k = natural_key(n);
            assert!(!(low <= k && k < high), "{n}");
        }
        // A trailing number is left out of the range: v1 → v10 is a different number.
        let (low, high) = natural_key_range("v1").unwrap();
        let high = high.unwrap();
        for n in ["v1", "v10", "v1.2", "v9"] {
            let k = natural_key(n);
            assert!(low <= k && k < high, "{n}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Key order is the natural order, over names made of the pieces versions are
        /// made of (digits with leading zeros, separators, letters) and some others.
        #[test]
        fn key_order_is_natural_order(
            a in r"([0-9]{0,4}|[a-cvV._-]{0,2}|é|\x01|\x00){0,6}",
            b in r"([0-9]{0,4}|[a-cvV._-]{0,2}|é|\x01|\x00){0,6}",
        ) {
            prop_assert_eq!(natural_key(&a).cmp(&natural_key(&b)), natural_cmp(&a, &b), "{:?} {:?}", a, b);
        }

        #[test]
        fn prefix_range_holds_every_name_with_the_prefix(
            p in "[a-c0-9._-]{0,5}",
            rest in "[a-c0-9._-]{0,5}",
            other in "[a-c0-9._-]{0,8}",
        ) {
            if let Some((low, high)) = natural_key_range(&p) {
                let k = natural_key(&format!("{p}{rest}"));
                prop_assert!(low <= k && high.as_ref().is_none_or(|h| &k < h));
                // What falls in the range starts with the prefix without its trailing digits.
                let o = natural_key(&other);
                if low <= o && high.as_ref().is_none_or(|h| &o < h) {
                    prop_assert!(other.starts_with(p.trim_end_matches(|c: char| c.is_ascii_digit())));
                }
            }
        }
    }
}
