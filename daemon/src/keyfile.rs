//! The identity key on disk: `<data dir>/keys/<username>.pem`, passphrase-encrypted PKCS#8
//! (the account password is the passphrase), folder 0700 and file 0600, written atomically.

use std::path::{Path, PathBuf};

use fastchat_api::codes;
use fastchat_crypto::Identity;
use zeroize::Zeroizing;

use crate::error::{ApiError, ApiResult};

fn path(dir: &Path, username: &str) -> PathBuf {
    dir.join("keys").join(format!("{username}.pem"))
}

/// Encrypts and writes `identity`, then gives it back.
pub async fn save(
    dir: &Path,
    username: &str,
    identity: Identity,
    password: String,
) -> ApiResult<Identity> {
    let file = path(dir, username);
    let password = Zeroizing::new(password);
    tokio::task::spawn_blocking(move || {
        let pem = identity.to_encrypted_pem(&password)?;
        write_private(&file, pem.as_bytes())
            .map_err(|e| ApiError::internal(format!("cannot write {}: {e}", file.display())))?;
        Ok(identity)
    })
    .await
    .map_err(ApiError::internal)?
}

/// Reads and decrypts the key of `username`; `None` if this profile has none.
pub async fn load(dir: &Path, username: &str, password: String) -> ApiResult<Option<Identity>> {
    let file = path(dir, username);
    let password = Zeroizing::new(password);
    tokio::task::spawn_blocking(move || {
        let pem = match std::fs::read_to_string(&file) {
            Ok(p) => Zeroizing::new(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ApiError::internal(format!("cannot read {}: {e}", file.display())));
            }
        };
        Identity::from_encrypted_pem(&pem, &password)
            .map(Some)
            .map_err(|_| {
                ApiError::new(
                    codes::LOCKED,
                    format!(
                        "the identity key {} does not open with this password (was the password changed elsewhere?)",
                        file.display()
                    ),
                )
            })
    })
    .await
    .map_err(ApiError::internal)?
}

/// Writes `bytes` to `file` readable by its owner only, replacing it atomically.
fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = file.parent().unwrap_or(Path::new("."));
    crate::fsutil::create_private_dir(dir)?;
    let tmp = file.with_extension("pem.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, file)
}
