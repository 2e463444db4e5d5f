//! The authorization matrix: every route Berth serves under `/api/v2.0`, the token
//! service's repository scopes and the registry operations on `/v2`, each called by nine
//! callers, against Harbor's decision (goharbor/harbor `src/server/v2.0/handler/*.go`,
//! `src/common/rbac/project/rbac_role.go`, `src/core/service/token/creator.go`,
//! `src/server/middleware/v2auth/auth.go`).
//!
//! The callers, in column order: anonymous, an authenticated non-member, the five project
//! roles (limitedGuest, guest, developer, maintainer, projectAdmin), a second system
//! administrator, and a project robot with repository pull and push. The project is
//! private; as in Harbor, refusals are 401 for anonymous callers and 403 for everyone
//! else (an existing project the caller may not see is refused, not hidden as a 404), and
//! every `/v2` refusal is a 401 with a challenge.
//!
//! The test reads `/api/v2.0/openapi.json` (built from the same table as the router) and
//! fails if a served operation has no row, or a row names an operation that is not served.
//! Every case that changes something gets its own target (a fresh user, member, label,
//! robot, tag, artifact, repository or project), so one caller's allowed delete never
//! changes what the next caller sees.

use std::collections::BTreeSet;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::*;

const EXPORT_TYPE: &str = "application/vnd.security.vulnerability.report; version=1.1";

const CALLERS: [&str; 9] = ["anon", "nonmem", "limGst", "guest", "dev", "maint", "pAdmin", "sysadm", "robot"];

/// One row per operation (and variant): the expected outcome for each caller in the order
/// of [`CALLERS`]. A cell is an HTTP status, or for `/service/token` rows the actions the
/// token grants on `repository:team/app` (`-` for none). API paths are relative to
/// `/api/v2.0` and spelled as in the OpenAPI document; `/v2/{name}` is `team/app`.
///
/// Harbor's RBAC table (design reference §5), for reading the rows: repository pull/read/list
/// LGDMA, push/update DMA, delete MA; artifact and tag read/list LGDMA, create DMA, delete
/// MA; artifact-label DMA; project label read/list GDMA, write MA; member and robot read/list
/// GDMA, write A; metadata read MA, write A; project read LGDMA, update/delete A; log A.
/// Users, quotas, configurations, global labels and system robots are system resources:
/// system administrators only.
///
/// Where Berth deliberately differs from Harbor:
/// - metadata list (`GET …/metadatas[/]`): Harbor's handler asks for `metadata:list`, which
///   no project role holds, so only system administrators pass; Berth uses `metadata:read`
///   (maintainer and project admin), as the project's own metadata is readable that way too.
/// - token scopes: Harbor grants every allowed action whatever the scope asked for; Berth
///   grants only the asked-for ones that are allowed (never more than Harbor).
#[rustfmt::skip]
const MATRIX: &str = "
# method path                                                                                  variant anon nonmem limGst guest dev maint pAdmin sysadm robot
GET      /ping                                                                                 -       200  200    200    200   200 200   200    200    200
GET      /health                                                                               -       200  200    200    200   200 200   200    200    200
GET      /systeminfo                                                                           -       200  200    200    200   200 200   200    200    200
GET      /systeminfo/getcert                                                                   -       404  404    404    404   404 404   404    404    404
GET      /openapi.json                                                                         -       200  200    200    200   200 200   200    200    200

GET      /users                                                                                -       401  403    403    403   403 403   403    200    403
POST     /users                                                                                -       401  403    403    403   403 403   403    201    403
GET      /users/current                                                                        -       401  200    200    200   200 200   200    200    412
GET      /users/search                                                                         -       401  200    200    200   200 200   200    200    200
GET      /users/current/permissions                                                            -       401  200    200    200   200 200   200    200    200
GET      /users/{user_id}                                                                      other   401  403    403    403   403 403   403    200    403
GET      /users/{user_id}                                                                      self    401  200    200    200   200 200   200    200    403
PUT      /users/{user_id}                                                                      other   401  403    403    403   403 403   403    200    403
PUT      /users/{user_id}                                                                      self    401  200    200    200   200 200   200    200    403
DELETE   /users/{user_id}                                                                      other   401  403    403    403   403 403   403    200    403
PUT      /users/{user_id}/password                                                             other   401  403    403    403   403 403   403    200    403
PUT      /users/{user_id}/sysadmin                                                             other   401  403    403    403   403 403   403    200    403

GET      /projects                                                                             -       200  200    200    200   200 200   200    200    200
POST     /projects                                                                             -       401  201    201    201   201 201   201    201    403
HEAD     /projects                                                                             -       401  200    200    200   200 200   200    200    200
GET      /projects/{project}                                                                   -       401  403    200    200   200 200   200    200    403
PUT      /projects/{project}                                                                   -       401  403    403    403   403 403   200    200    403
DELETE   /projects/{project}                                                                   -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/summary                                                           -       401  403    200    200   200 200   200    200    403
GET      /projects/{project}/_deletable                                                        -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/metadatas                                                         -       401  403    403    403   403 200   200    200    403
GET      /projects/{project}/metadatas/                                                        -       401  403    403    403   403 200   200    200    403
POST     /projects/{project}/metadatas                                                         -       401  403    403    403   403 403   200    200    403
POST     /projects/{project}/metadatas/                                                        -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/metadatas/{name}                                                  -       401  403    403    403   403 200   200    200    403
PUT      /projects/{project}/metadatas/{name}                                                  -       401  403    403    403   403 403   200    200    403
DELETE   /projects/{project}/metadatas/{name}                                                  -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/members                                                           -       401  403    403    200   200 200   200    200    403
POST     /projects/{project}/members                                                           -       401  403    403    403   403 403   201    201    403
GET      /projects/{project}/members/{mid}                                                     -       401  403    403    200   200 200   200    200    403
PUT      /projects/{project}/members/{mid}                                                     -       401  403    403    403   403 403   200    200    403
DELETE   /projects/{project}/members/{mid}                                                     -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/immutabletagrules                                                 -       401  403    403    403   403 200   200    200    403
POST     /projects/{project}/immutabletagrules                                                 -       401  403    403    403   403 201   201    201    403
PUT      /projects/{project}/immutabletagrules/{immutable_rule_id}                             -       401  403    403    403   403 200   200    200    403
DELETE   /projects/{project}/immutabletagrules/{immutable_rule_id}                             -       401  403    403    403   403 200   200    200    403
GET      /projects/{project}/signature-trust                                                   -       401  403    403    403   403 200   200    200    403
PUT      /projects/{project}/signature-trust                                                   -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/logs                                                              -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/auditlog-exts                                                     -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/webhook/policies                                                  -       401  403    403    403   403 200   200    200    403
POST     /projects/{project}/webhook/policies                                                  -       401  403    403    403   403 403   201    201    403
GET      /projects/{project}/webhook/policies/{webhook_policy_id}                              -       401  403    403    403   403 200   200    200    403
PUT      /projects/{project}/webhook/policies/{webhook_policy_id}                              -       401  403    403    403   403 403   200    200    403
DELETE   /projects/{project}/webhook/policies/{webhook_policy_id}                              -       401  403    403    403   403 403   200    200    403
POST     /projects/{project}/webhook/policies/{webhook_policy_id}/test                         -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/webhook/policies/{webhook_policy_id}/executions                   -       401  403    403    403   403 200   200    200    403
GET      /projects/{project}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks -    401  403    403    403   403 200   200    200    403
GET      /projects/{project}/webhook/policies/{webhook_policy_id}/executions/{execution_id}/tasks/{task_id}/log - 401 403 403 403 403 200 200 200 403
GET      /projects/{project}/webhook/events                                                    -       401  403    403    403   403 200   200    200    403
GET      /projects/{project}/webhook/lasttrigger                                               -       401  403    403    403   403 200   200    200    403

