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

use super::{api_repo, has, project, refusal, ui_repo};
use crate::layout::{Nav, bytes, confirm, copyable, error_page, page, pager, post_button, project_tabs, unix, when};
use crate::{Ctx, Form, enc, query};

const PAGE_SIZE: u64 = 20;
pub const TAGS_PAGE: u64 = 50;

pub async fn list(ctx: Ctx, Path(p): Path<String>, uri: Uri) -> Response {
    if let Err(r) = ctx.require_user() {
        return r;
    }
    if let Err(r) = project(&ctx, &p).await {
        return r;
    }
    let q = query(&uri);
    let name = q.get("name").trim().to_string();
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let mut path = format!("{}/repositories?page={pg}&page_size={PAGE_SIZE}&sort=name", super::api_project(&p));
    if !name.is_empty() {
        path.push_str(&format!("&q={}", enc(&format!("name=~{name}"))));
    }
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let total = a.total().unwrap_or(0);
    let prefix = format!("{p}/");
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "repos"))
            h2 { (ctx.t("repos.title")) }
            form.filters method="get" role="search" {
                label for="name" { (ctx.t("repos.filter")) }
                input id="name" name="name" type="search" value=(name);
                button type="submit" { (ctx.t("filter")) }
            }
            @if a.items().is_empty() {
                p { (ctx.t("none")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" aria-sort="ascending" { (ctx.t("col.name")) }
                        th scope="col" { (ctx.t("col.artifacts")) }
                        th scope="col" { (ctx.t("col.pulls")) }
                        th scope="col" { (ctx.t("col.updated")) }
                    } }
                    tbody {
                        @for r in a.items() {
                            @let full = r["name"].as_str().unwrap_or("");
                            @let short = full.strip_prefix(&prefix).unwrap_or(full);
                            tr {
                                th scope="row" { a href={ (ui_repo(&p, short)) "/-/tags" } { (full) } }
                                td.num { (r["artifact_count"].as_u64().unwrap_or(0)) }
                                td.num { (r["pull_count"].as_u64().unwrap_or(0)) }
                                td { (when(&r["update_time"])) }
                            }
                        }
                    }
                }
                (pager(&ctx, &format!("/projects/{}/repos", enc(&p)), &[("name", &name)], pg, PAGE_SIZE, total))
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
        ["artifacts"] => artifacts(ctx, &p, &r, &uri).await,
        ["tags", tag, "delete"] => {
            let back = format!("{}/-/tags", ui_repo(&p, &r));
            confirm(&ctx, &format!("{p}/{r}:{tag}"), &format!("{}/-/tags/{}/delete", ui_repo(&p, &r), enc(tag)), &back)
        }
        ["artifacts", digest] => artifact(ctx, &p, &r, digest).await,
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
        _ => error_page(&ctx, StatusCode::NOT_FOUND, "no such action"),
    }
}

async fn tags(ctx: Ctx, p: &str, r: &str, uri: &Uri) -> Response {
    // The API answers the repository only to callers who may read it (and says why not).
    let repo = ctx.call(Method::GET, &api_repo(p, r), None).await;
    if !repo.ok() {
        return refusal(&ctx, &repo);
    }
    let project_id = repo.json["project_id"].as_i64().unwrap_or(0);
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
    let perms = ctx.project_permissions(project_id).await;
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
                                td { a href={ (ui_repo(p, r)) "/-/artifacts/" (d) } title=(d) { code { (short(&d)) } } }
                                td { (media(&t.media_type)) }
                                td.num { (bytes(t.manifest_size)) }
                                td { (unix(t.push_time)) }
                                td { (t.pull_time.map(unix).unwrap_or_else(|| ctx.t("never").to_string())) }
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

/// The views of a repository: by tag (the default), by artifact, and two tags compared.
const VIEWS: [(&str, &str); 3] =
    [("tags", "tags.title"), ("artifacts", "artifacts.title"), ("compare", "compare.title")];

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

/// Harbor's artifact list: one row per artifact (tagged, or not a child of an index),
/// newest first, with its first tags; offset pages of 20 from the API.
async fn artifacts(ctx: Ctx, p: &str, r: &str, uri: &Uri) -> Response {
    let q = query(uri);
    let pg: u64 = q.get("page").parse().unwrap_or(1).max(1);
    let path = format!("{}/artifacts?page={pg}&page_size={PAGE_SIZE}&with_tag=true", api_repo(p, r));
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let base = format!("{}/-/artifacts", ui_repo(p, r));
    const SHOWN: usize = 5;
    repo_view(
        &ctx,
        p,
        r,
        "artifacts",
        html! {
            @if a.items().is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    thead { tr {
                        th scope="col" { (ctx.t("col.digest")) }
                        th scope="col" { (ctx.t("col.type")) }
                        th scope="col" { (ctx.t("tags.title")) }
                        th scope="col" { (ctx.t("artifact.size")) }
                        th scope="col" aria-sort="descending" { (ctx.t("col.pushed")) }
                        th scope="col" { (ctx.t("col.pulled")) }
                    } }
                    tbody { @for x in a.items() {
                        @let d = x["digest"].as_str().unwrap_or("");
                        @let tags: Vec<&str> = x["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
                        tr {
                            th scope="row" { a href={ (base) "/" (d) } title=(d) { code { (short(d)) } } }
                            td { (media(x["manifest_media_type"].as_str().unwrap_or(""))) }
                            td {
                                @for t in tags.iter().take(SHOWN) { code { (t) } " " }
                                @if tags.len() > SHOWN { a href={ (base) "/" (d) } { "+" (tags.len() - SHOWN) " " (ctx.t("more")) } }
                            }
                            td.num { (bytes(x["size"].as_u64().unwrap_or(0))) }
                            td { (when(&x["push_time"])) }
                            td { (when(&x["pull_time"])) }
                        }
                    } }
                }
                (pager(&ctx, &base, &[], pg, PAGE_SIZE, a.total().unwrap_or(0)))
            }
        },
    )
}

