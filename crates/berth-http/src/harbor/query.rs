//! Harbor's list conventions (goharbor/harbor `src/lib/q/builder.go`,
//! `src/server/v2.0/handler/base.go`): `page` / `page_size`, the `q=` query language,
//! `sort=`, and the `Link` header that points at the previous and next pages.

use std::cmp::Ordering;

use berth_core::store::identity::Page;

pub const DEFAULT_PAGE_SIZE: u64 = 10;
pub const MAX_PAGE_SIZE: u64 = 100;

/// What a `q=` term asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// `k=v`
    Exact(String),
    /// `k=~v`
    Fuzzy(String),
    /// `k=[min~max]`, either bound optional.
    Range(Option<String>, Option<String>),
    /// `k={a b}`
    Or(Vec<String>),
    /// `k=(a b)`
    And(Vec<String>),
}

impl Match {
    pub fn describe(&self) -> &'static str {
        match self {
            Match::Exact(_) => "exact match",
            Match::Fuzzy(_) => "fuzzy match",
            Match::Range(..) => "range",
            Match::Or(_) => "or-list",
            Match::And(_) => "and-list",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub key: String,
    pub desc: bool,
}

/// A bad `page`, `page_size`, `q` or `sort`; always a 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError(pub String);

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The parsed query string of a list request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub page: u64,
    pub page_size: u64,
    pub terms: Vec<(String, Match)>,
    pub sort: Vec<Sort>,
    /// Every parameter as sent (decoded), for legacy filters and for the `Link` header.
    pub params: Vec<(String, String)>,
}

impl ListQuery {
    pub fn parse(raw: Option<&str>) -> Result<Self, QueryError> {
        let params: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect();
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let number = |k: &str, default: u64| -> Result<u64, QueryError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| QueryError(format!("{k} must be a positive integer, got {v:?}"))),
            }
        };
        let page = number("page", 1)?;
        if page < 1 {
            return Err(QueryError("page must be at least 1".into()));
        }
        let page_size = number("page_size", DEFAULT_PAGE_SIZE)?;
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(QueryError(format!("page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")));
        }
        let terms = match get("q") {
            Some(q) => parse_terms(q)?,
            None => Vec::new(),
        };
        let sort = parse_sort(get("sort").unwrap_or(""))?;
        Ok(ListQuery { page, page_size, terms, sort, params })
    }

    /// A legacy parameter (`?name=`, `?username=`), if given and not empty.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    pub fn term(&self, key: &str) -> Option<&Match> {
        self.terms.iter().find(|(k, _)| k == key).map(|(_, m)| m)
    }

    pub fn store_page(&self) -> Page {
        Page { page: self.page, page_size: self.page_size }
    }

    /// Refuses sort keys the resource cannot be sorted by.
    pub fn check_sort(&self, allowed: &[&str]) -> Result<(), QueryError> {
        for s in &self.sort {
            if !allowed.contains(&s.key.as_str()) {
                return Err(QueryError(format!("cannot sort by {:?}; sortable fields: {}", s.key, allowed.join(", "))));
            }
        }
        Ok(())
    }

    /// Whether the requested order is the store's own (`default` ascending, or no sort).
    pub fn sorted_like(&self, default: &Sort) -> bool {
        self.sort.is_empty() || self.sort.as_slice() == std::slice::from_ref(default)
    }

    /// Harbor's `Link` header: `<path?…&page=N&page_size=M>; rel="prev" , <…>; rel="next"`,
    /// with the query's keys sorted and its values unescaped, as Go's `url.Values` writes them.
    pub fn link(&self, path: &str, total: u64) -> Option<String> {
        let mut links = Vec::new();
        let url = |page: u64| {
            let mut params: Vec<(&str, String)> = self
                .params
                .iter()
                .filter(|(k, _)| k != "page" && k != "page_size")
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect();
            params.push(("page", page.to_string()));
            params.push(("page_size", self.page_size.to_string()));
            params.sort_by(|a, b| a.0.cmp(b.0));
            let qs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{path}?{}", qs.join("&"))
        };
        if self.page > 1 && (self.page - 1).saturating_mul(self.page_size) < total {
            links.push(format!("<{}>; rel=\"prev\"", url(self.page - 1)));
        }
        if self.page_size.saturating_mul(self.page) < total {
            links.push(format!("<{}>; rel=\"next\"", url(self.page + 1)));
        }
        (!links.is_empty()).then(|| links.join(" , "))
    }

    /// Sorts `items` by the requested keys (`key_of` gives a field's comparable value) and
    /// cuts out the requested page: for orders and filters the store cannot apply itself.
    pub fn sort_and_page<T>(&self, mut items: Vec<T>, key_of: impl Fn(&T, &str) -> SortValue) -> Vec<T> {
        if !self.sort.is_empty() {
            items.sort_by(|a, b| {
                for s in &self.sort {
                    let o = key_of(a, &s.key).cmp(&key_of(b, &s.key));
                    let o = if s.desc { o.reverse() } else { o };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
        }
        let start = usize::try_from(self.store_page().offset()).unwrap_or(usize::MAX);
        items.into_iter().skip(start).take(self.page_size as usize).collect()
    }
}

/// A field value to sort by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    Int(i64),
    Text(String),
}

/// All rows at once: a page as large as the store takes.
pub const ALL: Page = Page { page: 1, page_size: u64::MAX };

fn parse_sort(s: &str) -> Result<Vec<Sort>, QueryError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|part| {
            let (key, desc) = match part.strip_prefix('-') {
                Some(k) => (k, true),
                None => (part, false),
            };
            if key.is_empty() {
                return Err(QueryError(format!("invalid sort {s:?}: empty field name")));
            }
            Ok(Sort { key: key.to_string(), desc })
        })
        .collect()
}