GET      /repositories                                                                         -       200  200    200    200   200 200   200    200    200
GET      /projects/{project}/repositories                                                      -       401  403    200    200   200 200   200    200    403
GET      /projects/{project}/repositories/{repository}                                         -       401  403    200    200   200 200   200    200    403
PUT      /projects/{project}/repositories/{repository}                                         -       401  403    403    403   200 200   200    200    403
DELETE   /projects/{project}/repositories/{repository}                                         -       401  403    403    403   403 200   200    200    403
GET      /projects/{project}/repositories/{repository}/artifacts                               -       401  403    200    200   200 200   200    200    403
POST     /projects/{project}/repositories/{repository}/artifacts                               -       401  403    403    403   201 201   201    201    403
GET      /projects/{project}/repositories/{repository}/artifacts/{reference}                   -       401  403    200    200   200 200   200    200    403
DELETE   /projects/{project}/repositories/{repository}/artifacts/{reference}                   -       401  403    403    403   403 200   200    200    403
GET      /projects/{project}/repositories/{repository}/artifacts/{reference}/accessories       -       401  403    200    200   200 200   200    200    403
GET      /projects/{project}/repositories/{repository}/artifacts/{reference}/tags              -       401  403    200    200   200 200   200    200    403
POST     /projects/{project}/repositories/{repository}/artifacts/{reference}/tags              -       401  403    403    403   201 201   201    201    403
DELETE   /projects/{project}/repositories/{repository}/artifacts/{reference}/tags/{tag}        -       401  403    403    403   403 200   200    200    403
POST     /projects/{project}/repositories/{repository}/artifacts/{reference}/labels            -       401  403    403    403   200 200   200    200    403
DELETE   /projects/{project}/repositories/{repository}/artifacts/{reference}/labels/{label_id} -       401  403    403    403   200 200   200    200    403
POST     /projects/{project}/repositories/{repository}/artifacts/{reference}/scan              -       401  403    403    403   403 202   202    202    403
POST     /projects/{project}/repositories/{repository}/artifacts/{reference}/scan/stop         -       401  403    403    403   403 400   400    400    403
GET      /projects/{project}/repositories/{repository}/artifacts/{reference}/scan/{report_id}/log -       401  403    200    200   200 200   200    200    403
GET      /projects/{project}/repositories/{repository}/artifacts/{reference}/additions/vulnerabilities -       401  403    200    200   200 200   200    200    403
GET      /projects/{project}/repositories/{repository}/artifacts/{reference}/additions/sbom    -       401  403    404    404   404 404   404    404    403
GET      /projects/{project}/repositories/{repository}/artifacts/{reference}/additions/build_history - 401 403 200 200 200 200  200    200    403
GET      /projects/{project}/scanner                                                           -       401  403    200    200   200 200   200    200    403
PUT      /projects/{project}/scanner                                                           -       401  403    403    403   403 403   200    200    403
GET      /projects/{project}/scanner/candidates                                                -       401  403    403    403   403 403   200    200    403

GET      /scanners                                                                             -       401  403    403    403   403 403   403    200    403
GET      /scanners/{registration_id}                                                           -       401  403    403    403   403 403   403    200    403
GET      /scanners/{registration_id}/metadata                                                  -       401  403    403    403   403 403   403    200    403
POST     /scanners                                                                             -       401  403    403    403   403 403   403    201    403
POST     /scanners/ping                                                                        -       401  403    403    403   403 403   403    400    403
PUT      /scanners/{registration_id}                                                           -       401  403    403    403   403 403   403    200    403
DELETE   /scanners/{registration_id}                                                           -       401  403    403    403   403 403   403    200    403
PATCH    /scanners/{registration_id}                                                           -       401  403    403    403   403 403   403    200    403
GET      /labels                                                                               global  200  200    200    200   200 200   200    200    200
GET      /labels                                                                               project 401  403    403    200   200 200   200    200    403
POST     /labels                                                                               global  401  403    403    403   403 403   403    201    403
POST     /labels                                                                               project 401  403    403    403   403 201   201    201    403
GET      /labels/{id}                                                                          global  401  403    403    403   403 403   403    200    403
GET      /labels/{id}                                                                          project 401  403    403    200   200 200   200    200    403
PUT      /labels/{id}                                                                          global  401  403    403    403   403 403   403    200    403
PUT      /labels/{id}                                                                          project 401  403    403    403   403 200   200    200    403
DELETE   /labels/{id}                                                                          global  401  403    403    403   403 403   403    200    403
DELETE   /labels/{id}                                                                          project 401  403    403    403   403 200   200    200    403

GET      /robots                                                                               system  401  403    403    403   403 403   403    200    403
GET      /robots                                                                               project 401  403    403    200   200 200   200    200    403
POST     /robots                                                                               system  401  403    403    403   403 403   403    201    403
POST     /robots                                                                               project 401  403    403    403   403 403   201    201    403
GET      /robots/{robot_id}                                                                    system  401  403    403    403   403 403   403    200    403
GET      /robots/{robot_id}                                                                    project 401  403    403    200   200 200   200    200    403
PUT      /robots/{robot_id}                                                                    project 401  403    403    403   403 403   200    200    403
PATCH    /robots/{robot_id}                                                                    project 401  403    403    403   403 403   200    200    403
DELETE   /robots/{robot_id}                                                                    system  401  403    403    403   403 403   403    200    403
DELETE   /robots/{robot_id}                                                                    project 401  403    403    403   403 403   200    200    403

