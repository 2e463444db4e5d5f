//! Project storage quotas (Harbor's `/quotas`): the rules, free of storage.
//!
//! A project's hard limit is its `storage_limit` metadata (bytes, -1 for unlimited),
//! written when the project is created (from the request, else the runtime setting
//! `storage_per_project`) and by `PUT /quotas/{id}`. Usage is the sum of the sizes of
//! the distinct live blobs linked to any repository of the project and of the distinct
//! manifests of those repositories (Harbor counts manifests as blobs), each digest once.
//! Both stores keep it in a per-project row, changed by database triggers in the same
//! transaction as every change to what the project holds (a digest's size is added when
//! the project comes to hold it, subtracted when it stops), so a push's check reads one
//! row instead of summing the project. `GcStore::repair_storage_usage` recomputes
//! the sums and corrects any drift (run at the end of every GC run).

use std::fmt;

/// The project metadata key holding the hard limit in bytes.
pub const STORAGE_LIMIT: &str = "storage_limit";

/// Harbor sends `QUOTA_WARNING` once usage reaches this share of the limit.
pub const WARNING_PERCENT: u64 = 85;

/// The limit a metadata value stands for; a missing or unreadable value is unlimited
/// (only Berth writes it, after validating it).
pub fn limit_of(value: Option<&str>) -> i64 {
    value.and_then(|v| v.trim().parse::<i64>().ok()).filter(|l| *l >= 0).unwrap_or(-1)
}

/// Whether `limit` is one Harbor accepts: -1 (unlimited) or a positive number of bytes.
pub fn valid_limit(limit: i64) -> bool {
    limit == -1 || limit > 0
}

/// A write refused because it would take its project over the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub project: String,
    /// Bytes in use before the refused write.
    pub used: u64,
    pub limit: u64,
    /// Bytes the write would have added.
    pub adding: u64,
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "quota exceeded for project {}: adding {} of storage resource, which when updated to current usage of {} \
             will exceed the configured upper limit of {}",
            self.project,
            human(self.adding),
            human(self.used),
            human(self.limit)
        )
    }
}

/// A project whose stored usage differed from its recomputed sum, and was corrected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRepair {
    pub project: String,
    /// What the row said (negative only if it had drifted that far).
    pub stored: i64,
    pub actual: u64,
}

/// What adding a blob did to a limited project: reported so that the caller can send
/// `QUOTA_WARNING` when usage crosses [`WARNING_PERCENT`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaUse {
    pub project: String,
    pub before: u64,
    pub after: u64,
    pub limit: u64,
}

impl QuotaUse {
    /// Whether this write took usage from below the warning threshold to at or above it
    /// (one warning per crossing, not one per blob of a push).
    pub fn crossed_warning(&self) -> bool {
        let threshold = u128::from(self.limit) * u128::from(WARNING_PERCENT);
        u128::from(self.before) * 100 < threshold && u128::from(self.after) * 100 >= threshold
    }
}

/// The outcome of checking a blob against its project's quota, as both stores decide it.
pub fn check(project: &str, limit: i64, used: u64, adding: u64) -> Result<Option<QuotaUse>, QuotaExceeded> {
    let Ok(limit) = u64::try_from(limit) else { return Ok(None) };
    let after = used.saturating_add(adding);
    if after > limit {
        return Err(QuotaExceeded { project: project.to_owned(), used, limit, adding });
    }
    Ok(Some(QuotaUse { project: project.to_owned(), before: used, after, limit }))
}

/// Harbor's way of printing sizes (`1.5 MiB`), with the exact bytes for small values.
pub fn human(bytes: u64) -> String {
    const UNITS: &[&str] = &["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(limit_of(None), -1);
        assert_eq!(limit_of(Some("100")), 100);
        assert_eq!(limit_of(Some("-1")), -1);
        assert_eq!(limit_of(Some("x")), -1);
        assert!(valid_limit(-1) && valid_limit(1) && !valid_limit(0) && !valid_limit(-2));
    }

    #[test]
    fn checks() {
        assert_eq!(check("p", -1, 10, 10), Ok(None));
        let u = check("p", 100, 80, 10).unwrap().unwrap();
        assert!(u.crossed_warning());
        assert!(!check("p", 100, 85, 10).unwrap().unwrap().crossed_warning());
        assert!(!check("p", 100, 10, 10).unwrap().unwrap().crossed_warning());
        assert_eq!(check("p", 100, 90, 10).unwrap().unwrap().after, 100);
        let e = check("proj", 100, 95, 10).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("proj") && msg.contains("95 B") && msg.contains("100 B"), "{msg}");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(10 * 1024 * 1024), "10.0 MiB");
    }
}