/// `k=v,k=~v,k=[a~b],k={a b},k=(a b)`, after one more unescaping as Harbor does.
pub fn parse_terms(q: &str) -> Result<Vec<(String, Match)>, QueryError> {
    let q = unescape(q).unwrap_or_else(|| q.to_string());
    if q.is_empty() {
        return Ok(Vec::new());
    }
    q.split(',')
        .map(|term| {
            let (k, v) = term.split_once('=').unwrap_or((term, ""));
            if k.is_empty() || v.is_empty() {
                return Err(QueryError(format!(
                    "invalid query term {term:?}: the query string must contain \"=\" and the key/value cannot be empty"
                )));
            }
            Ok((k.to_string(), parse_value(v).map_err(|e| QueryError(format!("invalid query value {v:?}: {e}")))?))
        })
        .collect()
}

fn parse_value(v: &str) -> Result<Match, &'static str> {
    let list = |inner: &str| -> Vec<String> {
        inner.split(' ').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
    };
    match v.as_bytes()[0] {
        b'~' => {
            if v.len() < 2 {
                return Err("fuzzy match value must start with \"~\" and contain at least 1 other character");
            }
            Ok(Match::Fuzzy(v[1..].to_string()))
        }
        b'[' => {
            let inner = v.strip_suffix(']').filter(|_| v.matches('~').count() == 1);
            let Some(inner) = inner else {
                return Err("range must start with \"[\", end with \"]\" and contain exactly one \"~\"");
            };
            let (min, max) = inner[1..].split_once('~').unwrap_or(("", ""));
            let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
            let (min, max) = (opt(min), opt(max));
            if min.is_none() && max.is_none() {
                return Err("a range needs a min or a max");
            }
            Ok(Match::Range(min, max))
        }
        b'{' => {
            let inner = v.strip_suffix('}').ok_or("an or-list must start with \"{\" and end with \"}\"")?;
            Ok(Match::Or(list(&inner[1..])))
        }
        b'(' => {
            let inner = v.strip_suffix(')').ok_or("an and-list must start with \"(\" and end with \")\"")?;
            Ok(Match::And(list(&inner[1..])))
        }
        _ => Ok(Match::Exact(v.to_string())),
    }
}

