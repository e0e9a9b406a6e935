//! Empty files and directories created on the host filesystem to mount volumes over
//! (e.g. /etc/secret-volume). The host root is shared with every pod's mount namespace,
//! so a mount point must exist there. They are removed only when no pod runs (at
//! shutdown and at the next start), and only if no process on the machine (another
//! agent's pods included) has anything mounted there: removing a mount point detaches
//! the mounts other namespaces have on it. The list is kept in a file so a crashed
//! agent's leftovers, and ones still in use, are found by a later sweep.

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

    /// Removes what this and earlier runs created, if still empty and not mounted on;
    /// the rest stays recorded for the next sweep.
    pub fn remove_all(&self) {
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(text) = std::fs::read_to_string(&self.record) {
            created.extend(text.lines().filter(|l| !l.is_empty()).map(PathBuf::from));
        }
        let mounted = mount_points_in_use();
        created.retain(|path| {
            let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            if mounted.iter().any(|m| m.starts_with(&real)) {
                return true;
            }
            remove_if_empty(path);
            false
        });
        if created.is_empty() {
            let _ = std::fs::remove_file(&self.record);
        } else {
            let text: Vec<String> = created.iter().map(|p| p.display().to_string()).collect();
            let _ = std::fs::write(&self.record, text.join("\n"));
        }
    }
}

/// Every mount point any process on the machine sees (field 5 of /proc/PID/mountinfo).
/// Pods share the host root, so their paths compare directly with host paths.
fn mount_points_in_use() -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in procs.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(entry.path().join("mountinfo")) else {
            continue;
        };
        out.extend(
            info.lines()
                .filter_map(|l| l.split(' ').nth(4))
                .map(|m| PathBuf::from(m.replace("\\040", " "))),
        );
    }
    out
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
        assert!(
            !dir.path().join("mountpoints").exists(),
            "nothing left to record"
        );
    }

    #[test]
    fn a_path_something_is_mounted_on_stays_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("mountpoints");
        // /proc is a mount point in every namespace on the machine.
        std::fs::write(&record, "/proc\n").unwrap();
        Mountpoints::new(record.clone()).remove_all();
        assert_eq!(std::fs::read_to_string(&record).unwrap(), "/proc");
    }
}
