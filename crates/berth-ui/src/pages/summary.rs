//! `/projects/{p}`: a project's summary (Harbor's "summary" tab): access level and type,
//! the proxy-cache endpoint, repository count, members per role, the quota, the five
//! repositories updated last, and the commands that push to the project.

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::{Markup, html};

use super::{api_project, project_page, ui_project, ui_repo};
use crate::layout::{Nav, copyable, page, project_tabs, quota, when};
use crate::{Ctx, enc};

/// How many recently updated repositories the summary lists.
const RECENT: u64 = 5;

/// The roles in the order the summary counts members (the API's `…_count` fields).
const ROLES: [(&str, i64); 5] = [
    ("project_admin_count", 1),
    ("maintainer_count", 4),
    ("developer_count", 2),
    ("guest_count", 3),
    ("limited_guest_count", 5),
];

pub async fn show(ctx: Ctx, Path(p): Path<String>) -> Response {
    let proj = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let summary = ctx.call(Method::GET, &format!("{}/summary", api_project(&p)), None).await;
    let s = &summary.json;
    // One request for the recent repositories (the API sorts), none per row.
    let recent = if proj.can("repository", "list") {
        let path = format!("{}/repositories?page=1&page_size={RECENT}&sort=-update_time", api_project(&p));
        ctx.call(Method::GET, &path, None).await
    } else {
        crate::Answer::empty()
    };
    let proxy = super::projects::proxy_notice(&ctx, &proj.json).await;
    let public = proj.json["metadata"]["public"].as_str() == Some("true");
    let prefix = format!("{p}/");
    let repos = ui_project(&p, "repos");
    let has_members = ROLES.iter().any(|(k, _)| s.get(*k).is_some());
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "summary"))
            (proxy)
            h2 { (ctx.t("summary.title")) }
            dl {
                dt { (ctx.t("col.access")) }
                dd { @if public { "◯ " (ctx.t("public")) } @else { "🔒 " (ctx.t("private")) } }
                dt { (ctx.t("col.kind")) }
                dd { @if proj.json["registry_id"].as_i64().is_some() { "⇄ " (ctx.t("proxy.cache")) } @else { (ctx.t("proxy.project")) } }
                dt { (ctx.t("col.repos")) }
                dd { a href=(repos) { (s["repo_count"].as_u64().unwrap_or(0)) } }
                dt { (ctx.t("col.created")) }
                dd { (when(&ctx, &proj.json["creation_time"])) }
                @if let Some(q) = s.get("quota") {
                    dt { (ctx.t("quotas.usage")) }
                    dd { (quota(&ctx, q["used"]["storage"].as_i64().unwrap_or(0), q["hard"]["storage"].as_i64().unwrap_or(-1))) }
                }
            }
            @if has_members {
                h3 id="members-by-role" { (ctx.t("summary.members")) }
                ul.cards aria-labelledby="members-by-role" {
                    @for (k, role) in ROLES {
                        li { (ctx.t(&format!("role.{role}"))) ": " strong { (s[k].as_u64().unwrap_or(0)) } }
                    }
                }
                p { a href=(ui_project(&p, "members")) { (ctx.t("summary.see_members")) } }
            }
            @if proj.can("repository", "list") {
                h3 id="recent" { (ctx.t("summary.recent")) }
                @if recent.items().is_empty() { p { (ctx.t("none")) } } @else {
                    table aria-labelledby="recent" {
                        (crate::layout::head(&ctx, &["col.name", "col.artifacts", "col.updated"], false))
                        tbody { @for r in recent.items() {
                            @let full = r["name"].as_str().unwrap_or("");
                            @let short = full.strip_prefix(&prefix).unwrap_or(full);
                            tr {
                                th scope="row" { a href={ (ui_repo(&p, short)) "/-/tags" } { (full) } }
                                td.num { (r["artifact_count"].as_u64().unwrap_or(0)) }
                                td { (when(&ctx, &r["update_time"])) }
                            }
                        } }
                    }
                    p { a href={ (repos) "?sort=-update_time" } { (ctx.t("summary.see_all")) " →" } }
                }
            }
            @if proj.can("repository", "push") {
                (push_commands(&ctx, &p))
            }
            @if proj.can(".", "delete") {
                h3 { (ctx.t("projects.delete")) }
                p { a.danger href={ "/projects/" (enc(&p)) "/delete" } aria-label={ (ctx.t("projects.delete")) " " (p) } { (ctx.t("projects.delete")) } }
            }
        },
    )
}

/// The commands that push to the project: docker, podman, helm (OCI), oras; each a
/// selectable line with a copy button, naming the host the browser used. Words in
/// capitals are the user's to fill in.
fn push_commands(ctx: &Ctx, p: &str) -> Markup {
    let target = format!("{}/{p}", ctx.host);
    let clients: [(&str, Vec<String>); 4] = [
        (
            "Docker",
            vec![
                format!("docker tag IMAGE:TAG {target}/REPOSITORY:TAG"),
                format!("docker push {target}/REPOSITORY:TAG"),
            ],
        ),
        (
            "Podman",
            vec![
                format!("podman tag IMAGE:TAG {target}/REPOSITORY:TAG"),
                format!("podman push {target}/REPOSITORY:TAG"),
            ],
        ),
        ("Helm", vec!["helm package CHART_PATH".to_string(), format!("helm push chart.tgz oci://{target}")]),
        ("ORAS", vec![format!("oras push {target}/REPOSITORY:TAG FILE")]),
    ];
    html! {
        h3 id="push" { (ctx.t("summary.push")) }
        p.hint { (ctx.t("summary.push_hint")) }
        // A registry whose certificate a private CA issued is trusted once this file is
        // in the client's store (`/etc/docker/certs.d/<host>/ca.crt`); on plain HTTP
        // there is none to offer (the API answers 404).
        @if ctx.state.tls_cert.is_some() {
            p { a href="/api/v2.0/systeminfo/getcert" download="ca.crt" { (ctx.t("summary.cert")) } " " span.hint { (ctx.t("summary.cert_hint")) } }
        }
        dl.commands {
            @for (client, lines) in &clients {
                dt { (client) }
                @for (i, line) in lines.iter().enumerate() {
                    dd { (copyable(ctx, &format!("{client} {} {}", ctx.t("summary.step"), i + 1), line)) }
                }
            }
        }
    }
}
