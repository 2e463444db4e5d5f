//! Repositories of a project, the tags view (the default view of a repository), an
//! artifact's detail, deleting a tag.
//!
//! URLs: `/projects/{p}/repos/{repo…}/-/tags`, `…/-/tags/{tag}/delete` (confirm page, then
//! POST), `…/-/artifacts/{digest}`. The tags view pages by keyset (`?after=<last tag>`) over
//! the catalog's `(repository, name)` index, so a repository with 100,000 tags renders its
//! 5,000th page as fast as its first, with no request per row.

use axum::extract::Path;
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use berth_core::RepoName;
use maud::{Markup, html};
use serde_json::json;

use super::artifact::media;
use super::{api_repo, has, project, refusal, ui_repo};
use crate::layout::{Nav, bytes, confirm, copyable, error_page, page, pager, project_tabs, unix, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;
pub const TAGS_PAGE: u64 = 50;

/// A project's repositories: filter by name, sort by a column (the API's `sort`), offset
/// pages of 20; for those the API lets delete repositories, a checkbox per row and one
/// button that deletes the ticked ones after a confirm page (`super::projects::delete_repos`).
pub async fn list(ctx: Ctx, Path(p): Path<String>, uri: Uri) -> Response {
    let proj = match super::project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    // The orders offered: the API's `sort` fields (ascending, or descending with `-`).
    const REPO_SORTS: [&str; 4] = ["name", "artifact_count", "pull_count", "update_time"];
    let proxy = super::projects::proxy_notice(&ctx, &proj.json).await;
    let q = query(&uri);
    let name = q.get("name").trim().to_string();
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let sort = q.get("sort").to_string();
    let sort = if REPO_SORTS.contains(&sort.strip_prefix('-').unwrap_or(&sort)) { sort } else { "name".to_string() };
    let mut path =
        format!("{}/repositories?page={pg}&page_size={PAGE_SIZE}&sort={}", super::api_project(&p), enc(&sort));
    if !name.is_empty() {
        path.push_str(&format!("&q={}", enc(&format!("name=~{name}"))));
    }
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let total = a.total().unwrap_or(0);
    let prefix = format!("{p}/");
    let base = format!("/projects/{}/repos", enc(&p));
    let can_delete = proj.can("repository", "delete");
    let sorted_by = |s: &str| {
        let mut q = vec![format!("sort={}", enc(s))];
        if !name.is_empty() {
            q.insert(0, format!("name={}", enc(&name)));
        }
        format!("{base}?{}", q.join("&"))
    };
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "repos"))
            (proxy)
            h2 { (ctx.t("repos.title")) }
            form.filters method="get" role="search" {
                label for="name" { (ctx.t("repos.filter")) }
                input id="name" name="name" type="search" value=(name);
                input type="hidden" name="sort" value=(sort);
                button type="submit" { (ctx.t("filter")) }
            }
            @if a.items().is_empty() {
                p { (ctx.t("none")) }
            } @else {
                form method="post" action={ (base) "/-/delete" } {
                    (crate::layout::csrf(&ctx))
                    table {
                        thead { tr {
                            @if can_delete { th scope="col" { span.visually-hidden { (ctx.t("select")) } } }
                            (crate::layout::sort_th(&ctx, "col.name", "name", &sort, sorted_by))
                            (crate::layout::sort_th(&ctx, "col.artifacts", "artifact_count", &sort, sorted_by))
                            (crate::layout::sort_th(&ctx, "col.pulls", "pull_count", &sort, sorted_by))
                            (crate::layout::sort_th(&ctx, "col.updated", "update_time", &sort, sorted_by))
                        } }
                        tbody {
                            @for r in a.items() {
                                @let full = r["name"].as_str().unwrap_or("");
                                @let short = full.strip_prefix(&prefix).unwrap_or(full);
                                tr {
                                    @if can_delete { td { input type="checkbox" name="repo" value=(short) aria-label={ (ctx.t("select")) " " (full) }; } }
                                    th scope="row" { a href={ (ui_repo(&p, short)) "/-/tags" } { (full) } }
                                    td.num { (r["artifact_count"].as_u64().unwrap_or(0)) }
                                    td.num { (r["pull_count"].as_u64().unwrap_or(0)) }
                                    td { (when(&ctx, &r["update_time"])) }
                                }
                            }
                        }
                    }
                    @if can_delete { p { button.danger type="submit" { (ctx.t("repos.delete_selected")) } } }
                }
                (pager(&ctx, &base, &[("name", &name), ("sort", &sort)], pg, PAGE_SIZE, total))
            }
        },
    )
}

