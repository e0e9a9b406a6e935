//! What the agent knows about a pod's containers -> the pod's `status`, following the
//! kubelet's rules for phase and conditions. Pure.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use std::net::Ipv4Addr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated {
        exit_code: i32,
        signal: Option<i32>,
        reason: String,
        started_at: Timestamp,
        finished_at: Timestamp,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub state: RunState,
    pub last_terminated: Option<RunState>,
    pub restart_count: i32,
    pub ready: bool,
    /// Why a running container is not Ready (e.g. a probe type that is refused).
    pub not_ready_reason: Option<String>,
}

#[derive(Clone, Debug)]
pub struct PodView {
    pub containers: Vec<ContainerView>,
    pub pod_ip: Option<Ipv4Addr>,
    pub host_ip: Ipv4Addr,
    pub start_time: Timestamp,
    pub restart_policy: String,
    /// The pod could not be set up at all (network, volumes, plan): reason and message.
    pub setup_error: Option<(String, String)>,
}

pub fn phase(view: &PodView) -> &'static str {
    let cs = &view.containers;
    let never_ran = |c: &&ContainerView| {
        matches!(c.state, RunState::Waiting { .. }) && c.last_terminated.is_none()
    };
    let terminated: Vec<_> = cs
        .iter()
        .filter_map(|c| match c.state {
            RunState::Terminated { exit_code, .. } => Some(exit_code),
            _ => None,
        })
        .collect();
    let all_terminated = !cs.is_empty() && terminated.len() == cs.len();
    let all_zero = terminated.iter().all(|c| *c == 0);
    if all_terminated {
        match view.restart_policy.as_str() {
            "Never" if all_zero => return "Succeeded",
            "Never" => return "Failed",
            "OnFailure" if all_zero => return "Succeeded",
            _ => {}
        }
    }
    if view.setup_error.is_some() || cs.is_empty() || cs.iter().any(|c| never_ran(&c)) {
        "Pending"
    } else {
        "Running"
    }
}

