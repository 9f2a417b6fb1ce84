//! Hex digests of files and bytes (SHA-256 for deployed files, md5 where Zenodo publishes it).

use std::io::Read;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The lowercase hex digest `D` of everything `reader` yields, read in 1 MiB chunks so a
/// multi-GB archive never sits in memory.
pub fn hex_digest_of<D: sha2::Digest>(mut reader: impl Read) -> std::io::Result<String> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}
