//! An artifact's detail page (`/projects/{p}/repos/{repo…}/-/artifacts/{digest}`) with
//! its actions (remove a tag, copy to another repository, delete, each destructive one
//! through a confirm page), and a repository's description (`…/-/info`, Markdown rendered
//! safely). The dispatch is in [`super::repos`].
//!
//! Everything comes from the API, except three reads made after the API has answered the
//! artifact for the caller: the manifest's layer list (from `Registry`, as the compare
//! page does), the indexes that list it (`CatalogStore::parents_of`, one query) and a
//! keyset page of its tags (`CatalogStore::artifact_tags_page`; an artifact may carry
//! thousands, and the API's `with_tag` answer has them all).

use axum::http::Method;
use axum::response::Response;
use berth_core::{Digest, Reference, RepoName};
use maud::{Markup, PreEscaped, html};
use serde_json::{Value, json};

use super::repos::{project_labels, repo_view, short};
use super::{api_repo, has, refusal, ui_repo};
use crate::layout::{Nav, bytes, confirm, copyable, page, post_button, project_tabs, when};
use crate::{Ctx, Form, enc};

/// A repository's description (Harbor's "info" tab), rendered from Markdown (see
/// [`markdown`]), and a form to change it for those the API lets update the repository.
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
            @if description.trim().is_empty() { p { (ctx.t("repo.no_description")) } } @else { div.description { (PreEscaped(markdown(description))) } }
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

/// How many of an artifact's tags one page shows.
const TAGS_PAGE: u64 = 50;

/// A page of an artifact's tags from the query string (`?tags_after=` / `?tags_before=`,
/// names from the page's own links): the names, with whether each is immutable, and
/// whether there is a page before and after it. `Err` names a bad parameter.
struct TagPage {
    tags: Vec<(String, bool)>,
    prev: bool,
    next: bool,
}

async fn tag_page(
    ctx: &Ctx,
    name: &RepoName,
    digest: &Digest,
    q: &crate::Form,
) -> Result<TagPage, (String, &'static str)> {
    use berth_core::store::catalog::NameCursor;
    let (after, before) = (q.get("tags_after"), q.get("tags_before"));
    for (field, v) in [("tags_after", after), ("tags_before", before)] {
        if !v.is_empty() && v.parse::<berth_core::Tag>().is_err() {
            return Err((field.to_string(), "is not a tag name (follow the page's links)"));
        }
    }
    let cursor = match (after, before) {
        ("", "") => NameCursor::First,
        (a, "") => NameCursor::After(a.to_string()),
        ("", b) => NameCursor::Before(b.to_string()),
        _ => return Err(("tags_before".to_string(), "cannot be given with tags_after")),
    };
    // One more than a page tells whether the list goes on in the direction read.
    let mut rows = match ctx.state.catalog.artifact_tags_page(name, digest, &cursor, TAGS_PAGE + 1).await {
        Ok(Some(rows)) => rows,
        _ => Vec::new(),
    };
    let more = rows.len() as u64 > TAGS_PAGE;
    let (prev, next) = match cursor {
        NameCursor::First => {
            rows.truncate(TAGS_PAGE as usize);
            (false, more)
        }
        NameCursor::After(_) => {
            rows.truncate(TAGS_PAGE as usize);
            (true, more)
        }
        NameCursor::Before(_) => {
            if more {
                rows.remove(0);
            }
            (more, true)
        }
    };
    // Immutability by the project's rules, as the API's `with_immutable_status` says it.
    let project = name.as_str().split_once('/').map_or("", |(p, _)| p);
    let rest = name.as_str().split_once('/').map_or(name.as_str(), |(_, r)| r);
    let rules = match ctx.state.auth.identity.project_by_name(project).await {
        Ok(Some(p)) => berth_core::policy::immutable_rules(ctx.state.policies.as_ref(), p.id).await.unwrap_or_default(),
        _ => Vec::new(),
    };
    let tags = rows
        .into_iter()
        .map(|t| {
            let i = berth_core::policy::immutable(&rules, rest, &t.name).is_some();
            (t.name, i)
        })
        .collect();
    Ok(TagPage { tags, prev, next })
}