fn state_of(s: &RunState) -> ContainerState {
    match s.clone() {
        RunState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason),
                message,
            }),
            ..Default::default()
        },
        RunState::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(started_at)),
            }),
            ..Default::default()
        },
        RunState::Terminated {
            exit_code,
            signal,
            reason,
            started_at,
            finished_at,
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code,
                signal,
                reason: Some(reason),
                started_at: Some(Time(started_at)),
                finished_at: Some(Time(finished_at)),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// The status to write. Condition transition times are kept from `pod`'s current status
/// when the condition's value is unchanged.
pub fn pod_status(pod: &Pod, view: &PodView, now: Timestamp) -> PodStatus {
    let previous = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let condition = |type_: &str, ok: bool, reason: Option<String>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let since = previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        PodCondition {
            type_: type_.into(),
            status: status.into(),
            reason,
            message,
            last_transition_time: Some(since),
            ..Default::default()
        }
    };
    let unready: Vec<&str> = view
        .containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let containers_ready =
        view.setup_error.is_none() && unready.is_empty() && !view.containers.is_empty();
    let (reason, message) = match &view.setup_error {
        Some((reason, message)) => (Some(reason.clone()), Some(message.clone())),
        None if !containers_ready => {
            let why: Vec<String> = view
                .containers
                .iter()
                .filter_map(|c| c.not_ready_reason.clone())
                .collect();
            let mut m = format!("containers with unready status: [{}]", unready.join(" "));
            if !why.is_empty() {
                m.push_str(&format!(" ({})", why.join("; ")));
            }
            (Some("ContainersNotReady".into()), Some(m))
        }
        None => (None, None),
    };
    let gates_ok = pod
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_none_or(|gates| {
            gates.iter().all(|g| {
                previous
                    .iter()
                    .any(|c| c.type_ == g.condition_type && c.status == "True")
            })
        });
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            view.pod_ip.is_some(),
            None,
            None,
        ),
        condition("Initialized", true, None, None),
        condition(
            "Ready",
            containers_ready && gates_ok,
            reason.clone(),
            message.clone(),
        ),
        condition("ContainersReady", containers_ready, reason, message),
        condition("PodScheduled", true, None, None),
    ];
    // Readiness-gate conditions belong to whoever sets them; keep them.
    conditions.extend(
        previous
            .iter()
            .filter(|c| !conditions.iter().any(|o| o.type_ == c.type_))
            .cloned()
            .collect::<Vec<_>>(),
    );
    let statuses = view
        .containers
        .iter()
        .map(|c| ContainerStatus {
            name: c.name.clone(),
            image: c.image.clone(),
            image_id: String::new(),
            container_id: None,
            ready: c.ready,
            restart_count: c.restart_count,
            started: Some(matches!(c.state, RunState::Running { .. })),
            state: Some(state_of(&c.state)),
            last_state: c.last_terminated.as_ref().map(state_of),
            ..Default::default()
        })
        .collect();
    PodStatus {
        phase: Some(phase(view).into()),
        conditions: Some(conditions),
        host_ip: Some(view.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: view.host_ip.to_string(),
        }]),
        pod_ip: view.pod_ip.map(|ip| ip.to_string()),
        pod_ips: view.pod_ip.map(|ip| vec![PodIP { ip: ip.to_string() }]),
        start_time: Some(Time(view.start_time)),
        container_statuses: Some(statuses),
        qos_class: pod.status.as_ref().and_then(|s| s.qos_class.clone()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn running(name: &str, ready: bool) -> ContainerView {
        ContainerView {
            name: name.into(),
            image: "img".into(),
            state: RunState::Running { started_at: t(0) },
            last_terminated: None,
            restart_count: 0,
            ready,
            not_ready_reason: None,
        }
    }

    fn view(containers: Vec<ContainerView>, policy: &str) -> PodView {
        PodView {
            containers,
            pod_ip: Some(Ipv4Addr::new(198, 19, 0, 2)),
            host_ip: Ipv4Addr::new(198, 19, 0, 1),
            start_time: t(0),
            restart_policy: policy.into(),
            setup_error: None,
        }
    }

    fn cond<'a>(s: &'a PodStatus, type_: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    #[test]
    fn ready_pod_reports_ips_and_all_conditions_true() {
        let s = pod_status(
            &Pod::default(),
            &view(vec![running("a", true)], "Always"),
            t(5),
        );
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("198.19.0.2"));
        assert_eq!(s.host_ip.as_deref(), Some("198.19.0.1"));
        for c in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            assert_eq!(cond(&s, c).status, "True", "{c}");
        }
        let cs = &s.container_statuses.unwrap()[0];
        assert!(cs.ready && cs.started == Some(true));
    }

    #[test]
    fn unmapped_image_keeps_pod_pending_and_not_ready_with_the_reason() {
        let mut c = running("web", false);
        c.state = RunState::Waiting {
            reason: "ErrImageNeverPull".into(),
            message: Some("image x is not in the node agent's image map".into()),
        };
        let s = pod_status(
            &Pod::default(),
            &view(vec![c, running("side", true)], "Always"),
            t(1),
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&s, "Ready").status, "False");
        assert!(
            cond(&s, "Ready")
                .message
                .as_ref()
                .unwrap()
                .contains("[web]")
        );
        let w = s.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(w.reason.as_deref(), Some("ErrImageNeverPull"));
    }

    #[test]
    fn phase_follows_restart_policy_once_everything_exited() {
        let exited = |code| ContainerView {
            state: RunState::Terminated {
                exit_code: code,
                signal: None,
                reason: if code == 0 { "Completed" } else { "Error" }.into(),
                started_at: t(0),
                finished_at: t(1),
            },
            ready: false,
            ..running("a", false)
        };
        assert_eq!(phase(&view(vec![exited(0)], "Never")), "Succeeded");
        assert_eq!(phase(&view(vec![exited(1)], "Never")), "Failed");
        assert_eq!(phase(&view(vec![exited(0)], "OnFailure")), "Succeeded");
        assert_eq!(phase(&view(vec![exited(1)], "OnFailure")), "Running");
        assert_eq!(phase(&view(vec![exited(0)], "Always")), "Running");
    }

    #[test]
    fn transition_time_is_kept_while_a_condition_holds() {
        let first = pod_status(
            &Pod::default(),
            &view(vec![running("a", true)], "Always"),
            t(5),
        );
        let pod = Pod {
            status: Some(first),
            ..Default::default()
        };
        let again = pod_status(&pod, &view(vec![running("a", true)], "Always"), t(50));
        assert_eq!(cond(&again, "Ready").last_transition_time, Some(Time(t(5))));
        let flipped = pod_status(&pod, &view(vec![running("a", false)], "Always"), t(60));
        assert_eq!(
            cond(&flipped, "Ready").last_transition_time,
            Some(Time(t(60)))
        );
    }

    #[test]
    fn setup_error_is_reported_on_the_ready_condition() {
        let mut v = view(vec![], "Always");
        v.setup_error = Some((
            "CreateContainerConfigError".into(),
            "pod ns/p: spec.volumes[0]: nope".into(),
        ));
        let s = pod_status(&Pod::default(), &v, t(0));
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(
            cond(&s, "Ready").reason.as_deref(),
            Some("CreateContainerConfigError")
        );
    }
}
