use super::*;

fn d(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

fn image(extra: &str) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":7}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":9}}]{extra}}}"#,
        d(1),
        d(2)
    )
}

#[test]
fn image_manifest_references_config_and_layers() {
    let p = parse(image("").as_bytes(), None).unwrap();
    assert_eq!(p.kind, Kind::Image);
    assert_eq!(p.blobs.len(), 2);
    assert_eq!(p.blobs[0].digest.to_string(), d(1));
    assert_eq!(p.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
    assert!(p.subject.is_none());
}

#[test]
fn subject_and_annotations_are_extracted() {
    let extra = format!(
        r#","artifactType":"application/x.sig","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3}},"annotations":{{"a":"b"}}"#,
        d(3)
    );
    let p = parse(image(&extra).as_bytes(), None).unwrap();
    assert_eq!(p.subject.unwrap().digest.to_string(), d(3));
    assert_eq!(p.artifact_type.as_deref(), Some("application/x.sig"));
    assert_eq!(p.annotations.as_deref(), Some(r#"{"a":"b"}"#));
}

#[test]
fn index_references_manifests() {
    let body = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#,
        d(4)
    );
    let p = parse(body.as_bytes(), None).unwrap();
    assert_eq!(p.media_type, OCI_INDEX);
    assert_eq!(p.manifests.len(), 1);
    assert!(p.blobs.is_empty());
}

#[test]
fn content_type_used_when_media_type_missing() {
    let body = image("").replace(&format!(r#""mediaType":"{OCI_MANIFEST}","#), "");
    let p = parse(body.as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
    assert_eq!(p.media_type, DOCKER_MANIFEST);
    let p = parse(body.as_bytes(), None).unwrap();
    assert_eq!(p.media_type, OCI_MANIFEST);
}

#[test]
fn mismatched_content_type_is_refused() {
    let err = parse(image("").as_bytes(), Some(DOCKER_LIST)).unwrap_err();
    assert!(matches!(err, ManifestError::TypeMismatch { .. }));
    // A generic JSON content type is not a claim about the manifest type.
    assert!(parse(image("").as_bytes(), Some("application/json; charset=utf-8")).is_ok());
}

#[test]
fn bad_manifests_name_the_problem() {
    assert!(matches!(parse(b"{not json", None), Err(ManifestError::Json(_))));
    assert_eq!(parse(br#"{"schemaVersion":1,"name":"x"}"#, None).unwrap_err(), ManifestError::Schema1);
    assert_eq!(parse(b"{}", Some(DOCKER_SCHEMA1_SIGNED)).unwrap_err(), ManifestError::Schema1);
    let bad_digest = image("").replace(&d(2), "sha256:nothex");
    match parse(bad_digest.as_bytes(), None).unwrap_err() {
        ManifestError::Field { field, .. } => assert_eq!(field, "layers[0].digest"),
        e => panic!("{e:?}"),
    }
    let neg = image("").replace(r#""size":9"#, r#""size":-1"#);
    assert!(
        matches!(parse(neg.as_bytes(), None), Err(ManifestError::Field { field, .. }) if field == "layers[0].size")
    );
    let no_config = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#);
    assert!(matches!(parse(no_config.as_bytes(), None), Err(ManifestError::Field { field, .. }) if field == "config"));
    let odd = r#"{"schemaVersion":2,"mediaType":"application/x-other","config":{}}"#;
    assert!(matches!(parse(odd.as_bytes(), None), Err(ManifestError::UnsupportedType(_))));
    let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
    assert_eq!(parse(&big, None).unwrap_err(), ManifestError::TooLarge);
    let bad_ann = image(r#","annotations":{"a":1}"#);
    assert!(
        matches!(parse(bad_ann.as_bytes(), None), Err(ManifestError::Field { field, .. }) if field == "annotations")
    );
}

#[test]
fn foreign_layers_need_not_exist() {
    let body = image("").replace(
        r#""mediaType":"application/vnd.oci.image.layer.v1.tar+gzip""#,
        r#""mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","urls":["https://example.invalid/l"]"#,
    );
    let p = parse(body.as_bytes(), None).unwrap();
    assert_eq!(p.blobs.len(), 1);
}

#[test]
fn accept_header_lines() {
    assert!(accepts(&[], OCI_INDEX));
    assert!(accepts(&[DOCKER_MANIFEST, OCI_INDEX], OCI_INDEX));
    assert!(accepts(
        &["application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json;q=0.5"],
        OCI_INDEX
    ));
    assert!(!accepts(&[DOCKER_MANIFEST], OCI_INDEX));
    assert!(accepts(&["*/*"], OCI_INDEX));
}
