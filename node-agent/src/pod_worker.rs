//! One task per pod bound to this node: network, volumes, processes, probes, restarts,
//! status, and on deletion a complete teardown.

use crate::agent::Shared;
use crate::launcher::{BindMount, LaunchSpec};
use crate::names::PodNames;
use crate::plan::{ContainerPlan, Placement, PlanError, ProbePlan, Refs, plan_pod, pod_key};
use crate::probe::{self, Verdict};
use crate::status::{ContainerView, PodView, RunState};
use crate::{logs, netns, process, volumes};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, ResourceExt};
use nix::sys::signal::Signal;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Process exits and restarts are noticed within this.
const TICK: Duration = Duration::from_millis(200);
/// Wait before retrying a pod whose network or volumes could not be set up.
const SETUP_RETRY: Duration = Duration::from_secs(2);
/// A run longer than this resets the crash backoff.
const STABLE_RUN: Duration = Duration::from_secs(60);
const DEFAULT_GRACE: i64 = 30;

/// What the watcher last said about the pod.
#[derive(Clone, Debug)]
pub enum PodEvent {
    Present(Arc<Pod>),
    /// The object is gone from the API server.
    Gone,
    /// The agent is stopping: stop the processes, keep the API object.
    Shutdown,
}

struct Ctr {
    plan: ContainerPlan,
    state: RunState,
    last_terminated: Option<RunState>,
    restart_count: i32,
    /// Starts so far; the next run's log file number.
    runs: u32,
    running: Option<process::Running>,
    started: Instant,
    crash_streak: u32,
    next_start: Option<Instant>,
    readiness: Verdict,
    liveness: Verdict,
    probes: Vec<JoinHandle<()>>,
    not_ready_reason: Option<String>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Readiness,
    Liveness,
}

struct ProbeResult {
    container: usize,
    run: u32,
    kind: Kind,
    outcome: probe::Outcome,
}

pub async fn run(shared: Arc<Shared>, uid: String, mut rx: watch::Receiver<PodEvent>) {
    let names = match shared.config.prefixes.for_pod(&uid) {
        Ok(n) => n,
        Err(e) => return tracing::error!(%uid, "pod is not run: {e}"),
    };
    let mut worker = Worker {
        dir: shared.config.pods_dir().join(&names.id),
        shared,
        names,
        ip: None,
        containers: Vec::new(),
        last_written: None,
        setup_error: None,
        start_time: Timestamp::now(),
        key: None,
        last_pod: None,
    };
    let end = worker.live(&mut rx).await;
    worker.teardown(end).await;
}

struct Worker {
    shared: Arc<Shared>,
    names: PodNames,
    dir: PathBuf,
    ip: Option<Ipv4Addr>,
    containers: Vec<Ctr>,
    last_written: Option<serde_json::Value>,
    setup_error: Option<(String, String)>,
    start_time: Timestamp,
    /// Namespace and name, once seen (the log index is keyed by them).
    key: Option<(String, String)>,
    /// The pod as last seen, for the final status when the agent stops.
    last_pod: Option<Arc<Pod>>,
}

fn current(rx: &watch::Receiver<PodEvent>) -> PodEvent {
    rx.borrow().clone()
}

fn deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

