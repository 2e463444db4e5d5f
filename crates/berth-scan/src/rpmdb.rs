//! rpm's package databases: SQLite (`rpmdb.sqlite`, Fedora 33+, RHEL 9), Berkeley DB
//! (`Packages`, RHEL/CentOS up to 8, Amazon Linux 2) and NDB (`Packages.db`, SUSE). All
//! three store the same header blobs, one per installed package: `il` index entries (tag,
//! type, offset, count) followed by `dl` bytes of data; Berth reads the few tags that
//! identify a package. The Berkeley DB and NDB files are read by hand (see `bdb_blobs`,
//! `ndb_blobs`): no maintained Rust crate reads them without linking librpm.

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

/// Why a package database could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {format} rpm database: {message}")]
pub struct RpmDbError {
    pub path: String,
    pub format: &'static str,
    pub message: String,
}

/// Which of rpm's database formats a file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sqlite,
    BerkeleyDb,
    Ndb,
}

impl Format {
    /// The format of a package database at `path` (no leading `/`), if it is one.
    pub fn of_path(path: &str) -> Option<Format> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if !(dir == "rpm" || dir.ends_with("/rpm")) {
            return None;
        }
        match name {
            "rpmdb.sqlite" => Some(Format::Sqlite),
            "Packages" => Some(Format::BerkeleyDb),
            "Packages.db" => Some(Format::Ndb),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Sqlite => "SQLite",
            Format::BerkeleyDb => "Berkeley DB",
            Format::Ndb => "NDB",
        }
    }
}

/// The packages of the database at `path`, in whichever format its name says.
pub fn read(path: &str, format: Format, bytes: &[u8]) -> Result<Vec<Package>, RpmDbError> {
    let err = |message: String| RpmDbError { path: path.to_string(), format: format.name(), message };
    let blobs = match format {
        Format::Sqlite => sqlite_blobs(bytes).map_err(|e| err(e.to_string()))?,
        Format::BerkeleyDb => bdb_blobs(bytes).map_err(err)?,
        Format::Ndb => ndb_blobs(bytes).map_err(err)?,
    };
    let mut out = Vec::new();
    for (i, blob) in blobs.iter().enumerate() {
        let h = parse_header(blob).ok_or_else(|| err(format!("header {} of {} is malformed", i + 1, blobs.len())))?;
        if !h.name.is_empty() && h.name != "gpg-pubkey" {
            out.push(to_package(path, &h));
        }
    }
    Ok(out)
}

fn sqlite_blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, Box<dyn std::error::Error>> {
    // SQLite opens files, not buffers: a private temporary copy.
    let mut f = tempfile::NamedTempFile::new()?;
    std::io::Write::write_all(&mut f, bytes)?;
    let conn = rusqlite::Connection::open_with_flags(f.path(), rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut st = conn.prepare("SELECT blob FROM Packages")?;
    let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

// --- Berkeley DB hash databases (libdb `src/dbinc/db_page.h`, `hash.h`) ---
//
// Page 0 is the hash metadata page; every page starts with a 26-byte header (LSN, page
// number, previous/next page, entry count, high free offset, level, type). Hash pages hold
// an array of 2-byte item offsets after the header, in key/value pairs; items are packed
// from the end of the page. rpm's `Packages` maps a 4-byte package instance to the header
// blob; blobs are larger than an item may be, so they live on chains of overflow pages
// that an `H_OFFPAGE` item points to (type, 3 bytes padding, first page, total length).
// Instance 0 holds a small counter, kept on the page: only off-page values are headers.
// Metadata is in the writer's byte order: the magic number says which.

const BDB_HASH_MAGIC: u32 = 0x0006_1561;
const BDB_PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASHMETA: u8 = 8;
const P_HASH: u8 = 13;
const H_OFFPAGE: u8 = 3;

#[derive(Clone, Copy)]
struct Order(bool);

impl Order {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let a: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.0 { u16::from_be_bytes(a) } else { u16::from_le_bytes(a) })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let a: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.0 { u32::from_be_bytes(a) } else { u32::from_le_bytes(a) })
    }
}

