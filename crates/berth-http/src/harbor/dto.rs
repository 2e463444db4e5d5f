//! The JSON shapes of Harbor's API (goharbor/harbor `api/v2.0/swagger.yaml` definitions),
//! snake_case exactly as there. Requests refuse unknown fields; responses never carry a
//! password, salt or stored secret.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use berth_core::identity::rbac::Role;
use berth_core::store::identity::{AuditEntry, Member, Robot, RobotAccess, User};

pub use berth_scanning::harbor_time as time;

/// Unix seconds of a UTC time as Harbor's queries write it: `2024-01-31 23:59:59` or
/// `2024-01-31T23:59:59` (optionally with fractional seconds and `Z`), or a bare date
/// (midnight).
pub fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, clock) = match s.split_once(['T', ' ']) {
        Some((d, c)) => (d, Some(c)),
        None => (s, None),
    };
    let num = |v: &str, len: usize| {
        (v.len() == len && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse::<i64>().ok()).flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let secs = match clock {
        None => 0,
        Some(c) => {
            let c = c.split_once('.').map_or(c, |(whole, frac)| {
                if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) { "" } else { whole }
            });
            let mut p = c.split(':');
            let (h, mi, sec) = (num(p.next()?, 2)?, num(p.next()?, 2)?, num(p.next()?, 2)?);
            if p.next().is_some() || h > 23 || mi > 59 || sec > 60 {
                return None;
            }
            h * 3600 + mi * 60 + sec
        }
    };
    // Days-from-civil (H. Hinnant), the inverse of `time`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let unix = days * 86_400 + secs;
    // Refuses 2024-02-31 and the like: they do not come back as written.
    time(unix).starts_with(date).then_some(unix)
}

