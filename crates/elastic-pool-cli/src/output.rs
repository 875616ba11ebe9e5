//! The output folder: checked writable before a run starts, and files replaced atomically so
//! a failed run never leaves a partial file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the output folder cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot write to output folder {}: {source}", path.display())]
pub struct OutputError {
    /// The folder.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// Creates `dir` if needed and proves a file can be created in it.
///
/// # Errors
/// [`OutputError`] naming the folder.
pub fn prepare(dir: &Path) -> Result<(), OutputError> {
    let err = |source| OutputError {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(err)?;
    let probe = dir.join(format!(".elastic-pool-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .and_then(|mut f| f.write_all(b"probe"))
        .map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)?;
    Ok(())
}

/// Writes `contents` to `dir/name` through a temporary file and a rename.
///
/// # Errors
/// [`OutputError`] naming the folder.
pub fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<PathBuf, OutputError> {
    let err = |source| OutputError {
        path: dir.to_path_buf(),
        source,
    };
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let dest = dir.join(name);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(contents)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &dest));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_refuses_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a/b");
        prepare(&out).unwrap();
        let p = write_atomic(&out, "x.csv", b"1,2\n").unwrap();
        assert_eq!(std::fs::read_to_string(p).unwrap(), "1,2\n");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
        // A path under a regular file can never be a folder.
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = prepare(&file.join("sub")).unwrap_err();
        assert!(e.to_string().contains("cannot write to output folder"));
    }
}
