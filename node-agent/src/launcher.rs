//! The last step before a container's program runs, executed by the agent binary itself
//! (`gatehouse-node-agent launch SPEC`) inside the pod's network namespace and a fresh
//! mount and UTS namespace: bind-mount the volumes, set the hostname, then exec the program
//! with exactly the planned argv and environment. It replaces itself, so the container's
//! pid is the one the agent spawned.

use serde::{Deserialize, Serialize};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

/// The default PATH of a Linux container image, for programs that look up helpers.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LaunchSpec {
    pub program: PathBuf,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub hostname: String,
    pub mounts: Vec<BindMount>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

#[derive(Debug, Error)]
pub enum LaunchError {
    #[error("launch spec {}: {reason}", path.display())]
    Spec { path: PathBuf, reason: String },
    #[error("mounting {} at {}: {reason}", from.display(), target.display())]
    Mount {
        from: PathBuf,
        target: PathBuf,
        reason: String,
    },
    #[error("setting the hostname to {hostname:?}: {source}")]
    Hostname {
        hostname: String,
        source: std::io::Error,
    },
    #[error("starting {}: {source}", program.display())]
    Exec {
        program: PathBuf,
        source: std::io::Error,
    },
}

pub fn read_spec(path: &Path) -> Result<LaunchSpec, LaunchError> {
    let bytes = std::fs::read(path).map_err(|e| LaunchError::Spec {
        path: path.into(),
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| LaunchError::Spec {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// Mounts, hostname, exec. Returns only on failure.
pub fn launch(spec: &LaunchSpec) -> LaunchError {
    for m in &spec.mounts {
        if let Err(e) = bind(m) {
            return e;
        }
    }
    // In our own UTS namespace (the agent starts us under `unshare --uts`).
    if let Err(source) = std::fs::write("/proc/sys/kernel/hostname", &spec.hostname) {
        return LaunchError::Hostname {
            hostname: spec.hostname.clone(),
            source,
        };
    }
    let mut cmd = Command::new(&spec.program);
    cmd.arg0(spec.argv.first().map_or("", String::as_str))
        .args(spec.argv.iter().skip(1))
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .env("HOSTNAME", &spec.hostname)
        .envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &spec.working_dir {
        cmd.current_dir(dir);
    }
    LaunchError::Exec {
        program: spec.program.clone(),
        source: cmd.exec(),
    }
}

fn bind(m: &BindMount) -> Result<(), LaunchError> {
    let mut cmd = Command::new("mount");
    cmd.arg("--bind");
    if m.read_only {
        cmd.args(["-o", "ro"]);
    }
    // "--" so a path can never be read as an option.
    cmd.arg("--").arg(&m.source).arg(&m.target);
    let fail = |reason: String| LaunchError::Mount {
        from: m.source.clone(),
        target: m.target.clone(),
        reason,
    };
    let out = cmd.output().map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}
