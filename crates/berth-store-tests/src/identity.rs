//! The conformance suite every [`IdentityStore`] backend must pass.
//!
//! Like the [`MetaStore`] suite, each run names everything it creates with a fresh random
//! prefix, so runs can share one database; totals are checked through filters that only
//! this run's rows match (a name filter, a project id), and unfiltered listings only for
//! containing what the run created.
//!
//! Contracts pinned here that the trait's doc comments leave implicit:
//! - creates assign the id and the times; ids are never reused, even the newest one's
//!   after it is deleted;
//! - a refused write changes nothing;
//! - listing order: users by id, projects and robots by name, members by user name
//!   (byte order), audit entries newest first (op_time, then id);
//! - name filters are substring matches in which `%`, `_` and `\` are literal; audit
//!   filters are exact;
//! - `public: Some(false)` lists the projects that are not public (no `public = "true"`);
//!   `include_public` adds the public projects to a member filter;
//! - `create_project`, `add_member` and `create_robot` answer `NotFound` for an unknown
//!   owner, project or user; adding an existing member is a `username` conflict;
//! - `delete_project_metadata` of a key the project lacks is `NotFound`;
//! - a repository counts for its project while it has a manifest or a blob link, as
//!   `list_repositories` shows it; unlinking its last blob lets the project go;
//! - `delete_project` also deletes the project's robots; audit entries stay;
//! - `update_robot` keeps name, project, level and creation time, and the secret and
//!   salt when the given secret is unchanged or empty.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use berth_core::Digest;
use berth_core::RepoName;
use berth_core::store::identity::{
    AuditEntry, AuditFilter, IdentityError, IdentityResult, IdentityStore, Member, NewProject, NewUser, Page, Project,
    ProjectFilter, Robot, RobotAccess, TextMatch, User, UserUpdate,
};
use berth_core::store::{BlobInfo, MetaStore};

/// An id no backend hands out in a test database.
const MISSING: i64 = i64::MAX;

/// Large enough to see everything several runs create.
const ALL: Page = Page { page: 1, page_size: 10_000 };

/// Runs the whole identity suite. `meta` must be the same database as `store`: the suite
/// creates repositories through it to check that `delete_project` refuses to orphan
/// them. Panics, with the failed assertion, on the first deviation.
pub async fn identity_conformance(store: Arc<dyn IdentityStore>, meta: Arc<dyn MetaStore>) {
    let cx = Cx::new(store, meta);
    users(&cx).await;
    user_listing(&cx).await;
    projects(&cx).await;
    project_listing(&cx).await;
    members(&cx).await;
    robots(&cx).await;
    project_deletion(&cx).await;
    audit_log(&cx).await;
    audit_purge(&cx).await;
    audit_purge_by_event_type(&cx).await;
}

struct Cx {
    store: Arc<dyn IdentityStore>,
    meta: Arc<dyn MetaStore>,
    /// Unique to this run; also a valid project name and repository-name component.
    prefix: String,
}

impl Cx {
    fn new(store: Arc<dyn IdentityStore>, meta: Arc<dyn MetaStore>) -> Cx {
        let mut prefix = uuid::Uuid::new_v4().simple().to_string();
        prefix.truncate(16);
        Cx { store, meta, prefix: format!("ct{prefix}") }
    }

    fn name(&self, label: &str) -> String {
        format!("{}-{label}", self.prefix)
    }

    fn new_user(&self, label: &str) -> NewUser {
        NewUser {
            username: self.name(label),
            email: format!("{label}@{}.test", self.prefix),
            realname: format!("Real {label}"),
            comment: format!("comment {label}"),
            password: format!("hash-{label}"),
            salt: format!("salt-{label}"),
            password_version: "sha256".into(),
            sysadmin: false,
        }
    }

    async fn user(&self, label: &str) -> User {
        self.store.create_user(&self.new_user(label)).await.expect("create_user")
    }

    async fn project(&self, label: &str, owner: &User, metadata: &[(&str, &str)]) -> Project {
        self.store.create_project(&new_project(self.name(label), owner.id, metadata)).await.expect("create_project")
    }

    /// The id of a user that existed and is gone.
    async fn deleted_user_id(&self, label: &str) -> i64 {
        let u = self.user(label).await;
        self.store.delete_user(u.id).await.expect("delete_user");
        u.id
    }

    fn repo(&self, name: &str) -> RepoName {
        name.parse().expect("test repository name")
    }

    fn blob(&self, label: &str) -> BlobInfo {
        let bytes = format!("{}:{label}", self.prefix);
        BlobInfo { digest: Digest::sha256(bytes.as_bytes()), size: bytes.len() as u64 }
    }
}

fn new_project(name: String, owner_id: i64, metadata: &[(&str, &str)]) -> NewProject {
    NewProject { name, owner_id, metadata: meta_map(metadata) }
}

fn meta_map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
    kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn page(page: u64, page_size: u64) -> Page {
    Page { page, page_size }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}

