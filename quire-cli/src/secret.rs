//! The token-signing secret: given, or generated once and kept so that restarts keep tokens
//! valid: for SQLite in a 0600 file beside the database, for PostgreSQL in the database (the
//! wiring in `lib.rs` asks quire-store for it; this file only makes and checks secrets).

use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Shortest secret accepted: HS256 wants at least 256 bits of key.
const MIN_SECRET_LEN: usize = 32;

/// Name of the token secret in PostgreSQL's `secrets` table.
pub const TOKEN_SECRET_NAME: &str = "token";

/// A fresh random secret: 32 random bytes as 64 hex characters.
pub fn generate() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a secret read back from the database.
pub fn stored(secret: &str) -> anyhow::Result<Vec<u8>> {
    if secret.len() < MIN_SECRET_LEN {
        bail!("the database holds a token secret shorter than {MIN_SECRET_LEN} characters");
    }
    Ok(secret.as_bytes().to_vec())
}

/// Where the generated secret of the database at `db_path` is kept.
pub fn secret_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(".jwt-secret");
    PathBuf::from(name)
}

/// Checks a secret given on the command line.
pub fn given(secret: &str) -> anyhow::Result<Vec<u8>> {
    if secret.len() < MIN_SECRET_LEN {
        bail!("--jwt-secret must be at least {MIN_SECRET_LEN} characters");
    }
    Ok(secret.as_bytes().to_vec())
}

/// Reads the secret file, creating it (mode 0600) with a fresh random secret if absent.
pub fn load_or_create(path: &Path) -> anyhow::Result<Vec<u8>> {
    match create(path) {
        Ok(secret) => {
            tracing::info!(path = %path.display(), "generated a new token secret");
            return Ok(secret);
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create {}", path.display()));
        }
    }
    let mut secret = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut secret))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let secret = secret.trim();
    if secret.len() < MIN_SECRET_LEN {
        bail!(
            "{} holds a secret shorter than {MIN_SECRET_LEN} characters",
            path.display()
        );
    }
    Ok(secret.as_bytes().to_vec())
}

fn create(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;

    let secret = generate();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = secret_path(&dir.path().join("quire.db"));
        assert!(path.ends_with("quire.db.jwt-secret"));
        let first = load_or_create(&path).unwrap();
        let second = load_or_create(&path).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(given("short").is_err());
        assert!(given(&"s".repeat(32)).is_ok());
    }
}
