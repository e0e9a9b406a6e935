//! The host side of pod networking: one bridge, and per pod a network namespace with a
//! veth pair into it. Every command is `ip` with an argv array; every name passed was
//! built by [`crate::names`] and checked there.

use crate::ipam::PodCidr;
use crate::names::PodNames;
use std::net::Ipv4Addr;
use thiserror::Error;
use tokio::process::Command;

#[derive(Debug, Error)]
pub enum NetError {
    #[error("`ip {args}` could not run: {source}")]
    Spawn {
        args: String,
        source: std::io::Error,
    },
    #[error("`ip {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
}

async fn ip(args: &[&str]) -> Result<String, NetError> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .await
        .map_err(|source| NetError::Spawn {
            args: args.join(" "),
            source,
        })?;
    if !out.status.success() {
        return Err(NetError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn link_exists(name: &str) -> bool {
    ip(&["link", "show", "dev", name]).await.is_ok()
}

/// Creates the bridge if needed and gives it the CIDR's first address.
pub async fn ensure_bridge(bridge: &str, cidr: PodCidr) -> Result<(), NetError> {
    if !link_exists(bridge).await {
        ip(&["link", "add", "name", bridge, "type", "bridge"]).await?;
    }
    let addr = format!("{}/{}", cidr.gateway(), cidr.prefix);
    ip(&["addr", "replace", &addr, "dev", bridge]).await?;
    ip(&["link", "set", "dev", bridge, "up"]).await?;
    Ok(())
}

pub async fn delete_bridge(bridge: &str) -> Result<(), NetError> {
    if link_exists(bridge).await {
        ip(&["link", "del", "dev", bridge]).await?;
    }
    Ok(())
}

/// Namespace, veth pair (pod end renamed eth0), address and default route via the bridge.
pub async fn setup_pod(
    names: &PodNames,
    pod_ip: Ipv4Addr,
    cidr: PodCidr,
    bridge: &str,
) -> Result<(), NetError> {
    let ns = names.netns.as_str();
    ip(&["netns", "add", ns]).await?;
    ip(&[
        "link",
        "add",
        "name",
        &names.veth_host,
        "type",
        "veth",
        "peer",
        "name",
        &names.veth_pod,
    ])
    .await?;
    ip(&["link", "set", "dev", &names.veth_pod, "netns", ns]).await?;
    ip(&["link", "set", "dev", &names.veth_host, "master", bridge]).await?;
    ip(&["link", "set", "dev", &names.veth_host, "up"]).await?;
    ip(&[
        "-n",
        ns,
        "link",
        "set",
        "dev",
        &names.veth_pod,
        "name",
        "eth0",
    ])
    .await?;
    let addr = format!("{pod_ip}/{}", cidr.prefix);
    ip(&["-n", ns, "addr", "add", &addr, "dev", "eth0"]).await?;
    ip(&["-n", ns, "link", "set", "dev", "eth0", "up"]).await?;
    ip(&["-n", ns, "link", "set", "dev", "lo", "up"]).await?;
    let gw = cidr.gateway().to_string();
    ip(&["-n", ns, "route", "add", "default", "via", &gw]).await?;
    Ok(())
}

/// Pids of every process in the namespace (whatever process group they moved to).
pub async fn pids_in(netns: &str) -> Vec<i32> {
    ip(&["netns", "pids", netns])
        .await
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the veth and the namespace; both may already be gone.
pub async fn teardown_pod(names: &PodNames) -> Result<(), NetError> {
    if link_exists(&names.veth_host).await {
        ip(&["link", "del", "dev", &names.veth_host]).await?;
    }
    delete_netns(&names.netns).await
}

pub async fn delete_netns(netns: &str) -> Result<(), NetError> {
    match ip(&["netns", "del", netns]).await {
        Err(NetError::Failed { stderr, .. }) if stderr.contains("No such file") => Ok(()),
        other => other.map(drop),
    }
}

/// Network namespaces whose name starts with `prefix`.
pub async fn netns_with_prefix(prefix: &str) -> Result<Vec<String>, NetError> {
    let out = ip(&["netns", "list"]).await?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect())
}

/// Host interfaces whose name starts with `prefix` (the `@peer` suffix stripped).
pub async fn links_with_prefix(prefix: &str) -> Result<Vec<String>, NetError> {
    let out = ip(&["-o", "link", "show"]).await?;
    Ok(out
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n))
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect())
}

pub async fn delete_link(name: &str) -> Result<(), NetError> {
    ip(&["link", "del", "dev", name]).await.map(drop)
}
