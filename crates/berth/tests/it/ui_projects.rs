//! The web UI's project pages over HTTP: the project list (totals, visibility filter,
//! sort, storage per project, a quota at creation, delete through a confirm page), a
//! project's summary (counts, members per role, quota, recent repositories, push
//! commands), the repository list's sort and bulk delete, and changing a member's role.
//! Each action as an administrator and as a guest the API refuses (no control shown, and
//! the server refuses anyway), plus the bad input each form can get.

use crate::support::*;
use crate::ui::signed_in;
use crate::ui_features::refused;

const GIB: i64 = 1024 * 1024 * 1024;

/// Where `needle` first occurs in the page (to check an order).
fn at(body: &str, needle: &str) -> usize {
    body.find(needle).unwrap_or_else(|| panic!("{needle:?} not in {body}"))
}

#[tokio::test]
async fn ui_project_list_totals_filter_sort_quota_create_and_delete() {
    let s = Server::start_harbor();
    create_user(&s, "gst").await;
    create_project(&s, &admin(), "alpha", false).await;
    create_project(&s, &admin(), "beta", true).await;
    add_member(&s, "alpha", "gst", 3).await;
    add_member(&s, "beta", "gst", 3).await;
    push_small_image_as(&s, &admin(), "alpha/app", "v1", "one").await;
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // Totals (the API's /statistics), storage per project (one /quotas request), the
    // name column sorted ascending, the visibility filter labelled.
    let list = w.page("/projects").await;
    list.has("Totals").has("Private projects: <strong>1</strong>").has("Public projects: <strong>2</strong>");
    list.has("All projects: <strong>3</strong>").has("Repositories in private projects: <strong>1</strong>");
    list.has("All repositories: <strong>1</strong>").has("Storage used (all projects)");
    list.has("Storage (used of limit)").has("of unlimited");
    list.has(r#"<th scope="col" aria-sort="ascending"><a href="/projects?sort=-name">Name"#);
    list.has(r#"<label for="public">Access level</label>"#).has(r#"href="/projects/alpha""#);
    list.has(r#"href="/projects/beta/delete""#).has(r#"aria-label="Delete project beta""#);
    // By visibility (the API's `public`), with the name filter and the sort kept.
    let public = w.page("/projects?public=true").await;
    public.has(r#"href="/projects/beta""#).lacks(r#"href="/projects/alpha""#);
    public.has(r#"<option value="true" selected>Public</option>"#);
    w.page("/projects?public=false&name=al").await.has(r#"href="/projects/alpha""#).lacks(r#"href="/projects/beta""#);
    // Sorted by name descending (the API's `sort=-name`): the header says so.
    let desc = w.page("/projects?sort=-name").await;
    desc.has(r#"aria-sort="descending"><a href="/projects?sort=name">Name"#);
    assert!(at(&desc.body, r#"href="/projects/beta""#) < at(&desc.body, r#"href="/projects/alpha""#));
    w.page("/projects?sort=creation_time")
        .await
        .has(r#"aria-sort="ascending"><a href="/projects?sort=-creation_time">Created"#);
    // A sort the page does not offer falls back to the name.
    w.page("/projects?sort=owner_id").await.has(r#"aria-sort="ascending"><a href="/projects?sort=-name">Name"#);

    // A new project with a storage quota in GiB (the API's `storage_limit`, in bytes).
    list.has(r#"<label for="storage_gib">Storage quota in GiB (-1: unlimited)</label>"#);
    let created = w.submit("/projects", "/projects", &[("project_name", "gamma"), ("storage_gib", "2")]).await;
    created.has("Project created.").has(r#"aria-current="page">Summary<"#).has("of 2.0 GiB");
    let gid = ok_json(&s, "/api/v2.0/projects/gamma", &admin()).await["project_id"].as_i64().unwrap();
    let q = ok_json(&s, &format!("/api/v2.0/quotas/{gid}"), &admin()).await;
    assert_eq!(q["hard"]["storage"], 2 * GIB);
    w.page("/projects").await.has("of 2.0 GiB");
    // Bad input: not a number (named by the field's label), and 0 (the API's refusal,
    // naming its field); neither creates the project.
    let bad = w.submit("/projects", "/projects", &[("project_name", "delta"), ("storage_gib", "lots")]).await;
    bad.has(r#"role="alert""#).has("Storage quota in GiB (-1: unlimited) must be a number, not &quot;lots&quot;.");
    let zero = w.submit("/projects", "/projects", &[("project_name", "delta"), ("storage_gib", "0")]).await;
    zero.has(r#"role="alert""#).has("storage_limit");
    assert_eq!(get(&s, "/api/v2.0/projects/delta", &admin()).await.status(), 404);

    // Delete through the confirm page (no JavaScript needed).
    let confirm = w.page("/projects/gamma/delete").await;
    confirm.has("Are you sure?").has("<strong>gamma</strong>").has(r#"action="/projects/gamma/delete""#);
    let gone = w.submit("/projects/gamma/delete", "/projects/gamma/delete", &[]).await;
    gone.has("Project deleted.").lacks(r#"href="/projects/gamma""#);
    assert_eq!(get(&s, "/api/v2.0/projects/gamma", &admin()).await.status(), 404);
    // A project that still holds repositories: the confirm page gives the API's reason
    // instead of the button, and a delete sent anyway comes back with the API's refusal.
    let held = w.page("/projects/alpha/delete").await;
    held.has(r#"role="alert""#).has("contains repositories").lacks(r#"action="/projects/alpha/delete""#);
    let csrf = held.csrf();
    let r = w.post("/projects/alpha/delete", &[("_csrf", &csrf)]).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/projects/alpha"));
    w.page(&r.location).await.has(r#"role="alert""#).has("still has 1 repositories");
    ok_json(&s, "/api/v2.0/projects/alpha", &admin()).await;

    // A guest: no storage column (the API lets only administrators list quotas), no quota
    // field, no delete; the confirm page and the delete are refused by the API anyway.
    let mut g = signed_in(&s, "gst", PW).await;
    let gl = g.page("/projects").await;
    gl.has("Totals").lacks("Storage used (all projects)").lacks("Storage (used of limit)");
    gl.lacks("storage_gib").lacks("/delete").has(r#"href="/projects/beta""#);
    assert_eq!(g.get("/projects/beta/delete").await.status, 403);
    let csrf = gl.csrf();
    refused(&mut g, &csrf, "/projects/beta/delete", &[]).await;
    ok_json(&s, "/api/v2.0/projects/beta", &admin()).await;
    // Someone who may not set quotas gets the system's default whatever the form sends
    // (the API's rule); the project is theirs to delete.
    let mine = g.submit("/projects", "/projects", &[("project_name", "gproj"), ("storage_gib", "5")]).await;
    mine.has("Project created.").has("of unlimited").has(r#"href="/projects/gproj/delete""#);
    let gq = ok_json(&s, "/api/v2.0/projects/gproj/summary", &admin()).await;
    assert_eq!(gq["quota"]["hard"]["storage"], -1);
    g.page("/projects").await.has(r#"href="/projects/gproj/delete""#).lacks(r#"href="/projects/beta/delete""#);
    // Without the session's CSRF token nothing is deleted either.
    let r = w.post("/projects/beta/delete", &[("_csrf", "forged")]).await;
    w.page(&r.location).await.has("The form expired");
    ok_json(&s, "/api/v2.0/projects/beta", &admin()).await;
}

#[tokio::test]
async fn ui_project_summary_and_push_commands() {
    let s = Server::start_harbor();
    create_user(&s, "gst").await;
    create_user(&s, "dev").await;
    let pid = create_project(&s, &admin(), "alpha", false).await;
    add_member(&s, "alpha", "gst", 3).await;
    add_member(&s, "alpha", "dev", 2).await;
    for i in 1..=6 {
        push_small_image_as(&s, &admin(), &format!("alpha/r{i}"), "v1", &format!("seed{i}")).await;
    }
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // The project's own URL is its summary, the first tab.
    let sum = w.page("/projects/alpha").await;
    sum.has(r#"<a href="/projects/alpha" aria-current="page">Summary</a>"#);
    assert!(at(&sum.body, ">Summary</a>") < at(&sum.body, ">Repositories</a>"), "summary is the first tab");
    sum.has("<dt>Repositories</dt><dd><a href=\"/projects/alpha/repos\">6</a></dd>");
    sum.has("Members by role").has("Project admin: <strong>1</strong>").has("Developer: <strong>1</strong>");
    sum.has("Guest: <strong>1</strong>").has("Maintainer: <strong>0</strong>");
    sum.has("Storage used").has("of unlimited").has("🔒 Private");
    // The five repositories updated last (one API request), and the way to all of them.
    assert_eq!(sum.body.matches(r#"/-/tags""#).count(), 5, "{}", sum.body);
    sum.has(r#"href="/projects/alpha/repos?sort=-update_time""#).has("See all repositories");
    // Push commands for the host the browser used, each selectable with a copy button.
    let host = &s.addr;
    for cmd in [
        format!("docker tag IMAGE:TAG {host}/alpha/REPOSITORY:TAG"),
        format!("docker push {host}/alpha/REPOSITORY:TAG"),
        format!("podman push {host}/alpha/REPOSITORY:TAG"),
        format!("helm push chart.tgz oci://{host}/alpha"),
        format!("oras push {host}/alpha/REPOSITORY:TAG FILE"),
    ] {
        sum.has(&format!("<code>{cmd}</code>")).has(&format!(r#"data-copy="{cmd}""#));
    }
    sum.has(r#"aria-label="Copy: Docker step 2""#).has(r#"href="/projects/alpha/delete""#);
    // The portal's summary URL and a project id lead here.
    let r = w.get("/harbor/projects/2/summary").await;
    assert_eq!((r.status, r.location.as_str()), (308, "/projects/2"));
    let r = w.get(&format!("/projects/{pid}")).await;
    assert_eq!((r.status, r.location.as_str()), (303, "/projects/alpha"));
    // A quota shows as a bar with words.
    let csrf = w.page("/admin/quotas").await.csrf();
    let r = w.post(&format!("/admin/quotas/{pid}"), &[("_csrf", &csrf), ("limit_gib", "1")]).await;
    assert_eq!(r.status, 303);
    w.page("/projects/alpha").await.has("<meter").has("of 1.0 GiB");

    // A developer may push: the commands, but no delete.
    let mut d = signed_in(&s, "dev", PW).await;
    d.page("/projects/alpha").await.has("Push commands").lacks("/projects/alpha/delete");
    // A guest may not push or delete: neither the commands nor the button.
    let mut g = signed_in(&s, "gst", PW).await;
    let gs = g.page("/projects/alpha").await;
    gs.has("Recently updated repositories").lacks("Push commands").lacks("data-copy").lacks("/projects/alpha/delete");
    // Someone else's private project: the API's refusal, as a page.
    create_project(&s, &admin(), "secret", false).await;
    assert_eq!(g.get("/projects/secret").await.status, 403);
}

#[tokio::test]
async fn ui_repository_list_sort_and_bulk_delete() {
    let s = Server::start_harbor();
    project_with_guest(&s, "alpha").await;
    push_small_image_as(&s, &admin(), "alpha/a1", "v1", "one").await;
    push_small_image_as(&s, &admin(), "alpha/a1", "v2", "two").await;
    push_small_image_as(&s, &admin(), "alpha/a2", "v1", "three").await;
    push_small_image_as(&s, &admin(), "alpha/team/a3", "v1", "four").await;
    let base = "/projects/alpha/repos";
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // Sorted by name by default; each sortable header is a link, the sorted one marked.
    let list = w.page(base).await;
    list.has(&format!(r#"aria-sort="ascending"><a href="{base}?sort=-name">Name"#));
    list.has(&format!(r#"<a href="{base}?sort=artifact_count">Artifacts"#))
        .has("?sort=pull_count")
        .has("?sort=update_time");
    assert!(at(&list.body, "alpha/a1<") < at(&list.body, "alpha/a2<"));
    // By artifact count, most first (the API's `sort=-artifact_count`), the filter kept.
    let most = w.page(&format!("{base}?sort=-artifact_count")).await;
    most.has(&format!(r#"aria-sort="descending"><a href="{base}?sort=artifact_count">Artifacts"#));
    most.has(r#"<input type="hidden" name="sort" value="-artifact_count">"#);
    let by_name = w.page(&format!("{base}?sort=-name&name=a")).await;
    by_name.has(&format!(r#"href="{base}?name=a&amp;sort=name""#));
    assert!(at(&by_name.body, "alpha/team/a3<") < at(&by_name.body, "alpha/a1<"));
    w.page(&format!("{base}?sort=--name")).await.has(&format!(r#"aria-sort="ascending"><a href="{base}?sort=-name">"#));

    // A guest: no checkboxes, no button; the server refuses the delete anyway.
    let mut g = signed_in(&s, "gst", PW).await;
    let gl = g.page(base).await;
    gl.has("alpha/a1").lacks(r#"name="repo""#).lacks("Delete selected repositories");
    let csrf = gl.csrf();
    refused(&mut g, &csrf, &format!("{base}/-/delete"), &[("confirmed", "1"), ("repo", "a1")]).await;
    ok_json(&s, "/api/v2.0/projects/alpha/repositories/a1", &admin()).await;

    // Nothing ticked is said so; the form without the session's token changes nothing.
    let list = w.page(base).await;
    list.has(r#"<input type="checkbox" name="repo" value="team/a3" aria-label="Select alpha/team/a3">"#);
    list.has("Delete selected repositories");
    let csrf = list.csrf();
    let r = w.post(&format!("{base}/-/delete"), &[("_csrf", &csrf)]).await;
    assert_eq!((r.status, r.location.as_str()), (303, base));
    w.page(base).await.has("No repository was selected.");
    let r = w.post(&format!("{base}/-/delete"), &[("_csrf", "forged"), ("confirmed", "1"), ("repo", "a1")]).await;
    w.page(&r.location).await.has("The form expired");
    // One confirm page naming each, then one API delete each; one already gone is
    // reported by name with the API's reason.
    let confirm = w.post(&format!("{base}/-/delete"), &[("_csrf", &csrf), ("repo", "a2"), ("repo", "team/a3")]).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    confirm.has("Are you sure?").has("<strong>alpha/a2</strong>").has("<strong>alpha/team/a3</strong>");
    confirm.has(r#"name="confirmed" value="1""#).has(r#"<input type="hidden" name="repo" value="team/a3">"#);
    let r = call(&s, reqwest::Method::DELETE, "/api/v2.0/projects/alpha/repositories/a2", &admin(), None).await;
    assert_eq!(r.status(), 200);
    let r = w
        .post(
            &format!("{base}/-/delete"),
            &[("_csrf", &confirm.csrf()), ("confirmed", "1"), ("repo", "a2"), ("repo", "team/a3")],
        )
        .await;
    assert_eq!((r.status, r.location.as_str()), (303, base));
    let after = w.page(base).await;
    after.has(r#"role="alert""#).has("Deleted 1 repositories.").has("Not deleted: alpha/a2: ").has("not found");
    after.has("alpha/a1<").lacks("alpha/team/a3<");
    let left = ok_json(&s, "/api/v2.0/projects/alpha/repositories", &admin()).await.to_string();
    assert!(left.contains("alpha/a1") && !left.contains("alpha/team/a3"), "{left}");
    // All of them gone: a plain success message.
    let csrf = w.page(base).await.csrf();
    let r = w.post(&format!("{base}/-/delete"), &[("_csrf", &csrf), ("confirmed", "1"), ("repo", "a1")]).await;
    w.page(&r.location).await.has(r#"role="status""#).has("Deleted 1 repositories.").has("Nothing here yet");
}

#[tokio::test]
async fn ui_member_role_change_as_admin_and_refused_to_guest() {
    let s = Server::start_harbor();
    create_user(&s, "mia").await;
    create_user(&s, "gus").await;
    create_project(&s, &admin(), "team", false).await;
    let mia = add_member(&s, "team", "mia", 2).await;
    add_member(&s, "team", "gus", 3).await;
    let page = "/projects/team/members";
    let mut w = signed_in(&s, "admin", ADMIN_PASSWORD).await;

    // Each member's role is a labelled select with its own button.
    let m = w.page(page).await;
    m.has(&format!(r#"<label class="visually-hidden" for="role-{mia}">Role mia</label>"#));
    m.has(&format!(r#"<select id="role-{mia}" name="role_id">"#)).has(r#"aria-label="Change role mia""#);
    let changed = w.submit(page, &format!("{page}/{mia}/role"), &[("role_id", "4")]).await;
    changed.has("Saved.");
    let members = ok_json(&s, "/api/v2.0/projects/team/members?entityname=mia", &admin()).await;
    assert_eq!(members[0]["role_id"], 4);
    // The summary counts follow.
    w.page("/projects/team").await.has("Maintainer: <strong>1</strong>").has("Developer: <strong>0</strong>");
    // A role the API does not know: its refusal, and nothing changes.
    let bad = w.submit(page, &format!("{page}/{mia}/role"), &[("role_id", "9")]).await;
    bad.has(r#"role="alert""#);
    let members = ok_json(&s, "/api/v2.0/projects/team/members?entityname=mia", &admin()).await;
    assert_eq!(members[0]["role_id"], 4);

    // A guest sees roles as words, no select; the server refuses the change anyway.
    let mut g = signed_in(&s, "gus", PW).await;
    let gm = g.page(page).await;
    gm.has("Maintainer").lacks("<select").lacks("Change role");
    let csrf = gm.csrf();
    refused(&mut g, &csrf, &format!("{page}/{mia}/role"), &[("role_id", "1")]).await;
    let members = ok_json(&s, "/api/v2.0/projects/team/members?entityname=mia", &admin()).await;
    assert_eq!(members[0]["role_id"], 4);
}

/// The project list's per-row CVE export: the button (a form to the CVE exports page's
/// own handler) where the API's role table lets the caller export, the export started and
/// listed by the API; a guest of a project sees no button on its row and is refused.
#[tokio::test]
async fn ui_project_list_exports_cves_per_row() {
    let s = Server::start_harbor();
    create_user(&s, "dev").await;
    create_project(&s, &admin(), "alpha", false).await;
    create_project(&s, &admin(), "beta", false).await;
    add_member(&s, "alpha", "dev", 2).await;
    add_member(&s, "beta", "dev", 3).await;
    let mut w = signed_in(&s, "dev", PW).await;
    let list = w.page("/projects").await;
    list.has(r#"aria-label="Export CVEs: alpha""#).lacks(r#"aria-label="Export CVEs: beta""#);
    list.has(r#"<form class="inline" method="post" action="/cve-exports">"#);
    list.has(r#"name="project" value="alpha""#);
    // A developer may not delete either project: the export is the row's only action.
    list.lacks("/delete\"");
    let csrf = list.csrf();
    let r = w.post("/cve-exports", &[("_csrf", &csrf), ("project", "alpha")]).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location, "/cve-exports?project=alpha");
    w.page(&r.location).await.has("Export started.");
    let ex = ok_json(&s, "/api/v2.0/export/cve/executions", &user("dev")).await;
    assert_eq!(ex["items"].as_array().map(Vec::len), Some(1), "{ex}");
    // The guest's row: no button, and the server refuses the export anyway.
    refused(&mut w, &csrf, "/cve-exports", &[("project", "beta")]).await;
    let ex = ok_json(&s, "/api/v2.0/export/cve/executions", &user("dev")).await;
    assert_eq!(ex["items"].as_array().map(Vec::len), Some(1), "{ex}");
    // An administrator gets both rows' buttons next to delete.
    let mut a = signed_in(&s, "admin", ADMIN_PASSWORD).await;
    a.page("/projects")
        .await
        .has(r#"aria-label="Export CVEs: alpha""#)
        .has(r#"aria-label="Export CVEs: beta""#)
        .has(r#"aria-label="Delete project beta""#);
}
