//! rpm's SQLite package database (`rpmdb.sqlite`, Fedora 33+, RHEL 9): table `Packages`
//! of header blobs. A header is `il` index entries (tag, type, offset, count) followed by
//! `dl` bytes of data; Berth reads the few tags that identify a package.

use crate::packages::{Kind, Package};

const NAME: i32 = 1000;
const VERSION: i32 = 1001;
const RELEASE: i32 = 1002;
const EPOCH: i32 = 1003;
const LICENSE: i32 = 1014;
const ARCH: i32 = 1022;
const SOURCERPM: i32 = 1044;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<i32>,
    pub arch: String,
    pub license: String,
    pub source_rpm: String,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

pub fn parse_header(b: &[u8]) -> Option<Header> {
    let il = be32(b, 0)? as usize;
    let dl = be32(b, 4)? as usize;
    let data_start = 8usize.checked_add(il.checked_mul(16)?)?;
    let data = b.get(data_start..data_start.checked_add(dl)?)?;
    let mut h = Header::default();
    for k in 0..il {
        let e = 8 + k * 16;
        let tag = be32(b, e)? as i32;
        let kind = be32(b, e + 4)?;
        let off = be32(b, e + 8)? as usize;
        let string = || {
            let s = data.get(off..)?;
            let end = s.iter().position(|&c| c == 0)?;
            Some(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        match (tag, kind) {
            (NAME, 6 | 9) => h.name = string()?,
            (VERSION, 6 | 9) => h.version = string()?,
            (RELEASE, 6 | 9) => h.release = string()?,
            (ARCH, 6 | 9) => h.arch = string()?,
            (LICENSE, 6 | 9) => h.license = string()?,
            (SOURCERPM, 6 | 9) => h.source_rpm = string()?,
            (EPOCH, 4) => h.epoch = Some(be32(data, off)? as i32),
            _ => {}
        }
    }
    Some(h)
}

/// `openssl-3.0.7-24.el9.src.rpm` → (`openssl`, `3.0.7`, `24.el9`).
fn split_source(s: &str) -> Option<(&str, &str, &str)> {
    let s = s.strip_suffix(".rpm")?;
    let s = s.rsplit_once('.').map(|(a, _)| a)?; // arch (src / nosrc)
    let (rest, release) = s.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    Some((name, version, release))
}

pub fn to_package(path: &str, h: &Header) -> Package {
    let epoch = h.epoch.map(|e| format!("{e}:")).unwrap_or_default();
    let version = format!("{epoch}{}-{}", h.version, h.release);
    let (source_name, source_version) = match split_source(&h.source_rpm) {
        Some((n, v, r)) => (n.to_string(), format!("{epoch}{v}-{r}")),
        None => (h.name.clone(), version.clone()),
    };
    Package {
        kind: Kind::Rpm,
        name: h.name.clone(),
        version,
        source_name,
        source_version,
        arch: h.arch.clone(),
        license: h.license.clone(),
        path: path.to_string(),
    }
}

pub fn read_sqlite(path: &str, bytes: &[u8]) -> Vec<Package> {
    let read = || -> Result<Vec<Package>, Box<dyn std::error::Error>> {
        // SQLite opens files, not buffers: a private temporary copy.
        let mut f = tempfile::NamedTempFile::new()?;
        std::io::Write::write_all(&mut f, bytes)?;
        let conn = rusqlite::Connection::open_with_flags(f.path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut st = conn.prepare("SELECT blob FROM Packages")?;
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        let mut out = Vec::new();
        for blob in rows {
            if let Some(h) = parse_header(&blob?)
                && !h.name.is_empty()
                && h.name != "gpg-pubkey"
            {
                out.push(to_package(path, &h));
            }
        }
        Ok(out)
    };
    read().unwrap_or_default()
}

/// A header blob with the given tags, for tests.
pub fn encode_header_for_tests(h: &Header) -> Vec<u8> {
    let mut entries: Vec<(i32, u32, Vec<u8>)> = Vec::new();
    let s = |v: &str| {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        b
    };
    entries.push((NAME, 6, s(&h.name)));
    entries.push((VERSION, 6, s(&h.version)));
    entries.push((RELEASE, 6, s(&h.release)));
    if let Some(e) = h.epoch {
        entries.push((EPOCH, 4, e.to_be_bytes().to_vec()));
    }
    entries.push((ARCH, 6, s(&h.arch)));
    entries.push((LICENSE, 6, s(&h.license)));
    entries.push((SOURCERPM, 6, s(&h.source_rpm)));
    let mut index = Vec::new();
    let mut data = Vec::new();
    for (tag, kind, bytes) in entries {
        if kind == 4 {
            while data.len() % 4 != 0 {
                data.push(0);
            }
        }
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&kind.to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(&bytes);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&((index.len() / 16) as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    out
}

/// An `rpmdb.sqlite` file holding the given headers, for tests.
pub fn sqlite_db_for_tests(headers: &[Header]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("rpmdb.sqlite");
    {
        let conn = rusqlite::Connection::open(&p).expect("open");
        conn.execute_batch("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
            .expect("create");
        for h in headers {
            conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [encode_header_for_tests(h)]).expect("insert");
        }
    }
    std::fs::read(p).expect("read")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_from_sqlite() {
        let h = Header {
            name: "openssl-libs".into(),
            version: "3.0.7".into(),
            release: "24.el9".into(),
            epoch: Some(1),
            arch: "x86_64".into(),
            license: "ASL 2.0".into(),
            source_rpm: "openssl-3.0.7-24.el9.src.rpm".into(),
        };
        assert_eq!(parse_header(&encode_header_for_tests(&h)).unwrap(), h);
        let db = sqlite_db_for_tests(&[h]);
        let p = read_sqlite("var/lib/rpm/rpmdb.sqlite", &db);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].version, "1:3.0.7-24.el9");
        assert_eq!((p[0].source_name.as_str(), p[0].source_version.as_str()), ("openssl", "1:3.0.7-24.el9"));
    }
}
