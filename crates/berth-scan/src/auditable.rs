//! Rust executables built with cargo-auditable carry their dependency list in an ELF
//! section `.dep-v0`: zlib-compressed JSON, `{"packages": [{"name", "version", "source",
//! "kind", "dependencies", "root"}]}` (rust-secure-code/cargo-auditable, `auditable-serde`).
//! Berth reports the crates.io packages linked into the binary; build-time dependencies
//! (`"kind": "build"`) are not in it, and local or git crates have no advisories.

use std::io::Read;

use serde::Deserialize;

/// The section cargo-auditable writes.
pub const SECTION: &str = ".dep-v0";
/// Larger decompressed data is not a dependency list (a dependency list of thousands of
/// crates is a few hundred KiB).
const MAX_JSON: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    pub name: String,
    pub version: String,
}

#[derive(Deserialize)]
struct DepList {
    packages: Vec<Dep>,
}

#[derive(Deserialize)]
struct Dep {
    name: String,
    version: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    kind: Option<String>,
}

/// The crates.io dependencies of an executable: `None` when it is not an ELF file or has
/// no `.dep-v0` section, an error naming what is wrong when the section is unreadable.
pub fn read(data: &[u8]) -> Option<Result<Vec<Crate>, String>> {
    let section = elf_section(data, SECTION)?;
    Some(section.and_then(parse))
}

fn parse(compressed: &[u8]) -> Result<Vec<Crate>, String> {
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| format!("section {SECTION} is not zlib data: {e}"))?;
    if json.len() as u64 > MAX_JSON {
        return Err(format!("section {SECTION} decompresses to more than {MAX_JSON} bytes"));
    }
    let list: DepList =
        serde_json::from_slice(&json).map_err(|e| format!("section {SECTION} is not a dependency list: {e}"))?;
    let mut out: Vec<Crate> = list
        .packages
        .into_iter()
        .filter(|d| d.source == "crates.io" && d.kind.as_deref() != Some("build"))
        .map(|d| Crate { name: d.name, version: d.version })
        .collect();
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    out.dedup();
    Ok(out)
}