// --- users ---

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserCreationReq {
    pub username: String,
    pub email: String,
    pub realname: String,
    pub password: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserProfile {
    pub email: Option<String>,
    pub realname: Option<String>,
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReq {
    pub old_password: Option<String>,
    pub new_password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSysAdminFlag {
    pub sysadmin_flag: bool,
}

#[derive(Debug, Serialize)]
pub struct UserResp {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub realname: String,
    pub comment: String,
    pub sysadmin_flag: bool,
    pub admin_role_in_auth: bool,
    pub creation_time: String,
    pub update_time: String,
}

impl From<&User> for UserResp {
    fn from(u: &User) -> Self {
        UserResp {
            user_id: u.id,
            username: u.username.clone(),
            email: u.email.clone(),
            realname: u.realname.clone(),
            comment: u.comment.clone(),
            sysadmin_flag: u.sysadmin,
            admin_role_in_auth: false,
            creation_time: time(u.creation_time),
            update_time: time(u.update_time),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct UserSearchRespItem {
    pub user_id: i64,
    pub username: String,
}

#[derive(Debug, Serialize)]
pub struct PermissionResp {
    pub resource: String,
    pub action: String,
}

// --- projects ---

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectReq {
    pub project_name: Option<String>,
    /// Deprecated top-level flag, still sent by replication from old Harbors.
    pub public: Option<bool>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub cve_allowlist: Option<CveAllowlist>,
    /// The project's storage quota in bytes (-1 unlimited), at creation by callers who
    /// may change quotas; ignored otherwise and on updates (`PUT /quotas/{id}`).
    pub storage_limit: Option<i64>,
    pub registry_id: Option<i64>,
}

/// Harbor's `CVEAllowlist` in a request (what clients read back is accepted as is; the
/// id and times are the server's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CveAllowlist {
    pub id: Option<i64>,
    pub project_id: Option<i64>,
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub items: Vec<CveAllowlistItem>,
    pub creation_time: Option<String>,
    pub update_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CveAllowlistItem {
    pub cve_id: String,
}

#[derive(Debug, Serialize)]
pub struct ProjectResp {
    pub project_id: i64,
    pub name: String,
    pub owner_id: i64,
    pub owner_name: String,
    pub creation_time: String,
    pub update_time: String,
    pub repo_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_user_role_id: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub current_user_role_ids: Vec<i64>,
    pub metadata: BTreeMap<String, String>,
    /// The registry endpoint of a proxy-cache project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_id: Option<i64>,
    /// The project's own list (Harbor's `CVEAllowlist`), whether or not it reuses the
    /// system's.
    pub cve_allowlist: serde_json::Value,
}

#[derive(Debug, Default, Serialize)]
pub struct ProjectSummary {
    pub repo_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_admin_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintainer_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limited_guest_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<super::quotas::HardUsed>,
}

/// `GET /projects/{project}/_deletable`.
#[derive(Debug, Serialize)]
pub struct ProjectDeletable {
    pub deletable: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
}

// --- members ---

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectMember {
    pub role_id: i64,
    pub member_user: Option<UserEntity>,
    /// Groups are not supported; present only to refuse them with a clear message.
    pub member_group: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntity {
    pub user_id: Option<i64>,
    pub username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub role_id: i64,
}

#[derive(Debug, Serialize)]
pub struct ProjectMemberEntity {
    pub id: i64,
    pub project_id: i64,
    pub entity_name: String,
    pub role_name: String,
    pub role_id: i64,
    pub entity_id: i64,
    pub entity_type: &'static str,
}

impl From<&Member> for ProjectMemberEntity {
    fn from(m: &Member) -> Self {
        ProjectMemberEntity {
            id: m.id,
            project_id: m.project_id,
            entity_name: m.username.clone(),
            role_name: Role::from_id(m.role_id).map(|r| r.as_str().to_string()).unwrap_or_default(),
            role_id: m.role_id,
            entity_id: m.user_id,
            entity_type: "u",
        }
    }
}

// --- robots ---

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RobotPermission {
    pub kind: String,
    pub namespace: String,
    pub access: Vec<Access>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Access {
    pub resource: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotCreate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub secret: Option<String>,
    pub level: String,
    #[serde(default)]
    pub disable: bool,
    pub duration: Option<i64>,
    pub permissions: Vec<RobotPermission>,
}

/// `PUT /robots/{id}` takes the whole robot, as `GET` returns it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RobotUpdate {
    pub id: Option<i64>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub secret: Option<String>,
    pub level: String,
    pub duration: Option<i64>,
    pub editable: Option<bool>,
    #[serde(default)]
    pub disable: bool,
    pub expires_at: Option<i64>,
    pub permissions: Vec<RobotPermission>,
    pub creator_type: Option<String>,
    pub creator_ref: Option<i64>,
    pub creation_time: Option<String>,
    pub update_time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RobotSec {
    pub secret: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RobotSecResp {
    pub secret: String,
}

#[derive(Debug, Serialize)]
pub struct RobotResp {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub level: String,
    pub duration: i64,
    pub editable: bool,
    pub disable: bool,
    pub expires_at: i64,
    pub permissions: Vec<RobotPermission>,
    pub creation_time: String,
    pub update_time: String,
}

#[derive(Debug, Serialize)]
pub struct RobotCreated {
    pub id: i64,
    pub name: String,
    pub secret: String,
    pub creation_time: String,
    pub expires_at: i64,
}

/// Harbor's grouped permissions from the store's flat rows (order kept).
pub fn group_permissions(flat: &[RobotAccess]) -> Vec<RobotPermission> {
    let mut out: Vec<RobotPermission> = Vec::new();
    for a in flat {
        let access = Access { resource: a.resource.clone(), action: a.action.clone(), effect: None };
        match out.iter_mut().find(|p| p.kind == a.kind && p.namespace == a.namespace) {
            Some(p) => p.access.push(access),
            None => {
                out.push(RobotPermission { kind: a.kind.clone(), namespace: a.namespace.clone(), access: vec![access] })
            }
        }
    }
    out
}

/// The store's flat rows from Harbor's grouped permissions.
pub fn flatten_permissions(grouped: &[RobotPermission]) -> Vec<RobotAccess> {
    grouped
        .iter()
        .flat_map(|p| {
            p.access.iter().map(|a| RobotAccess {
                kind: p.kind.clone(),
                namespace: p.namespace.clone(),
                resource: a.resource.clone(),
                action: a.action.clone(),
            })
        })
        .collect()
}

impl RobotResp {
    /// `prefix`: the current `robot_name_prefix`.
    pub fn new(r: &Robot, prefix: &str) -> Self {
        RobotResp {
            id: r.id,
            name: format!("{prefix}{}", r.name),
            description: r.description.clone(),
            level: r.level.clone(),
            duration: r.duration_days,
            editable: true,
            disable: r.disabled,
            expires_at: r.expires_at,
            permissions: group_permissions(&r.permissions),
            creation_time: time(r.creation_time),
            update_time: time(r.update_time),
        }
    }
}

// --- audit log ---

#[derive(Debug, Serialize)]
pub struct AuditLogResp {
    pub id: i64,
    pub username: String,
    pub resource: String,
    pub resource_type: String,
    pub operation: String,
    pub op_time: String,
}

impl From<&AuditEntry> for AuditLogResp {
    fn from(e: &AuditEntry) -> Self {
        AuditLogResp {
            id: e.id,
            username: e.username.clone(),
            resource: e.resource.clone(),
            resource_type: e.resource_type.clone(),
            operation: e.operation.clone(),
            op_time: time(e.op_time),
        }
    }
}

/// Harbor 2.13's extended audit log entry. Berth records changes once they have
/// happened, so every entry is a success; the description is the event in words.
#[derive(Debug, Serialize)]
pub struct AuditLogExtResp {
    pub id: i64,
    pub username: String,
    pub resource: String,
    pub resource_type: String,
    pub operation: String,
    pub operation_description: String,
    pub operation_result: bool,
    pub op_time: String,
}

impl From<&AuditEntry> for AuditLogExtResp {
    fn from(e: &AuditEntry) -> Self {
        AuditLogExtResp {
            id: e.id,
            username: e.username.clone(),
            resource: e.resource.clone(),
            resource_type: e.resource_type.clone(),
            operation: e.operation.clone(),
            operation_description: format!("{} {} {}", e.operation, e.resource_type, e.resource),
            operation_result: true,
            op_time: time(e.op_time),
        }
    }
}

/// Harbor's `AuditLogEventType`.
#[derive(Debug, Serialize)]
pub struct EventTypeResp {
    pub event_type: String,
}

// --- repositories and artifacts ---

/// Harbor's zero `strfmt.DateTime`: what it shows for a time never set (`pull_time` of an
/// artifact never pulled).
pub const ZERO_TIME: &str = "0001-01-01T00:00:00.000Z";

/// [`time`] of a time that may never have been set, [`ZERO_TIME`] then.
pub fn time_or_zero(unix: Option<i64>) -> String {
    unix.map_or_else(|| ZERO_TIME.into(), time)
}

#[derive(Debug, Serialize)]
pub struct RepositoryResp {
    pub id: i64,
    pub project_id: i64,
    /// The full name, `project/repo`.
    pub name: String,
    pub description: String,
    pub artifact_count: u64,
    pub pull_count: u64,
    pub creation_time: String,
    pub update_time: String,
}

/// `PUT …/repositories/{r}` takes Harbor's whole `Repository`, as `GET` returns it; only the
/// description changes (an absent one clears it, as in Harbor).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RepositoryReq {
    pub id: Option<i64>,
    pub project_id: Option<i64>,
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub artifact_count: Option<i64>,
    pub pull_count: Option<i64>,
    pub creation_time: Option<String>,
    pub update_time: Option<String>,
}

/// `POST …/artifacts/{ref}/tags` takes Harbor's `Tag`; only `name` is used.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct TagReq {
    pub id: Option<i64>,
    pub repository_id: Option<i64>,
    pub artifact_id: Option<i64>,
    pub name: Option<String>,
    pub push_time: Option<String>,
    pub pull_time: Option<String>,
    pub immutable: Option<bool>,
    pub signed: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct TagResp {
    /// Stable while the tag exists (kept when it is pushed again or moved).
    pub id: i64,
    pub repository_id: i64,
    pub artifact_id: i64,
    pub name: String,
    pub push_time: String,
    pub pull_time: String,
    pub immutable: bool,
}

/// An index entry's platform, with Harbor's field names (the swagger's quoted
/// `'os.version'` and `'os.features'` are the JSON keys, quotes included).
#[derive(Debug, Default, Serialize)]
pub struct PlatformResp {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(rename = "'os.version'", skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    #[serde(rename = "'os.features'", skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl PlatformResp {
    /// From an OCI descriptor's `platform` object; `None` unless it is an object.
    pub fn from_descriptor(v: &serde_json::Value) -> Option<Self> {
        let o = v.as_object()?;
        let text = |k: &str| o.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(String::from);
        let features = o
            .get("os.features")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|f| f.as_str().map(String::from)).collect::<Vec<_>>());
        Some(PlatformResp {
            architecture: text("architecture"),
            os: text("os"),
            os_version: text("os.version"),
            os_features: features.filter(|f| !f.is_empty()),
            variant: text("variant"),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct ReferenceResp {
    pub parent_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_id: Option<i64>,
    pub child_digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformResp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct ArtifactResp {
    pub id: i64,
    /// `IMAGE`, `CHART`, … or `UNKNOWN`, as Harbor's processors name them.
    #[serde(rename = "type")]
    pub kind: String,
    /// The config's media type for a manifest, the manifest's own for an index.
    pub media_type: String,
    pub manifest_media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub project_id: i64,
    pub repository_id: i64,
    pub repository_name: String,
    pub digest: String,
    pub size: u64,
    pub push_time: String,
    pub pull_time: String,
    pub extra_attrs: serde_json::Map<String, serde_json::Value>,
    pub annotations: serde_json::Map<String, serde_json::Value>,
    pub references: Vec<ReferenceResp>,
    /// `null` when not asked for (`with_tag=false`), as in Harbor.
    pub tags: Option<Vec<TagResp>>,
    pub labels: Vec<serde_json::Value>,
    /// Harbor's `Accessory` objects (signatures, SBOMs), only `with_accessory=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accessories: Option<Vec<serde_json::Value>>,
    /// Berth's signed state (`signed`, `cosign`, `notation`), only `with_accessory=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<serde_json::Value>,
    /// With `with_scan_overview=true`, once scanned: keyed by report MIME type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_overview: Option<serde_json::Value>,
    /// With `with_sbom_overview=true`, once an SBOM was generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom_overview: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(time(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(time(1_795_000_000), "2026-11-18T11:06:40.000Z");
        assert_eq!(time_or_zero(None), ZERO_TIME);
        assert_eq!(time_or_zero(Some(0)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn parsed_times() {
        for t in [0, 951_782_400, 1_795_000_000, 4_102_444_799, 68_169_600] {
            let s = time(t);
            assert_eq!(parse_time(&s), Some(t), "{s}");
            assert_eq!(parse_time(&s[..19].replace('T', " ")), Some(t));
        }
        assert_eq!(parse_time("2026-11-18"), Some(1_794_960_000));
        assert_eq!(parse_time("2026-11-18T11:06:40Z"), Some(1_795_000_000));
        for bad in [
            "",
            "2026",
            "2026-11-18 11:06",
            "2026-13-01",
            "2026-02-30",
            "2026-1-18",
            "26-11-18",
            "x",
            "2026-11-18 25:00:00",
            "2026-11-18T11:06:40.",
            "2026-11-18 11:06:40 +1",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn permissions_round_trip() {
        let flat = vec![
            RobotAccess {
                kind: "project".into(),
                namespace: "a".into(),
                resource: "repository".into(),
                action: "pull".into(),
            },
            RobotAccess {
                kind: "project".into(),
                namespace: "a".into(),
                resource: "repository".into(),
                action: "push".into(),
            },
            RobotAccess {
                kind: "system".into(),
                namespace: "/".into(),
                resource: "user".into(),
                action: "list".into(),
            },
        ];
        let grouped = group_permissions(&flat);
        assert_eq!(grouped.len(), 2);
        assert_eq!(grouped[0].access.len(), 2);
        assert_eq!(flatten_permissions(&grouped), flat);
        let json = serde_json::to_value(&grouped[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind":"system","namespace":"/","access":[{"resource":"user","action":"list"}]})
        );
    }
}