pub(crate) async fn artifact(ctx: Ctx, p: &str, r: &str, digest: &str, uri: &axum::http::Uri) -> Response {
    // Without `with_tag`: the tags are read a page at a time below.
    let path = format!(
        "{}/artifacts/{}?with_accessory=true&with_scan_overview=true&with_sbom_overview=true&with_label=true",
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
    let q = crate::query(uri);
    let tags = match (full.parse::<RepoName>(), d.parse::<Digest>()) {
        (Ok(n), Ok(dg)) => match tag_page(&ctx, &n, &dg, &q).await {
            Ok(t) => t,
            Err((field, problem)) => return super::repos::bad_param(&ctx, &field, problem),
        },
        _ => TagPage { tags: Vec::new(), prev: false, next: false },
    };
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
    let can_untag = has(&perms, "tag", "delete");
    let can_copy = has(&perms, "artifact", "create");
    let can_delete = has(&perms, "artifact", "delete");
    let here = format!("{}/-/artifacts/{d}", ui_repo(p, r));
    let name = full.parse::<RepoName>().ok();
    let parents = match (&name, d.parse::<Digest>()) {
        (Some(n), Ok(dg)) => ctx.state.catalog.parents_of(n, std::slice::from_ref(&dg)).await.unwrap_or_default(),
        _ => Vec::new(),
    };
    let layers = match &name {
        Some(n) => layers_of(&ctx, n, d).await,
        None => Vec::new(),
    };
    let commands = if layers.is_empty() {
        Vec::new()
    } else {
        let h = ctx
            .call(Method::GET, &format!("{}/artifacts/{}/additions/build_history", api_repo(p, r), enc(d)), None)
            .await;
        layer_commands(layers.len(), h.items())
    };
    let config = &v["extra_attrs"]["config"];
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
                @if !parents.is_empty() {
                    dt { (ctx.t("artifact.parents")) }
                    dd { @for (_, parent) in &parents {
                        @let pd = parent.to_string();
                        a href={ (ui_repo(p, r)) "/-/artifacts/" (pd) } title=(pd) { code { (short(&pd)) } } " "
                    } }
                }
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
            h2 id="artifact-tags" { (ctx.t("artifact.tags")) }
            @if tags.tags.is_empty() && !tags.prev { p { (ctx.t("none")) } } @else {
                ul aria-labelledby="artifact-tags" { @for (n, immutable) in &tags.tags {
                    li {
                        strong { (n) } @if *immutable { " 🔒 " (ctx.t("tags.immutable")) } " " (copyable(&ctx, n, &ctx.client.pull(&ctx.host, &full, n)))
                        @if can_untag { " " a.danger href={ (here) "/tags/" (enc(n)) "/delete" } aria-label={ (ctx.t("tags.remove")) " " (n) } { (ctx.t("tags.remove")) } }
                    }
                } }
                @if tags.prev || tags.next {
                    nav.pager aria-label=(ctx.t("artifact.tags_pages")) {
                        @if tags.prev {
                            a href={ (here) "#artifact-tags" } { "⇤ " (ctx.t("artifact.tags_first")) } " "
                            @if let Some((first, _)) = tags.tags.first() {
                                a href={ (here) "?tags_before=" (enc(first)) "#artifact-tags" } rel="prev" { "← " (ctx.t("artifact.tags_prev")) } " "
                            }
                        }
                        @if tags.next { @if let Some((last, _)) = tags.tags.last() {
                            a href={ (here) "?tags_after=" (enc(last)) "#artifact-tags" } rel="next" { (ctx.t("artifact.tags_next")) " →" }
                        } }
                    }
                }
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
            @if !layers.is_empty() {
                h2 id="layers" { (ctx.t("artifact.layers")) }
                table aria-labelledby="layers" {
                    (crate::layout::head(&ctx, &["artifact.layer", "artifact.layer_size", "artifact.command"], false))
                    tbody { @for (i, (ld, size)) in layers.iter().enumerate() {
                        tr {
                            th scope="row" { (i + 1) " " code title=(ld) { (short(ld)) } }
                            td.num { (bytes(*size)) }
                            td { @match commands.get(i).and_then(Option::as_deref) { Some(c) => { code.command { (step(c)) } }, None => { "—" } } }
                        }
                    } }
                }
            }
            @if config.is_object() {
                h2 id="config" { (ctx.t("artifact.config")) }
                (config_list(&ctx, config))
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
            @if can_copy {
                form.narrow method="post" action={ (here) "/copy" } aria-labelledby="copy" {
                    (crate::layout::csrf(&ctx))
                    h2 id="copy" { (ctx.t("artifact.copy")) }
                    p { (ctx.t("artifact.copy_note")) }
                    p { label for="copy_project" { (ctx.t("artifact.copy_project")) } input id="copy_project" name="project" required value=(p); }
                    p { label for="copy_repo" { (ctx.t("artifact.copy_repo")) } input id="copy_repo" name="repo" required; }
                    p { label for="copy_tag" { (ctx.t("artifact.copy_tag")) } input id="copy_tag" name="tag" pattern="[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"; }
                    button type="submit" { (ctx.t("artifact.copy_do")) }
                }
            }
            @if can_delete {
                p { a.danger href={ (here) "/delete" } { (ctx.t("artifact.delete")) } }
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

/// The manifest's layers (digest, compressed size) in order; none for an index or an
/// artifact without layers. Read from the registry after the API answered the artifact.
async fn layers_of(ctx: &Ctx, name: &RepoName, digest: &str) -> Vec<(String, u64)> {
    let Ok(reference) = digest.parse::<Reference>() else { return Vec::new() };
    let Ok(m) = ctx.state.registry.manifest(name, &reference).await else { return Vec::new() };
    let v: Value = serde_json::from_slice(&m.content).unwrap_or(Value::Null);
    v["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| (l["digest"].as_str().unwrap_or("").to_string(), l["size"].as_u64().unwrap_or(0)))
        .collect()
}

/// The build step that made each of `layers` layers: the config's `history` without its
/// `empty_layer` entries (ENV, CMD, …, which add no layer) lines up with the layers, in
/// order. `None` where the history runs short (an image built without one).
fn layer_commands(layers: usize, history: &[Value]) -> Vec<Option<String>> {
    let mut steps = history
        .iter()
        .filter(|h| h["empty_layer"].as_bool() != Some(true))
        .map(|h| h["created_by"].as_str().unwrap_or("").to_string());
    (0..layers).map(|_| steps.next().filter(|c| !c.is_empty())).collect()
}

/// A history step as a reader wants it: Docker's legacy `/bin/sh -c #(nop) ` prefix
/// (a metadata step) left out.
fn step(c: &str) -> &str {
    c.strip_prefix("/bin/sh -c #(nop) ").map_or(c, str::trim)
}

/// The image config's run settings: environment, entrypoint and command, exposed ports,
/// working directory, user and labels (only those it sets).
fn config_list(ctx: &Ctx, c: &Value) -> Markup {
    let text = |k: &str| c[k].as_str().filter(|s| !s.is_empty()).map(str::to_string);
    let words = |k: &str| c[k].as_array().filter(|a| !a.is_empty()).map(|a| Value::Array(a.clone()).to_string());
    let env: Vec<&str> = c["Env"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let ports: Vec<&String> = c["ExposedPorts"].as_object().map(|o| o.keys().collect()).unwrap_or_default();
    let labels = c["Labels"].as_object().cloned().unwrap_or_default();
    let rows = [
        ("cfg.entrypoint", words("Entrypoint")),
        ("cfg.cmd", words("Cmd")),
        ("cfg.workdir", text("WorkingDir")),
        ("cfg.user", text("User")),
    ];
    html! {
        dl.config {
            @if !env.is_empty() {
                dt { (ctx.t("cfg.env")) }
                dd { ul.plain { @for e in &env { li { code { (e) } } } } }
            }
            @for (key, val) in &rows { @if let Some(val) = val { dt { (ctx.t(key)) } dd { code { (val) } } } }
            @if !ports.is_empty() {
                dt { (ctx.t("cfg.ports")) }
                dd { @for (i, port) in ports.iter().enumerate() { @if i > 0 { ", " } code { (port) } } }
            }
            @if !labels.is_empty() {
                dt { (ctx.t("cfg.labels")) }
                dd { ul.plain { @for (k, val) in &labels {
                    li { code { (k) } " = " (val.as_str().map(str::to_string).unwrap_or_else(|| val.to_string())) }
                } } }
            }
        }
    }
}

/// `GET …/-/artifacts/{digest}/tags/{tag}/delete`: the confirm page of removing a tag.
pub(crate) fn confirm_untag(ctx: &Ctx, p: &str, r: &str, digest: &str, tag: &str) -> Response {
    let here = format!("{}/-/artifacts/{digest}", ui_repo(p, r));
    confirm(ctx, &format!("{p}/{r}:{tag}"), &format!("{here}/tags/{}/delete", enc(tag)), &here)
}

/// Removes one tag (the API's `DELETE …/tags/{tag}`; an immutable tag is refused there,
/// with its reason shown), then back to the artifact.
pub(crate) async fn untag(ctx: &Ctx, p: &str, r: &str, digest: &str, tag: &str, form: &Form) -> Response {
    let here = format!("{}/-/artifacts/{digest}", ui_repo(p, r));
    let path = format!("{}/artifacts/{}/tags/{}", api_repo(p, r), enc(digest), enc(tag));
    ctx.submit(form, Method::DELETE, &path, None, ctx.t("tags.removed"), &here, &here).await
}

/// `GET …/-/artifacts/{digest}/delete`: the confirm page of deleting the artifact, naming
/// the tags that go with it.
pub(crate) async fn confirm_delete(ctx: Ctx, p: &str, r: &str, digest: &str) -> Response {
    let a = ctx.call(Method::GET, &format!("{}/artifacts/{}?with_tag=true", api_repo(p, r), enc(digest)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let here = format!("{}/-/artifacts/{digest}", ui_repo(p, r));
    let tags: Vec<&str> = a.json["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    page(
        &ctx,
        ctx.t("confirm.title"),
        Nav::None,
        html! {
            form method="post" action={ (here) "/delete" } {
                (crate::layout::csrf(&ctx))
                p { (ctx.t("confirm.delete")) " " strong { (p) "/" (r) "@" (short(digest)) } (ctx.t("confirm.end")) }
                @if tags.is_empty() { p { (ctx.t("artifact.delete_no_tags")) } } @else {
                    p { (ctx.t("artifact.delete_tags")) }
                    ul { @for t in &tags { li { strong { (t) } } } }
                }
                button.danger type="submit" { (ctx.t("delete")) }
                " "
                a href=(here) { (ctx.t("cancel")) }
            }
        },
    )
}

/// Deletes the artifact with its tags (the API's `DELETE …/artifacts/{digest}`), then to
/// the repository's artifacts; a refusal goes back to the artifact with the API's words.
pub(crate) async fn delete(ctx: &Ctx, p: &str, r: &str, digest: &str, form: &Form) -> Response {
    let here = format!("{}/-/artifacts/{digest}", ui_repo(p, r));
    let path = format!("{}/artifacts/{}", api_repo(p, r), enc(digest));
    let to = format!("{}/-/artifacts", ui_repo(p, r));
    ctx.submit(form, Method::DELETE, &path, None, ctx.t("artifact.deleted"), &to, &here).await
}

/// Copies the artifact into another repository (Harbor's `POST …/artifacts?from=`), its
/// tags with it, then adds the optional extra tag there; to the copy's page. The API's
/// refusal (no such project, no permission, already there) comes back in its words.
pub(crate) async fn copy(ctx: &Ctx, p: &str, r: &str, digest: &str, form: &Form) -> Response {
    let here = format!("{}/-/artifacts/{digest}", ui_repo(p, r));
    if let Err(refused) = ctx.check_form(form, &here) {
        return refused;
    }
    let (tp, tr, tag) = (form.get("project").trim(), form.get("repo").trim().trim_matches('/'), form.get("tag").trim());
    if tp.is_empty() || tr.is_empty() {
        ctx.set_flash(false, ctx.t("artifact.copy_missing"));
        return ctx.redirect(&here);
    }
    let csrf = Some(form.get("_csrf"));
    let from = enc(&format!("{p}/{r}@{digest}"));
    let a = ctx.call_with(Method::POST, &format!("{}/artifacts?from={from}", api_repo(tp, tr)), None, csrf).await;
    if !a.ok() {
        ctx.set_flash(false, &a.error());
        return ctx.redirect(&here);
    }
    let done = format!("{} {tp}/{tr}.", ctx.t("artifact.copied"));
    let dest = format!("{}/-/artifacts/{digest}", ui_repo(tp, tr));
    if !tag.is_empty() {
        let path = format!("{}/artifacts/{}/tags", api_repo(tp, tr), enc(digest));
        let t = ctx.call_with(Method::POST, &path, Some(json!({ "name": tag })), csrf).await;
        if !t.ok() {
            ctx.set_flash(false, &format!("{done} {}", t.error()));
            return ctx.redirect(&dest);
        }
    }
    ctx.set_flash(true, &done);
    ctx.redirect(&dest)
}

/// A repository description's Markdown as HTML that is safe to show: raw HTML in it is
/// escaped as text (never passed through), and a link or image URL must be relative or
/// `http`, `https` or `mailto` (anything else, such as `javascript:`, becomes `#`).
pub(crate) fn markdown(src: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let opts = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(src, opts).map(|e| match e {
        Event::Html(t) | Event::InlineHtml(t) => Event::Text(t),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// A one-line message's Markdown (the banner) as safe HTML: links, emphasis, strong,
/// strikethrough, inline code and line breaks; any other construct gives its text only
/// (headings, lists, images as their alt text), raw HTML is escaped as text and link URLs
/// pass [`markdown`]'s rule.
pub(crate) fn inline_markdown(src: &str) -> String {
    use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
    let kept = |t: &Tag<'_>| matches!(t, Tag::Emphasis | Tag::Strong | Tag::Strikethrough | Tag::Link { .. });
    let kept_end = |t: &TagEnd| matches!(t, TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Link);
    let events = Parser::new_ext(src, Options::ENABLE_STRIKETHROUGH).filter_map(|e| match e {
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Some(Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id }))
        }
        Event::Start(t) => kept(&t).then_some(Event::Start(t)),
        // Blocks run on as one line.
        Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item | TagEnd::CodeBlock) => {
            Some(Event::Text(CowStr::Borrowed(" ")))
        }
        Event::End(t) => kept_end(&t).then_some(Event::End(t)),
        Event::Html(t) | Event::InlineHtml(t) => Some(Event::Text(t)),
        Event::SoftBreak => Some(Event::Text(CowStr::Borrowed(" "))),
        e @ (Event::Text(_) | Event::Code(_) | Event::HardBreak) => Some(e),
        _ => None,
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out.trim_end().to_string()
}

/// The URL if it is relative or `http`, `https` or `mailto`; `#` otherwise. The scheme is
/// read as browsers do, ignoring ASCII whitespace and control characters in it.
fn safe_url(url: pulldown_cmark::CowStr<'_>) -> pulldown_cmark::CowStr<'_> {
    let cleaned: String = url.chars().filter(|c| !c.is_ascii_control() && *c != ' ').collect();
    let scheme = cleaned.find([':', '/', '?', '#']).filter(|i| cleaned[*i..].starts_with(':')).map(|i| &cleaned[..i]);
    match scheme.map(str::to_ascii_lowercase).as_deref() {
        None | Some("http" | "https" | "mailto") => url,
        Some(_) => pulldown_cmark::CowStr::Borrowed("#"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escapes_html_and_refuses_unsafe_links() {
        let html = markdown(concat!(
            "# Shop\n\n<script>alert(1)</script>\n\n",
            "See [docs](https://example.com/d), [rel](docs/x.md), [mail](mailto:a@example.com), ",
            "[bad](javascript:alert(1)), [bad2](JAVASCRIPT:alert(2)) and <b>bold</b> **bold**.\n\n",
            "![img](data:image/png;base64,AAAA)",
        ));
        assert!(html.contains("<h1>Shop</h1>"), "{html}");
        assert!(!html.contains("<script") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(!html.contains("<b>") && html.contains("&lt;b&gt;bold&lt;/b&gt;"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains(r#"href="https://example.com/d""#) && html.contains(r#"href="docs/x.md""#), "{html}");
        assert!(html.contains(r#"href="mailto:a@example.com""#), "{html}");
        assert!(!html.to_ascii_lowercase().contains("javascript") && !html.contains("data:image"), "{html}");
        assert_eq!(html.matches(r##"href="#""##).count(), 2, "{html}");
        assert!(html.contains(r##"src="#""##), "{html}");
    }

    #[test]
    fn banner_markdown_keeps_links_emphasis_and_code_only() {
        let html = inline_markdown(concat!(
            "# Maintenance *tonight* at `22:00`: see [status](https://status.example.com) or **ask**.\n",
            "Beware <script>alert(1)</script> [x](javascript:alert(1)) [y]( JaVaScRiPt:alert(2)) ",
            "<a href=\"javascript:alert(3)\">z</a> ![logo](https://example.com/l.png) ~~old~~\n\n- item",
        ));
        assert!(html.contains("Maintenance <em>tonight</em> at <code>22:00</code>"), "{html}");
        assert!(html.contains(r#"<a href="https://status.example.com">status</a>"#), "{html}");
        assert!(html.contains("<strong>ask</strong>") && html.contains("<del>old</del>"), "{html}");
        assert!(!html.contains("<script") && html.contains("&lt;script&gt;"), "{html}");
        assert!(!html.contains("<a href=\"javascript") && html.contains("&lt;a href="), "{html}");
        assert_eq!(html.matches(r##"<a href="#">"##).count(), 2, "{html}");
        assert!(!html.contains("JaVaScRiPt:alert") && !html.contains("(javascript:"), "{html}");
        // No blocks and no images: one line of text, the image as its alt text.
        for tag in ["<h1", "<p>", "<ul", "<li", "<img"] {
            assert!(!html.contains(tag), "{tag} in {html}");
        }
        assert!(html.contains("logo") && html.contains("item"), "{html}");
        // An HTML block (a line that starts with a tag) is text too.
        let block = inline_markdown("<script>alert(1)</script>\n<iframe src=\"javascript:alert(2)\">");
        assert!(!block.contains('<') && block.contains("&lt;script&gt;") && block.contains("&lt;iframe"), "{block}");
    }

    #[test]
    fn layers_line_up_with_history_without_empty_layers() {
        let h = serde_json::json!([
            {"created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
            {"created_by": "/bin/sh -c #(nop)  CMD [\"sh\"]", "empty_layer": true},
            {"created_by": "RUN /bin/sh -c apk add curl # buildkit"},
            {"created_by": "ENV A=b", "empty_layer": true},
            {"created_by": "COPY app /app # buildkit"},
        ]);
        let got = layer_commands(3, h.as_array().unwrap());
        assert_eq!(
            got,
            [
                Some("/bin/sh -c #(nop) ADD file:abc in / ".to_string()),
                Some("RUN /bin/sh -c apk add curl # buildkit".to_string()),
                Some("COPY app /app # buildkit".to_string())
            ]
        );
        assert_eq!(step(got[0].as_deref().unwrap()), "ADD file:abc in /");
        assert_eq!(layer_commands(2, &[]), vec![None::<String>, None], "no history");
        assert_eq!(step("RUN x"), "RUN x");
    }
}
