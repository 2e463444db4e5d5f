//! Sign in and out through the API's own session endpoints (`POST /c/login`,
//! `GET /c/log_out`): the `sid` cookie the browser gets is Harbor's, and signing out
//! revokes it on every instance. Preferences are plain cookies.

use axum::body::Body;
use axum::http::{Method, Request, header};
use axum::response::Response;
use maud::html;

use crate::layout::{Nav, csrf, page};
use crate::{Client, Ctx, DateFormat, Form, Lang, Theme, enc, query};

/// Where to go after signing in: a local path only (never another site).
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") { next } else { "/projects" }
}

pub async fn login_form(ctx: Ctx, uri: axum::http::Uri) -> Response {
    let q = query(&uri);
    let next = safe_next(q.get("next")).to_string();
    if ctx.user.is_some() {
        return ctx.redirect(&next);
    }
    page(
        &ctx,
        ctx.t("signin"),
        Nav::None,
        html! {
            form.narrow method="post" action="/login" {
                (csrf(&ctx))
                input type="hidden" name="next" value=(next);
                p {
                    label for="principal" { (ctx.t("username")) }
                    input id="principal" name="principal" type="text" autocomplete="username" required autofocus;
                }
                p {
                    label for="password" { (ctx.t("password")) }
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                }
                button.primary type="submit" { (ctx.t("signin")) }
            }
        },
    )
}

pub async fn login(ctx: Ctx, form: Form) -> Response {
    let next = safe_next(form.get("next")).to_string();
    let back = format!("/login?next={}", enc(&next));
    if let Err(r) = ctx.check_form(&form, &back) {
        return r;
    }
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("principal", form.get("principal"))
        .append_pair("password", form.get("password"))
        .finish();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/c/login")
        .header(header::HOST, ctx.host.as_str())
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body));
    let Ok(req) = req else {
        return ctx.redirect(&back);
    };
    let a = ctx.send(req).await;
    if !a.ok() {
        ctx.set_flash(false, ctx.t("signin.failed"));
        return ctx.redirect(&back);
    }
    for c in a.headers.get_all(header::SET_COOKIE) {
        if let Ok(c) = c.to_str() {
            ctx.add_cookie(c);
        }
    }
    ctx.redirect(&next)
}

pub async fn logout(ctx: Ctx, form: Form) -> Response {
    if let Err(r) = ctx.check_form(&form, "/projects") {
        return r;
    }
    let a = ctx.call(Method::GET, "/c/log_out", None).await;
    for c in a.headers.get_all(header::SET_COOKIE) {
        if let Ok(c) = c.to_str() {
            ctx.add_cookie(c);
        }
    }
    ctx.set_flash(true, ctx.t("signed_out"));
    ctx.redirect("/login")
}

pub async fn prefs_form(ctx: Ctx) -> Response {
    page(
        &ctx,
        ctx.t("prefs.title"),
        Nav::Prefs,
        html! {
            form.narrow method="post" action="/prefs" {
                (csrf(&ctx))
                p {
                    label for="lang" { (ctx.t("prefs.lang")) }
                    select id="lang" name="lang" {
                        @for l in Lang::ALL {
                            option value=(l.code()) selected[l == ctx.lang] lang=(l.code()) { (l.label()) }
                        }
                    }
                }
                p {
                    label for="theme" { (ctx.t("prefs.theme")) }
                    select id="theme" name="theme" {
                        @for t in Theme::ALL {
                            option value=(t.name()) selected[t == ctx.theme] { (ctx.t(&format!("theme.{}", t.name()))) }
                        }
                    }
                }
                p {
                    label for="client" { (ctx.t("prefs.client")) }
                    select id="client" name="client" {
                        @for c in Client::ALL {
                            option value=(c.name()) selected[c == ctx.client] { (c.name()) }
                        }
                    }
                }
                p {
                    label for="datefmt" { (ctx.t("prefs.dates")) }
                    select id="datefmt" name="datefmt" {
                        @for f in DateFormat::ALL {
                            option value=(f.name()) selected[f == ctx.dates] { (ctx.t(&format!("dates.{}", f.name()))) }
                        }
                    }
                }
                button.primary type="submit" { (ctx.t("save")) }
            }
        },
    )
}