GET      /audit-logs                                                                           -       401  200    200    200   200 200   200    200    200
GET      /auditlog-exts                                                                        -       401  403    403    403   403 403   403    200    403
GET      /auditlog-exts/events                                                                 -       401  403    403    403   403 403   403    200    403
GET      /search                                                                               -       200  200    200    200   200 200   200    200    200
GET      /statistics                                                                           -       401  200    200    200   200 200   200    200    200
GET      /quotas                                                                               all     401  403    403    403   403 403   403    200    403
GET      /quotas                                                                               project 401  403    403    403   403 403   403    200    403
GET      /quotas/{id}                                                                          -       401  403    403    403   403 403   403    200    403
PUT      /quotas/{id}                                                                          -       401  403    403    403   403 403   403    200    403
GET      /retentions/metadatas                                                                 -       200  200    200    200   200 200   200    200    200
POST     /retentions                                                                           -       401  403    403    403   201 201   201    201    403
GET      /retentions/{id}                                                                      -       401  403    403    403   200 200   200    200    403
PUT      /retentions/{id}                                                                      -       401  403    403    403   200 200   200    200    403
DELETE   /retentions/{id}                                                                      -       401  403    403    403   200 200   200    200    403
GET      /retentions/{id}/executions                                                           -       401  403    403    403   200 200   200    200    403
POST     /retentions/{id}/executions                                                           -       401  403    403    403   201 201   201    201    403
PATCH    /retentions/{id}/executions/{eid}                                                     -       401  403    403    403   200 200   200    200    403
GET      /retentions/{id}/executions/{eid}/tasks                                               -       401  403    403    403   200 200   200    200    403
GET      /retentions/{id}/executions/{eid}/tasks/{tid}                                         -       401  403    403    403   200 200   200    200    403
GET      /configurations                                                                       -       401  403    403    403   403 403   403    200    403
PUT      /configurations                                                                       -       401  403    403    403   403 403   403    200    403

GET      /system/gc                                                                            -       401  403    403    403   403 403   403    200    403
GET      /system/gc/{gc_id}                                                                    -       401  403    403    403   403 403   403    200    403
PUT      /system/gc/{gc_id}                                                                    -       401  403    403    403   403 403   403    200    403
GET      /system/gc/{gc_id}/log                                                                -       401  403    403    403   403 403   403    200    403
GET      /system/gc/schedule                                                                   -       401  403    403    403   403 403   403    200    403
POST     /system/gc/schedule                                                                   -       401  403    403    403   403 403   403    200    403
PUT      /system/gc/schedule                                                                   -       401  403    403    403   403 403   403    200    403
GET      /system/purgeaudit                                                                    -       401  403    403    403   403 403   403    200    403
GET      /system/purgeaudit/{purge_id}                                                         -       401  403    403    403   403 403   403    200    403
PUT      /system/purgeaudit/{purge_id}                                                         -       401  403    403    403   403 403   403    200    403
GET      /system/purgeaudit/{purge_id}/log                                                     -       401  403    403    403   403 403   403    200    403
GET      /system/purgeaudit/schedule                                                           -       401  403    403    403   403 403   403    200    403
POST     /system/purgeaudit/schedule                                                           -       401  403    403    403   403 403   403    200    403
PUT      /system/purgeaudit/schedule                                                           -       401  403    403    403   403 403   403    200    403
GET      /system/CVEAllowlist                                                                  -       401  200    200    200   200 200   200    200    200
PUT      /system/CVEAllowlist                                                                  -       401  403    403    403   403 403   403    200    403
GET      /system/scanAll/schedule                                                              -       401  403    403    403   403 403   403    200    403
POST     /system/scanAll/schedule                                                              -       401  403    403    403   403 403   403    201    403
PUT      /system/scanAll/schedule                                                              -       401  403    403    403   403 403   403    200    403
POST     /system/scanAll/stop                                                                  -       401  403    403    403   403 403   403    400    403
GET      /scans/all/metrics                                                                    -       401  403    403    403   403 403   403    200    403
GET      /scans/schedule/metrics                                                               -       401  403    403    403   403 403   403    200    403
GET      /security/summary                                                                     -       401  403    403    403   403 403   403    200    403
GET      /security/vul                                                                         -       401  403    403    403   403 403   403    200    403
POST     /export/cve                                                                           -       401  403    403    403   200 200   200    200    403
GET      /export/cve/executions                                                                -       401  200    200    200   200 200   200    200    200
GET      /export/cve/execution/{execution_id}                                                  -       401  403    403    403   403 403   200    403    403
GET      /export/cve/download/{execution_id}                                                   -       401  403    403    403   403 403   200    403    403
GET      /system/database                                                                      -       401  403    403    403   403 403   403    200    403
GET      /jobservice/pools                                                                     -       401  403    403    403   403 403   403    200    403
GET      /jobservice/pools/{pool_id}/workers                                                   -       401  403    403    403   403 403   403    200    403
PUT      /jobservice/jobs/{job_id}                                                             -       401  403    403    403   403 403   403    200    403
GET      /jobservice/jobs/{job_id}/log                                                         -       401  403    403    403   403 403   403    200    403
GET      /jobservice/queues                                                                    -       401  403    403    403   403 403   403    200    403
PUT      /jobservice/queues/{job_type}                                                         -       401  403    403    403   403 403   403    200    403
GET      /jobservice/queues/{job_type}/jobs                                                    -       401  403    403    403   403 403   403    200    403
GET      /schedules                                                                            -       401  403    403    403   403 403   403    200    403
GET      /schedules/{job_type}/paused                                                          -       401  403    403    403   403 403   403    200    403

GET      /registries                                                                           -       401  403    403    403   403 403   403    200    403
POST     /registries                                                                           -       401  403    403    403   403 403   403    201    403
POST     /registries/ping                                                                      -       401  403    403    403   403 403   403    200    403
GET      /registries/{id}                                                                      -       401  403    403    403   403 403   403    200    403
PUT      /registries/{id}                                                                      -       401  403    403    403   403 403   403    200    403
DELETE   /registries/{id}                                                                      -       401  403    403    403   403 403   403    200    403
GET      /registries/{id}/info                                                                 -       401  403    403    403   403 403   403    200    403
GET      /replication/adapters                                                                 -       401  403    403    403   403 403   403    200    403
GET      /replication/adapterinfos                                                             -       401  403    403    403   403 403   403    200    403
GET      /replication/policies                                                                 -       401  403    403    403   403 403   403    200    403
POST     /replication/policies                                                                 -       401  403    403    403   403 403   403    201    403
GET      /replication/policies/{id}                                                            -       401  403    403    403   403 403   403    200    403
PUT      /replication/policies/{id}                                                            -       401  403    403    403   403 403   403    200    403
DELETE   /replication/policies/{id}                                                            -       401  403    403    403   403 403   403    200    403
GET      /replication/executions                                                               -       401  403    403    403   403 403   403    200    403
POST     /replication/executions                                                               -       401  403    403    403   403 403   403    201    403
GET      /replication/executions/{id}                                                          -       401  403    403    403   403 403   403    200    403
PUT      /replication/executions/{id}                                                          -       401  403    403    403   403 403   403    200    403
GET      /replication/executions/{id}/tasks                                                    -       401  403    403    403   403 403   403    200    403
GET      /replication/executions/{id}/tasks/{task_id}/log                                      -       401  403    403    403   403 403   403    200    403

# method path           scope  anon nonmem limGst guest dev       maint            pAdmin           sysadm           robot
GET      /service/token pull   -    -      pull   pull  pull      pull             pull             pull             pull
GET      /service/token push   -    -      -      -     push      push             push             push             push
GET      /service/token delete -    -      -      -     -         delete           delete           delete           -
GET      /service/token all    -    -      pull   pull  pull,push pull,push,delete pull,push,delete pull,push,delete pull,push

