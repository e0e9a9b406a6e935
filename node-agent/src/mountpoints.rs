//! Empty files and directories created on the host filesystem to mount volumes over
//! (e.g. /etc/secret-volume). The host root is shared with every pod's mount namespace,
//! so a mount point must exist there. They are removed only when no pod runs (at
//! shutdown and at the next start): removing one under a running pod would detach its
//! mount. The list is kept in a file so a crashed agent's leftovers are found.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug)]
pub struct Mountpoints {
    record: PathBuf,
    created: Mutex<BTreeSet<PathBuf>>,
}

impl Mountpoints {
    pub fn new(record: PathBuf) -> Self {
        Self {
            record,
            created: Mutex::new(BTreeSet::new()),
        }
    }

    /// Makes `target` exist as a directory (or an empty file when `file`), noting
    /// the topmost path it had to create.
    pub fn ensure(&self, target: &Path, file: bool) -> std::io::Result<()> {
        if target.exists() {
            return Ok(());
        }
        let mut top = target.to_path_buf();
        while let Some(parent) = top.parent() {
            if parent.exists() {
                break;
            }
            top = parent.to_path_buf();
        }
        {
            let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
            created.insert(top);
            let text: Vec<String> = created.iter().map(|p| p.display().to_string()).collect();
            std::fs::write(&self.record, text.join("\n"))?;
        }
        if file {
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, b"")
        } else {
            std::fs::create_dir_all(target)
        }
    }

    /// Removes what this and earlier runs created, if still empty.
    pub fn remove_all(&self) {
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(text) = std::fs::read_to_string(&self.record) {
            created.extend(text.lines().filter(|l| !l.is_empty()).map(PathBuf::from));
        }
        for path in created.iter() {
            remove_if_empty(path);
        }
        created.clear();
        let _ = std::fs::remove_file(&self.record);
    }
}

/// Depth-first: empty files and directories only, so nothing a user put there is lost.
fn remove_if_empty(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                remove_if_empty(&e.path());
            }
        }
        let _ = std::fs::remove_dir(path);
    } else if meta.is_file() && meta.len() == 0 {
        let _ = std::fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_paths_are_removed_but_user_content_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("mountpoints");
        let m = Mountpoints::new(record.clone());
        m.ensure(&dir.path().join("etc/secret-volume"), false)
            .unwrap();
        m.ensure(&dir.path().join("root/Corefile"), true).unwrap();
        std::fs::create_dir(dir.path().join("kept")).unwrap();
        m.ensure(&dir.path().join("kept/x"), false).unwrap();
        std::fs::write(dir.path().join("kept/user-file"), b"data").unwrap();
        assert!(dir.path().join("root/Corefile").is_file());
        // A new agent finds the previous run's record.
        Mountpoints::new(record).remove_all();
        assert!(!dir.path().join("etc").exists());
        assert!(!dir.path().join("root").exists());
        assert!(!dir.path().join("kept/x").exists());
        assert!(dir.path().join("kept/user-file").exists());
    }
}
