//! An artifact's detail page (`/projects/{p}/repos/{repo…}/-/artifacts/{digest}`) and a
//! repository's description (`…/-/info`). The dispatch is in [`super::repos`].

use axum::http::Method;
use axum::response::Response;
use maud::{Markup, html};
use serde_json::Value;

use super::repos::{project_labels, repo_view, short};
use super::{api_repo, has, refusal, ui_repo};
use crate::layout::{Nav, bytes, copyable, page, post_button, project_tabs, when};
use crate::{Ctx, enc};

/// A repository's description (Harbor's "info" tab), shown as text, and a form to change
/// it for those the API lets update the repository.
pub(crate) async fn info(ctx: Ctx, p: &str, r: &str) -> Response {
    let repo = ctx.call(Method::GET, &api_repo(p, r), None).await;
    if !repo.ok() {
        return refusal(&ctx, &repo);
    }
    let perms = ctx.project_permissions(repo.json["project_id"].as_i64().unwrap_or(0)).await;
    let can_edit = has(&perms, "repository", "update");
    let description = repo.json["description"].as_str().unwrap_or("");
    repo_view(
        &ctx,
        p,
        r,
        "info",
        html! {
            h3 id="desc" { (ctx.t("col.description")) }
            @if description.trim().is_empty() { p { (ctx.t("repo.no_description")) } } @else { div.description { (description) } }
            @if can_edit {
                form.narrow method="post" action={ (ui_repo(p, r)) "/-/info" } aria-labelledby="edit-desc" {
                    (crate::layout::csrf(&ctx))
                    h3 id="edit-desc" { (ctx.t("repo.edit_description")) }
                    p { label for="description" { (ctx.t("col.description")) } textarea id="description" name="description" { (description) } }
                    button.primary type="submit" { (ctx.t("save")) }
                }
            }
        },
    )
}

pub(crate) fn media(m: &str) -> Markup {
    let label = match m {
        "application/vnd.oci.image.manifest.v1+json" => "OCI image",
        "application/vnd.oci.image.index.v1+json" => "OCI index",
        "application/vnd.docker.distribution.manifest.v2+json" => "Docker image",
        "application/vnd.docker.distribution.manifest.list.v2+json" => "Docker manifest list",
        other => other,
    };
    html! { span title=(m) { (label) } }
}

pub(crate) async fn artifact(ctx: Ctx, p: &str, r: &str, digest: &str) -> Response {
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
        offered = project_labels(&ctx, v["project_id"].as_i64().unwrap_or(0)).await;
        offered.retain(|(id, _)| !attached.iter().any(|a| a["id"].as_i64() == Some(*id)));
    }
    let can_tag = has(&perms, "tag", "create");
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
                dt { (ctx.t("col.pushed")) } dd { (when(&ctx, &v["push_time"])) }
                dt { (ctx.t("col.pulled")) } dd { (when(&ctx, &v["pull_time"])) }
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
                        @for (id, name) in &offered { option value=(id) { (name) } }
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
            @if can_tag {
                form.inline method="post" action={ (here) "/tags" } {
                    (crate::layout::csrf(&ctx))
                    label for="new_tag" { (ctx.t("tags.new")) }
                    input id="new_tag" name="tag" required pattern="[A-Za-z0-9_][A-Za-z0-9._-]{0,127}";
                    button type="submit" { (ctx.t("tags.add")) }
                }
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
                            td { (when(&ctx, &x["creation_time"])) }
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
