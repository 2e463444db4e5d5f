//! `/search?q=`: projects and repositories (the API's `/search`), and tags, which
//! Harbor's search lacks. `repo:tag` looks for tags starting with `tag` in the
//! repositories matching `repo`; a bare word also looks for tags starting with it.
//! Only repositories the API listed for this caller are looked into, each by one keyset
//! query of at most a few rows.

use axum::http::{Method, Uri};
use axum::response::Response;
use berth_core::RepoName;
use maud::html;

use super::ui_repo;
use crate::layout::{Nav, copyable, page};
use crate::{Ctx, enc, query};

/// Repositories looked into for tags, and tags shown per repository.
const REPOS: usize = 50;
const TAGS_PER_REPO: u64 = 10;

pub async fn search(ctx: Ctx, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let q = query(&uri);
    let text = q.get("q").trim().to_string();
    let (repo_part, tag_part) = match text.split_once(':') {
        Some((r, t)) => (r.to_string(), Some(t.to_string())),
        None => (text.clone(), None),
    };
    let mut projects = Vec::new();
    let mut repos = Vec::new();
    let mut tags: Vec<(String, String)> = Vec::new();
    if !text.is_empty() {
        let a = ctx.call(Method::GET, &format!("/api/v2.0/search?q={}", enc(&repo_part)), None).await;
        projects = a.json["project"].as_array().cloned().unwrap_or_default();
        repos = a.json["repository"].as_array().cloned().unwrap_or_default();
        let tag_prefix = tag_part.clone().unwrap_or_else(|| text.clone());
        // Where to look for tags: the matching repositories, or for a bare word every
        // repository the caller can see (first REPOS of them).
        let pool: Vec<String> = if tag_part.is_some() {
            repos.iter().filter_map(|r| r["repository_name"].as_str().map(str::to_string)).collect()
        } else {
            let all = ctx.call(Method::GET, &format!("/api/v2.0/repositories?page_size={REPOS}&sort=name"), None).await;
            all.items().iter().filter_map(|r| r["name"].as_str().map(str::to_string)).collect()
        };
        for name in pool.into_iter().take(REPOS) {
            let Ok(rn) = name.parse::<RepoName>() else { continue };
            if let Ok(Some(rows)) = ctx.state.catalog.list_tags_after(&rn, &tag_prefix, None, TAGS_PER_REPO).await {
                tags.extend(rows.into_iter().map(|t| (name.clone(), t.name)));
            }
        }
    }
    page(
        &ctx,
        ctx.t("search.title"),
        Nav::Search,
        html! {
            form.filters method="get" action="/search" role="search" {
                label for="q" { (ctx.t("search.q")) }
                input id="q" name="q" type="search" value=(text) autofocus;
                button type="submit" { (ctx.t("nav.search")) }
            }
            p.hint { (ctx.t("search.hint")) }
            @if !text.is_empty() {
                h2 { (ctx.t("search.tags")) " (" (tags.len()) ")" }
                @if tags.is_empty() { p { (ctx.t("none")) } } @else {
                    table {
                        thead { tr {
                            th scope="col" { (ctx.t("col.tag")) }
                            th scope="col" { (ctx.t("col.pull")) }
                        } }
                        tbody { @for (repo, tag) in &tags {
                            @let (p, r) = repo.split_once('/').unwrap_or(("", repo));
                            tr {
                                th scope="row" { a href={ (ui_repo(p, r)) "/-/tags?prefix=" (enc(tag)) } { (repo) ":" (tag) } }
                                td { (copyable(&ctx, tag, &ctx.client.pull(&ctx.host, repo, tag))) }
                            }
                        } }
                    }
                }
                h2 { (ctx.t("tab.repos")) " (" (repos.len()) ")" }
                ul { @for r in &repos {
                    @let name = r["repository_name"].as_str().unwrap_or("");
                    @let (p, rest) = name.split_once('/').unwrap_or(("", name));
                    li { a href={ (ui_repo(p, rest)) "/-/tags" } { (name) } }
                } }
                h2 { (ctx.t("nav.projects")) " (" (projects.len()) ")" }
                ul { @for p in &projects {
                    @let name = p["name"].as_str().unwrap_or("");
                    li { a href={ "/projects/" (enc(name)) "/repos" } { (name) } }
                } }
            }
        },
    )
}