pub(crate) fn short(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

fn media(m: &str) -> Markup {
    let label = match m {
        "application/vnd.oci.image.manifest.v1+json" => "OCI image",
        "application/vnd.oci.image.index.v1+json" => "OCI index",
        "application/vnd.docker.distribution.manifest.v2+json" => "Docker image",
        "application/vnd.docker.distribution.manifest.list.v2+json" => "Docker manifest list",
        other => other,
    };
    html! { span title=(m) { (label) } }
}

async fn artifact(ctx: Ctx, p: &str, r: &str, digest: &str) -> Response {
    let path = format!(
        "{}/artifacts/{}?with_tag=true&with_accessory=true&with_scan_overview=true&with_sbom_overview=true&with_label=true&with_immutable_status=true",
        api_repo(p, r),
        enc(digest)
    );
    let a = ctx.call(Method::GET, &path, None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let v = &a.json;
    let full = format!("{p}/{r}");
    let d = v["digest"].as_str().unwrap_or(digest);
    let tags = v["tags"].as_array().cloned().unwrap_or_default();
    let refs = v["references"].as_array().cloned().unwrap_or_default();
    let ann = v["annotations"].as_object().cloned().unwrap_or_default();
    let accessories = v["accessories"].as_array().cloned().unwrap_or_default();
    let perms = ctx.project_permissions(v["project_id"].as_i64().unwrap_or(0)).await;
    let can_scan = has(&perms, "scan", "create");
    let can_sbom = has(&perms, "sbom", "create");
    let (can_attach, can_detach) = (has(&perms, "artifact-label", "create"), has(&perms, "artifact-label", "delete"));
    let attached: Vec<Value> = v["labels"].as_array().cloned().unwrap_or_default();
    // What may be attached: the project's labels and the global ones not on it yet.
    let mut offered = Vec::new();
    if can_attach {
        let pid = v["project_id"].as_i64().unwrap_or(0);
        for q in [format!("scope=p&project_id={pid}"), "scope=g".to_string()] {
            let l = ctx.call(Method::GET, &format!("/api/v2.0/labels?{q}&page_size=100"), None).await;
            offered.extend(l.items().iter().filter(|l| !attached.iter().any(|a| a["id"] == l["id"])).cloned());
        }
    }
    let here = format!("{}/-/artifacts/{d}", ui_repo(p, r));
    let scan_form = |kind: &str, words: &str| {
        html! {
            form.inline method="post" action={ (here) "/scan" } {
                (crate::layout::csrf(&ctx))
                input type="hidden" name="scan_type" value=(kind);
                button type="submit" { (words) }
            }
        }
    };
    let ov = super::security::overview(v);
    let sbom = &v["sbom_overview"];
    page(
        &ctx,
        &format!("{full}@{}", short(d)),
        Nav::Projects,
        html! {
            (project_tabs(&ctx, p, "repos"))
            p { a href={ (ui_repo(p, r)) "/-/tags" } { "← " (full) } }
            h2 { (ctx.t("artifact.title")) }
            dl {
                dt { (ctx.t("col.digest")) } dd { code { (d) } }
                dt { (ctx.t("col.type")) } dd { (media(v["manifest_media_type"].as_str().unwrap_or(""))) }
                dt { (ctx.t("artifact.size")) } dd { (bytes(v["size"].as_u64().unwrap_or(0))) }
                dt { (ctx.t("col.pushed")) } dd { (when(&v["push_time"])) }
                dt { (ctx.t("col.pulled")) } dd { (when(&v["pull_time"])) }
                dt { (ctx.t("sig.title")) } dd { (signed(&ctx, &v["signature"])) }
                dt { (ctx.t("tags.pull_by_digest")) } dd { (copyable(&ctx, d, &ctx.client.pull(&ctx.host, &full, d))) }
            }
            h2 id="artifact-labels" { (ctx.t("tab.labels")) }
            @if attached.is_empty() { p { (ctx.t("none")) } } @else {
                ul.labels aria-labelledby="artifact-labels" { @for l in &attached {
                    @let name = l["name"].as_str().unwrap_or("");
                    li { (super::labels::chip(l))
                        @if can_detach { " " (post_button(&ctx, &format!("{here}/labels/{}/delete", l["id"].as_i64().unwrap_or(0)), ctx.t("labels.detach"), &format!("{} {name}", ctx.t("labels.detach")), false)) }
                    }
                } }
            }
            @if can_attach && !offered.is_empty() {
                form.inline method="post" action={ (here) "/labels" } {
                    (crate::layout::csrf(&ctx))
                    label for="attach_label" { (ctx.t("labels.attach_which")) }
                    select id="attach_label" name="label_id" {
                        @for l in &offered { option value=(l["id"].as_i64().unwrap_or(0)) { (l["name"].as_str().unwrap_or("")) } }
                    }
                    button type="submit" { (ctx.t("labels.attach")) }
                }
            }
            h2 { (ctx.t("scan.vulns")) }
            p {
                @match ov {
                    None => { (ctx.t("scan.never")) }
                    Some(o) => {
                        (crate::layout::status(&ctx, o["scan_status"].as_str().unwrap_or(""))) " · "
                        @if o["scan_status"].as_str() == Some("Success") {
                            (super::security::summary(&ctx, o)) " · "
                            a href={ (here) "/vulnerabilities" } { (ctx.t("scan.details")) }
                        }
                    }
                }
            }
            @if can_scan { (scan_form("vulnerability", ctx.t("scan.run"))) }
            h2 { (ctx.t("sbom.title")) }
            p {
                @if sbom.is_object() {
                    (crate::layout::status(&ctx, sbom["scan_status"].as_str().unwrap_or("")))
                    @if sbom["scan_status"].as_str() == Some("Success") { " · " a href={ (here) "/sbom" } { (ctx.t("sbom.view")) } }
                } @else { (ctx.t("sbom.none")) }
            }
            @if can_sbom { (scan_form("sbom", ctx.t("sbom.generate"))) }
            h2 { (ctx.t("artifact.tags")) }
            @if tags.is_empty() { p { (ctx.t("none")) } } @else {
                ul { @for t in &tags {
                    @let n = t["name"].as_str().unwrap_or("");
                    li { strong { (n) } @if t["immutable"].as_bool() == Some(true) { " 🔒 " (ctx.t("tags.immutable")) } " " (copyable(&ctx, n, &ctx.client.pull(&ctx.host, &full, n))) }
                } }
            }
            @if !refs.is_empty() {
                h2 { (ctx.t("artifact.refs")) }
                ul { @for c in &refs {
                    @let cd = c["child_digest"].as_str().unwrap_or("");
                    @let plat = &c["platform"];
                    li {
                        a href={ (ui_repo(p, r)) "/-/artifacts/" (cd) } { code { (short(cd)) } }
                        " " (plat["os"].as_str().unwrap_or("")) "/" (plat["architecture"].as_str().unwrap_or(""))
                        @if let Some(var) = plat["variant"].as_str() { "/" (var) }
                    }
                } }
            }
            h2 { (ctx.t("sig.accessories")) }
            @if accessories.is_empty() { p { (ctx.t("none")) } } @else {
                table {
                    (crate::layout::head(&ctx, &["col.type", "col.digest", "artifact.size", "col.created"], false))
                    tbody { @for x in &accessories {
                        @let ad = x["digest"].as_str().unwrap_or("");
                        tr {
                            th scope="row" { (x["type"].as_str().unwrap_or("")) }
                            td { a href={ (ui_repo(p, r)) "/-/artifacts/" (ad) } title=(ad) { code { (short(ad)) } } }
                            td.num { (bytes(x["size"].as_u64().unwrap_or(0))) }
                            td { (when(&x["creation_time"])) }
                        }
                    } }
                }
            }
            @if !ann.is_empty() {
                h2 { (ctx.t("artifact.annotations")) }
                dl { @for (k, val) in &ann { dt { (k) } dd { (val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string())) } } }
            }
        },
    )
}

/// Signed state in words: cosign and notation, each unsigned, signed, verified (against
/// the project's trust) or unverified.
fn signed(ctx: &Ctx, s: &serde_json::Value) -> Markup {
    let one = |k: &str| {
        let st = s[k].as_str().unwrap_or("unsigned");
        let sym = match st {
            "verified" => "✔✔",
            "signed" => "✔",
            "unverified" => "⚠",
            _ => "✖",
        };
        html! { (k) ": " (sym) " " (ctx.t(&format!("sig.{st}"))) }
    };
    html! { (one("cosign")) " · " (one("notation")) }
}
