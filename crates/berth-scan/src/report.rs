//! Harbor's vulnerability report (`application/vnd.security.vulnerability.report;
//! version=1.1`, the Pluggable Scanner API's HarborVulnerabilityReport) and its summary,
//! as the artifact list's `scan_overview` shows it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::osv::{Hit, Index, Record};
use crate::packages::Inventory;

pub const MIME_REPORT_1_1: &str = "application/vnd.security.vulnerability.report; version=1.1";
pub const MIME_REPORT_NATIVE: &str = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";
pub const MIME_SBOM_REPORT: &str = "application/vnd.security.sbom.report+json; version=1.0";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannerInfo {
    pub name: String,
    pub vendor: String,
    pub version: String,
}

impl ScannerInfo {
    pub fn builtin() -> ScannerInfo {
        ScannerInfo { name: "Berth".into(), vendor: "Berth".into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferredCvss {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_v3: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_v3: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    pub id: String,
    pub package: String,
    pub version: String,
    pub fix_version: String,
    pub severity: String,
    pub description: String,
    pub links: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_cvss: Option<PreferredCvss>,
    pub cwe_ids: Vec<String>,
    pub vendor_attributes: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub generated_at: String,
    pub scanner: ScannerInfo,
    pub severity: String,
    pub vulnerabilities: Vec<Vulnerability>,
}

/// Harbor's ranking: None = Unknown < Negligible < Low < Medium < High < Critical.
pub fn severity_rank(s: &str) -> u8 {
    match s {
        "Negligible" => 1,
        "Low" => 2,
        "Medium" => 3,
        "High" => 4,
        "Critical" => 5,
        _ => 0,
    }
}

/// Matches every package of an inventory against the records that may concern it.
pub fn build(inv: &Inventory, records: &[Record], generated_at: &str) -> Report {
    let mut vulns = Vec::new();
    let index = Index::new(records);
    for p in &inv.packages {
        for Hit { id, fixed_version, severity, cvss_v3_score, cvss_v3_vector, description, links, record_id } in
            index.match_package(inv.os.as_ref(), p)
        {
            let preferred_cvss = (cvss_v3_score.is_some() || !cvss_v3_vector.is_empty()).then(|| PreferredCvss {
                score_v3: cvss_v3_score,
                vector_v3: (!cvss_v3_vector.is_empty()).then_some(cvss_v3_vector),
            });
            vulns.push(Vulnerability {
                id,
                package: p.name.clone(),
                version: p.version.clone(),
                fix_version: fixed_version,
                severity,
                description,
                links,
                preferred_cvss,
                cwe_ids: Vec::new(),
                vendor_attributes: serde_json::json!({ "osv_id": record_id, "package_type": p.kind.purl_type() }),
            });
        }
    }
    vulns.sort_by(|a, b| {
        severity_rank(&b.severity)
            .cmp(&severity_rank(&a.severity))
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.package.cmp(&b.package))
            .then_with(|| a.version.cmp(&b.version))
    });
    vulns.dedup_by(|a, b| a.id == b.id && a.package == b.package && a.version == b.version);
    let severity = vulns.iter().map(|v| v.severity.as_str()).max_by_key(|s| severity_rank(s)).unwrap_or("None");
    let severity = if severity == "Unknown" && vulns.iter().all(|v| severity_rank(&v.severity) == 0) {
        "Unknown"
    } else {
        severity
    };
    Report {
        generated_at: generated_at.to_string(),
        scanner: ScannerInfo::builtin(),
        severity: severity.to_string(),
        vulnerabilities: vulns,
    }
}

/// `scan_overview`'s `summary`: `{total, fixable, summary: {"High": n, …}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Summary {
    pub total: u64,
    pub fixable: u64,
    pub summary: BTreeMap<String, u64>,
}

pub fn summarize(r: &Report) -> Summary {
    let mut s = Summary::default();
    for v in &r.vulnerabilities {
        s.total += 1;
        if !v.fix_version.is_empty() {
            s.fixable += 1;
        }
        *s.summary.entry(v.severity.clone()).or_default() += 1;
    }
    s
}
