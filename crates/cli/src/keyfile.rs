//! X25519 key files: one line of hex, created with mode 0600 and never overwritten.

use anyhow::{Context, Result, bail};
use licen_crypto::envelope::{PublicKey, SecretKey};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Writes a new secret key to `path` (mode 0600, refusing to overwrite an existing file).
pub(crate) fn write_secret_key(path: &Path, key: &SecretKey) -> Result<()> {
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "key file {} already exists: an existing key is never overwritten; choose another path",
            path.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("creating key file {}", path.display()));
        }
    };
    let hex = zeroizing_hex(&*key.to_bytes());
    file.write_all(hex.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing key file {}", path.display()))?;
    Ok(())
}

/// Reads a secret key file written by [`write_secret_key`].
pub(crate) fn read_secret_key(path: &Path) -> Result<SecretKey> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("reading key file {}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "warning: key file {} is readable by other users; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("reading key file {}", path.display()))?,
    );
    let bytes = zeroize::Zeroizing::new(
        hex::decode(text.trim().trim_start_matches("0x")).map_err(|_| {
            anyhow::anyhow!(
                "key file {} is not hex: expected 64 hex digits",
                path.display()
            )
        })?,
    );
    if bytes.len() != 32 {
        bail!(
            "key file {} holds {} bytes: expected a 32-byte X25519 secret key (64 hex digits)",
            path.display(),
            bytes.len()
        );
    }
    SecretKey::from_slice(&bytes).context("the key file does not hold a valid X25519 key")
}

/// Parses a public key given as 64 hex digits (with or without 0x).
pub(crate) fn parse_public_key(text: &str) -> Result<PublicKey> {
    let bytes = hex::decode(text.trim().trim_start_matches("0x")).ok();
    match bytes {
        Some(b) if b.len() == 32 => {
            PublicKey::from_slice(&b).context("not a valid X25519 public key")
        }
        _ => bail!("`{text}` is not a public key: expected 64 hex digits (32 bytes of X25519)"),
    }
}

fn zeroizing_hex(bytes: &[u8]) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(hex::encode(bytes))
}
