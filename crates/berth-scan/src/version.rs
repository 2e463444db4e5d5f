//! Each ecosystem's own version order. OSV `ECOSYSTEM` ranges are compared with the
//! ecosystem's comparator, never with string or SemVer order for distro packages.
//! Written from the specifications (Debian Policy §5.6.12, rpm's documented vercmp rules,
//! apk's version grammar, PEP 440, SemVer 2.0, Maven's ComparableVersion rules).

use std::cmp::Ordering;
use std::sync::LazyLock;

/// Which comparator an ecosystem uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Dpkg,
    Rpm,
    Apk,
    SemVer,
    Pep440,
    Maven,
    RubyGems,
}

impl Scheme {
    /// The comparator for an OSV ecosystem string (`Debian:12`, `Alpine:v3.19`, `PyPI`, …).
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let base = ecosystem.split(':').next().unwrap_or("");
        Some(match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Wolfi" | "Chainguard" => Scheme::Apk,
            "Red Hat" | "AlmaLinux" | "Rocky Linux" | "SUSE" | "openSUSE" | "Mageia" | "openEuler" => Scheme::Rpm,
            "Go" | "npm" | "crates.io" | "Packagist" | "Hex" | "Pub" | "NuGet" => Scheme::SemVer,
            "PyPI" => Scheme::Pep440,
            "Maven" => Scheme::Maven,
            "RubyGems" => Scheme::RubyGems,
            _ => return None,
        })
    }

    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg_cmp(a, b),
            Scheme::Rpm => rpm_evr_cmp(a, b),
            Scheme::Apk => apk_cmp(a, b),
            Scheme::SemVer => semver_cmp(a, b),
            Scheme::Pep440 => pep440_cmp(a, b),
            Scheme::Maven => maven_cmp(a, b),
            Scheme::RubyGems => gem_cmp(a, b),
        }
    }
}

// ---- dpkg ----

/// Splits `[epoch:]upstream[-revision]` (revision after the last hyphen).
fn dpkg_parts(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

/// Weight of one character in the non-digit part: `~` before the end, the end before
/// letters, letters (ASCII) before every other character.
fn dpkg_weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(b'~') => -1,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn dpkg_part_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit run, character by character.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = dpkg_weight(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let bc = dpkg_weight(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            if i < a.len() && !a[i].is_ascii_digit() {
                i += 1;
            }
            if j < b.len() && !b[j].is_ascii_digit() {
                j += 1;
            }
        }
        // Digit run, numerically (leading zeros ignored; empty is 0).
        let si = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let sj = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let o = num_str_cmp(&a[si..i], &b[sj..j]);
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Compares two digit strings as numbers of any length.
fn num_str_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let a = trim_zeros(a);
    let b = trim_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&c| c == b'0').count();
    &s[n..]
}

pub fn dpkg_cmp(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = dpkg_parts(a);
    let (eb, ub, rb) = dpkg_parts(b);
    ea.cmp(&eb).then_with(|| dpkg_part_cmp(ua, ub)).then_with(|| dpkg_part_cmp(ra, rb))
}

// ---- rpm ----

/// rpm's segment comparison of one field (version or release).
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while i < a.len() && sep(a[i]) {
            i += 1;
        }
        while j < b.len() && sep(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());
        // `~` sorts before everything, even the end.
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        // `^` sorts after the end but before any further segment.
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca.is_none() || cb.is_none() {
            break;
        }
        let numeric = a[i].is_ascii_digit();
        let take = |s: &[u8], mut k: usize| {
            let st = k;
            while k < s.len() && (if numeric { s[k].is_ascii_digit() } else { s[k].is_ascii_alphabetic() }) {
                k += 1;
            }
            (st, k)
        };
        let (sa, ea) = take(a, i);
        let (sb, eb) = take(b, j);
        if sb == eb {
            // Segments of different kinds: a number is newer than letters.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let o = if numeric { num_str_cmp(&a[sa..ea], &b[sb..eb]) } else { a[sa..ea].cmp(&b[sb..eb]) };
        if o != Ordering::Equal {
            return o;
        }
        i = ea;
        j = eb;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// Compares `[epoch:]version[-release]`; a missing epoch is 0.
pub fn rpm_evr_cmp(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, Option<&str>) {
        let (e, rest) = match v.split_once(':') {
            Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((ver, rel)) => (e, ver, Some(rel)),
            None => (e, rest, None),
        }
    }
    let (ea, va, ra) = split(a);
    let (eb, vb, rb) = split(b);
    ea.cmp(&eb).then_with(|| rpmvercmp(va, vb)).then_with(|| match (ra, rb) {
        (Some(x), Some(y)) => rpmvercmp(x, y),
        // A range bound without a release matches every release of that version.
        _ => Ordering::Equal,
    })
}