# method path                             variant anon nonmem limGst guest dev maint pAdmin sysadm robot
GET      /v2/                             -       401  200    200    200   200 200   200    200    200
GET      /v2/_catalog                     -       401  401    401    401   401 401   401    200    401
GET      /v2/{name}/tags/list             -       401  401    200    200   200 200   200    200    200
GET      /v2/{name}/manifests/{reference} -       401  401    200    200   200 200   200    200    200
POST     /v2/{name}/blobs/uploads/        -       401  401    401    401   201 201   201    201    201
DELETE   /v2/{name}/manifests/{reference} -       401  401    401    401   401 202   202    202    401
";

struct Row {
    method: String,
    path: String,
    variant: String,
    expected: Vec<String>,
}

fn rows() -> Vec<Row> {
    MATRIX
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 3 + CALLERS.len(), "bad matrix row {line:?}");
            Row {
                method: cols[0].to_string(),
                path: cols[1].to_string(),
                variant: cols[2].to_string(),
                expected: cols[3..].iter().map(|c| c.to_string()).collect(),
            }
        })
        .collect()
}

fn is_api(path: &str) -> bool {
    !path.starts_with("/v2/") && !path.starts_with("/service/")
}

enum Payload {
    None,
    Json(Value),
    Bytes(Vec<u8>),
}

/// The shared fixtures: users for every role, the private project `team` with the image
/// `team/app:v1`, the robot caller, and targets for the read and update cases.
struct World {
    s: Server,
    who: Vec<Who>,
    /// Each caller's own user id (none for anonymous and the robot).
    ids: Vec<Option<i64>>,
    team: i64,
    target_user: i64,
    target_member: i64,
    target_robot: i64,
    system_robot: i64,
    global_label: i64,
    project_label: i64,
    /// An immutable-tag rule of `team`, for updates.
    immutable_rule: i64,
    /// A finished audit log purge (execution id) and its task (job id).
    purge: i64,
    purge_task: i64,
    /// A garbage collection (dry run) execution id.
    gc: i64,
    /// A webhook policy of `team`, one of its executions and that execution's task.
    webhook: i64,
    webhook_exec: i64,
    webhook_task: i64,
    /// A replication registry (this server itself), a policy using it, one of its
    /// executions and that execution's (planning) task.
    registry: i64,
    replication_policy: i64,
    replication_exec: i64,
    replication_task: i64,
    /// A retention policy of `team`, a dry run of it and that run's repository task.
    retention: i64,
    retention_exec: i64,
    retention_task: i64,
    /// For fresh names.
    n: u32,
}

fn robot_body(name: &str, level: &str) -> Value {
    if level == "system" {
        json!({"name": name, "level": "system", "duration": -1, "permissions": [
            {"kind": "system", "namespace": "/", "access": [{"resource": "user", "action": "list"}]}]})
    } else {
        json!({"name": name, "level": "project", "duration": -1, "permissions": [
            {"kind": "project", "namespace": "team", "access": [
                {"resource": "repository", "action": "pull"}, {"resource": "repository", "action": "push"}]}]})
    }
}

/// An immutable-tag rule over every repository for tags matching `tags`.
fn immutable_body(tags: &str) -> Value {
    json!({"tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags}],
           "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}})
}

/// A retention policy of project `project_id` keeping the latest artifact of every repository.
fn retention_body(project_id: i64) -> Value {
    json!({"algorithm": "or", "rules": [{"template": "latestPushedK", "params": {"latestPushedK": 1},
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": "**"}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches", "pattern": "**"}]}}],
           "trigger": {"kind": "Schedule", "settings": {"cron": ""}},
           "scope": {"level": "project", "ref": project_id}})
}

fn webhook_body(name: &str) -> Value {
    json!({"name": name, "event_types": ["PUSH_ARTIFACT"], "targets": [{"type": "http", "address": "http://127.0.0.1:9/"}]})
}