/// What follows `/projects/{p}/repos/`: the repository, then `/-/` and the view.
fn split(rest: &str) -> (String, String) {
    match rest.split_once("/-/") {
        Some((r, v)) => (r.trim_end_matches('/').to_string(), v.to_string()),
        None => (rest.trim_end_matches('/').to_string(), String::new()),
    }
}

pub async fn get(ctx: Ctx, Path((p, rest)): Path<(String, String)>, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let (r, view) = split(&rest);
    let parts: Vec<&str> = view.split('/').collect();
    match parts.as_slice() {
        [""] => ctx.redirect(&format!("{}/-/tags", ui_repo(&p, &r))),
        ["tags"] => tags(ctx, &p, &r, &uri).await,
        ["info"] => super::artifact::info(ctx, &p, &r).await,
        ["artifacts"] => artifacts(ctx, &p, &r, &uri).await,
        ["tags", tag, "delete"] => {
            let back = format!("{}/-/tags", ui_repo(&p, &r));
            confirm(&ctx, &format!("{p}/{r}:{tag}"), &format!("{}/-/tags/{}/delete", ui_repo(&p, &r), enc(tag)), &back)
        }
        ["artifacts", digest] => super::artifact::artifact(ctx, &p, &r, digest).await,
        ["artifacts", digest, "tags", tag, "delete"] => super::artifact::confirm_untag(&ctx, &p, &r, digest, tag),
        ["artifacts", digest, "delete"] => super::artifact::confirm_delete(ctx, &p, &r, digest).await,
        ["artifacts", digest, "vulnerabilities"] => super::security::vulnerabilities(ctx, &p, &r, digest, &uri).await,
        ["artifacts", digest, "sbom"] => super::security::sbom(ctx, &p, &r, digest, &uri).await,
        ["compare"] => super::security::compare(ctx, &p, &r, &uri).await,
        _ => error_page(&ctx, StatusCode::NOT_FOUND, "no such page"),
    }
}

pub async fn post(ctx: Ctx, Path((p, rest)): Path<(String, String)>, form: Form) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    let (r, view) = split(&rest);
    let parts: Vec<&str> = view.split('/').collect();
    match parts.as_slice() {
        ["tags", tag, "delete"] => {
            let back = format!("{}/-/tags", ui_repo(&p, &r));
            let path = format!("{}/artifacts/{}/tags/{}", api_repo(&p, &r), enc(tag), enc(tag));
            ctx.submit(&form, Method::DELETE, &path, None, ctx.t("tags.deleted"), &back, &back).await
        }
        ["artifacts", digest, "scan"] => super::security::scan(&ctx, &p, &r, digest, &form).await,
        ["artifacts", digest, "labels"] => {
            let back = format!("{}/-/artifacts/{digest}", ui_repo(&p, &r));
            let path = format!("{}/artifacts/{}/labels", api_repo(&p, &r), enc(digest));
            let body = json!({ "id": form.get("label_id").parse::<i64>().unwrap_or(0) });
            ctx.submit(&form, Method::POST, &path, Some(body), ctx.t("labels.attached"), &back, &back).await
        }
        ["artifacts", digest, "labels", id, "delete"] => {
            let back = format!("{}/-/artifacts/{digest}", ui_repo(&p, &r));
            let path = format!("{}/artifacts/{}/labels/{}", api_repo(&p, &r), enc(digest), enc(id));
            ctx.submit(&form, Method::DELETE, &path, None, ctx.t("labels.detached"), &back, &back).await
        }
        ["info"] => {
            let body = json!({ "description": form.get("description") });
            let back = format!("{}/-/info", ui_repo(&p, &r));
            ctx.submit(&form, Method::PUT, &api_repo(&p, &r), Some(body), ctx.t("saved"), &back, &back).await
        }
        ["artifacts", digest, "tags"] => {
            let body = json!({ "name": form.get("tag").trim() });
            let path = format!("{}/artifacts/{}/tags", api_repo(&p, &r), enc(digest));
            let back = format!("{}/-/artifacts/{digest}", ui_repo(&p, &r));
            ctx.submit(&form, Method::POST, &path, Some(body), ctx.t("tags.added"), &back, &back).await
        }
        ["artifacts", "delete"] => delete_artifacts(&ctx, &p, &r, &form).await,
        ["artifacts", digest, "tags", tag, "delete"] => super::artifact::untag(&ctx, &p, &r, digest, tag, &form).await,
        ["artifacts", digest, "copy"] => super::artifact::copy(&ctx, &p, &r, digest, &form).await,
        ["artifacts", digest, "delete"] => super::artifact::delete(&ctx, &p, &r, digest, &form).await,
        _ => error_page(&ctx, StatusCode::NOT_FOUND, "no such action"),
    }
}

