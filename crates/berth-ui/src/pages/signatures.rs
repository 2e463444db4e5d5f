//! `/projects/{p}/signatures`: what the project's signatures are verified against
//! (Berth's `/projects/{p}/signature-trust`: cosign public keys and Notation
//! certificates) and the content-trust switches that make pulls need a signature. The
//! document is replaced whole: adding or removing one key is a `PUT` of the rest.

use axum::extract::Path;
use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::{Value, json};

use super::{api_project, project_page, refusal};
use crate::layout::{Nav, csrf, enabled, head, page, post_button, project_tabs};
use crate::{Ctx, Form, enc};

const KINDS: [(&str, &str, &str); 2] = [
    ("cosign_public_keys", "public_key", "sig.cosign_keys"),
    ("notation_certificates", "certificate", "sig.notation_certs"),
];

fn base(p: &str) -> String {
    format!("/projects/{}/signatures", enc(p))
}

/// The first line after a PEM header, shortened: enough to tell keys apart.
fn preview(pem: &str) -> String {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect::<Vec<_>>().join("");
    let n = body.chars().count();
    if n <= 24 {
        body
    } else {
        format!("{}…{}", body.chars().take(12).collect::<String>(), body.chars().skip(n - 8).collect::<String>())
    }
}

pub async fn show(ctx: Ctx, Path(p): Path<String>) -> Response {
    let proj = match project_page(&ctx, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let a = ctx.call(Method::GET, &format!("{}/signature-trust", api_project(&p)), None).await;
    if !a.ok() {
        return refusal(&ctx, &a);
    }
    let can = proj.can("metadata", "update");
    let b = base(&p);
    let md = &proj.json["metadata"];
    page(
        &ctx,
        &p,
        Nav::Projects,
        html! {
            (project_tabs(&ctx, &p, "signatures"))
            h2 { (ctx.t("sig.policy")) }
            ul {
                li { (ctx.t("sig.require_cosign")) ": " (enabled(&ctx, md["enable_content_trust_cosign"].as_str() == Some("true"))) }
                li { (ctx.t("sig.require_notation")) ": " (enabled(&ctx, md["enable_content_trust"].as_str() == Some("true"))) }
            }
            p.hint { (ctx.t("sig.policy_hint")) " " a href={ "/projects/" (enc(&p)) "/settings" } { (ctx.t("tab.settings")) } }
            @for (field, value, title) in KINDS {
                h2 { (ctx.t(title)) }
                @let items = a.json[field].as_array().cloned().unwrap_or_default();
                @if items.is_empty() { p { (ctx.t("sig.none_trusted")) } } @else {
                    table {
                        (head(&ctx, &["col.name", "sig.material"], can))
                        tbody { @for (i, k) in items.iter().enumerate() {
                            @let name = k["name"].as_str().unwrap_or("");
                            tr {
                                th scope="row" { (name) }
                                td { code { (preview(k[value].as_str().unwrap_or(""))) } }
                                @if can { td { (post_button(&ctx, &format!("{b}/{field}/{i}/delete"), ctx.t("delete"), &format!("{} {name}", ctx.t("delete")), true)) } }
                            }
                        } }
                    }
                }
            }
            @if can {
                h2 id="add-key" { (ctx.t("sig.add")) }
                form.narrow method="post" action=(b) aria-labelledby="add-key" {
                    (csrf(&ctx))
                    p { label for="sig_kind" { (ctx.t("col.kind")) }
                        select id="sig_kind" name="kind" {
                            @for (field, _, title) in KINDS { option value=(field) { (ctx.t(title)) } }
                        }
                    }
                    p { label for="sig_name" { (ctx.t("col.name")) } input id="sig_name" name="name" required; }
                    p { label for="sig_pem" { (ctx.t("sig.pem")) } textarea id="sig_pem" name="pem" required placeholder="-----BEGIN PUBLIC KEY-----" {} }
                    button.primary type="submit" { (ctx.t("sig.add")) }
                }
            }
        },
    )
}

async fn put(ctx: &Ctx, p: &str, form: &Form, doc: Value) -> Response {
    let (path, back) = (format!("{}/signature-trust", api_project(p)), base(p));
    ctx.submit(form, Method::PUT, &path, Some(doc), ctx.t("saved"), &back, &back).await
}

pub async fn add(ctx: Ctx, Path(p): Path<String>, form: Form) -> Response {
    let cur = ctx.call(Method::GET, &format!("{}/signature-trust", api_project(&p)), None).await;
    if !cur.ok() {
        return ctx.after(&cur, "", &base(&p));
    }
    let mut doc = cur.json;
    let Some((field, value, _)) = KINDS.iter().find(|(f, _, _)| *f == form.get("kind")) else {
        ctx.set_flash(false, &format!("kind: {:?} is not a kind of trusted key", form.get("kind")));
        return ctx.redirect(&base(&p));
    };
    let entry = json!({ "name": form.get("name").trim(), *value: form.get("pem").replace("\r\n", "\n") });
    match doc[*field].as_array_mut() {
        Some(list) => list.push(entry),
        None => doc[*field] = json!([entry]),
    }
    put(&ctx, &p, &form, doc).await
}

pub async fn remove(ctx: Ctx, Path((p, field, i)): Path<(String, String, usize)>, form: Form) -> Response {
    let cur = ctx.call(Method::GET, &format!("{}/signature-trust", api_project(&p)), None).await;
    if !cur.ok() {
        return ctx.after(&cur, "", &base(&p));
    }
    let mut doc = cur.json;
    match doc.get_mut(field.as_str()).and_then(Value::as_array_mut).filter(|l| i < l.len()) {
        Some(list) => {
            list.remove(i);
        }
        None => {
            ctx.set_flash(false, ctx.t("sig.no_key"));
            return ctx.redirect(&base(&p));
        }
    }
    put(&ctx, &p, &form, doc).await
}