// ---- apk ----

#[derive(Debug, PartialEq, Eq)]
struct ApkVersion {
    numbers: Vec<Vec<u8>>,
    letter: Option<u8>,
    /// (rank, number): `_alpha`=0 … `_rc`=3 sort before the bare version (4), `_cvs`… `_p` after.
    suffixes: Vec<(u8, u64)>,
    revision: u64,
}

fn apk_parse(v: &str) -> ApkVersion {
    let (body, revision) = match v.rsplit_once("-r") {
        Some((b, r)) if !r.is_empty() && r.bytes().all(|c| c.is_ascii_digit()) => (b, r.parse().unwrap_or(0)),
        _ => (v, 0),
    };
    // Drop a `~hash` part, which does not take part in ordering here.
    let body = body.split('~').next().unwrap_or(body);
    let mut parts = body.split('_');
    let head = parts.next().unwrap_or("");
    let mut numbers = Vec::new();
    let mut letter = None;
    for (k, seg) in head.split('.').enumerate() {
        let digits: &str = &seg[..seg.bytes().take_while(u8::is_ascii_digit).count()];
        let rest = &seg[digits.len()..];
        numbers.push(if k == 0 { trim_zeros(digits.as_bytes()).to_vec() } else { digits.as_bytes().to_vec() });
        if let Some(c) = rest.bytes().next() {
            letter = Some(c);
        }
    }
    let suffixes = parts
        .map(|s| {
            let name: String = s.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            let n = s[name.len()..].parse().unwrap_or(0);
            let rank = match name.as_str() {
                "alpha" => 0,
                "beta" => 1,
                "pre" => 2,
                "rc" => 3,
                "cvs" => 5,
                "svn" => 6,
                "git" => 7,
                "hg" => 8,
                "p" => 9,
                _ => 4,
            };
            (rank, n)
        })
        .collect();
    ApkVersion { numbers, letter, suffixes, revision }
}

pub fn apk_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (apk_parse(a), apk_parse(b));
    for k in 0..a.numbers.len().max(b.numbers.len()) {
        let o = match (a.numbers.get(k), b.numbers.get(k)) {
            // A component that starts with 0 after a dot compares as a fraction (string order).
            (Some(x), Some(y)) if k > 0 && (x.first() == Some(&b'0') || y.first() == Some(&b'0')) => x.cmp(y),
            (Some(x), Some(y)) => num_str_cmp(x, y),
            (Some(_), None) => Ordering::Greater,
            (None, Some(_)) => Ordering::Less,
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    let o = a.letter.cmp(&b.letter);
    if o != Ordering::Equal {
        return o;
    }
    for k in 0..a.suffixes.len().max(b.suffixes.len()) {
        let x = a.suffixes.get(k).copied().unwrap_or((4, 0));
        let y = b.suffixes.get(k).copied().unwrap_or((4, 0));
        let o = x.cmp(&y);
        if o != Ordering::Equal {
            return o;
        }
    }
    a.revision.cmp(&b.revision)
}

// ---- SemVer ----

/// SemVer 2.0 precedence (build metadata ignored); tolerates a `v` prefix and missing
/// minor/patch numbers, which Go and npm data contain.
pub fn semver_cmp(a: &str, b: &str) -> Ordering {
    match (parse_semver(a), parse_semver(b)) {
        (Some(x), Some(y)) => x.cmp_precedence(&y),
        _ => dpkg_part_cmp(a, b),
    }
}

pub fn parse_semver(v: &str) -> Option<semver::Version> {
    let v = v.trim().trim_start_matches('v');
    if let Ok(p) = semver::Version::parse(v) {
        return Some(p);
    }
    let split = v.find(['-', '+']).unwrap_or(v.len());
    let (core, rest) = v.split_at(split);
    let dots = core.matches('.').count();
    let padded = match dots {
        0 => format!("{core}.0.0{rest}"),
        1 => format!("{core}.0{rest}"),
        _ => return None,
    };
    semver::Version::parse(&padded).ok()
}

// ---- PEP 440 ----

static PEP440: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"(?x)^\s*v?
        (?:(?P<epoch>[0-9]+)!)?
        (?P<release>[0-9]+(?:\.[0-9]+)*)
        (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
        (?:(?:-(?P<post_n1>[0-9]+))|(?:[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>[0-9]+)?))?
        (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
        (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
        \s*$",
    )
    .expect("PEP 440 pattern")
});

/// A sortable key: (epoch, release, pre, post, dev, local) with the spec's sentinels.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pep440Key {
    epoch: u64,
    release: Vec<u64>,
    /// (-1,0) = a dev release without pre/post (sorts first); (3,0) = none (final).
    pre: (i8, u64),
    /// -1 = none.
    post: i64,
    /// i64::MAX = none.
    dev: i64,
    local: Vec<(u8, u64, String)>,
}

