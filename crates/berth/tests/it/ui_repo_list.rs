//! The repository list at its edges: the API's offset pages in every sort order, which the
//! stores read from the nearer end of the listing (a late page skips no more rows than an
//! early one), put back together with Harbor's total and links; the web UI's tags column
//! (one read for the page's rows). As a guest who may list and as a user the API refuses.

use reqwest::Method;

use crate::support::*;
use crate::ui::{Web, signed_in};

const REPOS: &str = "/api/v2.0/projects/alpha/repositories";

/// Harbor's sort keys for repositories (`RepoSortKey::NAMES`).
const KEYS: [&str; 6] = ["id", "name", "creation_time", "update_time", "artifact_count", "pull_count"];

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

/// Seven repositories in `alpha` (a private project) with one to three tags and one or
/// two artifacts each; `gst` is a guest there, `out` no member.
async fn seven(s: &Server) {
    create_user(s, "gst").await;
    create_user(s, "out").await;
    create_project(s, &admin(), "alpha", false).await;
    add_member(s, "alpha", "gst", 3).await;
    for (i, repo) in ["m", "c", "team/z", "a", "k", "b", "q"].iter().enumerate() {
        let full = format!("alpha/{repo}");
        push_small_image_as(s, &admin(), &full, "v1", &format!("{repo}-1")).await;
        if i % 2 == 0 {
            push_small_image_as(s, &admin(), &full, "v2", &format!("{repo}-2")).await;
        }
        if i % 3 == 0 {
            push_small_image_as(s, &admin(), &full, "v3", &format!("{repo}-2")).await;
        }
    }
}

#[tokio::test]
async fn repository_list_pages_from_either_end_in_every_order() {
    let s = Server::start_harbor();
    seven(&s).await;
    let gst = user("gst");
    let mut orders: Vec<String> = vec![String::new()];
    for key in KEYS {
        orders.push(format!("&sort={key}"));
        orders.push(format!("&sort=-{key}"));
    }
    for order in &orders {
        let whole = ok_json(&s, &format!("{REPOS}?page_size=100{order}"), &gst).await;
        let whole = names(&whole);
        assert_eq!(whole.len(), 7, "{order}");
        for size in [2u64, 3, 5] {
            let pages = 7u64.div_ceil(size);
            let mut paged = Vec::new();
            for p in 1..=pages + 1 {
                let path = format!("{REPOS}?page={p}&page_size={size}{order}");
                let r = get(&s, &path, &gst).await;
                assert_eq!(r.status(), 200, "{path}");
                assert_eq!(header(&r, "x-total-count"), "7", "{path}");
                let link = header(&r, "link");
                assert_eq!(link.contains("rel=\"next\""), p < pages, "{path}: {link}");
                assert_eq!(link.contains("rel=\"prev\""), p > 1 && p <= pages, "{path}: {link}");
                let items = names(&body_json(r).await);
                let want = if p < pages {
                    size
                } else if p == pages {
                    7 - size * (pages - 1)
                } else {
                    0
                };
                assert_eq!(items.len() as u64, want, "{path}");
                paged.extend(items);
            }
            assert_eq!(paged, whole, "{order} in pages of {size}");
        }
    }
    // The orders themselves, where the test knows them.
    let by = |q: &'static str| {
        let s = &s;
        let gst = gst.clone();
        async move { names(&ok_json(s, &format!("{REPOS}?page_size=100&sort={q}"), &gst).await) }
    };
    let mut alpha = by("name").await;
    assert_eq!(alpha[0], "alpha/a");
    alpha.reverse();
    assert_eq!(by("-name").await, alpha);
    assert_eq!(by("-creation_time").await[0], "alpha/q", "the last pushed");
    let most = by("-artifact_count").await;
    assert_eq!(
        &most[..5],
        ["alpha/q", "alpha/k", "alpha/a", "alpha/team/z", "alpha/m"],
        "two each, ties by id, newest first"
    );
    // The last page of a listing sorted by a computed field, alone.
    let last = ok_json(&s, &format!("{REPOS}?page=4&page_size=2&sort=-artifact_count"), &gst).await;
    assert_eq!(names(&last), ["alpha/c"]);

    // Refused: a user who is no member of the private project, and anonymous callers.
    let r = get(&s, &format!("{REPOS}?page=4&page_size=2&sort=update_time"), &user("out")).await;
    expect_error(r, 403, "FORBIDDEN").await;
    let r = get(&s, &format!("{REPOS}?page=4&page_size=2"), &Who::Anon).await;
    expect_error(r, 401, "UNAUTHORIZED").await;
    let r = get(&s, &format!("{REPOS}?sort=tag_count"), &gst).await;
    let m = expect_error(r, 400, "BAD_REQUEST").await;
    assert!(m.contains("tag_count") && m.contains(&KEYS.join(", ")), "{m}");
}

#[tokio::test]
async fn ui_repository_list_counts_tags_of_its_rows() {
    let s = Server::start_harbor();
    seven(&s).await;
    // A tag added to an existing artifact counts too.
    let r = call(
        &s,
        Method::POST,
        &format!("{REPOS}/b/artifacts/v1/tags"),
        &admin(),
        Some(&serde_json::json!({"name": "extra"})),
    )
    .await;
    assert_eq!(r.status(), 201);
    let base = "/projects/alpha/repos";
    let mut g = signed_in(&s, "gst", PW).await;
    let list = g.page(&format!("{base}?sort=name")).await;
    list.has(r#"<th scope="col">Tags</th>"#);
    // Name, artifacts, tags, pulls for each row of the page.
    let row = |name: &str, artifacts: u64, tags: u64| {
        format!(
            r#">alpha/{name}</a></th><td class="num">{artifacts}</td><td class="num">{tags}</td><td class="num">0</td>"#
        )
    };
    list.has(&row("a", 2, 2)).has(&row("b", 1, 2)).has(&row("c", 1, 1)).has(&row("k", 2, 2));
    list.has(&row("m", 2, 3)).has(&row("q", 2, 3)).has(&row("team/z", 2, 2));
    // In another order, the same counts with each row.
    let recent = g.page(&format!("{base}?sort=-update_time")).await;
    recent.has(&row("b", 1, 2)).has(&row("c", 1, 1));
    // In Chinese.
    let mut zh = Web::new(&s);
    zh.cookies.insert("lang".into(), "zh-CN".into());
    zh.sign_in("gst", PW).await;
    zh.page(base).await.has(r#"<th scope="col">标签数</th>"#);

    // Refused: no member of the private project gets the page (nor its counts).
    let mut o = signed_in(&s, "out", PW).await;
    let refused = o.get(base).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.body.contains("alpha/a<"), "{}", refused.body);
}
