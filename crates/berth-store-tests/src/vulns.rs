//! The conformance suite for [`VulnStore`] backends. Each run uses its own record ids,
//! ecosystem keys and digests, so runs can share a database.

use std::sync::Arc;

use berth_core::store::vulns::{PutOutcome, ReportUpdate, ScanReport, VulnImport, VulnRecord, VulnStore};

pub async fn vulns_conformance(store: Arc<dyn VulnStore>) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let eco = format!("Test:{run}");
    let rec = |id: &str, modified: &str, keys: &[&str], withdrawn: bool| VulnRecord {
        id: format!("{id}-{run}"),
        modified: modified.into(),
        modified_at: if modified.starts_with("2024") { 1_704_067_200 } else { 1_735_689_600 },
        withdrawn,
        keys: keys.iter().map(|k| (eco.clone(), (*k).to_string())).collect(),
        json: format!(r#"{{"id":"{id}-{run}","modified":"{modified}"}}"#),
    };
    let a = rec("A", "2024-01-01T00:00:00Z", &["curl", "openssl"], false);
    let b = rec("B", "2024-01-01T00:00:00Z", &["openssl"], false);
    let w = rec("W", "2024-01-01T00:00:00Z", &["zlib"], true);
    let out = store.put_vuln_records(&[a.clone(), b.clone(), w.clone()]).await.expect("put");
    assert_eq!(out, PutOutcome { added: 3, updated: 0, unchanged: 0 });

    // Re-importing the same data changes nothing; a newer `modified` replaces the record
    // and its keys.
    let a2 = rec("A", "2025-01-01T00:00:00Z", &["curl"], false);
    let out = store.put_vuln_records(&[a2.clone(), b.clone(), w.clone()]).await.expect("re-put");
    assert_eq!(out, PutOutcome { added: 0, updated: 1, unchanged: 2 });

    let key = |n: &str| (eco.clone(), n.to_string());
    let got = store.vuln_records_for(&[key("openssl")]).await.unwrap();
    assert_eq!(got, vec![b.json.clone()], "A no longer concerns openssl");
    let got = store.vuln_records_for(&[key("curl"), key("openssl"), key("zlib"), key("nothing")]).await.unwrap();
    assert_eq!(got, vec![a2.json.clone(), b.json.clone(), w.json.clone()], "each record once, by id");
    assert!(store.vuln_records_for(&[]).await.unwrap().is_empty());

    store
        .record_vuln_import(&VulnImport { at: 1_800_000_000, source: format!("/data/{run}"), summary: "{}".into() })
        .await
        .unwrap();
    let st = store.vuln_db_status().await.unwrap();
    assert!(st.records >= 3 && st.withdrawn >= 1);
    assert!(st.newest_modified_at >= Some(1_735_689_600));
    assert!(st.ecosystems.contains(&(eco.clone(), 3)), "{:?}", st.ecosystems);
    let last = st.last_import.expect("an import");
    assert!(last.at >= 1_800_000_000);

    // Scan reports: one per (digest, registration, MIME type); a new scan replaces it.
    let digest = format!("sha256:{run}{run}");
    let report = |uuid: &str, task_id| ScanReport {
        uuid: format!("{uuid}-{run}"),
        digest: digest.clone(),
        registration_uuid: "builtin".into(),
        mime_type: "application/vnd.security.vulnerability.report; version=1.1".into(),
        status: "Pending".into(),
        task_id,
        start_time: 100,
        end_time: None,
        severity: String::new(),
        summary: String::new(),
        report: String::new(),
    };
    store.put_scan_report(&report("r1", 1)).await.unwrap();
    store.put_scan_report(&report("r2", 2)).await.unwrap();
    assert_eq!(store.scan_report(&format!("r1-{run}")).await.unwrap(), None, "replaced");
    let mut sbom = report("s1", 3);
    sbom.mime_type = "application/vnd.security.sbom.report+json; version=1.0".into();
    store.put_scan_report(&sbom).await.unwrap();
    let all = store.scan_reports_of(std::slice::from_ref(&digest)).await.unwrap();
    assert_eq!(all.iter().map(|r| r.uuid.clone()).collect::<Vec<_>>(), vec![format!("s1-{run}"), format!("r2-{run}")]);

    // Only the task that owns the report may finish it.
    let r2 = format!("r2-{run}");
    let done = ReportUpdate {
        status: "Success".into(),
        end_time: Some(200),
        severity: "High".into(),
        summary: r#"{"total":1}"#.into(),
        report: r#"{"x":1}"#.into(),
    };
    assert!(!store.finish_scan_report(&r2, 1, &done).await.unwrap());
    assert!(store.finish_scan_report(&r2, 2, &ReportUpdate::status("Running", None)).await.unwrap());
    assert!(store.finish_scan_report(&r2, 2, &done).await.unwrap());
    let got = store.scan_report(&r2).await.unwrap().unwrap();
    assert_eq!(
        (got.status.as_str(), got.end_time, got.severity.as_str(), got.summary.as_str(), got.report.as_str()),
        ("Success", Some(200), "High", r#"{"total":1}"#, r#"{"x":1}"#)
    );
}
