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
use serde_json::{Value, json};

use super::artifact::media;
use berth_core::store::catalog::{TagCursor, TagFilter, TagKind, TagQuery, TagRow, TagSort, check_tag_glob};
use berth_http::tag_page::ArtifactDetails;

use super::bulk::{bulk_confirm, bulk_run, ticked};
use super::{api_repo, has, project, refusal, ui_repo};
use crate::layout::{Nav, bytes, confirm, copyable, error_page, page, pager, project_tabs, unix, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;
pub const TAGS_PAGE: u64 = 50;

/// A project's repositories: filter by name, sort by a column (the API's `sort`), offset
/// pages of 20, each row with its artifact, tag and pull counts; for those the API lets delete repositories, a checkbox per row and one
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
    // The tags column: one read for the page's repositories (those the API has just
    // listed for the caller), not a request per row.
    let ids: Vec<i64> = a.items().iter().filter_map(|r| r["id"].as_i64()).collect();
    let tag_counts = match ctx.state.catalog.tag_counts(&ids).await {
        Ok(c) => c,
        Err(e) => return error_page(&ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
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
                            th scope="col" { (ctx.t("col.tags")) }
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
                                    td.num { (r["id"].as_i64().and_then(|id| tag_counts.get(&id)).copied().unwrap_or(0)) }
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
        // A bulk form's address opened directly (a reload): back to its list.
        ["tags", "delete"] | ["artifacts", "delete" | "scan" | "sbom"] | ["artifacts", "scan" | "sbom", "stop"] => {
            ctx.redirect(&format!("{}/-/{}", ui_repo(&p, &r), parts[0]))
        }
        ["tags", tag, "delete"] => {
            let back = format!("{}/-/tags", ui_repo(&p, &r));
            confirm(&ctx, &format!("{p}/{r}:{tag}"), &format!("{}/-/tags/{}/delete", ui_repo(&p, &r), enc(tag)), &back)
        }
        ["artifacts", digest] => super::artifact::artifact(ctx, &p, &r, digest, &uri).await,
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
        ["artifacts", "scan"] => scan_artifacts(&ctx, &p, &r, &form, ScanAction::Scan).await,
        ["artifacts", "scan", "stop"] => scan_artifacts(&ctx, &p, &r, &form, ScanAction::Stop).await,
        ["artifacts", "sbom"] => scan_artifacts(&ctx, &p, &r, &form, ScanAction::Sbom).await,
        ["artifacts", "sbom", "stop"] => scan_artifacts(&ctx, &p, &r, &form, ScanAction::StopSbom).await,
        ["tags", "delete"] => delete_tags(&ctx, &p, &r, &form).await,
        ["tags", "add"] => add_tag(&ctx, &p, &r, &form).await,
        _ => error_page(&ctx, StatusCode::NOT_FOUND, "no such action"),
    }
}

/// The tags view's orders (`?sort=`) with their column headers' message keys; both name
/// orders are the tag column's.
const TAG_SORTS: [(&str, TagSort, &str); 3] = [
    ("name", TagSort::Name, "col.tag"),
    ("pushed", TagSort::Pushed, "col.pushed"),
    ("pulled", TagSort::Pulled, "col.pulled"),
];

/// Every order of the tags view (`?sort=`), as the order selector offers them.
const TAG_ORDERS: [(&str, TagSort, &str); 4] = [
    ("name", TagSort::Name, "tags.order.name"),
    ("natural", TagSort::Natural, "tags.order.natural"),
    ("pushed", TagSort::Pushed, "tags.order.pushed"),
    ("pulled", TagSort::Pulled, "tags.order.pulled"),
];

/// Adds a tag from the tags view: `ref` (a tag or digest of the artifact) gets the new
/// tag `tag`, through the API's `POST …/artifacts/{ref}/tags` (its permission, its
/// validation, its conflict and immutability refusals, flashed in its words).
async fn add_tag(ctx: &Ctx, p: &str, r: &str, form: &Form) -> Response {
    let back = format!("{}/-/tags", ui_repo(p, r));
    let reference = form.get("ref").trim();
    if reference.is_empty() {
        if let Err(r) = ctx.check_form(form, &back) {
            return r;
        }
        ctx.set_flash(false, ctx.t("tags.add_ref_required"));
        return ctx.redirect(&back);
    }
    let body = json!({ "name": form.get("tag").trim() });
    let path = format!("{}/artifacts/{}/tags", api_repo(p, r), enc(reference));
    ctx.submit(form, Method::POST, &path, Some(body), ctx.t("tags.added"), &back, &back).await
}

/// `?after=` of the tags view in `sort`'s order: the last name, or `time.id`
/// (`never.id` for a tag never pulled).
fn tag_cursor(sort: TagSort, raw: &str) -> Option<TagCursor> {
    if raw.is_empty() {
        return None;
    }
    let pair = || {
        let (t, id) = raw.split_once('.')?;
        Some((t, id.parse::<i64>().ok()?))
    };
    match sort {
        TagSort::Name => Some(TagCursor::Name(raw.to_string())),
        TagSort::Natural => Some(TagCursor::Natural(raw.to_string())),
        TagSort::Pushed => pair().and_then(|(t, id)| Some(TagCursor::Pushed(t.parse().ok()?, id))),
        TagSort::Pulled => pair().and_then(|(t, id)| match t {
            "never" => Some(TagCursor::Pulled(None, id)),
            t => Some(TagCursor::Pulled(Some(t.parse().ok()?), id)),
        }),
    }
}

/// The `?after=` that continues after `row` in `sort`'s order.
fn cursor_of(sort: TagSort, row: &TagRow) -> String {
    match sort {
        TagSort::Name | TagSort::Natural => row.name.clone(),
        TagSort::Pushed => format!("{}.{}", row.push_time, row.id),
        TagSort::Pulled => format!("{}.{}", row.pull_time.map_or("never".to_string(), |t| t.to_string()), row.id),
    }
}

/// A bad query parameter of a page: 400 naming it and what it takes.
pub(crate) fn bad_param(ctx: &Ctx, name: &str, problem: &str) -> Response {
    error_page(ctx, StatusCode::BAD_REQUEST, &format!("{}: {name} {problem}", ctx.t("bad_param")))
}

/// The tags view: one row per tag, in name, push or pull order (`?sort=`), filtered by a
/// name prefix or a glob (`?name=`; `*` and `?`), keyset-paged (`?after=`). The rows are
/// one keyset query; what they show of their artifacts (kind, Harbor's size, an index's
/// platforms or an image's own, the scan overview, the signed state) and which tags are
/// immutable is one batched read for the page (`berth_http::tag_page::details`), with the
/// API's rules.
async fn tags(ctx: Ctx, p: &str, r: &str, uri: &Uri) -> Response {
    // The API decides who may read the project (and says why not); its permission list
    // (the same rules) whether the caller may read repositories in it. Not `GET` of the
    // repository: that answers counts and times computed over every tag, which a page of
    // 50 rows does not show.
    let proj = match project(&ctx, p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let project_id = proj["project_id"].as_i64().unwrap_or(0);
    let perms = ctx.project_permissions(project_id).await;
    if !has(&perms, "repository", "read") {
        return error_page(&ctx, StatusCode::FORBIDDEN, ctx.t("forbidden"));
    }
    let Ok(name) = format!("{p}/{r}").parse::<RepoName>() else {
        return error_page(&ctx, StatusCode::NOT_FOUND, "invalid repository name");
    };
    let q = query(uri);
    // `?prefix=` is what earlier links and the search page carry.
    let pattern = match q.get("name").trim() {
        "" => q.get("prefix").trim().to_string(),
        n => n.to_string(),
    };
    let filter = if pattern.contains(['*', '?']) {
        if let Err(e) = check_tag_glob(&pattern) {
            return bad_param(&ctx, "name", &e);
        }
        TagFilter::Glob(pattern.clone())
    } else {
        TagFilter::Prefix(pattern.clone())
    };
    let sort_key = match q.get("sort") {
        "" => "name",
        s => s,
    };
    let Some(&(sort_key, sort, _)) = TAG_ORDERS.iter().find(|(k, _, _)| *k == sort_key) else {
        return bad_param(&ctx, "sort", "must be name, natural, pushed or pulled");
    };
    let kind_raw = q.get("type").to_string();
    let kind = match kind_raw.as_str() {
        "" => None,
        k => match TagKind::parse(k) {
            Some(k) => Some(k),
            None => return bad_param(&ctx, "type", "must be image, index, chart or other"),
        },
    };
    let after_raw = q.get("after").to_string();
    let after = tag_cursor(sort, &after_raw);
    if after.is_none() && !after_raw.is_empty() {
        return bad_param(&ctx, "after", "is not a position in this order (follow the page's links)");
    }
    let tq = TagQuery { filter, sort, after, kind, limit: TAGS_PAGE + 1 };
    let rows = match ctx.state.catalog.list_tags_sorted(&name, &tq).await {
        Ok(Some(rows)) => rows,
        Ok(None) => return error_page(&ctx, StatusCode::NOT_FOUND, "repository not found"),
        Err(e) => return error_page(&ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let more = rows.len() as u64 > TAGS_PAGE;
    let rows = &rows[..rows.len().min(TAGS_PAGE as usize)];
    let details = match berth_http::tag_page::details(&ctx.state, &name, project_id, rows).await {
        Ok(d) => d.unwrap_or_default(),
        Err(e) => return error_page(&ctx, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let can_delete = has(&perms, "tag", "delete");
    let can_tag = has(&perms, "tag", "create");
    let base = format!("{}/-/tags", ui_repo(p, r));
    let link = |sort: &str, after: Option<&str>| {
        let mut q = Vec::new();
        if !pattern.is_empty() {
            q.push(format!("name={}", enc(&pattern)));
        }
        if let Some(k) = kind {
            q.push(format!("type={}", k.as_str()));
        }
        if sort != "name" {
            q.push(format!("sort={sort}"));
        }
        if let Some(a) = after {
            q.push(format!("after={}", enc(a)));
        }
        if q.is_empty() { base.clone() } else { format!("{base}?{}", q.join("&")) }
    };
    let full = format!("{p}/{r}");
    let artifacts = format!("{}/-/artifacts/", ui_repo(p, r));
    let none = ArtifactDetails::default();
    repo_view(
        &ctx,
        p,
        r,
        "tags",
        html! {
            form.filters method="get" action=(base) role="search" {
                label for="name" { (ctx.t("tags.filter")) }
                input id="name" name="name" type="search" value=(pattern) aria-describedby="name-hint";
                label for="type" { (ctx.t("artifacts.type")) }
                select id="type" name="type" {
                    option value="" { (ctx.t("all")) }
                    @for k in TagKind::ALL {
                        option value=(k.as_str()) selected[Some(k) == kind] { (ctx.t(&format!("tags.kind.{}", k.as_str()))) }
                    }
                }
                label for="sort" { (ctx.t("tags.order")) }
                select id="sort" name="sort" {
                    @for (k, _, words) in TAG_ORDERS { option value=(k) selected[k == sort_key] { (ctx.t(words)) } }
                }
                button type="submit" { (ctx.t("filter")) }
                small.hint id="name-hint" { (ctx.t("tags.filter_hint")) }
            }
            @if can_tag {
                form.inline.add-tag method="post" action={ (base) "/add" } {
                    (crate::layout::csrf(&ctx))
                    label for="add_ref" { (ctx.t("tags.add_ref")) }
                    input id="add_ref" name="ref" required aria-describedby="add-ref-hint"
                        list="page-tags" autocomplete="off";
                    datalist id="page-tags" { @for t in rows { option value=(t.name) {} } }
                    label for="add_tag" { (ctx.t("tags.add_new")) }
                    input id="add_tag" name="tag" required pattern="[A-Za-z0-9_][A-Za-z0-9._-]{0,127}";
                    button type="submit" { (ctx.t("tags.add")) }
                    small.hint id="add-ref-hint" { (ctx.t("tags.add_ref_hint")) }
                }
            }
            @if rows.is_empty() {
                p { (ctx.t("none")) }
            } @else {
                // The checkboxes belong to the bulk-delete form after the table (`form=`),
                // which only those the API lets delete tags get.
                table.tags {
                        thead { tr {
                            @if can_delete { th scope="col" { span.visually-hidden { (ctx.t("select")) } } }
                            @for (i, (key, s, words)) in TAG_SORTS.iter().enumerate() {
                                @if i == 1 {
                                    th scope="col" { (ctx.t("col.digest")) }
                                    th scope="col" { (ctx.t("tags.kind")) }
                                    th scope="col" { (ctx.t("col.type")) }
                                    th scope="col" { (ctx.t("tags.platforms")) }
                                    th scope="col" { (ctx.t("artifact.size")) }
                                }
                                @let current = *s == sort || (*s == TagSort::Name && sort == TagSort::Natural);
                                th scope="col" aria-sort=[current.then_some(if *s == TagSort::Name { "ascending" } else { "descending" })] {
                                    @if current { (ctx.t(words)) } @else {
                                        a href=(link(key, None)) aria-label={ (ctx.t("tags.sort_by")) " " (ctx.t(words)) } { (ctx.t(words)) }
                                    }
                                }
                            }
                            th scope="col" { (ctx.t("scan.vulns")) }
                            th scope="col" { (ctx.t("sig.title")) }
                            th scope="col" { (ctx.t("tags.immutable_col")) }
                            th scope="col" { (ctx.t("col.pull")) }
                            @if can_delete { th scope="col" { (ctx.t("col.actions")) } }
                        } }
                        tbody {
                            @for t in rows {
                                @let d = t.digest.to_string();
                                @let x = details.artifacts.get(&d).unwrap_or(&none);
                                tr {
                                    @if can_delete { td { input type="checkbox" form="tags-bulk" name="tag" value=(t.name) aria-label={ (ctx.t("select")) " " (t.name) }; } }
                                    th scope="row" { (t.name) }
                                    td { a href={ (artifacts) (d) } title=(d) { code { (short(&d)) } } }
                                    td { @match x.kind { Some(k) => (ctx.t(&format!("tags.kind.{}", k.as_str()))), None => "—" } }
                                    td { (media(&t.media_type)) }
                                    td { (platforms(&x.platforms)) }
                                    td.num { (bytes(if x.size > 0 { x.size } else { t.manifest_size })) }
                                    td { (unix(&ctx, t.push_time)) }
                                    td { @match t.pull_time { Some(pt) => (unix(&ctx, pt)), None => (ctx.t("never")) } }
                                    td { (vulns(&ctx, x.scan.as_ref())) }
                                    td { (signed_short(&ctx, &x.signature)) }
                                    td { @if details.immutable.contains(&t.name) { "🔒 " (ctx.t("tags.immutable")) } @else { "—" } }
                                    td.pulls {
                                        (copyable(&ctx, &format!("{} {}", ctx.t("tags.pull_by_tag"), t.name), &ctx.client.pull(&ctx.host, &full, &t.name)))
                                        (copyable(&ctx, &format!("{} {}", ctx.t("tags.pull_by_digest"), t.name), &ctx.client.pull(&ctx.host, &full, &d)))
                                    }
                                    @if can_delete {
                                        td { a.danger href={ (base) "/" (enc(&t.name)) "/delete" } aria-label={ (ctx.t("tags.delete")) " " (t.name) } { (ctx.t("delete")) } }
                                    }
                                }
                            }
                        }
                }
                @if can_delete {
                    form id="tags-bulk" method="post" action={ (base) "/delete" } {
                        (crate::layout::csrf(&ctx))
                        p { button.danger type="submit" { (ctx.t("tags.delete_selected")) } }
                    }
                }
                @if !after_raw.is_empty() || more {
                    nav.pager aria-label=(ctx.t("pagination")) {
                        @if !after_raw.is_empty() { a href=(link(sort_key, None)) { "⇤ " (ctx.t("first")) } }
                        @if more { a href=(link(sort_key, rows.last().map(|t| cursor_of(sort, t)).as_deref())) rel="next" { (ctx.t("next")) " →" } }
                    }
                }
            }
        },
    )
}

/// Platforms as chips (`os/arch[/variant]`: an index's, or an image's own); "—" for none.
fn platforms(list: &[String]) -> Markup {
    html! {
        @if list.is_empty() { "—" } @else {
            ul.platforms { @for pl in list { li { code { (pl) } } } }
        }
    }
}

/// A vulnerability overview (Harbor's `scan_overview` entry) in a cell: critical and high
/// counts with their symbols and words, and how many are fixable; else the scan's state.
fn vulns(ctx: &Ctx, o: Option<&Value>) -> Markup {
    let Some(o) = o else { return html! { span.hint { (ctx.t("scan.not_scanned")) } } };
    if o["scan_status"].as_str() != Some("Success") {
        return crate::layout::status(ctx, o["scan_status"].as_str().unwrap_or(""));
    }
    let s = &o["summary"];
    let total = s["total"].as_u64().unwrap_or(0);
    let n = |sev: &str| s["summary"][sev].as_u64().unwrap_or(0);
    html! {
        @if total == 0 { "✔ " (ctx.t("scan.clean")) } @else {
            span title={ (total) " " (ctx.t("scan.total")) } {
                (super::security::severity(ctx, "Critical")) " " (n("Critical")) " · "
                (super::security::severity(ctx, "High")) " " (n("High")) " · "
                (s["fixable"].as_u64().unwrap_or(0)) " " (ctx.t("scan.fixable"))
            }
        }
    }
}

/// Harbor's `signature` in a cell: each kind that signed it, with a symbol and a word
/// (the full wording in the tooltip); "✖ unsigned" when none did.
fn signed_short(ctx: &Ctx, s: &Value) -> Markup {
    let kinds: Vec<(&str, &str)> = ["cosign", "notation"]
        .into_iter()
        .map(|k| (k, s[k].as_str().unwrap_or("unsigned")))
        .filter(|(_, st)| *st != "unsigned")
        .collect();
    html! {
        @if kinds.is_empty() { "✖ " (ctx.t("sig.unsigned")) } @else {
            @for (i, (k, st)) in kinds.iter().enumerate() {
                @if i > 0 { br; }
                @let sym = match *st { "verified" => "✔✔", "unverified" => "⚠", _ => "✔" };
                span title=(ctx.t(&format!("sig.{st}"))) { (sym) " " (k) ": " (ctx.t(&format!("sig.short.{st}"))) }
            }
        }
    }
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
/// The artifact list's orders (`?sort=`, `-` for descending): the API's fields.
const ARTIFACT_SORTS: [&str; 3] = ["push_time", "size", "digest"];
const KINDS: [&str; 5] = ["IMAGE", "CHART", "CNAB", "WASM", "UNKNOWN"];

/// `?tagged=` of the artifact list: the API's `q=tags=*` (tagged) and `tags=nil`.
const TAGGED: [(&str, &str, &str); 2] =
    [("yes", "tags=*", "artifacts.tagged"), ("no", "tags=nil", "artifacts.untagged")];

/// Harbor's artifact list: one row per artifact (tagged, or not a child of an index),
/// newest first, with its first tags, platforms, vulnerability overview, SBOM and signed
/// state and labels, all from the ONE list call (`with_scan_overview`,
/// `with_sbom_overview`, `with_accessory`, labels always); offset pages of 20 from the
/// API. Filters by type, tagged/untagged and label go to the API's `q`; accessories
/// (signatures, SBOMs) are shown nested under their subject when asked for
/// (`?accessories=1`). One form around the table deletes or scans the selected artifacts.
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
    let tagged = q.get("tagged").to_string();
    let tagged_term = match TAGGED.iter().find(|(k, _, _)| *k == tagged) {
        Some((_, term, _)) => Some(*term),
        None if tagged.is_empty() => None,
        None => return bad_param(&ctx, "tagged", "must be yes or no"),
    };
    let show_acc = q.get("accessories") == "1";
    // The orders offered: the API's `sort` fields, ascending or descending (`-`); newest
    // first unless asked.
    let sort = match q.get("sort") {
        "" => "-push_time".to_string(),
        s if ARTIFACT_SORTS.contains(&s.strip_prefix('-').unwrap_or(s)) => s.to_string(),
        _ => return bad_param(&ctx, "sort", "must be push_time, size or digest, or one of them after -"),
    };
    let mut terms = Vec::new();
    if !kind.is_empty() {
        terms.push(format!("type={kind}"));
    }
    if let Some(t) = tagged_term {
        terms.push(t.to_string());
    }
    if !label.is_empty() {
        terms.push(format!("labels=({label})"));
    }
    let mut path = format!(
        "{}/artifacts?page={pg}&page_size={PAGE_SIZE}&sort={}&with_tag=true&with_accessory=true&with_scan_overview=true&with_sbom_overview=true&with_label=true",
        api_repo(p, r),
        enc(&sort)
    );
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
    let can_scan = has(&perms, "scan", "create");
    let can_stop = has(&perms, "scan", "stop");
    let can_sbom = has(&perms, "sbom", "create");
    let can_stop_sbom = has(&perms, "sbom", "stop");
    let select = can_delete || can_scan || can_stop || can_sbom || can_stop_sbom;
    let base = format!("{}/-/artifacts", ui_repo(p, r));
    let acc_flag = if show_acc { "1" } else { "" };
    let filters =
        [("type", kind.as_str()), ("tagged", tagged.as_str()), ("label", label.as_str()), ("accessories", acc_flag)];
    // A header's link keeps the filters and starts again at page 1.
    let sorted_by = |s: &str| {
        let mut q: Vec<String> =
            filters.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", enc(v))).collect();
        q.push(format!("sort={}", enc(s)));
        format!("{base}?{}", q.join("&"))
    };
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
                label for="tagged" { (ctx.t("artifacts.tagged_filter")) }
                select id="tagged" name="tagged" {
                    option value="" { (ctx.t("all")) }
                    @for (k, _, words) in TAGGED { option value=(k) selected[k == tagged] { (ctx.t(words)) } }
                }
                label for="label" { (ctx.t("artifacts.label")) }
                select id="label" name="label" {
                    option value="" { (ctx.t("all")) }
                    @for (id, name) in &labels { option value=(id) selected[id.to_string() == label] { (name) } }
                }
                label.check { input type="checkbox" name="accessories" value="1" checked[show_acc]; " " (ctx.t("artifacts.show_acc")) }
                @if sort != "-push_time" { input type="hidden" name="sort" value=(sort); }
                button type="submit" { (ctx.t("filter")) }
            }
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                form method="post" action={ (base) "/delete" } {
                    (crate::layout::csrf(&ctx))
                    table {
                        thead { tr {
                            @if select { th scope="col" { span.visually-hidden { (ctx.t("select")) } } }
                            (crate::layout::sort_th(&ctx, "col.digest", "digest", &sort, sorted_by))
                            th scope="col" { (ctx.t("artifacts.type")) }
                            th scope="col" { (ctx.t("tags.title")) }
                            th scope="col" { (ctx.t("tags.platforms")) }
                            (crate::layout::sort_th(&ctx, "artifact.size", "size", &sort, sorted_by))
                            th scope="col" { (ctx.t("scan.vulns")) }
                            th scope="col" { (ctx.t("sbom.title")) }
                            th scope="col" { (ctx.t("sig.title")) }
                            th scope="col" { (ctx.t("tab.labels")) }
                            (crate::layout::sort_th(&ctx, "col.pushed", "push_time", &sort, sorted_by))
                            th scope="col" { (ctx.t("col.pulled")) }
                        } }
                        tbody { @for x in a.items() {
                            @let d = x["digest"].as_str().unwrap_or("");
                            @let tags: Vec<&str> = x["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
                            tr {
                                @if select { td { input type="checkbox" name="digest" value=(d) aria-label={ (ctx.t("select")) " " (short(d)) }; } }
                                th scope="row" {
                                    a href={ (base) "/" (d) } title=(d) { code { (short(d)) } }
                                    " " button type="button" hidden data-copy=(d) data-done=(ctx.t("copied")) aria-label={ (ctx.t("artifacts.copy_digest")) " " (short(d)) } { (ctx.t("artifacts.copy_digest")) }
                                }
                                td { (kind_words(&ctx, x["type"].as_str().unwrap_or(""))) }
                                td {
                                    @for t in tags.iter().take(SHOWN) { code { (t) } " " }
                                    @if tags.len() > SHOWN { a href={ (base) "/" (d) } { "+" (tags.len() - SHOWN) " " (ctx.t("more")) } }
                                }
                                td { (platforms(&artifact_platforms(x))) }
                                td.num { (bytes(x["size"].as_u64().unwrap_or(0))) }
                                td { (vulns(&ctx, super::security::overview(x))) }
                                td { (sbom_cell(&ctx, &x["sbom_overview"])) }
                                td { (signed_short(&ctx, &x["signature"])) }
                                td { @for l in x["labels"].as_array().into_iter().flatten() { (super::labels::chip(l)) " " } }
                                td { (when(&ctx, &x["push_time"])) }
                                td { (when(&ctx, &x["pull_time"])) }
                            }
                            @if show_acc { @for acc in x["accessories"].as_array().into_iter().flatten() {
                                @let ad = acc["digest"].as_str().unwrap_or("");
                                tr.sub {
                                    @if select { td {} }
                                    th scope="row" { "↳ " a href={ (base) "/" (ad) } title=(ad) aria-label={ (ctx.t("artifacts.accessory_of")) " " (short(d)) ": " (short(ad)) } { code { (short(ad)) } } }
                                    td { (acc["type"].as_str().unwrap_or("")) }
                                    td { "—" }
                                    td { "—" }
                                    td.num { (bytes(acc["size"].as_u64().unwrap_or(0))) }
                                    td { "—" }
                                    td { "—" }
                                    td { "—" }
                                    td { "—" }
                                    td { (when(&ctx, &acc["creation_time"])) }
                                    td { "—" }
                                }
                            } }
                        } }
                    }
                    p {
                        @if can_scan { button type="submit" formaction={ (base) "/scan" } { (ctx.t("artifacts.scan_selected")) } " " }
                        @if can_stop { button type="submit" formaction={ (base) "/scan/stop" } { (ctx.t("artifacts.stop_selected")) } " " }
                        @if can_sbom { button type="submit" formaction={ (base) "/sbom" } { (ctx.t("artifacts.sbom_selected")) } " " }
                        @if can_stop_sbom { button type="submit" formaction={ (base) "/sbom/stop" } { (ctx.t("artifacts.stop_sbom_selected")) } " " }
                        @if can_delete { button.danger type="submit" { (ctx.t("artifacts.delete_selected")) } }
                    }
                }
                (pager(&ctx, &base, &[("type", &kind), ("tagged", &tagged), ("label", &label), ("accessories", acc_flag), ("sort", if sort == "-push_time" { "" } else { sort.as_str() })], pg, PAGE_SIZE, a.total().unwrap_or(0)))
            }
        },
    )
}

/// An artifact's platforms from the API's JSON: an index's children's, else an image's
/// own (`extra_attrs`).
fn artifact_platforms(x: &Value) -> Vec<String> {
    let refs: Vec<String> = x["references"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| berth_http::tag_page::platform_name(&c["platform"]))
        .filter(|p| p != "unknown/unknown")
        .collect();
    if !refs.is_empty() {
        return refs;
    }
    berth_http::tag_page::platform_name(&x["extra_attrs"]).filter(|p| p != "/").into_iter().collect()
}

/// An SBOM overview in words: yes (with a link-free symbol), its scan state, or no.
fn sbom_cell(ctx: &Ctx, o: &Value) -> Markup {
    match o["scan_status"].as_str() {
        Some("Success") => html! { "✔ " (ctx.t("yes")) },
        Some(st) => crate::layout::status(ctx, st),
        None => html! { "✖ " (ctx.t("no")) },
    }
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

/// Bulk delete of the artifacts ticked in the list: first a confirm page naming each one
/// with its tags (they go too), then one API delete per artifact; those the API refuses
/// (an immutable tag, no permission, an index's child) are reported by name with its reason.
async fn delete_artifacts(ctx: &Ctx, p: &str, r: &str, form: &Form) -> Response {
    let back = format!("{}/-/artifacts", ui_repo(p, r));
    if let Err(refused) = ctx.check_form(form, &back) {
        return refused;
    }
    let digests = match ticked(ctx, form, "digest", "artifacts.none_selected", &back) {
        Ok(d) => d,
        Err(r) => return r,
    };
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
        return bulk_confirm(ctx, &format!("{back}/delete"), "digest", &rows, "artifacts.confirm_bulk", &back);
    }
    let calls =
        digests.iter().map(|d| (format!("{}/artifacts/{}", api_repo(p, r), enc(d)), name(d, &[]), None)).collect();
    bulk_run(ctx, form, Method::DELETE, calls, "artifacts.deleted", "artifacts.not_deleted", &back).await
}

/// Bulk delete of the tags ticked in the tags view: a confirm page naming each, then one
/// API delete per tag (`DELETE …/artifacts/{tag}/tags/{tag}`); refusals (an immutable
/// tag, no permission) by name with the API's reason.
async fn delete_tags(ctx: &Ctx, p: &str, r: &str, form: &Form) -> Response {
    let back = format!("{}/-/tags", ui_repo(p, r));
    if let Err(refused) = ctx.check_form(form, &back) {
        return refused;
    }
    let tags = match ticked(ctx, form, "tag", "tags.none_selected", &back) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let name = |t: &str| format!("{p}/{r}:{t}");
    if form.get("confirmed") != "1" {
        let rows: Vec<(String, String)> = tags.iter().map(|t| (t.to_string(), name(t))).collect();
        return bulk_confirm(ctx, &format!("{back}/delete"), "tag", &rows, "tags.confirm_bulk", &back);
    }
    let calls = tags
        .iter()
        .map(|t| (format!("{}/artifacts/{}/tags/{}", api_repo(p, r), enc(t), enc(t)), name(t), None))
        .collect();
    bulk_run(ctx, form, Method::DELETE, calls, "tags.deleted_n", "tags.not_deleted", &back).await
}

/// A scan request on each artifact ticked in the list, with no confirm (nothing is lost);
/// refusals (no permission, a scan already running or none to stop) by name.
#[derive(Clone, Copy)]
enum ScanAction {
    /// `POST …/scan` with `{"scan_type":"vulnerability"}`.
    Scan,
    /// `POST …/scan/stop` with `{"scan_type":"vulnerability"}`.
    Stop,
    /// `POST …/scan` with `{"scan_type":"sbom"}` (Harbor's "generate SBOM").
    Sbom,
    /// `POST …/scan/stop` with `{"scan_type":"sbom"}` (Harbor's "stop SBOM generation").
    StopSbom,
}

async fn scan_artifacts(ctx: &Ctx, p: &str, r: &str, form: &Form, action: ScanAction) -> Response {
    let back = format!("{}/-/artifacts", ui_repo(p, r));
    if let Err(refused) = ctx.check_form(form, &back) {
        return refused;
    }
    let digests = match ticked(ctx, form, "digest", "artifacts.none_selected", &back) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let (suffix, kind, done, refused) = match action {
        ScanAction::Scan => ("scan", "vulnerability", "artifacts.scans_started", "artifacts.not_scanned"),
        ScanAction::Stop => ("scan/stop", "vulnerability", "artifacts.scans_stopped", "artifacts.not_stopped"),
        ScanAction::Sbom => ("scan", "sbom", "artifacts.sboms_started", "artifacts.not_sbom"),
        ScanAction::StopSbom => ("scan/stop", "sbom", "artifacts.sboms_stopped", "artifacts.not_stopped"),
    };
    let calls = digests
        .iter()
        .map(|d| {
            let path = format!("{}/artifacts/{}/{suffix}", api_repo(p, r), enc(d));
            (path, format!("{p}/{r}@{}", short(d)), Some(json!({ "scan_type": kind })))
        })
        .collect();
    bulk_run(ctx, form, Method::POST, calls, done, refused, &back).await
}

pub(crate) fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}