impl Worker {
    /// Runs the pod until it is deleted, disappears or the agent stops; returns why.
    async fn live(&mut self, rx: &mut watch::Receiver<PodEvent>) -> PodEvent {
        // Set-up: network, then plan and volumes, retried until they work.
        loop {
            let pod = match current(rx) {
                PodEvent::Present(p) if !deleting(&p) && !terminal(&p) => p,
                PodEvent::Present(p) if terminal(&p) && !deleting(&p) => {
                    // Finished before we saw it (e.g. agent restart): nothing to run.
                    if rx.changed().await.is_err() {
                        return PodEvent::Shutdown;
                    }
                    continue;
                }
                other => return other,
            };
            self.key = Some((pod.namespace().unwrap_or_default(), pod.name_any()));
            self.last_pod = Some(pod.clone());
            match self.setup(&pod).await {
                Ok(()) => break,
                Err((reason, message)) => {
                    // Retried every SETUP_RETRY (a Secret may appear later): log changes only.
                    if self.setup_error.as_ref().map(|e| &e.1) != Some(&message) {
                        tracing::warn!(pod = %pod_key(&pod), %reason, "{message}");
                    }
                    self.setup_error = Some((reason, message));
                    self.write_status(&pod).await;
                    let _ = tokio::time::timeout(SETUP_RETRY, rx.changed()).await;
                }
            }
        }
        self.setup_error = None;
        let (probe_tx, mut probe_rx) = mpsc::channel::<ProbeResult>(64);
        let mut tick = tokio::time::interval(TICK);
        loop {
            let pod = match current(rx) {
                PodEvent::Present(p) if !deleting(&p) => p,
                other => return other,
            };
            self.last_pod = Some(pod.clone());
            self.reconcile(&pod, &probe_tx).await;
            self.write_status(&pod).await;
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return PodEvent::Shutdown },
                _ = tick.tick() => {}
                Some(r) = probe_rx.recv() => self.on_probe(r),
            }
        }
    }

    fn placement(&self) -> Placement<'_> {
        Placement {
            node_name: &self.shared.config.node_name,
            pod_ip: self.ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
            host_ip: self.shared.config.cidr.gateway(),
        }
    }

    async fn setup(&mut self, pod: &Pod) -> Result<(), (String, String)> {
        if self.ip.is_none() {
            let ip = self
                .shared
                .ipam
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .allocate()
                .map_err(|e| ("NetworkSetupFailed".to_string(), e.to_string()))?;
            let cfg = &self.shared.config;
            if let Err(e) = netns::setup_pod(&self.names, ip, cfg.cidr, &cfg.bridge).await {
                let _ = netns::teardown_pod(&self.names).await;
                self.release_ip(ip);
                return Err(("NetworkSetupFailed".into(), e.to_string()));
            }
            self.ip = Some(ip);
            self.start_time = Timestamp::now();
        }
        let config_error = |e: String| ("CreateContainerConfigError".to_string(), e);
        let refs = self.fetch_refs(pod).await.map_err(config_error)?;
        let tokens = self.fetch_tokens(pod).await.map_err(config_error)?;
        let at = self.placement();
        let plans = plan_pod(pod, &self.shared.config.images, &refs, at)
            .map_err(|e| config_error(e.to_string()))?;
        let contents =
            volumes::contents(pod, &refs, &tokens, at).map_err(|e| config_error(e.to_string()))?;
        for (i, p) in plans.iter().enumerate() {
            for (j, m) in p.mounts.iter().enumerate() {
                if !contents.contains_key(&m.volume) {
                    return Err(config_error(
                        PlanError {
                            pod: pod_key(pod),
                            field: format!("spec.containers[{i}].volumeMounts[{j}].name"),
                            reason: format!("no volume named {:?}", m.volume),
                        }
                        .to_string(),
                    ));
                }
            }
        }
        let vol_dir = self.dir.join("volumes");
        volumes::write(&vol_dir, &contents).map_err(|e| {
            config_error(format!("writing volumes under {}: {e}", vol_dir.display()))
        })?;
        self.containers = plans
            .into_iter()
            .map(|plan| {
                let state = match &plan.program {
                    Some(_) => RunState::Waiting {
                        reason: "ContainerCreating".into(),
                        message: None,
                    },
                    None => RunState::Waiting {
                        reason: "ErrImageNeverPull".into(),
                        message: Some(format!(
                            "image {} is not in the node agent's image map",
                            plan.image
                        )),
                    },
                };
                Ctr {
                    readiness: Verdict::new(plan.readiness.is_none()),
                    liveness: Verdict::new(true),
                    plan,
                    state,
                    last_terminated: None,
                    restart_count: 0,
                    runs: 0,
                    running: None,
                    started: Instant::now(),
                    crash_streak: 0,
                    next_start: Some(Instant::now()),
                    probes: Vec::new(),
                    not_ready_reason: None,
                }
            })
            .collect();
        Ok(())
    }

    async fn fetch_refs(&self, pod: &Pod) -> Result<Refs, String> {
        let ns = pod.namespace().unwrap_or_default();
        let (secret_names, map_names) = volumes::referenced(pod);
        let mut refs = Refs::default();
        let secrets: Api<Secret> = Api::namespaced(self.shared.client.clone(), &ns);
        for name in secret_names {
            match secrets.get_opt(&name).await {
                Ok(Some(s)) => drop(refs.secrets.insert(name, s)),
                Ok(None) => {}
                Err(e) => return Err(format!("reading Secret {ns}/{name}: {e}")),
            }
        }
        let maps: Api<ConfigMap> = Api::namespaced(self.shared.client.clone(), &ns);
        for name in map_names {
            match maps.get_opt(&name).await {
                Ok(Some(c)) => drop(refs.config_maps.insert(name, c)),
                Ok(None) => {}
                Err(e) => return Err(format!("reading ConfigMap {ns}/{name}: {e}")),
            }
        }
        Ok(refs)
    }

    async fn fetch_tokens(&self, pod: &Pod) -> Result<volumes::Tokens, String> {
        let ns = pod.namespace().unwrap_or_default();
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let api: Api<ServiceAccount> = Api::namespaced(self.shared.client.clone(), &ns);
        let mut tokens = volumes::Tokens::new();
        for need in volumes::token_needs(pod) {
            let request = TokenRequest {
                spec: TokenRequestSpec {
                    audiences: need.audience.clone().into_iter().collect(),
                    expiration_seconds: Some(need.expiration_seconds),
                    bound_object_ref: Some(BoundObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Pod".into()),
                        name: pod.metadata.name.clone(),
                        uid: pod.metadata.uid.clone(),
                    }),
                },
                ..Default::default()
            };
            let issued = api
                .create_token_request(&sa, &PostParams::default(), &request)
                .await
                .map_err(|e| format!("TokenRequest for ServiceAccount {ns}/{sa}: {e}"))?;
            let token = issued.status.map(|s| s.token).unwrap_or_default();
            tokens.insert((need.volume, need.path), token);
        }
        Ok(tokens)
    }

    fn release_ip(&self, ip: Ipv4Addr) {
        self.shared
            .ipam
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(ip);
    }

    /// Notices exits, restarts what is due, and starts what never ran.
    async fn reconcile(&mut self, pod: &Pod, probe_tx: &mpsc::Sender<ProbeResult>) {
        let policy = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.clone())
            .unwrap_or_else(|| "Always".into());
        let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
        let cfg = &self.shared.config;
        let pod_ip = self.ip.unwrap_or(Ipv4Addr::UNSPECIFIED);
        for i in 0..self.containers.len() {
            let c = &mut self.containers[i];
            if let Some(r) = c.running.as_mut()
                && let Ok(Some(status)) = r.child.try_wait()
            {
                // Whatever the program left behind in its group goes with it.
                process::signal_group(r.pid, Signal::SIGKILL);
                use std::os::unix::process::ExitStatusExt;
                let (exit_code, signal) = match (status.code(), status.signal()) {
                    (Some(code), _) => (code, None),
                    (None, Some(sig)) => (128 + sig, Some(sig)),
                    (None, None) => (-1, None),
                };
                let started_at = match c.state {
                    RunState::Running { started_at } => started_at,
                    _ => Timestamp::now(),
                };
                let terminated = RunState::Terminated {
                    exit_code,
                    signal,
                    reason: if exit_code == 0 { "Completed" } else { "Error" }.into(),
                    started_at,
                    finished_at: Timestamp::now(),
                };
                tracing::info!(pod = %format!("{ns}/{name}"), container = %c.plan.name, exit_code, "container exited");
                c.running = None;
                for p in c.probes.drain(..) {
                    p.abort();
                }
                c.readiness = Verdict::new(false);
                self.shared.logs.set(
                    &ns,
                    &name,
                    &c.plan.name,
                    &self.dir,
                    c.runs.saturating_sub(1),
                    false,
                );
                let restart = policy == "Always" || (policy == "OnFailure" && exit_code != 0);
                if restart {
                    if c.started.elapsed() > STABLE_RUN {
                        c.crash_streak = 0;
                    }
                    let delay = cfg
                        .restart_backoff
                        .saturating_mul(1 << c.crash_streak.min(16))
                        .min(cfg.restart_backoff_max);
                    c.crash_streak += 1;
                    c.next_start = Some(Instant::now() + delay);
                    c.last_terminated = Some(terminated);
                    c.state = RunState::Waiting {
                        reason: "CrashLoopBackOff".into(),
                        message: Some(format!(
                            "back-off {}s restarting failed container={} pod={name}",
                            delay.as_secs(),
                            c.plan.name
                        )),
                    };
                } else {
                    c.next_start = None;
                    c.state = terminated;
                }
            }
            let due = c.running.is_none() && c.next_start.is_some_and(|t| Instant::now() >= t);
            let Some(program) = c.plan.program.clone().filter(|_| due) else {
                continue;
            };
            let run = c.runs;
            let mounts = c
                .plan
                .mounts
                .iter()
                .map(|m| {
                    let mut source = self.dir.join("volumes").join(&m.volume);
                    if let Some(sub) = &m.sub_path {
                        source = source.join(sub);
                        // A subPath that does not exist yet is a directory, as in Kubernetes.
                        if !source.exists() {
                            let _ = std::fs::create_dir_all(&source);
                        }
                    }
                    BindMount {
                        source,
                        target: m.target.clone(),
                        read_only: m.read_only,
                    }
                })
                .collect::<Vec<_>>();
            if let Some(err) = mounts.iter().find_map(|m| {
                self.shared
                    .mountpoints
                    .ensure(&m.target, m.source.is_file())
                    .err()
                    .map(|e| (m, e))
            }) {
                c.state = RunState::Waiting {
                    reason: "CreateContainerError".into(),
                    message: Some(format!(
                        "creating mount point {}: {}",
                        err.0.target.display(),
                        err.1
                    )),
                };
                c.next_start = Some(Instant::now() + SETUP_RETRY);
                continue;
            }
            let spec = LaunchSpec {
                program,
                argv: c.plan.argv.clone(),
                env: c.plan.env.clone(),
                working_dir: c.plan.working_dir.clone(),
                hostname: name.chars().take(63).collect(),
                mounts,
            };
            let cdir = self.dir.join("containers").join(&c.plan.name);
            let log_file = logs::log_path(&self.dir, &c.plan.name, run);
            let started = process::start(
                &cfg.agent_exe,
                &self.names.netns,
                &spec,
                &cdir.join("launch.json"),
                log_file,
                &c.plan.name,
            )
            .await;
            match started {
                Ok(r) => {
                    tracing::info!(pod = %format!("{ns}/{name}"), container = %c.plan.name, pid = r.pid, ip = %pod_ip, "container started");
                    if run > 0 {
                        c.restart_count += 1;
                    }
                    c.runs += 1;
                    c.running = Some(r);
                    c.started = Instant::now();
                    c.next_start = None;
                    c.state = RunState::Running {
                        started_at: Timestamp::now(),
                    };
                    c.readiness = Verdict::new(c.plan.readiness.is_none());
                    c.liveness = Verdict::new(true);
                    c.not_ready_reason = None;
                    self.shared
                        .logs
                        .set(&ns, &name, &c.plan.name, &self.dir, run, true);
                    for (kind, plan) in [
                        (Kind::Readiness, &c.plan.readiness),
                        (Kind::Liveness, &c.plan.liveness),
                    ] {
                        if let Some(plan) = plan.clone() {
                            c.probes.push(tokio::spawn(probe_loop(
                                plan,
                                IpAddr::V4(pod_ip),
                                i,
                                run,
                                kind,
                                probe_tx.clone(),
                            )));
                        }
                    }
                }
                Err(e) => {
                    c.state = RunState::Waiting {
                        reason: "CreateContainerError".into(),
                        message: Some(e.to_string()),
                    };
                    c.next_start = Some(Instant::now() + SETUP_RETRY);
                }
            }
        }
    }

    fn on_probe(&mut self, r: ProbeResult) {
        let Some(c) = self.containers.get_mut(r.container) else {
            return;
        };
        // A result from an earlier run of the container is stale.
        if c.running.is_none() || c.runs != r.run + 1 {
            return;
        }
        let ok = r.outcome == probe::Outcome::Success;
        match r.kind {
            Kind::Readiness => {
                if let (Some(plan), probe::Outcome::Failure(why)) = (&c.plan.readiness, &r.outcome)
                {
                    c.not_ready_reason =
                        Some(format!("{}: readiness probe failed: {why}", c.plan.name));
                    c.readiness.record(plan, false);
                } else if let Some(plan) = &c.plan.readiness {
                    c.not_ready_reason = None;
                    c.readiness.record(plan, true);
                }
            }
            Kind::Liveness => {
                let Some(plan) = &c.plan.liveness else { return };
                if !c.liveness.record(plan, ok)
                    && let Some(run) = &c.running
                {
                    tracing::info!(container = %c.plan.name, "liveness probe failed {} times; restarting", plan.failure_threshold);
                    process::signal_group(run.pid, Signal::SIGKILL);
                }
            }
        }
    }

    fn view(&self, pod: &Pod) -> PodView {
        let mut containers: Vec<ContainerView> = self
            .containers
            .iter()
            .map(|c| ContainerView {
                name: c.plan.name.clone(),
                image: c.plan.image.clone(),
                state: c.state.clone(),
                last_terminated: c.last_terminated.clone(),
                restart_count: c.restart_count,
                ready: c.running.is_some() && c.readiness.passing(),
                not_ready_reason: c.not_ready_reason.clone(),
            })
            .collect();
        // Before set-up succeeds there are no plans; show each spec container waiting
        // with the set-up error, as `kubectl get pods` users expect.
        if let (true, Some((reason, message))) = (containers.is_empty(), &self.setup_error) {
            let spec_containers = pod.spec.iter().flat_map(|s| s.containers.iter());
            containers = spec_containers
                .map(|c| ContainerView {
                    name: c.name.clone(),
                    image: c.image.clone().unwrap_or_default(),
                    state: RunState::Waiting {
                        reason: reason.clone(),
                        message: Some(message.clone()),
                    },
                    last_terminated: None,
                    restart_count: 0,
                    ready: false,
                    not_ready_reason: None,
                })
                .collect();
        }
        PodView {
            containers,
            pod_ip: self.ip,
            host_ip: self.shared.config.cidr.gateway(),
            start_time: self.start_time,
            restart_policy: pod
                .spec
                .as_ref()
                .and_then(|s| s.restart_policy.clone())
                .unwrap_or_else(|| "Always".into()),
            setup_error: self.setup_error.clone(),
        }
    }

    /// Writes status through the status subresource when it changed.
    async fn write_status(&mut self, pod: &Pod) {
        let status = crate::status::pod_status(pod, &self.view(pod), Timestamp::now());
        let value = serde_json::to_value(&status).unwrap_or_default();
        if self.last_written.as_ref() == Some(&value) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(
            self.shared.client.clone(),
            &pod.namespace().unwrap_or_default(),
        );
        let patch = serde_json::json!({ "status": value });
        match api
            .patch_status(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => self.last_written = Some(value),
            Err(e) => tracing::warn!(pod = %pod_key(pod), "writing status: {e}"),
        }
    }

    /// Stops every process (SIGTERM to each group, SIGKILL after the grace period),
    /// removes network and files, and for a deleted pod removes the API object.
    async fn teardown(&mut self, end: PodEvent) {
        let grace = match &end {
            PodEvent::Present(p) => p
                .metadata
                .deletion_grace_period_seconds
                .or(p
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds))
                .unwrap_or(DEFAULT_GRACE),
            PodEvent::Gone => 0,
            PodEvent::Shutdown => self.shared.config.shutdown_grace.as_secs() as i64,
        };
        let grace = Duration::from_secs(grace.max(0) as u64);
        for c in &mut self.containers {
            for p in c.probes.drain(..) {
                p.abort();
            }
            if let Some(r) = &c.running {
                process::signal_group(r.pid, Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + grace;
        loop {
            let mut alive = false;
            for c in &mut self.containers {
                if let Some(r) = c.running.as_mut() {
                    match r.child.try_wait() {
                        Ok(Some(status)) => {
                            process::signal_group(r.pid, Signal::SIGKILL);
                            c.state = stopped(&c.state, exit_code(status));
                            c.running = None;
                        }
                        Err(_) => {
                            process::signal_group(r.pid, Signal::SIGKILL);
                            c.state = stopped(&c.state, -1);
                            c.running = None;
                        }
                        Ok(None) => alive = true,
                    }
                }
            }
            if !alive || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for c in &mut self.containers {
            if let Some(mut r) = c.running.take() {
                process::signal_group(r.pid, Signal::SIGKILL);
                let code = r.child.wait().await.map_or(-1, exit_code);
                c.state = stopped(&c.state, code);
            }
        }
        // Anything that left its process group but not the namespace.
        for pid in netns::pids_in(&self.names.netns).await {
            process::signal_pid(pid, Signal::SIGKILL);
        }
        if let Err(e) = netns::teardown_pod(&self.names).await {
            tracing::warn!(netns = %self.names.netns, "network teardown: {e}");
        }
        if let Some(ip) = self.ip.take() {
            self.release_ip(ip);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // The agent stopping is not the pod ending, but its processes are gone: say so,
        // rather than leave a Ready pod (and its endpoints) that nothing serves.
        if let (PodEvent::Shutdown, Some(pod)) = (&end, self.last_pod.clone()) {
            self.write_status(&pod).await;
        }
        if let Some((ns, name)) = &self.key {
            self.shared.logs.remove(ns, name);
        }
        if let PodEvent::Present(pod) = &end {
            let (ns, name) = (pod.namespace().unwrap_or_default(), pod.name_any());
            let api: Api<Pod> = Api::namespaced(self.shared.client.clone(), &ns);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: pod.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&name, &params).await {
                Ok(_) => tracing::info!(pod = %format!("{ns}/{name}"), "pod stopped and deleted"),
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => tracing::warn!(pod = %format!("{ns}/{name}"), "final delete: {e}"),
            }
        }
    }
}

async fn probe_loop(
    plan: ProbePlan,
    ip: IpAddr,
    container: usize,
    run: u32,
    kind: Kind,
    tx: mpsc::Sender<ProbeResult>,
) {
    tokio::time::sleep(plan.initial_delay).await;
    let mut every = tokio::time::interval(plan.period);
    loop {
        every.tick().await;
        let outcome = probe::run(&plan, ip).await;
        if tx
            .send(ProbeResult {
                container,
                run,
                kind,
                outcome,
            })
            .await
            .is_err()
        {
            return;
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// A container's state once the agent stopped it.
fn stopped(state: &RunState, exit_code: i32) -> RunState {
    let started_at = match state {
        RunState::Running { started_at } => *started_at,
        _ => Timestamp::now(),
    };
    RunState::Terminated {
        exit_code,
        signal: None,
        reason: "NodeAgentStopped".into(),
        started_at,
        finished_at: Timestamp::now(),
    }
}
