//! Reading OSV data as the OSV project publishes it: a directory of `<ID>.json` files
//! (any depth, e.g. one folder per ecosystem) or a zip of them (`<ECOSYSTEM>/all.zip`,
//! or the root `all.zip`), or a single JSON file.

use std::io::Read;
use std::path::Path;

use crate::osv::{Record, ecosystem_key, name_key};

/// One record read, with what the store needs to find it again.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub record: Record,
    /// The JSON as read.
    pub json: String,
    pub modified_at: i64,
    pub withdrawn: bool,
    /// (ecosystem key, normalised name) pairs.
    pub keys: Vec<(String, String)>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReadCounts {
    pub files: u64,
    /// Files that were not OSV records (named in the error callback).
    pub invalid: u64,
}

pub fn parse(json: &[u8]) -> Result<Parsed, String> {
    let record: Record = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    if record.id.is_empty() {
        return Err("no id".into());
    }
    if record.modified.is_empty() {
        return Err("no modified".into());
    }
    let modified_at = time::OffsetDateTime::parse(&record.modified, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| format!("modified {:?}: {e}", record.modified))?;
    let mut keys: Vec<(String, String)> = record
        .affected
        .iter()
        .filter_map(|a| a.package.as_ref())
        .filter(|p| !p.ecosystem.is_empty() && !p.name.is_empty())
        .map(|p| {
            let eco = ecosystem_key(&p.ecosystem);
            let name = name_key(&eco, &p.name);
            (eco, name)
        })
        .collect();
    keys.sort();
    keys.dedup();
    let withdrawn = record.withdrawn.as_deref().is_some_and(|w| !w.is_empty());
    Ok(Parsed { record, json: String::from_utf8_lossy(json).into_owned(), modified_at, withdrawn, keys })
}

/// Calls `each` for every record under `path`, `bad` for every file that is not one.
/// Stops at the first error `each` returns.
pub fn read_source<E>(
    path: &Path,
    mut each: impl FnMut(Parsed) -> Result<(), E>,
    mut bad: impl FnMut(&str, &str),
) -> Result<Result<ReadCounts, E>, std::io::Error> {
    let mut counts = ReadCounts::default();
    let mut one = |name: &str, bytes: &[u8], counts: &mut ReadCounts| -> Result<(), E> {
        counts.files += 1;
        match parse(bytes) {
            Ok(p) => each(p),
            Err(e) => {
                counts.invalid += 1;
                bad(name, &e);
                Ok(())
            }
        }
    };
    let meta = std::fs::metadata(path)?;
    if meta.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        let mut files = Vec::new();
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d)? {
                let e = e?;
                let p = e.path();
                if e.file_type()?.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "json" || x == "zip") {
                    files.push(p);
                }
            }
        }
        files.sort();
        for f in files {
            if f.extension().is_some_and(|x| x == "zip") {
                match read_zip(&f, &mut one, &mut counts)? {
                    Ok(()) => {}
                    Err(e) => return Ok(Err(e)),
                }
            } else {
                let bytes = std::fs::read(&f)?;
                if let Err(e) = one(&f.display().to_string(), &bytes, &mut counts) {
                    return Ok(Err(e));
                }
            }
        }
    } else if path.extension().is_some_and(|x| x == "zip") {
        if let Err(e) = read_zip(path, &mut one, &mut counts)? {
            return Ok(Err(e));
        }
    } else {
        let bytes = std::fs::read(path)?;
        if let Err(e) = one(&path.display().to_string(), &bytes, &mut counts) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(counts))
}

fn read_zip<E>(
    path: &Path,
    one: &mut impl FnMut(&str, &[u8], &mut ReadCounts) -> Result<(), E>,
    counts: &mut ReadCounts,
) -> Result<Result<(), E>, std::io::Error> {
    let f = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f))
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
        if !entry.is_file() || !entry.name().ends_with(".json") {
            continue;
        }
        let name = format!("{}!{}", path.display(), entry.name());
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes)?;
        if let Err(e) = one(&name, &bytes, counts) {
            return Ok(Err(e));
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_zips_directories_and_names_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let zip_path = dir.path().join("Debian").join("all.zip");
        std::fs::create_dir_all(zip_path.parent().unwrap()).unwrap();
        {
            let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            z.start_file("DSA-1.json", opts).unwrap();
            z.write_all(br#"{"id":"DSA-1","modified":"2024-01-02T03:04:05Z","affected":[{"package":{"ecosystem":"Ubuntu:22.04:LTS","name":"curl"}},{"package":{"ecosystem":"PyPI","name":"Foo_Bar"}}]}"#).unwrap();
            z.start_file("broken.json", opts).unwrap();
            z.write_all(b"{").unwrap();
            z.finish().unwrap();
        }
        std::fs::write(
            dir.path().join("GO-1.json"),
            br#"{"id":"GO-1","modified":"2024-01-01T00:00:00Z","withdrawn":"2024-02-01T00:00:00Z"}"#,
        )
        .unwrap();
        let mut got = Vec::new();
        let mut bad = Vec::new();
        let counts = read_source(
            dir.path(),
            |p| {
                got.push((p.record.id.clone(), p.keys.clone(), p.withdrawn, p.modified_at));
                Ok::<(), ()>(())
            },
            |name, _| bad.push(name.to_string()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(counts, ReadCounts { files: 3, invalid: 1 });
        assert_eq!(bad.len(), 1);
        assert!(bad[0].ends_with("all.zip!broken.json"), "{bad:?}");
        got.sort();
        assert_eq!(
            got,
            vec![
                (
                    "DSA-1".to_string(),
                    vec![("PyPI".to_string(), "foo-bar".to_string()), ("Ubuntu:22.04".to_string(), "curl".to_string())],
                    false,
                    1_704_164_645
                ),
                ("GO-1".to_string(), vec![], true, 1_704_067_200),
            ]
        );
    }
}