/// The header blobs of a Berkeley DB hash `Packages` file.
pub fn bdb_blobs(file: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if file.len() < 512 {
        return Err(format!("{} bytes is shorter than a metadata page", file.len()));
    }
    let order = match (Order(false).u32(file, 12), Order(true).u32(file, 12)) {
        (Some(BDB_HASH_MAGIC), _) => Order(false),
        (_, Some(BDB_HASH_MAGIC)) => Order(true),
        _ => return Err("no hash database magic number at offset 12 (not a Berkeley DB hash file)".into()),
    };
    let meta_u32 = |at| order.u32(file, at).unwrap_or(0);
    let page_size = meta_u32(20) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(format!("page size {page_size} is not a power of two between 512 and 65536"));
    }
    if file[24] != 0 {
        return Err("the database is encrypted".into());
    }
    if file[25] != P_HASHMETA {
        return Err(format!("page 0 has type {}, not hash metadata ({P_HASHMETA})", file[25]));
    }
    let last = meta_u32(32) as usize;
    let pages = file.len() / page_size;
    if last >= pages {
        return Err(format!("the last page is {last} but the file holds {pages} pages of {page_size} bytes"));
    }
    let page = |n: usize| &file[n * page_size..(n + 1) * page_size];
    let mut out = Vec::new();
    for n in 1..=last {
        let p = page(n);
        if p[25] != P_HASH && p[25] != P_HASH_UNSORTED {
            continue;
        }
        let entries = order.u16(p, 20).unwrap_or(0) as usize;
        if !entries.is_multiple_of(2) {
            return Err(format!("hash page {n} has an odd number of items ({entries})"));
        }
        if BDB_PAGE_HEADER + entries * 2 > page_size {
            return Err(format!("hash page {n} claims {entries} items, more than the page holds"));
        }
        for value in (1..entries).step_by(2) {
            let at = order.u16(p, BDB_PAGE_HEADER + value * 2).unwrap_or(0) as usize;
            if at < BDB_PAGE_HEADER || at >= page_size {
                return Err(format!("hash page {n}: item {value} at offset {at} is outside the page"));
            }
            if p[at] != H_OFFPAGE {
                continue;
            }
            let (Some(first), Some(total)) = (order.u32(p, at + 4), order.u32(p, at + 8)) else {
                return Err(format!("hash page {n}: item {value} is cut off by the page end"));
            };
            out.push(
                overflow_chain(file, page_size, order, first as usize, total as usize, last)
                    .map_err(|e| format!("hash page {n}, item {value}: {e}"))?,
            );
        }
    }
    Ok(out)
}

/// The bytes of an overflow chain starting at page `first`, `total` bytes long.
fn overflow_chain(
    file: &[u8],
    page_size: usize,
    order: Order,
    first: usize,
    total: usize,
    last: usize,
) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(total.min(file.len()));
    let mut n = first;
    let mut visited = 0usize;
    while n != 0 {
        if n > last {
            return Err(format!("overflow page {n} is past the last page {last}"));
        }
        visited += 1;
        if visited > last {
            return Err("the overflow chain loops".into());
        }
        let p = &file[n * page_size..(n + 1) * page_size];
        if p[25] != P_OVERFLOW {
            return Err(format!("page {n} has type {}, not overflow ({P_OVERFLOW})", p[25]));
        }
        // An overflow page's "high free offset" is the length of the data it holds.
        let len = order.u16(p, 22).unwrap_or(0) as usize;
        if len > page_size - BDB_PAGE_HEADER {
            return Err(format!("overflow page {n} claims {len} bytes, more than the page holds"));
        }
        buf.extend_from_slice(&p[BDB_PAGE_HEADER..BDB_PAGE_HEADER + len]);
        if buf.len() > total {
            return Err(format!("the overflow chain holds more than the item's {total} bytes"));
        }
        n = order.u32(p, 16).unwrap_or(0) as usize;
    }
    if buf.len() != total {
        return Err(format!("the overflow chain holds {} bytes, the item says {total}", buf.len()));
    }
    Ok(buf)
}

// --- NDB (rpm's `lib/backend/ndb/rpmpkg.c`) ---
//
// A 32-byte header (magic `RpmP`, version 0, generation, slot pages, next package index),
// then `slot pages` pages of 4096 bytes holding 16-byte slots (magic `Slot`, package index,
// block offset, block count; offset 0 is a free slot), then blobs in 16-byte blocks: a
// head (magic `BlbS`, package index, time stamp, length), the header blob, zero padding,
// and a tail (Adler-32 of head, blob and padding, length, magic `BlbE`). All little-endian.

const NDB_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const NDB_SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const NDB_HEAD_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const NDB_TAIL_MAGIC: u32 = u32::from_le_bytes(*b"BlbE");
const NDB_PAGE: usize = 4096;
const NDB_BLK: usize = 16;
const NDB_HEADER: usize = 32;
const NDB_HEAD: usize = 16;
const NDB_TAIL: usize = 12;

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap_or_default()))
}