async fn tags(ctx: Ctx, p: &str, r: &str, uri: &Uri) -> Response {
    // The API decides who may read the project (and says why not); its permission list
    // (the same rules) whether the caller may read repositories in it. Not `GET` of the
    // repository: that answers counts and times computed over every tag, which a page of
    // 50 rows does not show.
    let proj = match project(&ctx, p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let perms = ctx.project_permissions(proj["project_id"].as_i64().unwrap_or(0)).await;
    if !has(&perms, "repository", "read") {
        return error_page(&ctx, StatusCode::FORBIDDEN, ctx.t("forbidden"));
    }
    let Ok(name) = format!("{p}/{r}").parse::<RepoName>() else {
        return error_page(&ctx, StatusCode::NOT_FOUND, "invalid repository name");
    };
    let q = query(uri);
    let prefix = q.get("prefix").trim().to_string();
    let after = q.get("after").to_string();
    let rows = match ctx
        .state
        .catalog
        .list_tags_after(&name, &prefix, (!after.is_empty()).then_some(after.as_str()), TAGS_PAGE + 1)
        .await
    {
        Ok(Some(rows)) => rows,
        Ok(None) => return error_page(&ctx, StatusCode::NOT_FOUND, "repository not found"),
        Err(e) => return error_page(&ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let more = rows.len() as u64 > TAGS_PAGE;
    let rows = &rows[..rows.len().min(TAGS_PAGE as usize)];
    let can_delete = has(&perms, "tag", "delete");
    let base = format!("{}/-/tags", ui_repo(p, r));
    let link = |after: Option<&str>| {
        let mut q = Vec::new();
        if !prefix.is_empty() {
            q.push(format!("prefix={}", enc(&prefix)));
        }
        if let Some(a) = after {
            q.push(format!("after={}", enc(a)));
        }
        if q.is_empty() { base.clone() } else { format!("{base}?{}", q.join("&")) }
    };
    let full = format!("{p}/{r}");
    let artifacts = format!("{}/-/artifacts/", ui_repo(p, r));
    repo_view(
        &ctx,
        p,
        r,
        "tags",
        html! {
            form.filters method="get" action=(base) role="search" {
                label for="prefix" { (ctx.t("tags.filter")) }
                input id="prefix" name="prefix" type="search" value=(prefix);
                button type="submit" { (ctx.t("filter")) }
            }
            @if rows.is_empty() {
                p { (ctx.t("none")) }
            } @else {
                table.tags {
                    thead { tr {
                        th scope="col" aria-sort="ascending" { (ctx.t("col.tag")) }
                        th scope="col" { (ctx.t("col.digest")) }
                        th scope="col" { (ctx.t("col.type")) }
                        th scope="col" { (ctx.t("col.size")) }
                        th scope="col" { (ctx.t("col.pushed")) }
                        th scope="col" { (ctx.t("col.pulled")) }
                        th scope="col" { (ctx.t("col.pull")) }
                        @if can_delete { th scope="col" { (ctx.t("col.actions")) } }
                    } }
                    tbody {
                        @for t in rows {
                            @let d = t.digest.to_string();
                            tr {
                                th scope="row" { (t.name) }
                                td { a href={ (artifacts) (d) } title=(d) { code { (short(&d)) } } }
                                td { (media(&t.media_type)) }
                                td.num { (bytes(t.manifest_size)) }
                                td { (unix(&ctx, t.push_time)) }
                                td { @match t.pull_time { Some(pt) => (unix(&ctx, pt)), None => (ctx.t("never")) } }
                                td { (copyable(&ctx, &t.name, &ctx.client.pull(&ctx.host, &full, &t.name))) }
                                @if can_delete {
                                    td { a.danger href={ (base) "/" (enc(&t.name)) "/delete" } aria-label={ (ctx.t("tags.delete")) " " (t.name) } { (ctx.t("delete")) } }
                                }
                            }
                        }
                    }
                }
                @if !after.is_empty() || more {
                    nav.pager aria-label=(ctx.t("pagination")) {
                        @if !after.is_empty() { a href=(link(None)) { "⇤ " (ctx.t("first")) } }
                        @if more { a href=(link(rows.last().map(|t| t.name.as_str()))) rel="next" { (ctx.t("next")) " →" } }
                    }
                }
            }
        },
    )
}

/// The views of a repository: by tag (the default), by artifact, its description, and two
/// tags compared.
const VIEWS: [(&str, &str); 4] =
    [("tags", "tags.title"), ("artifacts", "artifacts.title"), ("info", "repo.info"), ("compare", "compare.title")];

/// A page of one of a repository's views: the project's tabs, the views (this one current)
/// and its title, then `body`.
pub(crate) fn repo_view(ctx: &Ctx, p: &str, r: &str, current: &str, body: Markup) -> Response {
    let title = VIEWS.iter().find(|(slug, _)| *slug == current).map_or("", |(_, key)| ctx.t(key));
    page(
        ctx,
        &format!("{p}/{r}"),
        Nav::Projects,
        html! {
            (project_tabs(ctx, p, "repos"))
            nav.tabs aria-label=(ctx.t("repo.views")) {
                @for (slug, key) in VIEWS {
                    a href={ (ui_repo(p, r)) "/-/" (slug) } aria-current=[(slug == current).then_some("page")] { (ctx.t(key)) }
                }
            }
            h2 { (title) }
            (body)
        },
    )
}

/// The artifact types Harbor's processors give (`type=` of the artifact list).
const KINDS: [&str; 5] = ["IMAGE", "CHART", "CNAB", "WASM", "UNKNOWN"];

/// Harbor's artifact list: one row per artifact (tagged, or not a child of an index),
/// newest first, with its first tags; offset pages of 20 from the API. Filters by type and
/// label go to the API's `q`; accessories (signatures, SBOMs) come with their subject in
/// the same answer (`with_accessory`) and are shown nested under it when asked for
/// (`?accessories=1`). One form around the table deletes the selected artifacts.
async fn artifacts(ctx: Ctx, p: &str, r: &str, uri: &Uri) -> Response {
    let proj = match project(&ctx, p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let project_id = proj["project_id"].as_i64().unwrap_or(0);
    let q = query(uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let kind = q.get("type").to_string();
    let kind = if KINDS.contains(&kind.as_str()) { kind } else { String::new() };
    let label: String = q.get("label").chars().filter(char::is_ascii_digit).collect();
    let show_acc = q.get("accessories") == "1";
    let mut terms = Vec::new();
    if !kind.is_empty() {
        terms.push(format!("type={kind}"));
    }
    if !label.is_empty() {
        terms.push(format!("labels=({label})"));
    }
    let mut path =
        format!("{}/artifacts?page={pg}&page_size={PAGE_SIZE}&with_tag=true&with_accessory={show_acc}", api_repo(p, r));
    if !terms.is_empty() {
        path.push_str(&format!("&q={}", enc(&terms.join(","))));
    }
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let labels = project_labels(&ctx, project_id).await;
    let perms = ctx.project_permissions(project_id).await;
    let can_delete = has(&perms, "artifact", "delete");
    let base = format!("{}/-/artifacts", ui_repo(p, r));
    let acc_flag = if show_acc { "1" } else { "" };
    const SHOWN: usize = 5;
    repo_view(
        &ctx,
        p,
        r,
        "artifacts",
        html! {
            form.filters method="get" action=(base) role="search" {
                label for="type" { (ctx.t("artifacts.type")) }
                select id="type" name="type" {
                    option value="" { (ctx.t("all")) }
                    @for k in KINDS { option value=(k) selected[k == kind] { (ctx.t(&format!("kind.{k}"))) } }
                }
                label for="label" { (ctx.t("artifacts.label")) }
                select id="label" name="label" {
                    option value="" { (ctx.t("all")) }
                    @for (id, name) in &labels { option value=(id) selected[id.to_string() == label] { (name) } }
                }
                label.check { input type="checkbox" name="accessories" value="1" checked[show_acc]; " " (ctx.t("artifacts.show_acc")) }
                button type="submit" { (ctx.t("filter")) }
            }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                form method="post" action={ (base) "/delete" } {
                    (crate::layout::csrf(&ctx))
                    table {
                        thead { tr {
                            @if can_delete { th scope="col" { span.visually-hidden { (ctx.t("select")) } } }
                            th scope="col" { (ctx.t("col.digest")) }
                            th scope="col" { (ctx.t("artifacts.type")) }
                            th scope="col" { (ctx.t("tags.title")) }
                            th scope="col" { (ctx.t("artifact.size")) }
                            th scope="col" aria-sort="descending" { (ctx.t("col.pushed")) }
                            th scope="col" { (ctx.t("col.pulled")) }
                        } }
                        tbody { @for x in a.items() {
                            @let d = x["digest"].as_str().unwrap_or("");
                            @let tags: Vec<&str> = x["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
                            tr {
                                @if can_delete { td { input type="checkbox" name="digest" value=(d) aria-label={ (ctx.t("select")) " " (short(d)) }; } }
                                th scope="row" { a href={ (base) "/" (d) } title=(d) { code { (short(d)) } } }
                                td { (kind_words(&ctx, x["type"].as_str().unwrap_or(""))) }
                                td {
                                    @for t in tags.iter().take(SHOWN) { code { (t) } " " }
                                    @if tags.len() > SHOWN { a href={ (base) "/" (d) } { "+" (tags.len() - SHOWN) " " (ctx.t("more")) } }
                                }
                                td.num { (bytes(x["size"].as_u64().unwrap_or(0))) }
                                td { (when(&ctx, &x["push_time"])) }
                                td { (when(&ctx, &x["pull_time"])) }
                            }
                            @if show_acc { @for acc in x["accessories"].as_array().into_iter().flatten() {
                                @let ad = acc["digest"].as_str().unwrap_or("");
                                tr.sub {
                                    @if can_delete { td {} }
                                    th scope="row" { "↳ " a href={ (base) "/" (ad) } title=(ad) aria-label={ (ctx.t("artifacts.accessory_of")) " " (short(d)) ": " (short(ad)) } { code { (short(ad)) } } }
                                    td { (acc["type"].as_str().unwrap_or("")) }
                                    td { "—" }
                                    td.num { (bytes(acc["size"].as_u64().unwrap_or(0))) }
                                    td { (when(&ctx, &acc["creation_time"])) }
                                    td { "—" }
                                }
                            } }
                        } }
                    }
                    @if can_delete { p { button.danger type="submit" { (ctx.t("artifacts.delete_selected")) } } }
                }
                (pager(&ctx, &base, &[("type", &kind), ("label", &label), ("accessories", acc_flag)], pg, PAGE_SIZE, a.total().unwrap_or(0)))
            }
        },
    )
}

/// The labels an artifact of the project can carry (the project's and the global ones),
/// by id, for the label filter.
pub(crate) async fn project_labels(ctx: &Ctx, project_id: i64) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for path in [
        format!("/api/v2.0/labels?scope=p&project_id={project_id}&page_size=100"),
        "/api/v2.0/labels?scope=g&page_size=100".to_string(),
    ] {
        let a = ctx.call(Method::GET, &path, None).await;
        out.extend(
            a.items().iter().map(|l| (l["id"].as_i64().unwrap_or(0), l["name"].as_str().unwrap_or("").to_string())),
        );
    }
    out
}

fn kind_words(ctx: &Ctx, kind: &str) -> Markup {
    match crate::i18n::lookup(ctx.lang, &format!("kind.{kind}")) {
        Some(w) => html! { (w) },
        None => html! { (kind) },
    }
}

/// The most artifacts one bulk delete takes (a page shows 20).
const BULK_MAX: usize = 100;

/// Bulk delete of the artifacts ticked in the list: first a confirm page naming each one
/// with its tags (they go too), then one API delete per artifact; those the API refuses
/// (an immutable tag, no permission, an index's child) are reported by name with its reason.
async fn delete_artifacts(ctx: &Ctx, p: &str, r: &str, form: &Form) -> Response {
    let back = format!("{}/-/artifacts", ui_repo(p, r));
    if let Err(refused) = ctx.check_form(form, &back) {
        return refused;
    }
    let digests: Vec<&str> = form.all("digest").into_iter().filter(|d| !d.is_empty()).take(BULK_MAX).collect();
    if digests.is_empty() {
        ctx.set_flash(false, ctx.t("artifacts.none_selected"));
        return ctx.redirect(&back);
    }
    let name = |d: &str, tags: &[String]| {
        let mut n = format!("{p}/{r}@{}", short(d));
        if !tags.is_empty() {
            n.push_str(&format!(" ({})", tags.join(", ")));
        }
        n
    };
    if form.get("confirmed") != "1" {
        let mut rows = Vec::with_capacity(digests.len());
        for d in &digests {
            let a =
                ctx.call(Method::GET, &format!("{}/artifacts/{}?with_tag=true", api_repo(p, r), enc(d)), None).await;
            let tags: Vec<String> = a.json["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(str::to_string))
                .collect();
            rows.push((d.to_string(), name(d, &tags)));
        }
        return page(
            ctx,
            ctx.t("confirm.title"),
            Nav::None,
            html! {
                form method="post" action={ (back) "/delete" } {
                    (crate::layout::csrf(ctx))
                    input type="hidden" name="confirmed" value="1";
                    p { (ctx.t("artifacts.confirm_bulk")) }
                    ul { @for (d, n) in &rows { li { input type="hidden" name="digest" value=(d); strong { (n) } } } }
                    button.danger type="submit" { (ctx.t("delete")) }
                    " "
                    a href=(back) { (ctx.t("cancel")) }
                }
            },
        );
    }
    let (mut deleted, mut refused) = (0, Vec::new());
    for d in &digests {
        let path = format!("{}/artifacts/{}", api_repo(p, r), enc(d));
        let a = ctx.call_with(Method::DELETE, &path, None, Some(form.get("_csrf"))).await;
        if a.ok() {
            deleted += 1;
        } else {
            refused.push(format!("{}: {}", name(d, &[]), a.error()));
        }
    }
    let done = ctx.t("artifacts.deleted").replace('#', &deleted.to_string());
    if refused.is_empty() {
        ctx.set_flash(true, &done);
    } else {
        let mut msg = format!("{done} {} {}", ctx.t("artifacts.not_deleted"), refused.join("; "));
        // The flash is a cookie: keep it well under the 4 KiB browsers store.
        if msg.len() > 2000 {
            let cut = (0..=2000).rev().find(|i| msg.is_char_boundary(*i)).unwrap_or(0);
            msg.truncate(cut);
            msg.push('…');
        }
        ctx.set_flash(false, &msg);
    }
    ctx.redirect(&back)
}

pub(crate) fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}
