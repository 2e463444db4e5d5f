//! Go build information embedded in binaries (Go 1.18+): a 32-byte header starting with
//! `\xff Go buildinf:`, whose flag byte says the Go version and the module information
//! follow inline as length-prefixed strings. The module information is text framed by
//! 16-byte sentinels: `path`, `mod` (main module), `dep` and `=>` (replacement) lines.

const MAGIC: &[u8] = b"\xff Go buildinf:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    pub path: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub go_version: String,
    pub main: Option<Module>,
    pub deps: Vec<Module>,
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, &c) in b.iter().enumerate().take(10) {
        x |= u64::from(c & 0x7f) << (7 * i);
        if c < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

fn string_at(b: &[u8]) -> Option<(&[u8], usize)> {
    let (n, k) = uvarint(b)?;
    let end = k.checked_add(usize::try_from(n).ok()?)?;
    Some((b.get(k..end)?, end))
}

/// The build information of a Go binary, or None for anything else.
pub fn read(data: &[u8]) -> Option<BuildInfo> {
    // Every executable of an image is searched: memchr's vectorised search, not a byte loop.
    let at = memchr::memmem::find(data, MAGIC)?;
    let header = data.get(at..at + 32)?;
    if header[15] & 0x2 == 0 {
        // Before Go 1.18 the strings were pointers into the binary; not read.
        return None;
    }
    let rest = &data[at + 32..];
    let (version, k) = string_at(rest)?;
    let (modinfo, _) = string_at(&rest[k..])?;
    let modinfo = if modinfo.len() >= 33 && modinfo[modinfo.len() - 17] == b'\n' {
        &modinfo[16..modinfo.len() - 16]
    } else {
        modinfo
    };
    let text = String::from_utf8_lossy(modinfo);
    let mut main = None;
    let mut deps: Vec<Module> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        match f.as_slice() {
            ["mod", path, version, ..] => main = Some(Module { path: path.to_string(), version: version.to_string() }),
            ["dep", path, version, ..] => deps.push(Module { path: path.to_string(), version: version.to_string() }),
            ["=>", path, version, ..] => {
                if let Some(last) = deps.last_mut() {
                    *last = Module { path: path.to_string(), version: version.to_string() };
                }
            }
            _ => {}
        }
    }
    Some(BuildInfo { go_version: String::from_utf8_lossy(version).into_owned(), main, deps })
}

/// Builds the bytes a Go 1.18+ linker would embed, for tests.
pub fn encode_for_tests(go_version: &str, modinfo: &str) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, s: &[u8]) {
        let mut n = s.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(s);
    }
    let mut out = vec![0x7f, b'E', b'L', b'F'];
    out.resize(64, 0);
    out.extend_from_slice(MAGIC);
    out.push(8);
    out.push(0x2);
    out.resize(out.len() + 16, 0);
    put(&mut out, go_version.as_bytes());
    let sentinel = [0x30u8, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6];
    let mut mi = sentinel.to_vec();
    mi.extend_from_slice(modinfo.as_bytes());
    mi.extend_from_slice(&[
        0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8, 0xf2,
    ]);
    put(&mut out, &mi);
    out.resize(out.len() + 2048, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modules_and_replacements() {
        let bin = encode_for_tests(
            "go1.22.1",
            "path\texample.com/app\nmod\texample.com/app\tv1.4.0\th1:x=\ndep\tgolang.org/x/net\tv0.17.0\th1:y=\ndep\tgithub.com/a/b\tv1.0.0\n=>\tgithub.com/fork/b\tv1.0.1\th1:z=\nbuild\t-compiler=gc\n",
        );
        let info = read(&bin).unwrap();
        assert_eq!(info.go_version, "go1.22.1");
        assert_eq!(info.main, Some(Module { path: "example.com/app".into(), version: "v1.4.0".into() }));
        assert_eq!(
            info.deps,
            vec![
                Module { path: "golang.org/x/net".into(), version: "v0.17.0".into() },
                Module { path: "github.com/fork/b".into(), version: "v1.0.1".into() },
            ]
        );
        assert!(read(b"not a go binary at all").is_none());
    }
}