/// A replication endpoint: this server itself, as a Harbor, with the admin's credentials
/// (so that a ping succeeds).
fn registry_body(s: &Server, name: &str) -> Value {
    json!({"name": name, "type": "harbor", "url": s.url(""),
           "credential": {"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD}})
}

/// A push policy to `registry` whose name filter selects nothing (its runs copy nothing).
fn replication_body(name: &str, registry: i64) -> Value {
    json!({"name": name, "dest_registry": {"id": registry}, "filters": [{"type": "name", "value": "nothing/**"}]})
}

async fn create(s: &Server, path: &str, body: Value) -> reqwest::Response {
    let r = call(s, Method::POST, path, &admin(), Some(&body)).await;
    assert_eq!(r.status(), 201, "POST {path} {body}");
    r
}

impl World {
    async fn new() -> World {
        let s = Server::start_harbor();
        let names = ["nonmember", "limited", "guest", "dev", "maint", "padmin", "root2"];
        let mut ids = vec![None];
        for u in names {
            ids.push(Some(create_user(&s, u).await));
        }
        ids.push(None);
        let root2 = ids[7].unwrap();
        let up = json!({"sysadmin_flag": true});
        assert_eq!(
            status(&s, Method::PUT, &format!("/api/v2.0/users/{root2}/sysadmin"), &admin(), Some(&up)).await,
            200
        );
        let team = create_project(&s, &admin(), "team", false).await;
        for (u, role) in [("limited", 5), ("guest", 3), ("dev", 2), ("maint", 4), ("padmin", 1)] {
            add_member(&s, "team", u, role).await;
        }
        let target_user = create_user(&s, "target").await;
        create_user(&s, "mtarget").await;
        let target_member = add_member(&s, "team", "mtarget", 3).await;
        let r = create(&s, "/api/v2.0/robots", robot_body("matrix", "project")).await;
        let secret = body_json(r).await["secret"].as_str().unwrap().to_string();
        let target_robot = location_id(&create(&s, "/api/v2.0/robots", robot_body("target", "project")).await);
        let system_robot = location_id(&create(&s, "/api/v2.0/robots", robot_body("sysbot", "system")).await);
        push_small_image_as(&s, &admin(), "team/app", "v1", "matrix").await;
        let global_label = location_id(&create(&s, "/api/v2.0/labels", json!({"name": "g", "scope": "g"})).await);
        let body = json!({"name": "p", "scope": "p", "project_id": team});
        let project_label = location_id(&create(&s, "/api/v2.0/labels", body).await);
        let immutable_rule =
            location_id(&create(&s, "/api/v2.0/projects/team/immutabletagrules", immutable_body("matrix-*")).await);
        let body = json!({"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 24, "dry_run": true}});
        let purge = location_id(&create(&s, "/api/v2.0/system/purgeaudit/schedule", body).await);
        // The first job of a fresh server.
        let purge_task = 1;
        assert_eq!(get(&s, "/api/v2.0/jobservice/jobs/1/log", &admin()).await.status(), 200);
        let body = json!({"schedule": {"type": "Manual"}, "parameters": {"dry_run": true}});
        let gc = location_id(&create(&s, "/api/v2.0/system/gc/schedule", body).await);
        // After the purge (job 1): a policy whose push events go nowhere (retried, harmless).
        let webhook =
            location_id(&create(&s, "/api/v2.0/projects/team/webhook/policies", webhook_body("matrix")).await);
        push_small_image_as(&s, &admin(), "team/app", "hook", "matrix hook").await;
        let execs = format!("/api/v2.0/projects/team/webhook/policies/{webhook}/executions");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let (webhook_exec, webhook_task) = loop {
            let e = ok_json(&s, &execs, &admin()).await;
            if let Some(id) = e[0]["id"].as_i64() {
                let tasks = ok_json(&s, &format!("{execs}/{id}/tasks"), &admin()).await;
                break (id, tasks[0]["id"].as_i64().unwrap());
            }
            assert!(std::time::Instant::now() < deadline, "no webhook execution for the push");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let registry = location_id(&create(&s, "/api/v2.0/registries", registry_body(&s, "matrix")).await);
        let replication_policy =
            location_id(&create(&s, "/api/v2.0/replication/policies", replication_body("matrix", registry)).await);
        let body = json!({"policy_id": replication_policy});
        let replication_exec = location_id(&create(&s, "/api/v2.0/replication/executions", body).await);
        let tasks = ok_json(&s, &format!("/api/v2.0/replication/executions/{replication_exec}/tasks"), &admin()).await;
        let replication_task = tasks[0]["id"].as_i64().expect("the planning task is listed at once");
        // A dry run of a retention policy of `team`: its task for team/app.
        let retention = location_id(&create(&s, "/api/v2.0/retentions", retention_body(team)).await);
        let runs = format!("/api/v2.0/retentions/{retention}/executions");
        let retention_exec = location_id(&create(&s, &runs, json!({"dry_run": true})).await);
        let retention_task = loop {
            let tasks = ok_json(&s, &format!("{runs}/{retention_exec}/tasks"), &admin()).await;
            if let Some(id) = tasks[0]["id"].as_i64() {
                break id;
            }
            assert!(std::time::Instant::now() < deadline, "no retention task");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let mut who = vec![Who::Anon];
        who.extend(names.iter().map(|u| user(u)));
        who.push(Who::Basic("robot$team+matrix".into(), secret));
        World {
            s,
            who,
            ids,
            team,
            target_user,
            target_member,
            target_robot,
            system_robot,
            global_label,
            project_label,
            immutable_rule,
            purge,
            purge_task,
            gc,
            webhook,
            webhook_exec,
            webhook_task,
            registry,
            replication_policy,
            replication_exec,
            replication_task,
            retention,
            retention_exec,
            retention_task,
            n: 0,
        }
    }

    /// A retention policy of a fresh project with `team`'s members.
    async fn fresh_retention(&mut self) -> i64 {
        self.n += 1;
        let name = format!("ret{}", self.n);
        let id = create_project(&self.s, &admin(), &name, false).await;
        for (u, role) in [("limited", 5), ("guest", 3), ("dev", 2), ("maint", 4), ("padmin", 1)] {
            add_member(&self.s, &name, u, role).await;
        }
        location_id(&create(&self.s, "/api/v2.0/retentions", retention_body(id)).await)
    }

    /// A finished CVE export of `team`, made by the project admin (only its owner may
    /// read or download it).
    async fn fresh_export(&mut self) -> i64 {
        let owner = self.who[6].clone();
        let r = owner
            .apply(client().post(self.s.url("/api/v2.0/export/cve")))
            .header("X-Scan-Data-Type", EXPORT_TYPE)
            .header("content-type", "application/json")
            .body(json!({"projects": [self.team]}).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id = body_json(r).await["id"].as_i64().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while ok_json(&self.s, &format!("/api/v2.0/export/cve/execution/{id}"), &owner).await["status"] != "Success" {
            assert!(std::time::Instant::now() < deadline, "export {id} did not finish");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        id
    }

    async fn fresh_user(&mut self) -> (String, i64) {
        self.n += 1;
        let name = format!("fresh{}", self.n);
        let id = create_user(&self.s, &name).await;
        (name, id)
    }

    async fn fresh_label(&mut self, scope: &str) -> i64 {
        self.n += 1;
        let body = match scope {
            "global" => json!({"name": format!("g{}", self.n), "scope": "g"}),
            _ => json!({"name": format!("p{}", self.n), "scope": "p", "project_id": self.team}),
        };
        location_id(&create(&self.s, "/api/v2.0/labels", body).await)
    }

    /// A fresh artifact in `repo`; returns its digest.
    async fn fresh_artifact(&mut self, repo: &str) -> String {
        self.n += 1;
        let tag = format!("f{}", self.n);
        push_small_image_as(&self.s, &admin(), repo, &tag, &format!("fresh {}", self.n)).await
    }

    /// Turns scan on push off in `team` (the `PUT /projects/{project}` rows turn it on).
    async fn no_auto_scan(&self) {
        let body = json!({"metadata": {"auto_scan": "false"}});
        assert_eq!(status(&self.s, Method::PUT, "/api/v2.0/projects/team", &admin(), Some(&body)).await, 200);
    }

    /// Makes sure the `prevent_vul` metadata of `team` is set (or not).
    async fn prevent_vul(&self, present: bool) {
        let path = "/api/v2.0/projects/team/metadatas/prevent_vul";
        call(&self.s, Method::DELETE, path, &admin(), None).await;
        if present {
            let body = json!({"prevent_vul": "true"});
            let r = call(&self.s, Method::POST, "/api/v2.0/projects/team/metadatas/", &admin(), Some(&body)).await;
            assert_eq!(r.status(), 200);
        }
    }

    /// The concrete request of `row` for caller `i` (path with query, body, and the caller
    /// if it is not the usual one), after preparing the case's own target.
    async fn request(&mut self, row: &Row, i: usize) -> (String, Payload, Option<Who>) {
        let v2 = row.path.starts_with("/v2/");
        let mut vars: Vec<(&str, String)> = vec![
            ("project", "team".into()),
            ("repository", "app".into()),
            ("reference", "v1".into()),
            ("name", if v2 { "team/app".into() } else { "prevent_vul".into() }),
            ("mid", self.target_member.to_string()),
            ("user_id", self.target_user.to_string()),
            ("robot_id", self.target_robot.to_string()),
            ("purge_id", self.purge.to_string()),
            ("immutable_rule_id", self.immutable_rule.to_string()),
            ("gc_id", self.gc.to_string()),
            ("job_id", self.purge_task.to_string()),
            ("pool_id", "all".into()),
            ("webhook_policy_id", self.webhook.to_string()),
            ("execution_id", self.webhook_exec.to_string()),
            ("task_id", self.webhook_task.to_string()),
            ("job_type", "all".into()),
        ];
        let mut set = |k: &'static str, v: String| vars.push((k, v));
        let mut query = String::new();
        let mut body = Payload::None;
        let mut caller = None;
        let team = self.team;
        self.n += 1;
        let n = self.n;
        match (row.method.as_str(), row.path.as_str(), row.variant.as_str()) {
            ("POST", "/users", _) => {
                let name = format!("new{n}");
                body = Payload::Json(json!({
                    "username": name, "email": format!("{name}@example.com"), "realname": name, "password": PW,
                }));
            }
            ("GET", "/users/search", _) => query = "?username=gu".into(),
            ("GET", "/users/current/permissions", _) => query = format!("?scope=/project/{team}&relative=true"),
            ("DELETE", "/users/{user_id}", _) => set("user_id", self.fresh_user().await.1.to_string()),
            (method, "/users/{user_id}", variant) => {
                if variant == "self" {
                    set("user_id", self.ids[i].unwrap_or(self.target_user).to_string());
                }
                if method == "PUT" {
                    body = Payload::Json(json!({"realname": format!("Renamed {n}"), "comment": "matrix"}));
                }
            }
            ("PUT", "/users/{user_id}/password", _) => {
                set("user_id", self.fresh_user().await.1.to_string());
                body = Payload::Json(json!({"new_password": "Newpassw0rd"}));
            }
            ("PUT", "/users/{user_id}/sysadmin", _) => body = Payload::Json(json!({"sysadmin_flag": false})),
            ("POST", "/projects", _) => {
                body = Payload::Json(json!({"project_name": format!("new{n}"), "metadata": {"public": "false"}}));
            }
            ("HEAD", "/projects", _) => query = "?project_name=team".into(),
            ("PUT", "/projects/{project}", _) => body = Payload::Json(json!({"metadata": {"auto_scan": "true"}})),
            ("PUT", "/projects/{project}/signature-trust", _) => body = Payload::Json(json!({})),
            ("DELETE", "/projects/{project}", _) => {
                // A project of its own, with the same members.
                let name = format!("gone{n}");
                create_project(&self.s, &admin(), &name, false).await;
                for (u, role) in [("limited", 5), ("guest", 3), ("dev", 2), ("maint", 4), ("padmin", 1)] {
                    add_member(&self.s, &name, u, role).await;
                }
                if i == 8 {
                    // The robot caller: one with the same permissions in this project.
                    let mut robot = robot_body("matrix", "project");
                    robot["permissions"][0]["namespace"] = json!(name);
                    let r = create(&self.s, "/api/v2.0/robots", robot).await;
                    let secret = body_json(r).await["secret"].as_str().unwrap().to_string();
                    caller = Some(Who::Basic(format!("robot${name}+matrix"), secret));
                }
                set("project", name);
            }
            ("POST", "/projects/{project}/metadatas" | "/projects/{project}/metadatas/", _) => {
                self.prevent_vul(false).await;
                body = Payload::Json(json!({"prevent_vul": "true"}));
            }
            (method, "/projects/{project}/metadatas/{name}", _) => {
                self.prevent_vul(true).await;
                if method == "PUT" {
                    body = Payload::Json(json!({"prevent_vul": "false"}));
                }
            }
            ("POST", "/projects/{project}/members", _) => {
                let (name, _) = self.fresh_user().await;
                body = Payload::Json(json!({"role_id": 3, "member_user": {"username": name}}));
            }
            ("PUT", "/projects/{project}/members/{mid}", _) => body = Payload::Json(json!({"role_id": 3})),
            ("DELETE", "/projects/{project}/members/{mid}", _) => {
                let (name, _) = self.fresh_user().await;
                set("mid", add_member(&self.s, "team", &name, 3).await.to_string());
            }
            ("PUT", "/projects/{project}/repositories/{repository}", _) => {
                body = Payload::Json(json!({"description": "matrix"}));
            }
            ("DELETE", "/projects/{project}/repositories/{repository}", _) => {
                let repo = format!("gone{n}");
                self.fresh_artifact(&format!("team/{repo}")).await;
                set("repository", repo);
            }
            ("POST", "/projects/{project}/repositories/{repository}/artifacts", _) => {
                // Each allowed caller copies v1 into a repository of its own.
                set("repository", format!("copy{n}"));
                query = "?from=team/app:v1".into();
            }
            ("DELETE", "/projects/{project}/repositories/{repository}/artifacts/{reference}", _) => {
                set("reference", self.fresh_artifact("team/app").await);
            }
            ("POST", "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags", _) => {
                body = Payload::Json(json!({"name": format!("t{n}")}));
            }
            ("DELETE", "/projects/{project}/repositories/{repository}/artifacts/{reference}/tags/{tag}", _) => {
                let tag = format!("d{n}");
                create(&self.s, "/api/v2.0/projects/team/repositories/app/artifacts/v1/tags", json!({"name": tag}))
                    .await;
                set("tag", tag);
            }
            ("POST", "/projects/{project}/repositories/{repository}/artifacts/{reference}/labels", _) => {
                body = Payload::Json(json!({"id": self.fresh_label("global").await}));
            }
            ("DELETE", "/projects/{project}/repositories/{repository}/artifacts/{reference}/labels/{label_id}", _) => {
                let id = self.fresh_label("global").await;
                let path = "/api/v2.0/projects/team/repositories/app/artifacts/v1/labels";
                assert_eq!(status(&self.s, Method::POST, path, &admin(), Some(&json!({"id": id}))).await, 200);
                set("label_id", id.to_string());
            }
            ("POST", "/projects/{project}/repositories/{repository}/artifacts/{reference}/scan", _) => {
                // Each allowed caller starts a scan of an artifact of its own (a second scan of
                // one still pending would be a 409), with scan on push off.
                self.no_auto_scan().await;
                set("reference", self.fresh_artifact("team/app").await);
            }
            ("POST", "/projects/{project}/repositories/{repository}/artifacts/{reference}/scan/stop", _) => {
                // Nothing is being scanned: allowed callers get past authorization to a 400.
                body = Payload::Json(json!({"scan_type": "vulnerability"}));
            }
            ("GET", "/projects/{project}/repositories/{repository}/artifacts/{reference}/scan/{report_id}/log", _) => {
                self.no_auto_scan().await;
                let digest = self.fresh_artifact("team/app").await;
                let art = format!("/api/v2.0/projects/team/repositories/app/artifacts/{digest}");
                assert_eq!(status(&self.s, Method::POST, &format!("{art}/scan"), &admin(), None).await, 202);
                let a = ok_json(&self.s, &format!("{art}?with_scan_overview=true"), &admin()).await;
                let id = a["scan_overview"]["application/vnd.security.vulnerability.report; version=1.1"]["report_id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                set("reference", digest);
                set("report_id", id);
            }
            ("PUT", "/projects/{project}/scanner", _) => {
                let list = ok_json(&self.s, "/api/v2.0/scanners", &admin()).await;
                body = Payload::Json(json!({"uuid": list[0]["uuid"]}));
            }
            // Registrations of adapters nobody runs: registering and changing one never asks the
            // adapter; a ping does, and fails (400) for the callers allowed to try.
            ("POST", "/scanners", _) => {
                body = Payload::Json(json!({"name": format!("new{n}"), "url": format!("http://127.0.0.1:9/new{n}")}));
            }
            ("POST", "/scanners/ping", _) => {
                body = Payload::Json(json!({"name": format!("ping{n}"), "url": "http://127.0.0.1:9"}));
            }
            ("PUT" | "DELETE", "/scanners/{registration_id}", _) => {
                let r = create(
                    &self.s,
                    "/api/v2.0/scanners",
                    json!({"name": format!("reg{n}"), "url": format!("http://127.0.0.1:9/reg{n}")}),
                )
                .await;
                let uuid = header(&r, "location").rsplit('/').next().unwrap().to_string();
                set("registration_id", uuid);
                if row.method == "PUT" {
                    body = Payload::Json(json!({"description": "matrix"}));
                }
            }
            ("PATCH", "/scanners/{registration_id}", _) => {
                let list = ok_json(&self.s, "/api/v2.0/scanners", &admin()).await;
                set("registration_id", list[0]["uuid"].as_str().unwrap().to_string());
                body = Payload::Json(json!({"is_default": true}));
            }
            (_, "/scanners/{registration_id}" | "/scanners/{registration_id}/metadata", _) => {
                let list = ok_json(&self.s, "/api/v2.0/scanners", &admin()).await;
                set("registration_id", list[0]["uuid"].as_str().unwrap().to_string());
            }
            ("POST", "/projects/{project}/webhook/policies", _) => {
                body = Payload::Json(webhook_body(&format!("new{n}")));
            }
            ("PUT", "/projects/{project}/webhook/policies/{webhook_policy_id}", _) => {
                body = Payload::Json(webhook_body("matrix"));
            }
            ("DELETE", "/projects/{project}/webhook/policies/{webhook_policy_id}", _) => {
                let path = "/api/v2.0/projects/team/webhook/policies";
                let r = create(&self.s, path, webhook_body(&format!("gone{n}"))).await;
                set("webhook_policy_id", location_id(&r).to_string());
            }
            ("GET", "/labels", "global") => query = "?scope=g".into(),
            ("GET", "/labels", "project") => query = format!("?scope=p&project_id={team}"),
            ("POST", "/labels", "global") => body = Payload::Json(json!({"name": format!("new{n}"), "scope": "g"})),
            ("POST", "/labels", "project") => {
                body = Payload::Json(json!({"name": format!("new{n}"), "scope": "p", "project_id": team}));
            }
            ("DELETE", "/labels/{id}", scope) => set("id", self.fresh_label(scope).await.to_string()),
            (method, "/labels/{id}", scope) => {
                set("id", if scope == "global" { self.global_label } else { self.project_label }.to_string());
                if method == "PUT" {
                    body = Payload::Json(json!({"description": "matrix"}));
                }
            }
            ("GET", "/robots", "project") => query = format!("?q=Level%3Dproject%2CProjectID%3D{team}"),
            ("POST", "/robots", level) => body = Payload::Json(robot_body(&format!("new{n}"), level)),
            ("GET", "/robots/{robot_id}", "system") => set("robot_id", self.system_robot.to_string()),
            ("PUT", "/robots/{robot_id}", _) => {
                body =
                    Payload::Json(ok_json(&self.s, &format!("/api/v2.0/robots/{}", self.target_robot), &admin()).await);
            }
            ("PATCH", "/robots/{robot_id}", _) => body = Payload::Json(json!({})),
            ("DELETE", "/robots/{robot_id}", level) => {
                let r = create(&self.s, "/api/v2.0/robots", robot_body(&format!("gone{n}"), level)).await;
                set("robot_id", location_id(&r).to_string());
            }
            ("GET", "/search", _) => query = "?q=app".into(),
            ("GET", "/quotas", "project") => query = format!("?reference=project&reference_id={team}"),
            ("GET", "/quotas/{id}", _) => set("id", team.to_string()),
            ("POST", "/retentions", _) => {
                let fresh = self.fresh_retention().await;
                // The same project again, its policy gone: a project has one policy.
                let project =
                    ok_json(&self.s, &format!("/api/v2.0/retentions/{fresh}"), &admin()).await["scope"]["ref"]
                        .as_i64()
                        .unwrap();
                assert_eq!(
                    status(&self.s, Method::DELETE, &format!("/api/v2.0/retentions/{fresh}"), &admin(), None).await,
                    200
                );
                body = Payload::Json(retention_body(project));
            }
            ("GET", "/retentions/{id}" | "/retentions/{id}/executions", _) => set("id", self.retention.to_string()),
            ("PUT", "/retentions/{id}", _) => {
                set("id", self.retention.to_string());
                body = Payload::Json(retention_body(team));
            }
            ("DELETE", "/retentions/{id}", _) => set("id", self.fresh_retention().await.to_string()),
            ("POST", "/retentions/{id}/executions", _) => {
                set("id", self.fresh_retention().await.to_string());
                body = Payload::Json(json!({"dry_run": true}));
            }
            ("PATCH", "/retentions/{id}/executions/{eid}", _) => {
                let id = self.fresh_retention().await;
                let runs = format!("/api/v2.0/retentions/{id}/executions");
                let eid = location_id(&create(&self.s, &runs, json!({"dry_run": true})).await);
                set("id", id.to_string());
                set("eid", eid.to_string());
                body = Payload::Json(json!({"action": "stop"}));
            }
            ("GET", "/retentions/{id}/executions/{eid}/tasks" | "/retentions/{id}/executions/{eid}/tasks/{tid}", _) => {
                set("id", self.retention.to_string());
                set("eid", self.retention_exec.to_string());
                set("tid", self.retention_task.to_string());
            }
            ("PUT", "/quotas/{id}", _) => {
                set("id", team.to_string());
                body = Payload::Json(json!({"hard": {"storage": -1}}));
            }
            ("PUT", "/configurations", _) => body = Payload::Json(json!({})),
            ("POST", "/projects/{project}/immutabletagrules", _) => {
                body = Payload::Json(immutable_body(&format!("new{n}-*")));
            }
            ("PUT", "/projects/{project}/immutabletagrules/{immutable_rule_id}", _) => {
                body = Payload::Json(immutable_body(&format!("upd{n}-*")));
            }
            ("DELETE", "/projects/{project}/immutabletagrules/{immutable_rule_id}", _) => {
                let r =
                    create(&self.s, "/api/v2.0/projects/team/immutabletagrules", immutable_body(&format!("gone{n}-*")))
                        .await;
                set("immutable_rule_id", location_id(&r).to_string());
            }
            ("POST", "/system/purgeaudit/schedule", _) => {
                body =
                    Payload::Json(json!({"schedule": {"type": "Hourly"}, "parameters": {"audit_retention_hour": 48}}));
            }
            ("PUT", "/system/purgeaudit/schedule", _) => body = Payload::Json(json!({"schedule": {"type": "None"}})),
            ("POST", "/system/gc/schedule", _) => {
                body = Payload::Json(json!({"schedule": {"type": "Hourly"}, "parameters": {"delete_untagged": true}}));
            }
            ("PUT", "/system/gc/schedule", _) => body = Payload::Json(json!({"schedule": {"type": "None"}})),
            ("PUT", "/system/CVEAllowlist", _) => body = Payload::Json(json!({"items": []})),
            ("POST" | "PUT", "/system/scanAll/schedule", _) => {
                body = Payload::Json(json!({"schedule": {"type": "None"}}))
            }
            ("POST", "/export/cve", _) => body = Payload::Json(json!({"projects": [team]})),
            (_, "/export/cve/execution/{execution_id}" | "/export/cve/download/{execution_id}", _) => {
                set("execution_id", self.fresh_export().await.to_string())
            }
            ("PUT", "/jobservice/jobs/{job_id}", _) => body = Payload::Json(json!({"action": "stop"})),
            ("PUT", "/jobservice/queues/{job_type}", _) => body = Payload::Json(json!({"action": "resume"})),
            ("GET", "/jobservice/queues/{job_type}/jobs", _) => set("job_type", "PURGE_AUDIT_LOG".into()),
            ("GET", "/service/token", scope) => {
                let actions = if scope == "all" { "pull,push,delete" } else { scope };
                query = format!("?service=harbor-registry&scope=repository%3Ateam%2Fapp%3A{actions}");
            }
            ("POST", "/v2/{name}/blobs/uploads/", _) => {
                let bytes = format!("blob {n}").into_bytes();
                query = format!("?digest={}", sha256(&bytes));
                body = Payload::Bytes(bytes);
            }
            ("DELETE", "/v2/{name}/manifests/{reference}", _) => {
                set("reference", self.fresh_artifact("team/app").await)
            }
            // The metadata rows leave prevent_vul on, which the built-in scanner enforces:
            // this row is about who may pull, not about scans.
            ("GET" | "HEAD", "/v2/{name}/manifests/{reference}", _) => self.prevent_vul(false).await,
            ("POST", "/registries", _) => body = Payload::Json(registry_body(&self.s, &format!("new{n}"))),
            ("POST", "/registries/ping", _) => body = Payload::Json(json!({"id": self.registry})),
            ("PUT", "/registries/{id}", _) => {
                body = Payload::Json(json!({"description": format!("d{n}")}));
                set("id", self.registry.to_string());
            }
            ("DELETE", "/registries/{id}", _) => {
                let r = create(&self.s, "/api/v2.0/registries", registry_body(&self.s, &format!("gone{n}"))).await;
                set("id", location_id(&r).to_string());
            }
            (_, p, _) if p.starts_with("/registries/{id}") => set("id", self.registry.to_string()),
            ("POST", "/replication/policies", _) => {
                body = Payload::Json(replication_body(&format!("new{n}"), self.registry))
            }
            ("PUT", "/replication/policies/{id}", _) => {
                body = Payload::Json(replication_body("matrix", self.registry));
                set("id", self.replication_policy.to_string());
            }
            ("DELETE", "/replication/policies/{id}", _) => {
                let r = create(
                    &self.s,
                    "/api/v2.0/replication/policies",
                    replication_body(&format!("gone{n}"), self.registry),
                )
                .await;
                set("id", location_id(&r).to_string());
            }
            (_, "/replication/policies/{id}", _) => set("id", self.replication_policy.to_string()),
            ("POST", "/replication/executions", _) => {
                body = Payload::Json(json!({"policy_id": self.replication_policy}))
            }
            (_, p, _) if p.starts_with("/replication/executions/{id}") => {
                set("id", self.replication_exec.to_string());
                set("task_id", self.replication_task.to_string());
            }
            _ => {}
        }
        let mut path = row.path.clone();
        // Later entries override the defaults.
        for (k, v) in vars.iter().rev() {
            path = path.replace(&format!("{{{k}}}"), v);
        }
        assert!(!path.contains('{'), "no value for a placeholder in {} {}", row.method, row.path);
        let prefix = if is_api(&row.path) { "/api/v2.0" } else { "" };
        (format!("{prefix}{path}{query}"), body, caller)
    }

    /// Runs one cell: the status, or for token rows the granted actions.
    async fn outcome(&mut self, row: &Row, i: usize) -> String {
        let (path, payload, caller) = self.request(row, i).await;
        let method = Method::from_bytes(row.method.as_bytes()).unwrap();
        let who = caller.as_ref().unwrap_or(&self.who[i]);
        let mut req = who.apply(client().request(method, self.s.url(&path)));
        if row.path == "/export/cve" {
            req = req.header("X-Scan-Data-Type", EXPORT_TYPE);
        }
        match payload {
            Payload::None => {}
            Payload::Json(v) => req = req.header("content-type", "application/json").body(v.to_string()),
            Payload::Bytes(b) => req = req.body(b),
        }
        let r = req.send().await.unwrap();
        let code = r.status().as_u16();
        if row.path != "/service/token" || code != 200 {
            return code.to_string();
        }
        let token = body_json(r).await["token"].as_str().unwrap().to_string();
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&claims).unwrap();
        let actions: Vec<&str> =
            claims["access"][0]["actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        if actions.is_empty() { "-".into() } else { actions.join(",") }
    }
}

#[tokio::test]
async fn every_endpoint_for_every_caller() {
    let rows = rows();

    let mut w = World::new().await;

    // The matrix covers exactly what is served.
    let doc = ok_json(&w.s, "/api/v2.0/openapi.json", &admin()).await;
    let mut served = BTreeSet::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            served.insert((method.to_uppercase(), path.clone()));
        }
    }
    let listed: BTreeSet<(String, String)> =
        rows.iter().filter(|r| is_api(&r.path)).map(|r| (r.method.clone(), r.path.clone())).collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "the matrix must list every served operation: missing {missing:?}; not served {stale:?}"
    );

    let mut actual = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut cells = Vec::with_capacity(CALLERS.len());
        for i in 0..CALLERS.len() {
            cells.push(w.outcome(row, i).await);
        }
        actual.push(cells);
    }

    let cells = rows.len() * CALLERS.len();
    let wrong: usize =
        rows.iter().zip(&actual).map(|(r, a)| r.expected.iter().zip(a).filter(|(e, a)| e != a).count()).sum();
    if wrong > 0 {
        let mut out = format!("{wrong} of {cells} cells differ from Harbor's decision (shown as got≠want):\n");
        out.push_str(&format!("{:<7}{:<88}{:<9}", "method", "path", "variant"));
        for c in CALLERS {
            out.push_str(&format!(" {c:>9}"));
        }
        out.push('\n');
        for (r, a) in rows.iter().zip(&actual) {
            let mark = if r.expected == *a { ' ' } else { '!' };
            out.push_str(&format!("{mark}{:<6}{:<88}{:<9}", r.method, r.path, r.variant));
            for (e, a) in r.expected.iter().zip(a) {
                let cell = if e == a { a.clone() } else { format!("{a}≠{e}") };
                out.push_str(&format!(" {cell:>9}"));
            }
            out.push('\n');
        }
        panic!("{out}");
    }
    eprintln!(
        "authorization matrix: {} rows × {} callers = {cells} cells as Harbor decides",
        rows.len(),
        CALLERS.len()
    );
}
