//! Writing keys and certificates: atomically (a temporary file in the same
//! directory, synced, then renamed over the target) and readable by the
//! owner only (0600 from creation: the key is never readable by others,
//! not even for a moment).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::{Error, Issued, Result};

/// The permission bits of every file written here.
pub const PRIVATE_MODE: u32 = 0o600;

/// Writes `contents` to `path` atomically with mode 0600, creating the
/// directory (mode 0700) if needed.
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::file(&dir, format!("creating the directory: {e}")))?;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::file(path, "is not a file name"))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_MODE)
            .open(&tmp)?;
        // The mode given at creation is filtered by the umask; 0600 is
        // what we want whatever the umask.
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_MODE))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::file(path, format!("writing: {e}")));
    }
    Ok(())
}

/// Where the certificate and key named `name` live in `dir`:
/// `<dir>/<name>.crt` and `<dir>/<name>.key`.
pub fn pair_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")))
}

/// Writes an issued certificate and its key as `<dir>/<name>.crt` and
/// `<dir>/<name>.key` (0600 each); refuses to replace existing files
/// unless `force`. Returns the two paths.
pub fn write_pair(dir: &Path, name: &str, issued: &Issued, force: bool) -> Result<(PathBuf, PathBuf)> {
    let (cert, key) = pair_paths(dir, name);
    if !force {
        for p in [&cert, &key] {
            if p.exists() {
                return Err(Error::file(p, "already exists (use --force to replace it)"));
            }
        }
    }
    write_private(&key, issued.key_pem.as_bytes())?;
    write_private(&cert, issued.cert_pem.as_bytes())?;
    Ok((cert, key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn written_files_are_0600_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("a.key");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary file left behind: {left:?}");
    }
}
