//! The pieces of a bulk action on a list (tick rows, one confirm page naming each, one
//! API call each, refusals reported by name with the API's reason), shared by the lists
//! that have one: the project's repositories here, and the artifact list's bulk delete
//! does the same in `repos.rs`.
//!
//! The signatures are those of the helpers the tags-view branch (`ui-tags`) put privately
//! in `pages/repos.rs`; on merging, those copies go and `repos.rs` uses these.

use axum::http::Method;
use axum::response::Response;
use maud::html;
use serde_json::Value;

use crate::layout::{Nav, page};
use crate::{Ctx, Form};

/// The most items one bulk action takes (a page shows at most 50).
pub(crate) const BULK_MAX: usize = 100;

/// The ticked values of a list's form (`field`), at most [`BULK_MAX`]; none: back to
/// `back` with `none_key`'s message.
pub(crate) fn ticked<'a>(
    ctx: &Ctx,
    form: &'a Form,
    field: &str,
    none_key: &str,
    back: &str,
) -> Result<Vec<&'a str>, Response> {
    let items: Vec<&str> = form.all(field).into_iter().filter(|d| !d.is_empty()).take(BULK_MAX).collect();
    if items.is_empty() {
        ctx.set_flash(false, ctx.t(none_key));
        return Err(ctx.redirect(back));
    }
    Ok(items)
}

/// The confirm page of a bulk delete: `question`, then each item (`value` of `field`,
/// shown as `name`), sent back to `action` with `confirmed=1`. Works without JavaScript.
pub(crate) fn bulk_confirm(
    ctx: &Ctx,
    action: &str,
    field: &str,
    items: &[(String, String)],
    question: &str,
    back: &str,
) -> Response {
    page(
        ctx,
        ctx.t("confirm.title"),
        Nav::None,
        html! {
            form method="post" action=(action) {
                (crate::layout::csrf(ctx))
                input type="hidden" name="confirmed" value="1";
                p { (ctx.t(question)) }
                ul { @for (v, n) in items { li { input type="hidden" name=(field) value=(v); strong { (n) } } } }
                button.danger type="submit" { (ctx.t("delete")) }
                " "
                a href=(back) { (ctx.t("cancel")) }
            }
        },
    )
}

/// A bulk action: one API call per item (`method path body`, the item named `name`),
/// with the form's CSRF token; then back to `back` with how many the API did (`done_key`,
/// `#` the count) and those it refused by name with its reason (after `refused_key`).
pub(crate) async fn bulk_run(
    ctx: &Ctx,
    form: &Form,
    method: Method,
    calls: Vec<(String, String, Option<Value>)>,
    done_key: &str,
    refused_key: &str,
    back: &str,
) -> Response {
    let (mut done, mut refused) = (0, Vec::new());
    for (path, name, body) in calls {
        let a = ctx.call_with(method.clone(), &path, body, Some(form.get("_csrf"))).await;
        if a.ok() {
            done += 1;
        } else {
            refused.push(format!("{name}: {}", a.error()));
        }
    }
    let done = ctx.t(done_key).replace('#', &done.to_string());
    if refused.is_empty() {
        ctx.set_flash(true, &done);
    } else {
        let mut msg = format!("{done} {} {}", ctx.t(refused_key), refused.join("; "));
        // The flash is a cookie: keep it well under the 4 KiB browsers store.
        if msg.len() > 2000 {
            let cut = (0..=2000).rev().find(|i| msg.is_char_boundary(*i)).unwrap_or(0);
            msg.truncate(cut);
            msg.push('…');
        }
        ctx.set_flash(false, &msg);
    }
    ctx.redirect(back)
}
