//! Starting a container's program in the pod's namespaces and stopping its process group.

use crate::launcher::LaunchSpec;
use crate::logs;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use thiserror::Error;
use tokio::process::{Child, Command};

#[derive(Debug, Error)]
pub enum StartError {
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("spawning the launcher for container {container}: {source}")]
    Spawn {
        container: String,
        source: std::io::Error,
    },
}

/// A started container process. Its pid leads its own process group.
#[derive(Debug)]
pub struct Running {
    pub child: Child,
    pub pid: i32,
}

/// Spawns `ip netns exec NS unshare --mount --uts --propagation private -- AGENT launch SPEC`.
/// Each of those execs the next, so the pid we get is the container's program, with
/// stdout/stderr piped into the run's log file.
pub async fn start(
    agent_exe: &Path,
    netns: &str,
    spec: &LaunchSpec,
    spec_path: &Path,
    log_file: PathBuf,
    container: &str,
) -> Result<Running, StartError> {
    let write = |path: &Path, bytes: &[u8]| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)
    };
    let json = serde_json::to_vec_pretty(spec).expect("a launch spec serializes");
    write(spec_path, &json).map_err(|source| StartError::Write {
        path: spec_path.into(),
        source,
    })?;
    write(&log_file, b"").map_err(|source| StartError::Write {
        path: log_file.clone(),
        source,
    })?;
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            netns,
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "--",
        ])
        .arg(agent_exe)
        .arg("launch")
        .arg(spec_path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|source| StartError::Spawn {
            container: container.into(),
            source,
        })?;
    let pid = child.id().map(|p| p as i32).unwrap_or_default();
    if let Some(out) = child.stdout.take() {
        tokio::spawn(logs::pump(out, "stdout", log_file.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(logs::pump(err, "stderr", log_file));
    }
    Ok(Running { child, pid })
}

/// Signals the whole process group; a group that is already gone is not an error.
pub fn signal_group(pid: i32, signal: Signal) {
    if pid > 1 {
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

pub fn signal_pid(pid: i32, signal: Signal) {
    if pid > 1 {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), signal);
    }
}