fn pep440_key(v: &str) -> Option<Pep440Key> {
    let lower = v.to_ascii_lowercase();
    let c = PEP440.captures(&lower)?;
    let num = |n: &str| c.name(n).and_then(|m| m.as_str().parse::<u64>().ok());
    let mut release: Vec<u64> = c["release"].split('.').map(|s| s.parse().unwrap_or(0)).collect();
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    let post = if c.name("post_n1").is_some() || c.name("post_l").is_some() {
        num("post_n1").or(num("post_n2")).unwrap_or(0) as i64
    } else {
        -1
    };
    let dev = if c.name("dev_l").is_some() { num("dev_n").unwrap_or(0) as i64 } else { i64::MAX };
    let pre = match c.name("pre_l").map(|m| m.as_str()) {
        Some("a" | "alpha") => (0, num("pre_n").unwrap_or(0)),
        Some("b" | "beta") => (1, num("pre_n").unwrap_or(0)),
        Some(_) => (2, num("pre_n").unwrap_or(0)),
        None if post < 0 && dev != i64::MAX => (-1, 0),
        None => (3, 0),
    };
    let local = c
        .name("local")
        .map(|m| {
            m.as_str()
                .split(['-', '_', '.'])
                .map(|s| match s.parse::<u64>() {
                    Ok(n) => (1, n, String::new()),
                    Err(_) => (0, 0, s.to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Pep440Key { epoch: num("epoch").unwrap_or(0), release, pre, post, dev, local })
}

pub fn pep440_cmp(a: &str, b: &str) -> Ordering {
    match (pep440_key(a), pep440_key(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => dpkg_part_cmp(a, b),
    }
}

// ---- Maven ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum MavenItem {
    Int(u64),
    Str(String),
}

fn maven_qualifier_rank(s: &str) -> (u8, &str) {
    match s {
        "alpha" | "a" => (0, ""),
        "beta" | "b" => (1, ""),
        "milestone" | "m" => (2, ""),
        "rc" | "cr" => (3, ""),
        "snapshot" => (4, ""),
        "" | "ga" | "final" | "release" => (5, ""),
        "sp" => (6, ""),
        other => (7, other),
    }
}

fn maven_items(v: &str) -> Vec<MavenItem> {
    let lower = v.to_ascii_lowercase();
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut cur_digit = None;
    let flush = |cur: &mut String, items: &mut Vec<MavenItem>| {
        if !cur.is_empty() {
            items.push(match cur.parse() {
                Ok(n) => MavenItem::Int(n),
                Err(_) => MavenItem::Str(std::mem::take(cur)),
            });
            cur.clear();
        }
    };
    for ch in lower.chars() {
        if ch == '.' || ch == '-' || ch == '_' {
            flush(&mut cur, &mut items);
            cur_digit = None;
            continue;
        }
        let d = ch.is_ascii_digit();
        if cur_digit.is_some_and(|c| c != d) {
            flush(&mut cur, &mut items);
        }
        cur_digit = Some(d);
        cur.push(ch);
    }
    flush(&mut cur, &mut items);
    // Trailing zeros and release qualifiers do not change the version (1.0 == 1 == 1.0.0-ga).
    while matches!(items.last(), Some(MavenItem::Int(0)))
        || matches!(items.last(), Some(MavenItem::Str(s)) if maven_qualifier_rank(s).0 == 5)
    {
        items.pop();
    }
    items
}

pub fn maven_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (maven_items(a), maven_items(b));
    for k in 0..a.len().max(b.len()) {
        let o = match (a.get(k), b.get(k)) {
            (Some(MavenItem::Int(x)), Some(MavenItem::Int(y))) => x.cmp(y),
            (Some(MavenItem::Int(_)), Some(MavenItem::Str(_))) => Ordering::Greater,
            (Some(MavenItem::Str(_)), Some(MavenItem::Int(_))) => Ordering::Less,
            (Some(MavenItem::Str(x)), Some(MavenItem::Str(y))) => maven_qualifier_rank(x).cmp(&maven_qualifier_rank(y)),
            (Some(MavenItem::Int(x)), None) => x.cmp(&0),
            (None, Some(MavenItem::Int(y))) => 0.cmp(y),
            (Some(MavenItem::Str(x)), None) => maven_qualifier_rank(x).cmp(&(5, "")),
            (None, Some(MavenItem::Str(y))) => (5, "").cmp(&maven_qualifier_rank(y)),
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

// ---- RubyGems ----

/// Gem::Version order: segments split at dots and letter/digit boundaries; a segment with
/// letters marks a pre-release, which sorts before any number.
pub fn gem_cmp(a: &str, b: &str) -> Ordering {
    fn segs(v: &str) -> Vec<MavenItem> {
        let mut out = Vec::new();
        for part in v.trim().split(['.', '-']) {
            let mut cur = String::new();
            let mut digit = None;
            for ch in part.chars() {
                let d = ch.is_ascii_digit();
                if digit.is_some_and(|x| x != d) {
                    out.push(item(&cur));
                    cur.clear();
                }
                digit = Some(d);
                cur.push(ch);
            }
            if !cur.is_empty() {
                out.push(item(&cur));
            }
        }
        while matches!(out.last(), Some(MavenItem::Int(0))) {
            out.pop();
        }
        out
    }
    fn item(s: &str) -> MavenItem {
        s.parse().map(MavenItem::Int).unwrap_or_else(|_| MavenItem::Str(s.to_string()))
    }
    let (a, b) = (segs(a), segs(b));
    for k in 0..a.len().max(b.len()) {
        let o = match (a.get(k), b.get(k)) {
            (Some(MavenItem::Int(x)), Some(MavenItem::Int(y))) => x.cmp(y),
            (Some(MavenItem::Str(x)), Some(MavenItem::Str(y))) => x.cmp(y),
            (Some(MavenItem::Int(_)), Some(MavenItem::Str(_))) => Ordering::Greater,
            (Some(MavenItem::Str(_)), Some(MavenItem::Int(_))) => Ordering::Less,
            (Some(MavenItem::Int(x)), None) => x.cmp(&0),
            (None, Some(MavenItem::Int(y))) => 0.cmp(y),
            (Some(MavenItem::Str(_)), None) => Ordering::Less,
            (None, Some(MavenItem::Str(_))) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    fn check(s: Scheme, rows: &[(&str, &str, Ordering)]) {
        for (a, b, want) in rows {
            assert_eq!(s.compare(a, b), *want, "{s:?}: {a} vs {b}");
            assert_eq!(s.compare(b, a), want.reverse(), "{s:?}: {b} vs {a}");
        }
    }

    #[test]
    fn dpkg_order() {
        check(
            Scheme::Dpkg,
            &[
                ("1.0~rc1", "1.0", Less),
                ("1.0", "1.0a", Less),
                ("1.0a", "1.0+b", Less),
                ("1.0~~", "1.0~~a", Less),
                ("1.0~~a", "1.0~", Less),
                ("1.0~", "1.0", Less),
                ("1:1.0", "2.0", Greater),
                ("0:1.0", "1.0", Equal),
                ("2.36-9+deb12u4", "2.36-9+deb12u10", Less),
                ("1.2.3-1", "1.2.3-1+b1", Less),
                ("1.2.3-1+b1", "1.2.3-2", Less),
                ("7.88.1-10+deb12u5", "7.88.1-10+deb12u5", Equal),
                ("1.01", "1.1", Equal),
                ("1.0-1", "1.0", Greater),
                ("3.0.11-1~deb12u2", "3.0.11-1", Less),
            ],
        );
    }

    #[test]
    fn rpm_order() {
        check(
            Scheme::Rpm,
            &[
                ("1.0", "1.0.1", Less),
                ("1.0~rc1", "1.0", Less),
                ("1.0", "1.0^git1", Less),
                ("1.0^git1", "1.0.1", Less),
                ("1.0^", "1.0", Greater),
                ("1.0", "1_0", Equal),
                ("1.0a", "1.0", Greater),
                ("1.0a", "1.0.1", Less),
                ("1.010", "1.9", Greater),
                ("2:1.0-1", "1:9.0-1", Greater),
                ("1.0-1.el9", "1.0-2.el9", Less),
                ("1.0-1.el9_2", "1.0-1.el9", Greater),
            ],
        );
    }

    #[test]
    fn apk_order() {
        check(
            Scheme::Apk,
            &[
                ("1.0_rc1", "1.0", Less),
                ("1.0_alpha", "1.0_beta", Less),
                ("1.0_beta2", "1.0_rc1", Less),
                ("1.0", "1.0_p1", Less),
                ("1.0-r0", "1.0-r1", Less),
                ("1.0-r9", "1.0-r10", Less),
                ("1.0", "1.0a", Less),
                ("1.0a", "1.0.1", Less),
                ("3.1.4-r5", "3.1.4-r5", Equal),
                ("1.2.10", "1.2.9", Greater),
                ("1.0_p1", "1.0.1", Less),
            ],
        );
    }

    #[test]
    fn semver_order() {
        check(
            Scheme::SemVer,
            &[
                ("1.0.0-alpha", "1.0.0", Less),
                ("1.0.0-alpha", "1.0.0-alpha.1", Less),
                ("1.0.0-alpha.1", "1.0.0-alpha.beta", Less),
                ("1.0.0-beta.2", "1.0.0-beta.11", Less),
                ("1.0.0+build1", "1.0.0+build2", Equal),
                ("v1.2.3", "1.2.3", Equal),
                ("1.2", "1.2.0", Equal),
                ("0.9.0", "0.10.0", Less),
            ],
        );
    }

    #[test]
    fn pep440_order() {
        let ordered = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for w in ordered.windows(2) {
            assert_eq!(pep440_cmp(w[0], w[1]), Less, "{} < {}", w[0], w[1]);
        }
        check(
            Scheme::Pep440,
            &[
                ("1.0", "1.0.0", Equal),
                ("1.0c1", "1.0rc1", Equal),
                ("1!0.1", "2.0", Greater),
                ("1.0-1", "1.0.post1", Equal),
            ],
        );
    }

    #[test]
    fn maven_order() {
        check(
            Scheme::Maven,
            &[
                ("1.0-alpha-1", "1.0-beta-1", Less),
                ("1.0-beta-1", "1.0-rc1", Less),
                ("1.0-rc1", "1.0-SNAPSHOT", Less),
                ("1.0-SNAPSHOT", "1.0", Less),
                ("1.0", "1.0-sp1", Less),
                ("1.0", "1.0.0", Equal),
                ("1.0", "1.0.1", Less),
                ("2.9.10.8", "2.10.0", Less),
                ("1.0.Final", "1.0", Equal),
            ],
        );
    }

    #[test]
    fn gem_order() {
        check(
            Scheme::RubyGems,
            &[
                ("1.0.0.pre", "1.0.0", Less),
                ("1.0", "1.0.0", Equal),
                ("1.9", "1.10", Less),
                ("2.0.0.rc1", "2.0.0.rc2", Less),
            ],
        );
    }
}