/// RFC 1950's Adler-32, as rpm computes it over a blob.
fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &c in chunk {
            a += u32::from(c);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// The header blobs of an NDB `Packages.db` file, in slot order.
pub fn ndb_blobs(file: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if file.len() < NDB_HEADER || le32(file, 0) != NDB_MAGIC {
        return Err("no RpmP magic number at offset 0 (not an NDB package database)".into());
    }
    let version = le32(file, 4);
    if version != 0 {
        return Err(format!("version {version} is not the known version 0"));
    }
    if !file.len().is_multiple_of(NDB_BLK) {
        return Err(format!("{} bytes is not a whole number of 16-byte blocks (truncated?)", file.len()));
    }
    let slot_pages = le32(file, 12) as usize;
    if slot_pages == 0 || slot_pages.saturating_mul(NDB_PAGE) > file.len() {
        return Err(format!("{slot_pages} slot pages do not fit in {} bytes", file.len()));
    }
    let blocks = file.len() / NDB_BLK;
    let first_blob = slot_pages * NDB_PAGE / NDB_BLK;
    let mut out = Vec::new();
    for (slot_no, at) in (NDB_HEADER..slot_pages * NDB_PAGE).step_by(16).enumerate() {
        let slot_no = slot_no + NDB_HEADER / 16;
        if le32(file, at) != NDB_SLOT_MAGIC {
            return Err(format!("slot {slot_no} has no Slot magic number"));
        }
        let (pkg, off, cnt) = (le32(file, at + 4), le32(file, at + 8) as usize, le32(file, at + 12) as usize);
        if off == 0 {
            continue;
        }
        let bad = |m: String| format!("slot {slot_no} (package {pkg}): {m}");
        if pkg == 0 || cnt == 0 || off < first_blob {
            return Err(bad(format!("blocks {off}+{cnt} are not a valid place for a blob")));
        }
        if off.saturating_add(cnt) > blocks {
            return Err(bad(format!("blocks {off}+{cnt} run past the end of the file ({blocks} blocks)")));
        }
        let blob = &file[off * NDB_BLK..(off + cnt) * NDB_BLK];
        if le32(blob, 0) != NDB_HEAD_MAGIC || le32(blob, 4) != pkg {
            return Err(bad("the blob's head is not BlbS for this package".into()));
        }
        let len = le32(blob, 12) as usize;
        if (NDB_HEAD + len + NDB_TAIL).div_ceil(NDB_BLK) != cnt {
            return Err(bad(format!("a blob of {len} bytes does not fill {cnt} blocks")));
        }
        let tail = &blob[blob.len() - NDB_TAIL..];
        if le32(tail, 8) != NDB_TAIL_MAGIC || le32(tail, 4) as usize != len {
            return Err(bad("the blob's tail is not BlbE with its length".into()));
        }
        if le32(tail, 0) != adler32(&blob[..blob.len() - NDB_TAIL]) {
            return Err(bad("the blob's Adler-32 checksum does not match".into()));
        }
        out.push(blob[NDB_HEAD..NDB_HEAD + len].to_vec());
    }
    Ok(out)
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

/// A Berkeley DB hash `Packages` file holding the given headers (instance 0 the counter,
/// then instances 1…, each blob on its own overflow chain), for tests.
pub fn bdb_for_tests(headers: &[Header], page_size: usize, big_endian: bool) -> Vec<u8> {
    let w16 = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let w32 = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut pages: Vec<Vec<u8>> = vec![vec![0; page_size]];
    let header = |p: &mut Vec<u8>, n: usize, prev: u32, next: u32, entries: u16, hf: u16, kind: u8| {
        p[8..12].copy_from_slice(&w32(n as u32));
        p[12..16].copy_from_slice(&w32(prev));
        p[16..20].copy_from_slice(&w32(next));
        p[20..22].copy_from_slice(&w16(entries));
        p[22..24].copy_from_slice(&w16(hf));
        p[24] = 1;
        p[25] = kind;
    };
    // Items of the hash page(s): (key, value) pairs, each an encoded item.
    let keydata = |b: &[u8]| {
        let mut v = vec![1u8];
        v.extend_from_slice(b);
        v
    };
    let mut items: Vec<(Vec<u8>, Vec<u8>)> = vec![(keydata(&w32(0)), keydata(&w32(headers.len() as u32 + 1)))];
    let blobs: Vec<Vec<u8>> = headers.iter().map(encode_header_for_tests).collect();
    // Overflow pages come after one hash page per few pairs; lay out hash pages first.
    let per_page = ((page_size - BDB_PAGE_HEADER) / (2 * 2 + 5 + 12)).max(1);
    let hash_pages = (blobs.len() + 1).div_ceil(per_page);
    let mut next_page = 1 + hash_pages;
    let room = page_size - BDB_PAGE_HEADER;
    let mut overflow: Vec<Vec<u8>> = Vec::new();
    for (i, blob) in blobs.iter().enumerate() {
        let chunks: Vec<&[u8]> = blob.chunks(room).collect();
        let first = next_page;
        for (k, c) in chunks.iter().enumerate() {
            let n = next_page + k;
            let mut p = vec![0; page_size];
            let prev = if k == 0 { 0 } else { (n - 1) as u32 };
            let next = if k + 1 == chunks.len() { 0 } else { (n + 1) as u32 };
            header(&mut p, n, prev, next, 1, c.len() as u16, P_OVERFLOW);
            p[BDB_PAGE_HEADER..BDB_PAGE_HEADER + c.len()].copy_from_slice(c);
            overflow.push(p);
        }
        next_page += chunks.len();
        let mut off = vec![H_OFFPAGE, 0, 0, 0];
        off.extend_from_slice(&w32(first as u32));
        off.extend_from_slice(&w32(blob.len() as u32));
        items.push((keydata(&w32(i as u32 + 1)), off));
    }
    for (h, pairs) in items.chunks(per_page).enumerate() {
        let n = 1 + h;
        let mut p = vec![0; page_size];
        let mut top = page_size;
        let mut index = Vec::new();
        for (k, v) in pairs {
            for item in [k, v] {
                top -= item.len();
                p[top..top + item.len()].copy_from_slice(item);
                index.push(top as u16);
            }
        }
        for (j, at) in index.iter().enumerate() {
            p[BDB_PAGE_HEADER + 2 * j..BDB_PAGE_HEADER + 2 * j + 2].copy_from_slice(&w16(*at));
        }
        header(&mut p, n, 0, 0, index.len() as u16, top as u16, P_HASH);
        pages.push(p);
    }
    pages.extend(overflow);
    let last = pages.len() - 1;
    let meta = &mut pages[0];
    meta[12..16].copy_from_slice(&w32(BDB_HASH_MAGIC));
    meta[16..20].copy_from_slice(&w32(9));
    meta[20..24].copy_from_slice(&w32(page_size as u32));
    meta[25] = P_HASHMETA;
    meta[32..36].copy_from_slice(&w32(last as u32));
    meta[88..92].copy_from_slice(&w32(items.len() as u32));
    pages.concat()
}

/// An NDB `Packages.db` file holding the given headers as packages 1…, for tests.
pub fn ndb_for_tests(headers: &[Header]) -> Vec<u8> {
    let mut file = vec![0u8; NDB_PAGE];
    file[0..4].copy_from_slice(&NDB_MAGIC.to_le_bytes());
    file[8..12].copy_from_slice(&1u32.to_le_bytes());
    file[12..16].copy_from_slice(&1u32.to_le_bytes());
    file[16..20].copy_from_slice(&(headers.len() as u32 + 1).to_le_bytes());
    for at in (NDB_HEADER..NDB_PAGE).step_by(16) {
        file[at..at + 4].copy_from_slice(&NDB_SLOT_MAGIC.to_le_bytes());
    }
    for (i, h) in headers.iter().enumerate() {
        let pkg = i as u32 + 1;
        let blob = encode_header_for_tests(h);
        let cnt = (NDB_HEAD + blob.len() + NDB_TAIL).div_ceil(NDB_BLK);
        let off = file.len() / NDB_BLK;
        let mut b = Vec::with_capacity(cnt * NDB_BLK);
        for v in [NDB_HEAD_MAGIC, pkg, 1_700_000_000, blob.len() as u32] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&blob);
        b.resize(cnt * NDB_BLK - NDB_TAIL, 0);
        let sum = adler32(&b);
        for v in [sum, blob.len() as u32, NDB_TAIL_MAGIC] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        file.extend_from_slice(&b);
        let slot = NDB_HEADER + i * 16;
        file[slot + 4..slot + 8].copy_from_slice(&pkg.to_le_bytes());
        file[slot + 8..slot + 12].copy_from_slice(&(off as u32).to_le_bytes());
        file[slot + 12..slot + 16].copy_from_slice(&(cnt as u32).to_le_bytes());
    }
    file
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openssl() -> Header {
        Header {
            name: "openssl-libs".into(),
            version: "3.0.7".into(),
            release: "24.el9".into(),
            epoch: Some(1),
            arch: "x86_64".into(),
            license: "ASL 2.0".into(),
            source_rpm: "openssl-3.0.7-24.el9.src.rpm".into(),
        }
    }

    /// Three packages as CentOS 7 / SUSE would list them, one header spanning several
    /// 512-byte pages, and the gpg-pubkey pseudo-package rpm keeps in the same table.
    fn headers() -> Vec<Header> {
        vec![
            Header {
                name: "bash".into(),
                version: "4.2.46".into(),
                release: "35.el7_9".into(),
                epoch: None,
                arch: "x86_64".into(),
                license: "GPLv3+".into(),
                source_rpm: "bash-4.2.46-35.el7_9.src.rpm".into(),
            },
            Header {
                name: "gpg-pubkey".into(),
                version: "f4a80eb5".into(),
                release: "53a7ff4b".into(),
                epoch: None,
                arch: String::new(),
                license: "pubkey".into(),
                source_rpm: String::new(),
            },
            Header {
                name: "openssl-libs".into(),
                version: "1.0.2k".into(),
                release: "26.el7_9".into(),
                epoch: Some(1),
                arch: "x86_64".into(),
                // Long enough to need three overflow pages of 512 bytes.
                license: format!("OpenSSL {}", "and others ".repeat(120)),
                source_rpm: "openssl-1.0.2k-26.el7_9.src.rpm".into(),
            },
        ]
    }

    fn summary(p: &[Package]) -> Vec<(String, String, String, String, String)> {
        p.iter()
            .map(|p| {
                (p.name.clone(), p.version.clone(), p.source_name.clone(), p.source_version.clone(), p.arch.clone())
            })
            .collect()
    }

    fn expected() -> Vec<(String, String, String, String, String)> {
        [
            ("bash", "4.2.46-35.el7_9", "bash", "4.2.46-35.el7_9", "x86_64"),
            ("openssl-libs", "1:1.0.2k-26.el7_9", "openssl", "1:1.0.2k-26.el7_9", "x86_64"),
        ]
        .iter()
        .map(|(a, b, c, d, e)| (a.to_string(), b.to_string(), c.to_string(), d.to_string(), e.to_string()))
        .collect()
    }

    #[test]
    fn reads_headers_from_sqlite() {
        let h = openssl();
        assert_eq!(parse_header(&encode_header_for_tests(&h)).unwrap(), h);
        let db = sqlite_db_for_tests(&[h]);
        let p = read("var/lib/rpm/rpmdb.sqlite", Format::Sqlite, &db).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].version, "1:3.0.7-24.el9");
        assert_eq!((p[0].source_name.as_str(), p[0].source_version.as_str()), ("openssl", "1:3.0.7-24.el9"));
        let p = read("var/lib/rpm/rpmdb.sqlite", Format::Sqlite, &sqlite_db_for_tests(&headers())).unwrap();
        assert_eq!(summary(&p), expected());
    }

    #[test]
    fn formats_by_path() {
        assert_eq!(Format::of_path("var/lib/rpm/Packages"), Some(Format::BerkeleyDb));
        assert_eq!(Format::of_path("usr/lib/sysimage/rpm/Packages.db"), Some(Format::Ndb));
        assert_eq!(Format::of_path("usr/lib/sysimage/rpm/rpmdb.sqlite"), Some(Format::Sqlite));
        assert_eq!(Format::of_path("var/lib/rpm/Packages.old"), None);
        assert_eq!(Format::of_path("srv/repo/Packages"), None);
        assert_eq!(Format::of_path("Packages"), None);
    }

    #[test]
    fn reads_berkeley_db_hash_files_in_both_byte_orders() {
        for (page_size, big_endian) in [(512, false), (4096, false), (512, true), (16384, true)] {
            let db = bdb_for_tests(&headers(), page_size, big_endian);
            assert_eq!(bdb_blobs(&db).unwrap().len(), 3, "page size {page_size}, big endian {big_endian}");
            let p = read("var/lib/rpm/Packages", Format::BerkeleyDb, &db).unwrap();
            assert_eq!(summary(&p), expected(), "page size {page_size}, big endian {big_endian}");
            assert_eq!(p[1].license, headers()[2].license);
            assert_eq!(p[0].path, "var/lib/rpm/Packages");
        }
        // An empty database (only the counter) has no packages.
        assert_eq!(read("var/lib/rpm/Packages", Format::BerkeleyDb, &bdb_for_tests(&[], 4096, false)).unwrap(), vec![]);
    }

    #[test]
    fn reads_ndb_files() {
        let db = ndb_for_tests(&headers());
        let p = read("usr/lib/sysimage/rpm/Packages.db", Format::Ndb, &db).unwrap();
        assert_eq!(summary(&p), expected());
        assert_eq!(read("x/rpm/Packages.db", Format::Ndb, &ndb_for_tests(&[])).unwrap(), vec![]);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    fn err(format: Format, bytes: &[u8]) -> String {
        read("var/lib/rpm/Packages", format, bytes).unwrap_err().to_string()
    }

    #[test]
    fn malformed_berkeley_db_files_give_clear_errors() {
        let good = bdb_for_tests(&headers(), 512, false);
        let e = err(Format::BerkeleyDb, b"short");
        assert!(e.starts_with("var/lib/rpm/Packages: Berkeley DB rpm database: 5 bytes"), "{e}");
        assert!(err(Format::BerkeleyDb, &vec![0; 4096]).contains("no hash database magic number"));
        let mut m = good.clone();
        m[20..24].copy_from_slice(&1000u32.to_le_bytes());
        assert!(err(Format::BerkeleyDb, &m).contains("page size 1000"));
        let cut = &good[..good.len() - 512];
        assert!(err(Format::BerkeleyDb, cut).contains("the file holds"), "{}", err(Format::BerkeleyDb, cut));
        // The first overflow page of the first header points back to itself.
        let first = 2;
        let mut m = good.clone();
        let (bash_len, next) = (encode_header_for_tests(&headers()[0]).len(), first * 512 + 16);
        assert!(bash_len < 486);
        m[next..next + 4].copy_from_slice(&(first as u32).to_le_bytes());
        let e = err(Format::BerkeleyDb, &m);
        assert!(e.contains("hash page 1, item 3"), "{e}");
        // An overflow pointer to a hash page.
        let mut m = good.clone();
        let item = u16::from_le_bytes([m[512 + 26 + 6], m[512 + 26 + 7]]) as usize;
        m[512 + item + 4..512 + item + 8].copy_from_slice(&1u32.to_le_bytes());
        assert!(err(Format::BerkeleyDb, &m).contains("page 1 has type 13, not overflow"));
        // A header blob that is not a header.
        let mut m = good.clone();
        m[first * 512 + 26..first * 512 + 30].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(err(Format::BerkeleyDb, &m).contains("header 1 of 3 is malformed"));
    }

    #[test]
    fn malformed_ndb_files_give_clear_errors() {
        let good = ndb_for_tests(&headers());
        assert!(err(Format::Ndb, b"RpmQ").contains("no RpmP magic number"));
        let mut m = good.clone();
        m[4] = 1;
        assert!(err(Format::Ndb, &m).contains("version 1"));
        assert!(err(Format::Ndb, &good[..good.len() - 16]).contains("run past the end of the file"));
        assert!(err(Format::Ndb, &good[..good.len() - 3]).contains("not a whole number of 16-byte blocks"));
        let mut m = good.clone();
        m[NDB_PAGE + NDB_HEAD + 3] ^= 0x55;
        let e = err(Format::Ndb, &m);
        assert!(e.contains("slot 2 (package 1): the blob's Adler-32 checksum does not match"), "{e}");
        let mut m = good.clone();
        m[48] = b'X';
        assert!(err(Format::Ndb, &m).contains("slot 3 has no Slot magic number"));
    }

    /// Every truncation and every single-byte change of a valid file reads or fails
    /// with an error: never a panic, never an endless loop.
    #[test]
    fn damaged_files_never_panic() {
        for (format, good) in [
            (Format::BerkeleyDb, bdb_for_tests(&headers(), 512, false)),
            (Format::BerkeleyDb, bdb_for_tests(&headers(), 512, true)),
            (Format::Ndb, ndb_for_tests(&headers())),
        ] {
            for len in (0..good.len()).step_by(7) {
                let _ = read("var/lib/rpm/Packages", format, &good[..len]);
            }
            for at in 0..good.len() {
                for flip in [0x01u8, 0x80, 0xff] {
                    let mut m = good.clone();
                    m[at] ^= flip;
                    let _ = read("var/lib/rpm/Packages", format, &m);
                }
            }
        }
    }
}
