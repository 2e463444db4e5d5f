//! The web UI's second round of administration over HTTP: deleting several users at once
//! (the confirm page, your own account refused with a message), the jobs waiting in a
//! queue (listed in the order workers take them, paged, one stopped) and a webhook's
//! second target edited in place; each as an administrator (or a project's
//! administrator) and as a role the API refuses.

use std::time::Duration;

use berth_core::store::jobs::{JobState, JobStore};

use crate::jobs::{sample_env, sqlite_of, start_sample, wait_for};
use crate::support::*;
use crate::ui::{post_from, signed_in};
use crate::ui_features::refused;

#[tokio::test]
async fn ui_admin_bulk_delete_users() {
    let s = Server::start_harbor();
    let ann = create_user(&s, "ann").await.to_string();
    let bob = create_user(&s, "bob").await.to_string();
    let cat = create_user(&s, "cat").await.to_string();
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    let p = w.page("/admin/users").await;
    p.has(r#"<form id="users-bulk" method="post" action="/admin/users/-/delete">"#)
        .has(&format!(r#"form="users-bulk" name="user" value="{ann}" aria-label="Select ann""#))
        .has(r#"aria-label="Select cat""#)
        // No box on your own row.
        .lacks(r#"aria-label="Select admin""#)
        .has("Delete selected users");

    // Nothing ticked.
    w.submit("/admin/users", "/admin/users/-/delete", &[]).await.has(r#"role="alert""#).has("No user was selected.");

    // Two ticked: one confirm page naming each, nothing deleted yet.
    let c = post_from(&mut w, "/admin/users", "/admin/users/-/delete", &[("user", &ann), ("user", &bob)]).await;
    assert_eq!(c.status, 200, "{}", c.body);
    c.has("Delete these users?")
        .has("<strong>ann</strong>")
        .has("<strong>bob</strong>")
        .lacks("<strong>cat</strong>")
        .has(r#"name="confirmed" value="1""#)
        .has(&format!(r#"name="user" value="{ann}""#));
    assert_eq!(get(&s, &format!("/api/v2.0/users/{ann}"), &admin()).await.status(), 200, "not before the confirmation");
    let csrf = c.csrf();
    let r =
        w.post("/admin/users/-/delete", &[("_csrf", &csrf), ("confirmed", "1"), ("user", &ann), ("user", &bob)]).await;
    assert_eq!(r.status, 303);
    w.page(&r.location).await.has("Deleted 2 users.").lacks(">ann<").lacks(">bob<").has(">cat<");
    for id in [&ann, &bob] {
        assert_eq!(get(&s, &format!("/api/v2.0/users/{id}"), &admin()).await.status(), 404);
    }

    // One the API does not know is reported by name (its id) with the API's reason.
    let r = post_from(
        &mut w,
        "/admin/users",
        "/admin/users/-/delete",
        &[("confirmed", "1"), ("user", &cat), ("user", "4242")],
    )
    .await;
    let p = w.page(&r.location).await;
    p.has("Deleted 1 users.").has("Not deleted:").has("#4242:");
    assert_eq!(get(&s, &format!("/api/v2.0/users/{cat}"), &admin()).await.status(), 404);

    // Yourself (only a forged form can tick it): refused with a message, nothing deleted.
    let dan = create_user(&s, "dan").await.to_string();
    let r = post_from(
        &mut w,
        "/admin/users",
        "/admin/users/-/delete",
        &[("confirmed", "1"), ("user", &dan), ("user", "1")],
    )
    .await;
    w.page(&r.location).await.has(r#"role="alert""#).has("You cannot delete your own account; nothing was deleted.");
    assert_eq!(get(&s, "/api/v2.0/users/1", &admin()).await.status(), 200);
    assert_eq!(get(&s, &format!("/api/v2.0/users/{dan}"), &admin()).await.status(), 200);

    // A forged form without the session's CSRF token: nothing deleted.
    let r = w.post("/admin/users/-/delete", &[("_csrf", "forged"), ("confirmed", "1"), ("user", &dan)]).await;
    w.page(&r.location).await.has("The form expired.");
    assert_eq!(get(&s, &format!("/api/v2.0/users/{dan}"), &admin()).await.status(), 200);

    // Not an administrator: the confirm page and the delete are refused by the API.
    let mut d = signed_in(&s, "dan", PW).await;
    let csrf = d.page("/account").await.csrf();
    refused(&mut d, &csrf, "/admin/users/-/delete", &[("user", "1")]).await;
    refused(&mut d, &csrf, "/admin/users/-/delete", &[("confirmed", "1"), ("user", "1")]).await;
    assert_eq!(get(&s, "/api/v2.0/users/1", &admin()).await.status(), 200);
}

#[tokio::test]
async fn ui_admin_jobs_waiting_in_a_queue() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::spawn(&tmp.path().join("data"), &sample_env());
    create_user(&s, "bob").await;
    let store = sqlite_of(&s);
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    // The queue paused: 23 jobs wait (more than a page of 20).
    w.submit("/admin/jobs", "/admin/jobs/queues/SAMPLE/pause", &[]).await.has("Queue paused.");
    let mut waiting = Vec::new();
    for _ in 0..23 {
        waiting.push(start_sample(store.as_ref(), 1).await.1);
    }
    w.page("/admin/jobs").await.has(r#"href="/admin/jobs/queues/SAMPLE""#).has(r#"aria-label="Waiting jobs: SAMPLE""#);

    // The API (Berth's extension): in the order workers take them, paged, counted.
    let r = get(&s, "/api/v2.0/jobservice/queues/SAMPLE/jobs?page=1&page_size=20", &admin()).await;
    assert_eq!(header(&r, "x-total-count"), "23");
    assert!(header(&r, "link").contains("rel=\"next\""), "{}", header(&r, "link"));
    let first = body_json(r).await;
    let ids: Vec<String> =
        first.as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap().to_string()).collect();
    let expected: Vec<String> = waiting.iter().take(20).map(|i| i.to_string()).collect();
    assert_eq!(ids, expected);
    let j = &first[0];
    assert_eq!(
        (j["job_name"].as_str(), j["attempts"].as_i64(), j["max_attempts"].as_i64()),
        (Some("SAMPLE"), Some(0), Some(5))
    );
    assert!(j["enqueue_at"].as_str().unwrap().ends_with('Z') && j["run_at"].as_str().is_some(), "{j}");
    // Bad input, named: a page size out of range, a job type nobody serves.
    let r = get(&s, "/api/v2.0/jobservice/queues/SAMPLE/jobs?page_size=0", &admin()).await;
    assert!(expect_error(r, 400, "BAD_REQUEST").await.contains("page_size"));
    let r = get(&s, "/api/v2.0/jobservice/queues/NOPE/jobs", &admin()).await;
    assert!(expect_error(r, 404, "NOT_FOUND").await.contains("NOPE"));

    // The page: the first 20, then the last 3 on page 2.
    let p = w.page("/admin/jobs/queues/SAMPLE").await;
    p.has("Waiting jobs")
        .has("Enqueued")
        .has("Attempts")
        .has("Next run")
        .has("0 / 5")
        .has(&format!(r#"aria-label="Stop SAMPLE {}""#, waiting[0]))
        .lacks(&format!(r#"aria-label="Stop SAMPLE {}""#, waiting[20]))
        .has("1 / 2 · 23");
    w.page("/admin/jobs/queues/SAMPLE?page=2").await.has(&format!(r#"aria-label="Stop SAMPLE {}""#, waiting[22]));

    // Stop one: back to the queue's page, the job cancelled, the others still waiting.
    let stop = format!("/admin/jobs/{}/stop", waiting[0]);
    let p = w.submit("/admin/jobs/queues/SAMPLE", &stop, &[("queue", "SAMPLE")]).await;
    p.has("Stop requested.").has("1 / 2 · 22").lacks(&format!(r#"aria-label="Stop SAMPLE {}""#, waiting[0]));
    assert_eq!(store.job(waiting[0]).await.unwrap().unwrap().state, JobState::Cancelled);
    assert_eq!(store.job(waiting[1]).await.unwrap().unwrap().state, JobState::Queued);
    // A job type nobody serves: the API's refusal as the page.
    let p = w.get("/admin/jobs/queues/NOPE").await;
    assert_eq!(p.status, 404);
    p.has("not found");

    // Not an administrator: the list and the stop refused.
    let mut b = signed_in(&s, "bob", PW).await;
    assert_eq!(b.get("/admin/jobs/queues/SAMPLE").await.status, 403);
    assert_eq!(get(&s, "/api/v2.0/jobservice/queues/SAMPLE/jobs", &user("bob")).await.status(), 403);
    let csrf = b.page("/account").await.csrf();
    refused(&mut b, &csrf, &format!("/admin/jobs/{}/stop", waiting[1]), &[("queue", "SAMPLE")]).await;
    assert_eq!(store.job(waiting[1]).await.unwrap().unwrap().state, JobState::Queued);

    // Resumed, they all run.
    w.submit("/admin/jobs", "/admin/jobs/queues/SAMPLE/resume", &[]).await;
    wait_for("the queue to drain", Duration::from_secs(60), async || {
        let r = get(&s, "/api/v2.0/jobservice/queues/SAMPLE/jobs", &admin()).await;
        (header(&r, "x-total-count") == "0").then_some(())
    })
    .await;
}

#[tokio::test]
async fn ui_edit_a_webhooks_second_target_in_place() {
    let s = Server::start_harbor();
    create_user(&s, "mnt").await;
    create_project(&s, &admin(), "hooks", false).await;
    add_member(&s, "hooks", "mnt", 4).await;
    let hook = serde_json::json!({"name": "two", "event_types": ["PUSH_ARTIFACT"], "targets": [
        {"type": "http", "address": "http://127.0.0.1:9/first", "payload_format": "Default"},
        {"type": "http", "address": "http://127.0.0.1:9/second", "payload_format": "Default"},
    ]});
    let r = call(&s, reqwest::Method::POST, "/api/v2.0/projects/hooks/webhook/policies", &admin(), Some(&hook)).await;
    assert_eq!(r.status(), 201);
    let id = ok_json(&s, "/api/v2.0/projects/hooks/webhook/policies", &admin()).await[0]["id"].as_i64().unwrap();
    let api = format!("/api/v2.0/projects/hooks/webhook/policies/{id}");
    let edit = format!("/projects/hooks/webhooks/{id}/edit");
    let target = format!("/projects/hooks/webhooks/{id}/targets/1/edit");
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    w.page(&edit)
        .await
        .has(&format!(r#"href="{target}""#))
        .has(r#"aria-label="Edit http://127.0.0.1:9/second""#)
        .has(&format!(r#"href="/projects/hooks/webhooks/{id}/targets/0/edit""#));

    // The second target's page: its own values, every field labelled.
    let p = w.page(&target).await;
    p.has("Edit a target")
        .has(r#"value="http://127.0.0.1:9/second""#)
        .lacks(r#"value="http://127.0.0.1:9/first""#)
        .has(r#"<label for="et_address">"#)
        .has(r#"<label for="et_auth">"#)
        .has(r#"<label for="et_format">"#)
        .has(r#"<option value="CloudEvents">"#);
    let p = w
        .submit(
            &target,
            &target,
            &[
                ("notify_type", "http"),
                ("address", "https://127.0.0.1:9/changed"),
                ("auth_header", "Bearer second"),
                ("skip_cert_verify", "true"),
                ("payload_format", "CloudEvents"),
            ],
        )
        .await;
    p.has("Saved.").has("https://127.0.0.1:9/changed");
    let pol = ok_json(&s, &api, &admin()).await;
    let t = &pol["targets"];
    assert_eq!(t.as_array().unwrap().len(), 2, "{pol}");
    assert_eq!(t[0]["address"], "http://127.0.0.1:9/first", "the first target stays");
    assert_eq!(
        (t[1]["address"].as_str(), t[1]["auth_header"].as_str(), t[1]["skip_cert_verify"].as_bool()),
        (Some("https://127.0.0.1:9/changed"), Some("Bearer second"), Some(true))
    );
    assert_eq!((t[1]["payload_format"].as_str(), pol["name"].as_str()), (Some("CloudEvents"), Some("two")));

    // Bad input: the API's message naming the field, back on the target's page.
    let p = w.submit(&target, &target, &[("notify_type", "http"), ("address", "not a url")]).await;
    p.has(r#"role="alert""#).has("targets[1].address").has("Edit a target");
    // A target that is not there.
    let p = w.get(&format!("/projects/hooks/webhooks/{id}/targets/5/edit")).await;
    assert_eq!(p.status, 404);
    p.has("There is no such target.");
    let r =
        post_from(&mut w, &edit, &format!("/projects/hooks/webhooks/{id}/targets/5/edit"), &[("address", "http://x")])
            .await;
    w.page(&r.location).await.has("There is no such target.");

    // A maintainer may not update webhook policies: no link, the page and the change refused.
    let mut m = signed_in(&s, "mnt", PW).await;
    assert_eq!(m.get(&target).await.status, 403);
    let csrf = m.page("/projects/hooks/webhooks").await.csrf();
    refused(&mut m, &csrf, &target, &[("notify_type", "http"), ("address", "http://127.0.0.1:9/mine")]).await;
    assert_eq!(ok_json(&s, &api, &admin()).await["targets"][1]["address"], "https://127.0.0.1:9/changed");
}
