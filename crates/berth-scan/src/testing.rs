//! Image layers for tests (the `testing` feature): what the scanner's own tests and the
//! integration tests through the API build their images from.

use std::io::Write;

/// A tar layer of regular files `(path, contents, mode)`, gzip-compressed if asked.
pub fn tar_layer(files: &[(&str, &[u8], u32)], gzip: bool) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(*mode);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).expect("tar entry");
    }
    let raw = b.into_inner().expect("tar");
    if !gzip {
        return raw;
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).expect("gzip");
    gz.finish().expect("gzip")
}
