//! The little XML S3 answers with: flat elements with unique or repeated names, no
//! attributes on the ones read here. A full parser would be more code than this.

/// The text of the first `<tag>…</tag>`, unescaped.
pub(crate) fn text(xml: &str, tag: &str) -> Option<String> {
    blocks(xml, tag).next().map(unescape)
}

/// The raw contents of every `<tag>…</tag>`, in order.
pub(crate) fn blocks<'a>(xml: &'a str, tag: &str) -> impl Iterator<Item = &'a str> + 'a {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut rest = xml;
    std::iter::from_fn(move || {
        let start = rest.find(&open)? + open.len();
        let len = rest[start..].find(&close)?;
        let inner = &rest[start..start + len];
        rest = &rest[start + len + close.len()..];
        Some(inner)
    })
}

pub(crate) fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let ch = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(|d| d.parse::<u32>()))
                .and_then(|r| r.ok())
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_list_results() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<IsTruncated>true</IsTruncated><NextContinuationToken>t&amp;1</NextContinuationToken>
<Contents><Key>p/a&lt;b</Key><Size>3</Size><ETag>&quot;x&quot;</ETag></Contents>
<Contents><Key>p/c</Key><Size>4</Size></Contents>
<CommonPrefixes><Prefix>p/d/</Prefix></CommonPrefixes></ListBucketResult>"#;
        assert_eq!(text(xml, "NextContinuationToken").as_deref(), Some("t&1"));
        let keys: Vec<_> = blocks(xml, "Contents").filter_map(|c| text(c, "Key")).collect();
        assert_eq!(keys, ["p/a<b", "p/c"]);
        assert_eq!(text(xml, "ETag").as_deref(), Some("\"x\""));
        let prefixes: Vec<_> = blocks(xml, "CommonPrefixes").filter_map(|c| text(c, "Prefix")).collect();
        assert_eq!(prefixes, ["p/d/"]);
        assert_eq!(unescape("a&#65;&#x42;&bogus c"), "aAB&bogus c");
    }
}