/// Go's `url.QueryUnescape`: `%XX` and `+`; `None` on a malformed escape.
fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Parses Harbor's boolean spellings (Go's `strconv.ParseBool`).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<ListQuery, QueryError> {
        ListQuery::parse(Some(s))
    }

    #[test]
    fn paging_defaults_and_bounds() {
        let d = ListQuery::parse(None).unwrap();
        assert_eq!((d.page, d.page_size), (1, 10));
        assert_eq!(q("page=3&page_size=100").map(|l| (l.page, l.page_size)), Ok((3, 100)));
        for bad in ["page=0", "page=-1", "page=x", "page_size=0", "page_size=101", "page_size=ten", "page="] {
            assert!(q(bad).is_err(), "{bad}");
        }
        assert!(q("page_size=101").unwrap_err().0.contains("page_size"));
    }

    #[test]
    fn query_terms() {
        let l = q("q=name%3D~foo,public=true,id=[1~5],tag={a b},x=(c d)").unwrap();
        assert_eq!(l.term("name"), Some(&Match::Fuzzy("foo".into())));
        assert_eq!(l.term("public"), Some(&Match::Exact("true".into())));
        assert_eq!(l.term("id"), Some(&Match::Range(Some("1".into()), Some("5".into()))));
        assert_eq!(l.term("tag"), Some(&Match::Or(vec!["a".into(), "b".into()])));
        assert_eq!(l.term("x"), Some(&Match::And(vec!["c".into(), "d".into()])));
        // Double-encoded, as the portal sends it.
        assert_eq!(q("q=name%253D~foo").unwrap().term("name"), Some(&Match::Fuzzy("foo".into())));
        assert_eq!(q("q=t=[~9]").unwrap().term("t"), Some(&Match::Range(None, Some("9".into()))));
        for bad in ["q=name", "q==x", "q=name=", "q=a=~", "q=a=[1~2", "q=a=[~]", "q=a={x", "q=a=(x", "q=a=[1~2~3]"] {
            assert!(q(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sorting() {
        let l = q("sort=name,-creation_time").unwrap();
        assert_eq!(
            l.sort,
            vec![Sort { key: "name".into(), desc: false }, Sort { key: "creation_time".into(), desc: true }]
        );
        assert!(l.check_sort(&["name", "creation_time"]).is_ok());
        assert!(l.check_sort(&["name"]).unwrap_err().0.contains("creation_time"));
        assert!(q("sort=a,,b").is_err());
        assert!(q("sort=-").is_err());
        let name = Sort { key: "name".into(), desc: false };
        assert!(q("").unwrap().sorted_like(&name));
        assert!(q("sort=name").unwrap().sorted_like(&name));
        assert!(!q("sort=-name").unwrap().sorted_like(&name));
    }

    #[test]
    fn in_memory_sort_and_page() {
        let l = q("sort=-n&page=2&page_size=2").unwrap();
        let items = vec![1i64, 5, 3, 4, 2];
        let out = l.sort_and_page(items, |v, _| SortValue::Int(*v));
        assert_eq!(out, vec![3, 2]);
        let l = q("page=9").unwrap();
        assert!(l.sort_and_page(vec![1, 2], |v, _| SortValue::Int(*v)).is_empty());
    }

    #[test]
    fn links() {
        let path = "/api/v2.0/projects";
        let l = q("page_size=2&q=name%3D~a").unwrap();
        assert_eq!(l.link(path, 2), None);
        assert_eq!(l.link(path, 5).unwrap(), "</api/v2.0/projects?page=2&page_size=2&q=name=~a>; rel=\"next\"");
        let l = q("page=2&page_size=2").unwrap();
        assert_eq!(
            l.link(path, 5).unwrap(),
            "</api/v2.0/projects?page=1&page_size=2>; rel=\"prev\" , </api/v2.0/projects?page=3&page_size=2>; rel=\"next\""
        );
        let l = q("page=3&page_size=2").unwrap();
        assert_eq!(l.link(path, 5).unwrap(), "</api/v2.0/projects?page=2&page_size=2>; rel=\"prev\"");
        // Past the end: no prev either (Harbor's rule).
        assert_eq!(q("page=9&page_size=2").unwrap().link(path, 5), None);
        // Default page size still appears.
        assert_eq!(q("").unwrap().link(path, 11).unwrap(), "</api/v2.0/projects?page=2&page_size=10>; rel=\"next\"");
    }

    #[test]
    fn bools_and_unescape() {
        assert_eq!(parse_bool("True"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
        assert_eq!(unescape("a%3Db+c"), Some("a=b c".into()));
        assert_eq!(unescape("%zz"), None);
        assert_eq!(unescape("%4"), None);
    }
}
