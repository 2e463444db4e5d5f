//! Harbor's CVE allowlists: the system's and each project's, with an optional expiry
//! (`expires_at`, seconds since the epoch). A project with `reuse_sys_cve_allowlist`
//! (Harbor's default when the metadata is absent) uses the system's list instead of its
//! own. An expired list exempts nothing. Lists are `PolicyStore` documents of kind
//! [`POLICY_KIND`] (project 0 is the system), so they are shared by every instance and a
//! project's goes with it.
//!
//! Where Harbor applies them (goharbor/harbor `src/server/middleware/vulnerable`,
//! `src/controller/scan/base_controller.go` `GetVulnerable`): the `prevent_vul` pull
//! check ignores allowlisted vulnerabilities. Harbor 2.x does not apply them to the
//! artifact list's `scan_overview` nor to the security hub, and neither does Berth.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::store::StoreResult;
use crate::store::policies::PolicyStore;

/// The policy kind of an allowlist document.
pub const POLICY_KIND: &str = "cve-allowlist";
/// The project metadata that makes a project use the system's list.
pub const REUSE_SYS: &str = "reuse_sys_cve_allowlist";

/// A stored allowlist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CveAllowlist {
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// CVE ids, as given (trimmed), without duplicates.
    #[serde(default)]
    pub items: Vec<String>,
}

/// A refused allowlist, naming the field (`items[2].cve_id`, relative to the list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AllowlistError {
    pub field: String,
    pub message: String,
}

impl CveAllowlist {
    /// Harbor's validation (`src/pkg/allowlist/validator.go`): no empty id, no duplicate;
    /// plus a non-negative expiry.
    pub fn new(expires_at: Option<i64>, ids: &[String]) -> Result<CveAllowlist, AllowlistError> {
        if let Some(e) = expires_at
            && e < 0
        {
            return Err(AllowlistError {
                field: "expires_at".into(),
                message: format!("{e} is not a time; use seconds since the epoch, or null for no expiry"),
            });
        }
        let mut seen = HashSet::new();
        let mut items = Vec::with_capacity(ids.len());
        for (i, raw) in ids.iter().enumerate() {
            let id = raw.trim();
            let field = format!("items[{i}].cve_id");
            if id.is_empty() {
                return Err(AllowlistError { field, message: "empty or whitespace-only CVE ID in allowlist".into() });
            }
            if id.len() > 256 || id.chars().any(char::is_whitespace) {
                return Err(AllowlistError { field, message: format!("{raw:?} is not a vulnerability id") });
            }
            if !seen.insert(id.to_string()) {
                return Err(AllowlistError { field, message: format!("duplicate CVE ID in allowlist: {id}") });
            }
            items.push(id.to_string());
        }
        Ok(CveAllowlist { expires_at, items })
    }

    /// Harbor's rule: expired once `now >= expires_at`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    /// The ids that exempt vulnerabilities at `now`: none once expired.
    pub fn active(&self, now: i64) -> HashSet<String> {
        if self.is_expired(now) { HashSet::new() } else { self.items.iter().cloned().collect() }
    }
}

/// A stored allowlist with its document's id and times (unix seconds); id 0 and times 0
/// when none was ever stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredAllowlist {
    pub id: i64,
    pub project_id: i64,
    pub list: CveAllowlist,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The allowlist of `project_id` (0: the system's), empty if none was stored.
pub async fn load(store: &dyn PolicyStore, project_id: i64) -> StoreResult<StoredAllowlist> {
    let docs = store.policies(POLICY_KIND, project_id).await?;
    Ok(match docs.into_iter().next() {
        Some(d) => StoredAllowlist {
            id: d.id,
            project_id,
            // A document Berth wrote always parses; one that does not exempts nothing.
            list: serde_json::from_str(&d.body).unwrap_or_default(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        },
        None => StoredAllowlist { project_id, ..Default::default() },
    })
}

/// Replaces the allowlist of `project_id` (0: the system's).
pub async fn save(store: &dyn PolicyStore, project_id: i64, list: &CveAllowlist) -> StoreResult<()> {
    let body = serde_json::to_string(list).map_err(|e| crate::store::StoreError::Backend(e.to_string()))?;
    let docs = store.policies(POLICY_KIND, project_id).await?;
    match docs.first() {
        Some(d) => {
            store.update_policy(POLICY_KIND, d.id, &body).await?;
        }
        None => {
            store.create_policy(POLICY_KIND, project_id, &body).await?;
        }
    }
    Ok(())
}

/// Whether a project with this metadata uses the system's list (Harbor: yes unless the
/// metadata says otherwise).
pub fn reuses_system(metadata: &BTreeMap<String, String>) -> bool {
    metadata.get(REUSE_SYS).is_none_or(|v| v.eq_ignore_ascii_case("true"))
}

/// The list in force for a project: the system's or its own.
pub async fn effective(
    store: &dyn PolicyStore,
    project_id: i64,
    metadata: &BTreeMap<String, String>,
) -> StoreResult<CveAllowlist> {
    let from = if reuses_system(metadata) { 0 } else { project_id };
    Ok(load(store, from).await?.list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn validation_names_the_field() {
        let e = CveAllowlist::new(None, &ids(&["CVE-1", " "])).unwrap_err();
        assert_eq!(e.field, "items[1].cve_id");
        let e = CveAllowlist::new(None, &ids(&["CVE-1", "CVE-2", " CVE-1"])).unwrap_err();
        assert_eq!((e.field.as_str(), e.message.as_str()), ("items[2].cve_id", "duplicate CVE ID in allowlist: CVE-1"));
        assert_eq!(CveAllowlist::new(Some(-5), &[]).unwrap_err().field, "expires_at");
        let ok = CveAllowlist::new(Some(10), &ids(&[" CVE-2024-1 "])).unwrap();
        assert_eq!(ok.items, ids(&["CVE-2024-1"]));
    }

    #[test]
    fn expiry_and_reuse() {
        let l = CveAllowlist::new(Some(100), &ids(&["CVE-1"])).unwrap();
        assert!(l.active(99).contains("CVE-1"));
        assert!(l.active(100).is_empty(), "expired at expires_at, as Harbor");
        assert!(CveAllowlist::new(None, &ids(&["CVE-1"])).unwrap().active(i64::MAX).contains("CVE-1"));
        let mut md = BTreeMap::new();
        assert!(reuses_system(&md));
        md.insert(REUSE_SYS.to_string(), "false".to_string());
        assert!(!reuses_system(&md));
    }
}