#[track_caller]
fn assert_conflict<T: Debug>(r: IdentityResult<T>, want_field: &str, want_value: &str) {
    match r {
        Err(IdentityError::Conflict { field, value }) => {
            assert_eq!((field, value.as_str()), (want_field, want_value), "conflict names the field and value")
        }
        other => panic!("expected a {want_field} conflict on {want_value:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: Debug>(r: IdentityResult<T>) {
    assert!(matches!(r, Err(IdentityError::NotFound)), "expected NotFound, got {r:?}");
}

fn names<T>(items: &[T], name: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| name(i).to_owned()).collect()
}

async fn users(cx: &Cx) {
    let s = &cx.store;
    let t0 = now();
    let nu = cx.new_user("alice");
    let alice = s.create_user(&nu).await.unwrap();
    assert!(alice.id > 0);
    assert!(alice.creation_time >= t0 && alice.creation_time <= now() + 1, "creation time is now");
    assert_eq!(alice.update_time, alice.creation_time);
    let expect = User {
        id: alice.id,
        username: nu.username.clone(),
        email: nu.email.clone(),
        realname: nu.realname.clone(),
        comment: nu.comment.clone(),
        password: nu.password.clone(),
        salt: nu.salt.clone(),
        password_version: nu.password_version.clone(),
        sysadmin: false,
        creation_time: alice.creation_time,
        update_time: alice.update_time,
    };
    assert_eq!(alice, expect);
    assert_eq!(s.user(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(s.user(MISSING).await.unwrap(), None);
    let admin = s.create_user(&NewUser { sysadmin: true, ..cx.new_user("admin") }).await.unwrap();
    assert!(admin.id > alice.id, "ids increase");
    assert!(s.user(admin.id).await.unwrap().unwrap().sysadmin);

    // Uniqueness, and refused creates leave nothing.
    let other = cx.new_user("other");
    assert_conflict(
        s.create_user(&NewUser { email: other.email.clone(), ..nu.clone() }).await,
        "username",
        &nu.username,
    );
    assert_conflict(
        s.create_user(&NewUser { username: other.username.clone(), ..nu.clone() }).await,
        "email",
        &nu.email,
    );
    assert_eq!(s.user_by_login(&other.username).await.unwrap(), None, "refused create left no row");
    assert_eq!(s.user_by_login(&other.email).await.unwrap(), None);
    // An empty e-mail is no e-mail: any number of users may lack one.
    let quiet1 = s.create_user(&NewUser { email: String::new(), ..cx.new_user("quiet1") }).await.unwrap();
    let quiet2 = s.create_user(&NewUser { email: String::new(), ..cx.new_user("quiet2") }).await.unwrap();
    assert_eq!((quiet1.email.as_str(), quiet2.email.as_str()), ("", ""));

    // Login by name or e-mail.
    assert_eq!(s.user_by_login(&alice.username).await.unwrap(), Some(alice.clone()));
    assert_eq!(s.user_by_login(&alice.email).await.unwrap(), Some(alice.clone()));
    assert_eq!(s.user_by_login("").await.unwrap(), None, "the empty e-mail matches nobody");
    assert_eq!(s.user_by_login(&cx.name("nobody")).await.unwrap(), None);
    // A user name wins over someone else's e-mail that happens to equal it.
    let tricky = s.create_user(&NewUser { email: alice.username.clone(), ..cx.new_user("tricky") }).await.unwrap();
    assert_eq!(s.user_by_login(&alice.username).await.unwrap().map(|u| u.id), Some(alice.id));
    assert_eq!(s.user_by_login(&tricky.username).await.unwrap().map(|u| u.id), Some(tricky.id));

    // Updates change only what they name.
    let renamed =
        s.update_user(alice.id, &UserUpdate { realname: Some("Alice A.".into()), ..Default::default() }).await.unwrap();
    assert_eq!(renamed, User { realname: "Alice A.".into(), update_time: renamed.update_time, ..alice.clone() });
    assert!(renamed.update_time >= alice.update_time);
    assert_eq!(s.user(alice.id).await.unwrap(), Some(renamed.clone()));
    let unchanged = s.update_user(alice.id, &UserUpdate::default()).await.unwrap();
    assert_eq!(unchanged, User { update_time: unchanged.update_time, ..renamed.clone() });

    let full = UserUpdate {
        email: Some(format!("new-alice@{}.test", cx.prefix)),
        realname: Some("A".into()),
        comment: Some("c".into()),
        sysadmin: Some(true),
        password: Some(("newhash".into(), "newsalt".into(), "pbkdf2_sha256".into())),
    };
    let updated = s.update_user(alice.id, &full).await.unwrap();
    assert_eq!(
        (
            updated.email.as_str(),
            updated.realname.as_str(),
            updated.comment.as_str(),
            updated.sysadmin,
            updated.password.as_str(),
            updated.salt.as_str(),
            updated.password_version.as_str()
        ),
        (full.email.as_deref().unwrap(), "A", "c", true, "newhash", "newsalt", "pbkdf2_sha256")
    );
    assert_eq!(
        (updated.id, updated.username.as_str(), updated.creation_time),
        (alice.id, nu.username.as_str(), alice.creation_time)
    );
    assert_eq!(s.user_by_login(&nu.email).await.unwrap(), None, "the old e-mail is free");
    assert_eq!(s.user_by_login(full.email.as_ref().unwrap()).await.unwrap(), Some(updated.clone()));
    // Keeping one's own e-mail is no conflict; taking another's is.
    s.update_user(alice.id, &UserUpdate { email: full.email.clone(), ..Default::default() }).await.unwrap();
    assert_conflict(
        s.update_user(
            admin.id,
            &UserUpdate { email: full.email.clone(), realname: Some("x".into()), ..Default::default() },
        )
        .await,
        "email",
        full.email.as_ref().unwrap(),
    );
    assert_eq!(s.user(admin.id).await.unwrap(), Some(admin.clone()), "a refused update changes nothing");
    // Several users may clear their e-mail.
    s.update_user(alice.id, &UserUpdate { email: Some(String::new()), ..Default::default() }).await.unwrap();
    s.update_user(admin.id, &UserUpdate { email: Some(String::new()), ..Default::default() }).await.unwrap();
    assert_not_found(s.update_user(MISSING, &UserUpdate { realname: Some("x".into()), ..Default::default() }).await);

    // Deletion, and ids are never reused, not even the newest one's.
    s.delete_user(quiet2.id).await.unwrap();
    assert_eq!(s.user(quiet2.id).await.unwrap(), None);
    assert_eq!(s.user_by_login(&quiet2.username).await.unwrap(), None);
    assert_not_found(s.delete_user(quiet2.id).await);
    assert_not_found(s.delete_user(MISSING).await);
    let last = cx.user("last").await;
    s.delete_user(last.id).await.unwrap();
    let next = cx.user("next").await;
    assert!(next.id > last.id, "id {} of a deleted user was handed out again", last.id);
    let name_again = cx.user("last").await;
    assert!(name_again.id > next.id, "a deleted user's name is free again, under a new id");

    // This run's users are counted (other runs may add or remove their own).
    let (ours, total) = s.list_users(Some(&cx.prefix), &ALL).await.unwrap();
    assert!(s.user_count().await.unwrap() >= total);
    assert_eq!(total, ours.len() as u64);
    let (everyone, everyone_total) = s.list_users(None, &ALL).await.unwrap();
    assert!(everyone_total >= total);
    for u in &ours {
        assert!(everyone.contains(u) || everyone_total > ALL.page_size, "{} listed without a filter", u.username);
    }
}

async fn user_listing(cx: &Cx) {
    let s = &cx.store;
    let mut paged = Vec::new();
    for i in 0..5 {
        paged.push(cx.user(&format!("page-{i}")).await);
    }
    let filter = cx.name("page-");
    let mut seen = Vec::new();
    for (n, want) in [(1, 2), (2, 2), (3, 1), (4, 0)] {
        let (got, total) = s.list_users(Some(&filter), &page(n, 2)).await.unwrap();
        assert_eq!((got.len(), total), (want, 5), "page {n} of 2");
        seen.extend(got);
    }
    assert_eq!(seen, paged, "every user once, by id");
    assert_eq!(s.list_users(Some(&filter), &page(1, 0)).await.unwrap(), (vec![], 5), "page size 0");
    assert_eq!(s.list_users(Some(&filter), &page(u64::MAX, 2)).await.unwrap(), (vec![], 5), "far past the end");
    assert_eq!(s.list_users(Some(&cx.name("page-3")), &ALL).await.unwrap(), (vec![paged[3].clone()], 1));
    assert_eq!(s.list_users(Some(&cx.name("nobody")), &ALL).await.unwrap(), (vec![], 0));

    // Wildcards in the filter are literal.
    for label in ["esc%1", "escQ1", "esc_2", "escQ2", "esc\\3", "escQ3"] {
        cx.user(label).await;
    }
    for (filter, want) in [("esc%", "esc%1"), ("esc_", "esc_2"), ("esc\\", "esc\\3")] {
        let (got, total) = s.list_users(Some(&cx.name(filter)), &ALL).await.unwrap();
        assert_eq!((names(&got, |u| &u.username), total), (vec![cx.name(want)], 1), "filter {filter:?}");
    }
}

async fn projects(cx: &Cx) {
    let s = &cx.store;
    let owner = cx.user("p-owner").await;
    let other = cx.user("p-other").await;
    let t0 = now();
    let new = new_project(cx.name("proj"), owner.id, &[("public", "true"), ("severity", "high")]);
    let p = s.create_project(&new).await.unwrap();
    assert!(p.id > 0);
    assert!(p.creation_time >= t0 && p.creation_time <= now() + 1);
    assert_eq!(
        p,
        Project {
            id: p.id,
            name: new.name.clone(),
            owner_id: owner.id,
            metadata: new.metadata.clone(),
            creation_time: p.creation_time,
            update_time: p.creation_time,
        }
    );
    assert!(p.is_public());
    assert_eq!(s.project(p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(s.project_by_name(&p.name).await.unwrap(), Some(p.clone()));
    assert_eq!(s.project(MISSING).await.unwrap(), None);
    assert_eq!(s.project_by_name(&cx.name("no-such-project")).await.unwrap(), None);

    // The owner became a projectAdmin member in the same write.
    assert_eq!(s.member_role(p.id, owner.id).await.unwrap(), Some(1));
    let (members, total) = s.members(p.id, None, &ALL).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(
        (members[0].project_id, members[0].user_id, members[0].username.as_str(), members[0].role_id),
        (p.id, owner.id, owner.username.as_str(), 1)
    );

    assert_conflict(s.create_project(&new_project(p.name.clone(), other.id, &[])).await, "name", &p.name);
    let orphan = cx.name("orphan");
    let gone = cx.deleted_user_id("p-gone").await;
    assert_not_found(s.create_project(&new_project(orphan.clone(), gone, &[])).await);
    assert_eq!(s.project_by_name(&orphan).await.unwrap(), None, "a refused create leaves nothing");

    // Metadata: the given keys are replaced or added, the others stay.
    let changed =
        s.update_project_metadata(p.id, &meta_map(&[("public", "false"), ("auto_scan", "true")])).await.unwrap();
    assert_eq!(changed.metadata, meta_map(&[("auto_scan", "true"), ("public", "false"), ("severity", "high")]));
    assert!(!changed.is_public());
    assert!(changed.update_time >= p.update_time);
    assert_eq!(
        (changed.id, &changed.name, changed.owner_id, changed.creation_time),
        (p.id, &p.name, p.owner_id, p.creation_time)
    );
    assert_eq!(s.project(p.id).await.unwrap(), Some(changed.clone()));
    assert_not_found(s.update_project_metadata(MISSING, &meta_map(&[("public", "true")])).await);

    s.delete_project_metadata(p.id, "severity").await.unwrap();
    let after = s.project(p.id).await.unwrap().unwrap();
    assert_eq!(after.metadata, meta_map(&[("auto_scan", "true"), ("public", "false")]));
    assert_not_found(s.delete_project_metadata(p.id, "severity").await);
    assert_not_found(s.delete_project_metadata(MISSING, "public").await);
    assert_eq!(s.project(p.id).await.unwrap().unwrap().metadata, after.metadata);

    // Ids are never reused.
    let newest = cx.project("proj-newest", &owner, &[]).await;
    s.delete_project(newest.id).await.unwrap();
    let next = cx.project("proj-newest", &owner, &[]).await;
    assert!(next.id > newest.id, "id {} of a deleted project was handed out again", newest.id);
    assert_eq!(next.metadata, BTreeMap::new());
}

async fn project_listing(cx: &Cx) {
    let s = &cx.store;
    let owner = cx.user("l-owner").await;
    let m = cx.user("l-member").await;
    let outsider = cx.user("l-outsider").await;
    // Created out of name order, to tell name order from id order.
    let c = cx.project("list-c", &owner, &[("public", "false")]).await;
    let a = cx.project("list-a", &owner, &[("public", "true"), ("auto_scan", "true")]).await;
    let x = cx.project("listx", &owner, &[("public", "true")]).await;
    let b = cx.project("list-b", &owner, &[]).await;
    s.add_member(b.id, m.id, 2).await.unwrap();

    let fuzzy = |name: &str| ProjectFilter { name: Some(cx.name(name)), ..Default::default() };
    let list = |f: ProjectFilter, p: Page| async move { s.list_projects(&f, &p).await.unwrap() };
    let ids = |v: &[Project]| v.iter().map(|p| p.id).collect::<Vec<_>>();

    let (all, total) = list(fuzzy("list"), ALL).await;
    assert_eq!(total, 4);
    assert_eq!(all, vec![a.clone(), b.clone(), c.clone(), x.clone()], "by name, with metadata");
    let (p1, t1) = list(fuzzy("list"), page(1, 3)).await;
    let (p2, t2) = list(fuzzy("list"), page(2, 3)).await;
    let (p3, t3) = list(fuzzy("list"), page(3, 3)).await;
    assert_eq!((ids(&p1), ids(&p2), ids(&p3), t1, t2, t3), (vec![a.id, b.id, c.id], vec![x.id], vec![], 4, 4, 4));

    let exact = |name: String| ProjectFilter { name: Some(name), name_exact: true, ..Default::default() };
    assert_eq!(list(exact(a.name.clone()), ALL).await, (vec![a.clone()], 1));
    assert_eq!(list(exact(cx.name("list")), ALL).await, (vec![], 0), "exact is not a prefix match");
    assert_eq!(list(fuzzy("list_"), ALL).await, (vec![], 0), "_ is literal");
    assert_eq!(list(fuzzy("list%"), ALL).await, (vec![], 0), "% is literal");
    let infix = ProjectFilter { name: Some(cx.name("list-")[1..].to_owned()), ..Default::default() };
    assert_eq!(ids(&list(infix, ALL).await.0), vec![a.id, b.id, c.id], "substring, not prefix");

    let public = |p: bool| ProjectFilter { public: Some(p), ..fuzzy("list") };
    assert_eq!(ids(&list(public(true), ALL).await.0), vec![a.id, x.id]);
    assert_eq!(list(public(false), ALL).await, (vec![b.clone(), c.clone()], 2), "without the key or \"false\"");

    let member =
        |u: &User, include_public: bool| ProjectFilter { member_user_id: Some(u.id), include_public, ..fuzzy("list") };
    assert_eq!(list(member(&m, false), ALL).await, (vec![b.clone()], 1));
    assert_eq!(ids(&list(member(&m, true), ALL).await.0), vec![a.id, b.id, x.id]);
    assert_eq!(list(member(&m, true), page(2, 2)).await, (vec![x.clone()], 3));
    assert_eq!(ids(&list(member(&owner, false), ALL).await.0), vec![a.id, b.id, c.id, x.id]);
    assert_eq!(list(member(&outsider, false), ALL).await, (vec![], 0));
    assert_eq!(ids(&list(member(&outsider, true), ALL).await.0), vec![a.id, x.id]);
    let private_member = ProjectFilter { public: Some(false), ..member(&m, true) };
    assert_eq!(list(private_member, ALL).await, (vec![b.clone()], 1), "filters combine");

    // Without filters: everything, this run's projects among it.
    let (everything, total) = list(ProjectFilter::default(), ALL).await;
    assert!(total >= 4);
    assert!(everything.windows(2).all(|w| w[0].name < w[1].name), "ascending by name");
    for p in [&a, &b, &c, &x] {
        assert!(everything.contains(p) || total > ALL.page_size);
    }
}

async fn members(cx: &Cx) {
    let s = &cx.store;
    let owner = cx.user("m-owner").await;
    let ub = cx.user("m-b").await;
    let uc = cx.user("m-c").await;
    let stranger = cx.user("m-stranger").await;
    let p = cx.project("members", &owner, &[]).await;
    let q = cx.project("members-other", &owner, &[]).await;

    let mc = s.add_member(p.id, uc.id, 2).await.unwrap();
    assert!(mc.id > 0);
    assert_eq!(mc, Member { id: mc.id, project_id: p.id, user_id: uc.id, username: uc.username.clone(), role_id: 2 });
    let mb = s.add_member(p.id, ub.id, 3).await.unwrap();
    assert_conflict(s.add_member(p.id, uc.id, 4).await, "username", &uc.username);
    assert_conflict(s.add_member(p.id, owner.id, 2).await, "username", &owner.username);
    assert_eq!(s.member_role(p.id, uc.id).await.unwrap(), Some(2), "a refused add changes nothing");
    assert_not_found(s.add_member(MISSING, ub.id, 2).await);
    assert_not_found(s.add_member(p.id, MISSING, 2).await);
    let mq = s.add_member(q.id, ub.id, 5).await.unwrap();

    let (all, total) = s.members(p.id, None, &ALL).await.unwrap();
    assert_eq!(total, 3);
    // By user name: "…-m-b" < "…-m-c" < "…-m-owner".
    assert_eq!(names(&all, |m| &m.username), vec![ub.username.clone(), uc.username.clone(), owner.username.clone()]);
    assert_eq!((&all[0], &all[1]), (&mb, &mc));
    assert_eq!(s.members(p.id, None, &page(1, 2)).await.unwrap(), (all[..2].to_vec(), 3));
    assert_eq!(s.members(p.id, None, &page(2, 2)).await.unwrap(), (all[2..].to_vec(), 3));
    assert_eq!(s.members(p.id, Some(&uc.username), &ALL).await.unwrap(), (vec![mc.clone()], 1));
    assert_eq!(s.members(p.id, Some("m-"), &ALL).await.unwrap().1, 3, "substring");
    assert_eq!(s.members(p.id, Some("m_"), &ALL).await.unwrap(), (vec![], 0), "_ is literal");
    assert_eq!(s.members(MISSING, None, &ALL).await.unwrap(), (vec![], 0));

    assert_eq!(s.member(p.id, mc.id).await.unwrap(), Some(mc.clone()));
    assert_eq!(s.member(q.id, mc.id).await.unwrap(), None, "a member id belongs to its project");
    assert_eq!(s.member(p.id, MISSING).await.unwrap(), None);
    assert_eq!(s.member_role(p.id, stranger.id).await.unwrap(), None);
    assert_eq!(s.member_role(q.id, ub.id).await.unwrap(), Some(5));

    let promoted = s.update_member_role(p.id, mc.id, 4).await.unwrap();
    assert_eq!(promoted, Member { role_id: 4, ..mc.clone() });
    assert_eq!(s.member_role(p.id, uc.id).await.unwrap(), Some(4));
    assert_not_found(s.update_member_role(q.id, mc.id, 1).await);
    assert_not_found(s.update_member_role(p.id, MISSING, 1).await);
    assert_eq!(s.member_role(p.id, uc.id).await.unwrap(), Some(4));

    assert_not_found(s.remove_member(q.id, mb.id).await);
    s.remove_member(p.id, mb.id).await.unwrap();
    assert_eq!(s.member(p.id, mb.id).await.unwrap(), None);
    assert_eq!(s.member_role(p.id, ub.id).await.unwrap(), None);
    assert_eq!(s.member_role(q.id, ub.id).await.unwrap(), Some(5), "only that membership went");
    assert_not_found(s.remove_member(p.id, mb.id).await);
    // A removed member may be added again, under a new member id.
    let back = s.add_member(p.id, ub.id, 3).await.unwrap();
    assert!(back.id > mb.id);

    // Deleting a user deletes their memberships.
    s.delete_user(ub.id).await.unwrap();
    assert_eq!(s.member(p.id, back.id).await.unwrap(), None);
    assert_eq!(s.member(q.id, mq.id).await.unwrap(), None);
    assert_eq!(s.members(q.id, None, &ALL).await.unwrap().1, 1, "the owner is left");
    assert_eq!(
        names(&s.members(p.id, None, &ALL).await.unwrap().0, |m| &m.username),
        vec![uc.username.clone(), owner.username.clone()]
    );
    // …but not the projects they own.
    s.delete_user(owner.id).await.unwrap();
    assert_eq!(s.project(p.id).await.unwrap().map(|p| p.owner_id), Some(owner.id));
    assert_eq!(s.members(p.id, None, &ALL).await.unwrap(), (vec![promoted], 1));
}

fn access(kind: &str, namespace: &str, resource: &str, action: &str) -> RobotAccess {
    RobotAccess { kind: kind.into(), namespace: namespace.into(), resource: resource.into(), action: action.into() }
}

fn robot(name: String, project_id: i64, permissions: Vec<RobotAccess>) -> Robot {
    Robot {
        id: 0,
        name,
        description: "a robot".into(),
        project_id,
        secret: "secret-hash".into(),
        salt: "secret-salt".into(),
        expires_at: -1,
        duration_days: -1,
        disabled: false,
        level: if project_id == 0 { "system".into() } else { "project".into() },
        permissions,
        creation_time: 0,
        update_time: 0,
    }
}

async fn robots(cx: &Cx) {
    let s = &cx.store;
    let owner = cx.user("r-owner").await;
    let p = cx.project("robots", &owner, &[]).await;
    let t0 = now();

    let sys_perms = vec![access("system", "/", "registry", "list"), access("project", "*", "repository", "pull")];
    let sys = s.create_robot(&robot(cx.name("sys"), 0, sys_perms.clone())).await.unwrap();
    assert!(sys.id > 0);
    assert!(sys.creation_time >= t0 && sys.creation_time <= now() + 1);
    assert_eq!(
        sys,
        Robot {
            id: sys.id,
            creation_time: sys.creation_time,
            update_time: sys.creation_time,
            ..robot(cx.name("sys"), 0, sys_perms)
        }
    );
    assert_eq!(s.robot(sys.id).await.unwrap(), Some(sys.clone()));
    assert_eq!(s.robot_by_name(&sys.name).await.unwrap(), Some(sys.clone()));
    assert_eq!(s.robot(MISSING).await.unwrap(), None);
    assert_eq!(s.robot_by_name(&cx.name("no-such-robot")).await.unwrap(), None);
    assert_conflict(s.create_robot(&robot(sys.name.clone(), p.id, vec![])).await, "name", &sys.name);

    let push = vec![
        access("project", &p.name, "repository", "push"),
        access("project", &p.name, "repository", "pull"),
        access("project", &p.name, "artifact", "delete"),
    ];
    let bot = s.create_robot(&robot(format!("{}+bot", p.name), p.id, push.clone())).await.unwrap();
    assert_eq!(bot.permissions, push, "permissions keep their order");
    let abot = s.create_robot(&robot(format!("{}+abot", p.name), p.id, vec![])).await.unwrap();
    assert_eq!(s.robot(abot.id).await.unwrap().unwrap().permissions, vec![]);
    let homeless = format!("{}-gone+bot", p.name);
    assert_not_found(s.create_robot(&robot(homeless.clone(), MISSING, vec![])).await);
    assert_eq!(s.robot_by_name(&homeless).await.unwrap(), None);

    // Listing: by name, per project, system ones under 0.
    assert_eq!(s.list_robots(Some(p.id), &ALL).await.unwrap(), (vec![abot.clone(), bot.clone()], 2));
    assert_eq!(s.list_robots(Some(p.id), &page(2, 1)).await.unwrap(), (vec![bot.clone()], 2));
    assert_eq!(s.list_robots(Some(p.id), &page(3, 1)).await.unwrap(), (vec![], 2));
    assert_eq!(s.list_robots(Some(MISSING), &ALL).await.unwrap(), (vec![], 0));
    let (system, system_total) = s.list_robots(Some(0), &ALL).await.unwrap();
    assert!(system.iter().all(|r| r.project_id == 0), "only system robots");
    assert!(system.contains(&sys) || system_total > ALL.page_size);
    assert!(system.windows(2).all(|w| w[0].name < w[1].name), "ascending by name");
    let (everyone, total) = s.list_robots(None, &ALL).await.unwrap();
    assert!(total >= system_total + 2);
    for r in [&sys, &abot, &bot] {
        assert!(everyone.contains(r) || total > ALL.page_size, "{} listed", r.name);
    }

    // Updates replace description, expiry, flag and permissions; the rest stays.
    let pull_only = vec![access("project", &p.name, "repository", "pull")];
    let edit = Robot {
        description: "changed".into(),
        expires_at: 4_102_444_800,
        duration_days: 30,
        disabled: true,
        permissions: pull_only.clone(),
        name: cx.name("renamed"),
        project_id: MISSING,
        level: "system".into(),
        creation_time: 1,
        update_time: 1,
        ..bot.clone()
    };
    let edited = s.update_robot(&edit).await.unwrap();
    assert_eq!(
        edited,
        Robot {
            description: "changed".into(),
            expires_at: 4_102_444_800,
            duration_days: 30,
            disabled: true,
            permissions: pull_only,
            update_time: edited.update_time,
            ..bot.clone()
        }
    );
    assert!(edited.update_time >= bot.update_time);
    assert_eq!(s.robot(bot.id).await.unwrap(), Some(edited.clone()));
    assert_eq!(s.robot_by_name(&cx.name("renamed")).await.unwrap(), None);

    // The secret changes only when a different one is given.
    let rotated =
        s.update_robot(&Robot { secret: "hash2".into(), salt: "salt2".into(), ..edited.clone() }).await.unwrap();
    assert_eq!((rotated.secret.as_str(), rotated.salt.as_str()), ("hash2", "salt2"));
    let kept = s.update_robot(&Robot { salt: "other-salt".into(), ..rotated.clone() }).await.unwrap();
    assert_eq!((kept.secret.as_str(), kept.salt.as_str()), ("hash2", "salt2"), "same secret: salt kept too");
    let kept = s.update_robot(&Robot { secret: String::new(), salt: String::new(), ..rotated.clone() }).await.unwrap();
    assert_eq!((kept.secret.as_str(), kept.salt.as_str()), ("hash2", "salt2"), "empty secret: kept");
    assert_not_found(s.update_robot(&Robot { id: MISSING, ..edited.clone() }).await);

    s.delete_robot(abot.id).await.unwrap();
    assert_eq!(s.robot(abot.id).await.unwrap(), None);
    assert_eq!(s.robot_by_name(&abot.name).await.unwrap(), None);
    assert_not_found(s.delete_robot(abot.id).await);
    assert_eq!(s.list_robots(Some(p.id), &ALL).await.unwrap().1, 1);
    let again = s.create_robot(&robot(abot.name.clone(), p.id, vec![])).await.unwrap();
    assert!(again.id > bot.id, "a deleted robot's name is free again, under a new id");
    s.delete_robot(sys.id).await.unwrap();
}

async fn project_deletion(cx: &Cx) {
    let s = &cx.store;
    let owner = cx.user("d-owner").await;
    let m = cx.user("d-member").await;
    let p = cx.project("doomed", &owner, &[("public", "true")]).await;
    let member = s.add_member(p.id, m.id, 2).await.unwrap();
    let bot = s
        .create_robot(&robot(format!("{}+ci", p.name), p.id, vec![access("project", &p.name, "repository", "push")]))
        .await
        .unwrap();
    let sys = s.create_robot(&robot(cx.name("d-sys"), 0, vec![])).await.unwrap();
    s.append_audit(&AuditEntry {
        id: 0,
        project_id: p.id,
        operation: "create".into(),
        resource_type: "project".into(),
        resource: p.name.clone(),
        username: owner.username.clone(),
        op_time: now(),
    })
    .await
    .unwrap();
    assert_eq!(s.project_repository_count(&p.name).await.unwrap(), 0);

    // Repositories under <project>/, nested ones too; look-alike names are other projects'.
    let layer = cx.blob("doomed-layer");
    let (app, nested) = (cx.repo(&format!("{}/app", p.name)), cx.repo(&format!("{}/team/app", p.name)));
    for r in [&app, &nested, &cx.repo(&format!("{}x/app", p.name)), &cx.repo(&format!("{}-2/app", p.name))] {
        cx.meta.commit_blob(r, &layer, None).await.unwrap();
    }
    assert_eq!(s.project_repository_count(&p.name).await.unwrap(), 2);
    match s.delete_project(p.id).await {
        Err(IdentityError::Precondition(msg)) => {
            assert_eq!(msg, format!("project {} still has 2 repositories; delete them first", p.name))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(s.project(p.id).await.unwrap(), Some(p.clone()), "a refused delete changes nothing");
    assert_eq!(s.member(p.id, member.id).await.unwrap(), Some(member.clone()));
    assert_eq!(s.robot(bot.id).await.unwrap(), Some(bot.clone()));

    // A repository whose last blob link goes no longer counts (nothing would list it).
    assert!(cx.meta.unlink_blob(&app, &layer.digest).await.unwrap());
    assert_eq!(s.project_repository_count(&p.name).await.unwrap(), 1);
    assert!(
        matches!(s.delete_project(p.id).await, Err(IdentityError::Precondition(m)) if m.contains("still has 1 repositories"))
    );
    assert!(cx.meta.unlink_blob(&nested, &layer.digest).await.unwrap());
    assert_eq!(s.project_repository_count(&p.name).await.unwrap(), 0);

    s.delete_project(p.id).await.unwrap();
    assert_eq!(s.project(p.id).await.unwrap(), None);
    assert_eq!(s.project_by_name(&p.name).await.unwrap(), None);
    assert_eq!(s.member(p.id, member.id).await.unwrap(), None);
    assert_eq!(s.member_role(p.id, m.id).await.unwrap(), None);
    assert_eq!(s.members(p.id, None, &ALL).await.unwrap(), (vec![], 0));
    assert_eq!(s.robot(bot.id).await.unwrap(), None, "the project's robots go with it");
    assert_eq!(s.robot_by_name(&bot.name).await.unwrap(), None);
    assert_eq!(s.list_robots(Some(p.id), &ALL).await.unwrap(), (vec![], 0));
    assert_eq!(s.robot(sys.id).await.unwrap(), Some(sys.clone()), "system robots stay");
    assert_eq!(s.user(m.id).await.unwrap().map(|u| u.id), Some(m.id), "members' users stay");
    assert_eq!(
        s.list_audit(&AuditFilter { project_id: Some(p.id), ..Default::default() }, &ALL).await.unwrap().1,
        1,
        "the audit log outlives the project"
    );
    assert_not_found(s.delete_project(p.id).await);
    assert_not_found(s.delete_project(MISSING).await);
    assert_not_found(s.delete_project_metadata(p.id, "public").await);
    assert_not_found(s.update_project_metadata(p.id, &meta_map(&[("public", "false")])).await);
    assert_not_found(s.add_member(p.id, m.id, 2).await);

    // The name is free again; nothing of the old project comes back with it.
    let reborn = cx.project("doomed", &m, &[]).await;
    assert!(reborn.id > p.id);
    assert_eq!(reborn.metadata, BTreeMap::new());
    let (members, _) = s.members(reborn.id, None, &ALL).await.unwrap();
    assert_eq!(names(&members, |m| &m.username), vec![m.username.clone()]);
    assert_eq!(s.list_robots(Some(reborn.id), &ALL).await.unwrap().1, 0);
    s.delete_project(reborn.id).await.unwrap();
    s.delete_robot(sys.id).await.unwrap();
}

async fn audit_log(cx: &Cx) {
    let s = &cx.store;
    let owner = cx.user("a-owner").await;
    let p = cx.project("audited", &owner, &[]).await;
    let (alice, bob) = (cx.name("a-alice"), cx.name("a-bob"));
    let t = now();
    let entry = |op_time: i64, operation: &str, resource_type: &str, resource: &str, username: &str| AuditEntry {
        id: 0,
        project_id: p.id,
        operation: operation.into(),
        resource_type: resource_type.into(),
        resource: resource.into(),
        username: username.into(),
        op_time,
    };
    let app = format!("{}/app", p.name);
    let entries = [
        entry(t, "create", "project", &p.name, &alice),
        entry(t + 1, "push", "artifact", &format!("{app}:v1"), &alice),
        entry(t + 2, "pull", "artifact", &format!("{app}:v1"), &bob),
        entry(t + 2, "delete", "artifact", &format!("{app}:v1"), &bob),
    ];
    for e in &entries {
        s.append_audit(e).await.unwrap();
    }
    let by_project = AuditFilter { project_id: Some(p.id), ..Default::default() };
    let (got, total) = s.list_audit(&by_project, &ALL).await.unwrap();
    assert_eq!(total, 4);
    assert!(got.iter().all(|e| e.id > 0));
    assert!(got.windows(2).all(|w| w[0].id != w[1].id));
    // Newest first; the same second in reverse order of appending.
    let strip = |e: &AuditEntry| AuditEntry { id: 0, ..e.clone() };
    assert_eq!(
        got.iter().map(strip).collect::<Vec<_>>(),
        vec![entries[3].clone(), entries[2].clone(), entries[1].clone(), entries[0].clone()]
    );
    assert!(got[0].id > got[1].id);

    let (p1, t1) = s.list_audit(&by_project, &page(1, 3)).await.unwrap();
    let (p2, t2) = s.list_audit(&by_project, &page(2, 3)).await.unwrap();
    assert_eq!((p1, p2, t1, t2), (got[..3].to_vec(), got[3..].to_vec(), 4, 4));

    let count = |f: AuditFilter| async move { s.list_audit(&f, &ALL).await.unwrap() };
    let (bobs, n) = count(AuditFilter { username: Some(bob.clone().into()), ..Default::default() }).await;
    assert_eq!((n, bobs.iter().map(strip).collect::<Vec<_>>()), (2, vec![entries[3].clone(), entries[2].clone()]));
    assert_eq!(
        count(AuditFilter { username: Some(cx.name("a-").into()), ..Default::default() }).await.1,
        0,
        "user name is exact"
    );
    assert_eq!(count(AuditFilter { operation: Some("push".into()), ..by_project.clone() }).await.1, 1);
    assert_eq!(count(AuditFilter { resource_type: Some("project".into()), ..by_project.clone() }).await.1, 1);
    assert_eq!(count(AuditFilter { resource_type: Some("artifact".into()), ..by_project.clone() }).await.1, 3);
    let narrow = AuditFilter {
        project_id: Some(p.id),
        username: Some(alice.clone().into()),
        operation: Some("push".into()),
        resource_type: Some("artifact".into()),
        ..Default::default()
    };
    assert_eq!(count(narrow).await.1, 1, "filters combine");
    let with = |f: AuditFilter| AuditFilter { project_id: Some(p.id), ..f };
    // Fuzzy: a substring, ignoring ASCII case; LIKE's wildcards are plain characters.
    let resource = |m: TextMatch| with(AuditFilter { resource: Some(m), ..Default::default() });
    assert_eq!(count(resource(TextMatch::Contains("/APP:".into()))).await.1, 3);
    assert_eq!(count(resource(TextMatch::Contains("%".into()))).await.1, 0);
    assert_eq!(count(resource(TextMatch::Contains("_".into()))).await.1, 0);
    assert_eq!(count(resource(TextMatch::Exact(p.name.clone()))).await.1, 1);
    assert_eq!(count(resource(TextMatch::Exact(p.name.to_uppercase()))).await.1, 0, "exact is exact");
    let op = |m: TextMatch| with(AuditFilter { operation: Some(m), ..Default::default() });
    assert_eq!(count(op(TextMatch::AnyOf(vec!["push".into(), "pull".into()]))).await.1, 2);
    assert_eq!(count(op(TextMatch::AnyOf(vec![]))).await.1, 0);
    assert_eq!(count(op(TextMatch::Contains("e".into()))).await.1, 2, "create, delete");
    // Time bounds are inclusive.
    let range = |from: Option<i64>, to: Option<i64>| {
        with(AuditFilter { op_time_from: from, op_time_to: to, ..Default::default() })
    };
    assert_eq!(count(range(Some(t + 1), None)).await.1, 3);
    assert_eq!(count(range(None, Some(t + 1))).await.1, 2);
    assert_eq!(count(range(Some(t + 1), Some(t + 1))).await.1, 1);
    assert_eq!(count(range(Some(t + 3), None)).await.1, 0);
    let (bob_late, n) = count(AuditFilter {
        username: Some(TextMatch::AnyOf(vec![bob.clone()])),
        op_time_from: Some(t + 2),
        ..with(AuditFilter::default())
    })
    .await;
    assert_eq!((n, bob_late.iter().map(strip).collect::<Vec<_>>()), (2, vec![entries[3].clone(), entries[2].clone()]));
    assert_eq!(count(AuditFilter { project_id: Some(MISSING), ..Default::default() }).await, (vec![], 0));
    let (all, all_total) = count(AuditFilter::default()).await;
    assert!(all_total >= 4);
    assert!(all.windows(2).all(|w| (w[0].op_time, w[0].id) > (w[1].op_time, w[1].id)), "newest first");
}

/// Purging takes only old entries of the listed operations, in batches; a dry run counts.
async fn audit_purge(cx: &Cx) {
    let s = &cx.store;
    // Operation names unique to this run: the purge is database-wide.
    let (op_a, op_b) = (cx.name("purge-a"), cx.name("purge-b"));
    let t = now();
    let entry = |op_time: i64, operation: &str| AuditEntry {
        id: 0,
        project_id: 0,
        operation: operation.into(),
        resource_type: "artifact".into(),
        resource: "x/y:z".into(),
        username: "u".into(),
        op_time,
    };
    for e in
        [entry(t - 100, &op_a), entry(t - 90, &op_a), entry(t - 80, &op_a), entry(t - 10, &op_a), entry(t - 100, &op_b)]
    {
        s.append_audit(&e).await.unwrap();
    }
    let ops = [op_a.clone()];
    let count = |op: String| async move {
        s.list_audit(&AuditFilter { operation: Some(op.into()), ..Default::default() }, &ALL).await.unwrap().1
    };
    assert_eq!(s.purge_audit(t - 50, &ops, &[], 1, true).await.unwrap(), 3, "a dry run counts them all");
    assert_eq!(count(op_a.clone()).await, 4, "and deletes nothing");
    assert_eq!(s.purge_audit(t - 50, &ops, &[], 2, false).await.unwrap(), 2);
    assert_eq!(s.purge_audit(t - 50, &ops, &[], 2, false).await.unwrap(), 1);
    assert_eq!(s.purge_audit(t - 50, &ops, &[], 2, false).await.unwrap(), 0);
    assert_eq!(count(op_a).await, 1, "the young one stays");
    assert_eq!(count(op_b).await, 1, "operations not listed stay");
    assert_eq!(s.purge_audit(t, &[], &[], 10, false).await.unwrap(), 0, "no operations, nothing purged");
}

/// Purging by event type (`<operation>_<resource_type>`) takes only the listed pairs of
/// old entries; listed operations are purged too, whatever their resource type.
async fn audit_purge_by_event_type(cx: &Cx) {
    let s = &cx.store;
    // Operations unique to this run (the purge is database-wide), resource types as Berth's.
    let (op_a, op_b) = (cx.name("evt-a"), cx.name("evt-b"));
    let t = now();
    let entry = |op_time: i64, operation: &str, resource_type: &str| AuditEntry {
        id: 0,
        project_id: 0,
        operation: operation.into(),
        resource_type: resource_type.into(),
        resource: format!("{operation}/{resource_type}"),
        username: "u".into(),
        op_time,
    };
    for e in [
        entry(t - 100, &op_a, "artifact"),
        entry(t - 90, &op_a, "artifact"),
        entry(t - 10, &op_a, "artifact"),
        entry(t - 100, &op_a, "cve_allowlist"),
        entry(t - 100, &op_a, "tag"),
        entry(t - 100, &op_b, "tag"),
        entry(t - 100, &op_b, "project"),
    ] {
        s.append_audit(&e).await.unwrap();
    }
    let count = |operation: &str, resource_type: &str| {
        let f = AuditFilter {
            operation: Some(operation.into()),
            resource_type: Some(resource_type.into()),
            ..Default::default()
        };
        async move { s.list_audit(&f, &ALL).await.unwrap().1 }
    };
    let types = [format!("{op_a}_artifact"), format!("{op_a}_cve_allowlist")];
    assert_eq!(s.purge_audit(t - 50, &[], &types, 1, true).await.unwrap(), 3, "a dry run counts the old ones");
    assert_eq!(count(&op_a, "artifact").await, 3, "and deletes nothing");
    assert_eq!(s.purge_audit(t - 50, &[], &types, 2, false).await.unwrap(), 2);
    assert_eq!(s.purge_audit(t - 50, &[], &types, 2, false).await.unwrap(), 1);
    assert_eq!(s.purge_audit(t - 50, &[], &types, 2, false).await.unwrap(), 0);
    assert_eq!(count(&op_a, "artifact").await, 1, "the young one stays");
    assert_eq!(count(&op_a, "cve_allowlist").await, 0, "a resource type with _ matches whole");
    assert_eq!(count(&op_a, "tag").await, 1, "another resource type of the operation stays");
    assert_eq!((count(&op_b, "tag").await, count(&op_b, "project").await), (1, 1));
    // Harbor's older `include_operations` with event types: either selects an entry.
    let (ops, types) = ([op_b.clone()], [format!("{op_a}_tag")]);
    assert_eq!(s.purge_audit(t - 50, &ops, &types, 10, true).await.unwrap(), 3);
    assert_eq!(s.purge_audit(t - 50, &ops, &types, 10, false).await.unwrap(), 3);
    assert_eq!((count(&op_a, "tag").await, count(&op_b, "tag").await, count(&op_b, "project").await), (0, 0, 0));
    assert_eq!(count(&op_a, "artifact").await, 1);
}
