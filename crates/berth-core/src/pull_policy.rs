//! The vulnerability half of Harbor's pull policies (`prevent_vul` + `severity` project
//! metadata): a hook a scanner plugs in, and Harbor's refusal messages. The signature half
//! (`enable_content_trust_cosign`, `enable_content_trust`) lives in berth-http's
//! `pull_policy`, over berth-signature.
//!
//! A scanner implements [`VulnerabilityGate`] and installs it with
//! `AppState::pull_policy.set_vulnerability_gate(…)`; until one is installed,
//! `prevent_vul` is stored and shown but not enforced (there is nothing to judge by).

use async_trait::async_trait;

use crate::digest::Digest;
use crate::name::RepoName;

/// The severities a project's `severity` metadata names, in Harbor's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// The metadata value (`low`, …; Harbor also stores `negligible`/`unknown` as `none`).
    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" | "negligible" | "unknown" => Severity::None,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// As Harbor prints it in messages.
    pub fn title(self) -> &'static str {
        match self {
            Severity::None => "None",
            Severity::Low => "Low",
            Severity::Medium => "Medium",
            Severity::High => "High",
            Severity::Critical => "Critical",
        }
    }
}

/// What the scanner knows of one artifact, judged against a threshold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    /// The scanner cannot scan this kind of artifact: Harbor lets it through.
    NotScannable,
    /// No report.
    NotScanned,
    /// A scan is `Pending`, `Running`, or ended in `Error`/`Stopped` (Harbor's status word).
    Status(String),
    /// A report: how many vulnerabilities are at or above the threshold, after the
    /// project's (and system's) CVE allowlist.
    Scanned { at_or_above: u64 },
}

#[async_trait]
pub trait VulnerabilityGate: Send + Sync + 'static {
    /// Judges `digest` in `repo` against `threshold`, not counting vulnerabilities whose
    /// id is in `allowed` (the project's CVE allowlist in force, empty once expired).
    /// Errors make the pull fail with 500 (Harbor does the same): a policy must not be
    /// skipped because the scanner is sick.
    async fn verdict(
        &self,
        repo: &RepoName,
        digest: &Digest,
        threshold: Severity,
        allowed: &std::collections::HashSet<String>,
    ) -> Result<ScanVerdict, String>;
}

/// Harbor's message refusing a pull for `verdict` under `threshold`; `None` lets it through.
pub fn refusal(verdict: &ScanVerdict, threshold: Severity) -> Option<String> {
    let policy = format!(
        "due to configured policy in 'Prevent images with vulnerability severity of \"{}\" or higher from running.'",
        threshold.title()
    );
    match verdict {
        ScanVerdict::NotScannable | ScanVerdict::Scanned { at_or_above: 0 } => None,
        ScanVerdict::NotScanned => Some(format!(
            "current image without vulnerability scanning cannot be pulled {policy} To continue with pull, please \
             contact your project administrator for help."
        )),
        ScanVerdict::Status(s) => Some(format!(
            "current image with \"{s}\" status of vulnerability scanning cannot be pulled {policy} To continue with \
             pull, please contact your project administrator for help."
        )),
        ScanVerdict::Scanned { at_or_above } => Some(format!(
            "current image with {at_or_above} vulnerabilities cannot be pulled {policy} To continue with pull, please \
             contact your project administrator to exempt matched vulnerabilities through configuring the CVE \
             allowlist."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_messages() {
        let m = refusal(&ScanVerdict::Scanned { at_or_above: 77 }, Severity::Medium).unwrap();
        assert_eq!(
            m,
            "current image with 77 vulnerabilities cannot be pulled due to configured policy in 'Prevent images with \
             vulnerability severity of \"Medium\" or higher from running.' To continue with pull, please contact your \
             project administrator to exempt matched vulnerabilities through configuring the CVE allowlist."
        );
        assert_eq!(refusal(&ScanVerdict::Scanned { at_or_above: 0 }, Severity::Low), None);
        assert_eq!(refusal(&ScanVerdict::NotScannable, Severity::Low), None);
        assert!(refusal(&ScanVerdict::Status("Running".into()), Severity::High).unwrap().starts_with(
            "current image with \"Running\" status of vulnerability scanning cannot be pulled due to configured policy"
        ));
        assert!(Severity::parse("HIGH") > Severity::parse("low"));
    }
}