/// The contents of the named section of an ELF file (32 or 64 bit, either byte order):
/// `None` if `data` is not ELF, its section table cannot be read or it has no such section;
/// an error if the section is there but its contents are not.
pub fn elf_section<'a>(data: &'a [u8], name: &str) -> Option<Result<&'a [u8], String>> {
    if data.len() < 52 || &data[..4] != b"\x7fELF" {
        return None;
    }
    let wide = match data[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let be = match data[5] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let int = |at: usize, n: usize| -> Option<u64> {
        let b = data.get(at..at.checked_add(n)?)?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = if be { b[i] } else { b[n - 1 - i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let word = if wide { 8 } else { 4 };
    let (shoff, shentsize, shnum, shstrndx) = if wide {
        (int(0x28, 8)?, int(0x3a, 2)?, int(0x3c, 2)?, int(0x3e, 2)?)
    } else {
        (int(0x20, 4)?, int(0x2e, 2)?, int(0x30, 2)?, int(0x32, 2)?)
    };
    if shoff == 0 || shnum == 0 {
        return None; // no section table (stripped of it): nothing to find
    }
    let table_end = shoff.checked_add(shentsize.checked_mul(shnum)?)?;
    if shentsize < if wide { 64 } else { 40 } || table_end > data.len() as u64 || shstrndx >= shnum {
        // Not an ELF file Berth can read (firmware, a damaged or odd file): no section
        // is found, as in a file that is not ELF at all.
        return None;
    }
    // (offset, size) of section i.
    let section = |i: u64| -> Option<(u64, u64, u64)> {
        let at = (shoff + i * shentsize) as usize;
        let kind = int(at + 4, 4)?;
        let off = int(at + 8 + 2 * word, word)?;
        let size = int(at + 8 + 3 * word, word)?;
        Some((kind, off, size))
    };
    let bytes = |off: u64, size: u64| -> Option<&'a [u8]> {
        let end = off.checked_add(size)?;
        data.get(usize::try_from(off).ok()?..usize::try_from(end).ok()?)
    };
    let (_, str_off, str_size) = section(shstrndx)?;
    let names = bytes(str_off, str_size)?;
    for i in 0..shnum {
        let name_at = int((shoff + i * shentsize) as usize, 4)? as usize;
        let Some(rest) = names.get(name_at..) else { continue };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        if &rest[..end] != name.as_bytes() {
            continue;
        }
        let (kind, off, size) = section(i)?;
        const SHT_NOBITS: u64 = 8;
        if kind == SHT_NOBITS {
            return Some(Err(format!("section {name} has no contents")));
        }
        return Some(
            bytes(off, size).ok_or_else(|| format!("section {name} ({size} bytes at {off}) is out of bounds")),
        );
    }
    None
}

/// A minimal 64-bit little-endian ELF file with the given sections (and `.shstrtab`),
/// for tests.
pub fn elf_for_tests(sections: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2; // 64-bit
    out[5] = 1; // little-endian
    out[6] = 1; // version
    out[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    out[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    out[20..24].copy_from_slice(&1u32.to_le_bytes());
    out[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    let mut names = vec![0u8];
    let mut placed = Vec::new(); // (name offset, data offset, size)
    for (name, body) in sections {
        let n = names.len();
        names.extend_from_slice(name.as_bytes());
        names.push(0);
        placed.push((n, out.len(), body.len()));
        out.extend_from_slice(body);
    }
    let shstr_name = names.len();
    names.extend_from_slice(b".shstrtab\0");
    let shstr_off = out.len();
    out.extend_from_slice(&names);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let shoff = out.len();
    let mut entry = |name: usize, kind: u32, off: usize, size: usize| {
        let mut e = vec![0u8; 64];
        e[0..4].copy_from_slice(&(name as u32).to_le_bytes());
        e[4..8].copy_from_slice(&kind.to_le_bytes());
        e[24..32].copy_from_slice(&(off as u64).to_le_bytes());
        e[32..40].copy_from_slice(&(size as u64).to_le_bytes());
        e[48..56].copy_from_slice(&1u64.to_le_bytes());
        out.extend_from_slice(&e);
    };
    entry(0, 0, 0, 0);
    for (name, off, size) in &placed {
        entry(*name, 1, *off, *size); // SHT_PROGBITS
    }
    entry(shstr_name, 3, shstr_off, names.len()); // SHT_STRTAB
    let shnum = placed.len() + 2;
    out[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
    out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    out[0x3c..0x3e].copy_from_slice(&(shnum as u16).to_le_bytes());
    out[0x3e..0x40].copy_from_slice(&((shnum - 1) as u16).to_le_bytes());
    // Executables below 1 KiB are not searched; real ones never are that small.
    out.resize(out.len().max(2048), 0);
    out
}

/// cargo-auditable's section contents for a JSON dependency list, for tests.
pub fn dep_section_for_tests(json: &str) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    z.write_all(json.as_bytes()).expect("compress");
    z.finish().expect("compress")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPS: &str = r#"{"packages":[
        {"name":"app","version":"0.1.0","source":"local","dependencies":[1,2,3,4],"root":true},
        {"name":"smallvec","version":"1.6.0","source":"crates.io"},
        {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"},
        {"name":"my-fork","version":"0.3.0","source":"git"},
        {"name":"time","version":"0.1.43","source":"crates.io","kind":"runtime","dependencies":[]}
    ]}"#;

    #[test]
    fn reads_crates_io_runtime_dependencies() {
        let elf = elf_for_tests(&[(".text", &[0x90; 32]), (SECTION, &dep_section_for_tests(DEPS))]);
        let crates = read(&elf).unwrap().unwrap();
        assert_eq!(
            crates,
            vec![
                Crate { name: "smallvec".into(), version: "1.6.0".into() },
                Crate { name: "time".into(), version: "0.1.43".into() },
            ]
        );
    }

    #[test]
    fn other_files_and_bad_sections() {
        assert!(read(b"#!/bin/sh\necho hello\n").is_none());
        assert!(read(&elf_for_tests(&[(".text", &[0x90; 32])])).is_none(), "an ELF file without the section");
        let e = read(&elf_for_tests(&[(SECTION, b"not zlib")])).unwrap().unwrap_err();
        assert!(e.contains("section .dep-v0 is not zlib data"), "{e}");
        let e = read(&elf_for_tests(&[(SECTION, &dep_section_for_tests("{\"crates\": []}"))])).unwrap().unwrap_err();
        assert!(e.contains("section .dep-v0 is not a dependency list: missing field `packages`"), "{e}");
        // A section that points past the end of the file.
        let mut elf = elf_for_tests(&[(SECTION, &dep_section_for_tests(DEPS))]);
        let shoff = u64::from_le_bytes(elf[0x28..0x30].try_into().unwrap()) as usize;
        elf[shoff + 64 + 32..shoff + 64 + 40].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = read(&elf).unwrap().unwrap_err();
        assert!(e.contains("out of bounds"), "{e}");
        // A section table out of bounds: no section to be found.
        let mut elf = elf_for_tests(&[(SECTION, &dep_section_for_tests(DEPS))]);
        elf[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read(&elf).is_none());
        // Every truncation and byte change reads or fails, never panics.
        let good = elf_for_tests(&[(SECTION, &dep_section_for_tests(DEPS))]);
        for at in 0..good.len().min(1200) {
            let mut m = good.clone();
            m[at] ^= 0xff;
            let _ = read(&m);
            let _ = read(&good[..at]);
        }
    }
}