pub async fn prefs(mut ctx: Ctx, form: Form) -> Response {
    if let Err(r) = ctx.check_form(&form, "/prefs") {
        return r;
    }
    const YEAR: u32 = 365 * 24 * 3600;
    if let Some(l) = Lang::parse(form.get("lang")) {
        ctx.add_cookie(&format!("lang={}; Path=/; Max-Age={YEAR}; SameSite=Lax", l.code()));
        ctx.lang = l;
    }
    if let Some(t) = Theme::parse(form.get("theme")) {
        ctx.add_cookie(&format!("theme={}; Path=/; Max-Age={YEAR}; SameSite=Lax", t.name()));
    }
    if let Some(c) = Client::parse(form.get("client")) {
        ctx.add_cookie(&format!("client={}; Path=/; Max-Age={YEAR}; SameSite=Lax", c.name()));
    }
    if let Some(f) = DateFormat::parse(form.get("datefmt")) {
        ctx.add_cookie(&format!("datefmt={}; Path=/; Max-Age={YEAR}; SameSite=Lax", f.name()));
    }
    ctx.set_flash(true, ctx.t("prefs.saved"));
    ctx.redirect("/prefs")
}

/// `/account`: who you are, and a password change (through the API, whose rule also ends
/// every session of the user: the next page asks to sign in again).
pub async fn account(ctx: Ctx) -> Response {
    let user = match ctx.require_user() {
        Ok(u) => u.clone(),
        Err(r) => return r,
    };
    let me = ctx.call(Method::GET, "/api/v2.0/users/current", None).await;
    page(
        &ctx,
        ctx.t("account.title"),
        Nav::None,
        html! {
            dl {
                dt { (ctx.t("username")) } dd { (user.name) }
                dt { (ctx.t("col.admin")) } dd { @if user.sysadmin { (ctx.t("yes")) } @else { (ctx.t("no")) } }
                dt { (ctx.t("col.created")) } dd { (crate::layout::when(&ctx, &me.json["creation_time"])) }
            }
            h2 id="profile" { (ctx.t("account.profile")) }
            form.narrow method="post" action="/account/profile" aria-labelledby="profile" {
                (csrf(&ctx))
                p { label for="email" { (ctx.t("col.email")) } input id="email" name="email" type="email" autocomplete="email" required value=(me.json["email"].as_str().unwrap_or("")); }
                p { label for="realname" { (ctx.t("users.realname")) } input id="realname" name="realname" autocomplete="name" required value=(me.json["realname"].as_str().unwrap_or("")); }
                p { label for="comment" { (ctx.t("account.comment")) } input id="comment" name="comment" maxlength="30" value=(me.json["comment"].as_str().unwrap_or("")); }
                button.primary type="submit" { (ctx.t("save")) }
            }
            h2 id="pw" { (ctx.t("account.password")) }
            form.narrow method="post" action="/account" aria-labelledby="pw" {
                (csrf(&ctx))
                p { label for="old_password" { (ctx.t("account.old")) } input id="old_password" name="old_password" type="password" autocomplete="current-password" required; }
                p { label for="new_password" { (ctx.t("account.new")) } input id="new_password" name="new_password" type="password" autocomplete="new-password" required; }
                p { label for="confirm_password" { (ctx.t("account.confirm")) } input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required; }
                button.primary type="submit" { (ctx.t("save")) }
            }
        },
    )
}

/// Your e-mail, full name and comment (`PUT /users/{id}`; the API's rules and messages).
pub async fn save_profile(ctx: Ctx, form: Form) -> Response {
    let id = match ctx.require_user() {
        Ok(u) => u.id,
        Err(r) => return r,
    };
    let body = serde_json::json!({
        "email": form.get("email").trim(),
        "realname": form.get("realname").trim(),
        "comment": form.get("comment").trim(),
    });
    let path = format!("/api/v2.0/users/{id}");
    ctx.submit(&form, Method::PUT, &path, Some(body), ctx.t("account.profile_saved"), "/account", "/account").await
}

pub async fn change_password(ctx: Ctx, form: Form) -> Response {
    let id = match ctx.require_user() {
        Ok(u) => u.id,
        Err(r) => return r,
    };
    if let Err(r) = ctx.check_form(&form, "/account") {
        return r;
    }
    if form.get("new_password") != form.get("confirm_password") {
        ctx.set_flash(false, ctx.t("account.mismatch"));
        return ctx.redirect("/account");
    }
    let body =
        serde_json::json!({ "old_password": form.get("old_password"), "new_password": form.get("new_password") });
    let a = ctx
        .call_with(Method::PUT, &format!("/api/v2.0/users/{id}/password"), Some(body), Some(form.get("_csrf")))
        .await;
    if !a.ok() {
        return ctx.after(&a, "", "/account");
    }
    ctx.add_cookie("sid=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    ctx.set_flash(true, ctx.t("account.changed"));
    ctx.redirect("/login")
}
