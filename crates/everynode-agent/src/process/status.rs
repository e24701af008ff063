//! A pod's status from what its containers are doing: phase, conditions and container
//! statuses, as the kubelet reports them. Pure: the worker keeps [`ContainerView`]s and
//! calls [`pod_status`] whenever something changed.

use serde_json::{Value, json};

/// How a container instance ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    /// `Completed` (exit 0), `Error`, `StartError`, `ContainerStatusUnknown`.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: String,
    pub container_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated(Terminated),
}

/// One container as the worker sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub container_id: Option<String>,
    pub state: State,
    pub last: Option<Terminated>,
    pub restart_count: i32,
    pub ready: bool,
    pub started: bool,
}

impl ContainerView {
    pub fn waiting(name: &str, image: &str, reason: &str) -> ContainerView {
        ContainerView {
            name: name.to_string(),
            image: image.to_string(),
            image_id: String::new(),
            container_id: None,
            state: State::Waiting {
                reason: reason.to_string(),
                message: None,
            },
            last: None,
            restart_count: 0,
            ready: false,
            started: false,
        }
    }

    fn succeeded(&self) -> bool {
        matches!(&self.state, State::Terminated(t) if t.exit_code == 0)
    }
}

fn terminated_json(t: &Terminated) -> Value {
    let mut v = json!({ "exitCode": t.exit_code, "reason": t.reason, "finishedAt": t.finished_at });
    if let Some(s) = &t.started_at {
        v["startedAt"] = json!(s);
    }
    if let Some(m) = &t.message {
        v["message"] = json!(m);
    }
    if let Some(id) = &t.container_id {
        v["containerID"] = json!(id);
    }
    v
}

pub fn container_status_json(c: &ContainerView) -> Value {
    let state = match &c.state {
        State::Waiting { reason, message } => {
            let mut w = json!({ "reason": reason });
            if let Some(m) = message {
                w["message"] = json!(m);
            }
            json!({ "waiting": w })
        }
        State::Running { started_at } => json!({ "running": { "startedAt": started_at } }),
        State::Terminated(t) => json!({ "terminated": terminated_json(t) }),
    };
    let mut v = json!({
        "name": c.name, "image": c.image, "imageID": c.image_id,
        "ready": c.ready, "started": c.started, "restartCount": c.restart_count,
        "state": state,
        "lastState": c.last.as_ref().map_or(json!({}), |t| json!({ "terminated": terminated_json(t) })),
    });
    if let Some(id) = &c.container_id {
        v["containerID"] = json!(id);
    }
    v
}

/// The pod phase from its containers, as the kubelet's `getPhase` works it out: init
/// containers first, then waiting (never ran) → Pending, any running → Running, all
/// stopped → by restartPolicy.
pub fn phase(restart_policy: &str, init: &[ContainerView], main: &[ContainerView]) -> &'static str {
    let init_failed_for_good = init.iter().any(|c| {
        matches!(&c.state, State::Terminated(t) if t.exit_code != 0) && restart_policy == "Never"
    });
    if init_failed_for_good {
        return "Failed";
    }
    if !init.iter().all(ContainerView::succeeded) {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in main {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            State::Waiting { .. } => {
                if c.last.is_some() {
                    stopped += 1;
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if restart_policy == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if restart_policy == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    }
}

/// A condition's (status, reason, message).
type CondValue = (&'static str, Option<&'static str>, Option<String>);

fn condition(
    type_: &str,
    (status, reason, message): CondValue,
    previous: &[Value],
    now: &str,
) -> Value {
    let since = previous
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == status)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now);
    let mut c = json!({ "type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": since });
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// Everything [`pod_status`] needs besides the containers.
pub struct PodFrame<'a> {
    pub restart_policy: &'a str,
    pub host_ip: &'a str,
    pub pod_ip: &'a str,
    pub start_time: &'a str,
    /// The conditions last written, to keep their transition times.
    pub previous_conditions: &'a [Value],
    pub now: &'a str,
}

/// The pod's `status`.
pub fn pod_status(f: &PodFrame<'_>, init: &[ContainerView], main: &[ContainerView]) -> Value {
    let phase = phase(f.restart_policy, init, main);
    let names = |pred: &dyn Fn(&ContainerView) -> bool, list: &[ContainerView]| {
        list.iter()
            .filter(|c| pred(c))
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let incomplete = names(&|c| !c.succeeded(), init);
    let initialized: CondValue = if incomplete.is_empty() {
        ("True", None, None)
    } else {
        (
            "False",
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{incomplete}]")),
        )
    };
    let unready = names(&|c| !c.ready, main);
    let ready: CondValue = if matches!(phase, "Succeeded" | "Failed") {
        ("False", Some("PodCompleted"), None)
    } else if unready.is_empty() {
        ("True", None, None)
    } else {
        (
            "False",
            Some("ContainersNotReady"),
            Some(format!("containers with unready status: [{unready}]")),
        )
    };
    let sandbox: CondValue = if matches!(phase, "Succeeded" | "Failed") {
        ("False", None, None)
    } else {
        ("True", None, None)
    };
    let p = f.previous_conditions;
    let conditions = vec![
        condition("PodReadyToStartContainers", sandbox, p, f.now),
        condition("Initialized", initialized, p, f.now),
        condition("Ready", ready.clone(), p, f.now),
        condition("ContainersReady", ready, p, f.now),
        condition("PodScheduled", ("True", None, None), p, f.now),
    ];
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": f.host_ip, "hostIPs": [{ "ip": f.host_ip }],
        "podIP": f.pod_ip, "podIPs": [{ "ip": f.pod_ip }],
        "startTime": f.start_time,
        "containerStatuses": main.iter().map(container_status_json).collect::<Vec<_>>(),
    });
    if !init.is_empty() {
        status["initContainerStatuses"] =
            json!(init.iter().map(container_status_json).collect::<Vec<_>>());
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(name: &str, ready: bool) -> ContainerView {
        ContainerView {
            state: State::Running {
                started_at: "t0".into(),
            },
            ready,
            started: true,
            ..ContainerView::waiting(name, "img", "")
        }
    }

    fn ended(name: &str, code: i32) -> ContainerView {
        ContainerView {
            state: State::Terminated(Terminated {
                exit_code: code,
                reason: if code == 0 { "Completed" } else { "Error" }.into(),
                message: None,
                started_at: Some("t0".into()),
                finished_at: "t1".into(),
                container_id: None,
            }),
            ..ContainerView::waiting(name, "img", "")
        }
    }

    fn crash_looping(name: &str) -> ContainerView {
        let last = match ended(name, 1).state {
            State::Terminated(t) => t,
            _ => unreachable!(),
        };
        ContainerView {
            last: Some(last),
            restart_count: 3,
            ..ContainerView::waiting(name, "img", "CrashLoopBackOff")
        }
    }

    #[test]
    fn phase_table() {
        let w = ContainerView::waiting("a", "img", "ContainerCreating");
        let cases: Vec<(&str, Vec<ContainerView>, Vec<ContainerView>, &str)> = vec![
            ("Always", vec![], vec![w.clone()], "Pending"),
            ("Always", vec![], vec![running("a", false)], "Running"),
            (
                "Always",
                vec![],
                vec![running("a", true), w.clone()],
                "Pending",
            ),
            ("Always", vec![], vec![crash_looping("a")], "Running"),
            ("Always", vec![], vec![ended("a", 0)], "Running"),
            ("Never", vec![], vec![ended("a", 0)], "Succeeded"),
            (
                "Never",
                vec![],
                vec![ended("a", 0), ended("b", 2)],
                "Failed",
            ),
            ("OnFailure", vec![], vec![ended("a", 0)], "Succeeded"),
            ("OnFailure", vec![], vec![crash_looping("a")], "Running"),
            (
                "Always",
                vec![running("i", false)],
                vec![w.clone()],
                "Pending",
            ),
            ("Always", vec![ended("i", 1)], vec![w.clone()], "Pending"),
            ("Never", vec![ended("i", 1)], vec![w.clone()], "Failed"),
            (
                "Always",
                vec![ended("i", 0)],
                vec![running("a", true)],
                "Running",
            ),
        ];
        for (policy, init, main, want) in cases {
            assert_eq!(
                phase(policy, &init, &main),
                want,
                "{policy} {init:?} {main:?}"
            );
        }
    }

    #[test]
    fn conditions_name_the_unready_containers_and_keep_transition_times() {
        let frame = |prev: &'static [Value], now: &'static str| PodFrame {
            restart_policy: "Always",
            host_ip: "127.0.0.2",
            pod_ip: "127.0.0.2",
            start_time: "t0",
            previous_conditions: prev,
            now,
        };
        let s = pod_status(
            &frame(&[], "t1"),
            &[ended("init", 0)],
            &[running("a", true), running("b", false)],
        );
        let cond = |s: &Value, t: &str| {
            s["conditions"]
                .as_array()
                .expect("conditions")
                .iter()
                .find(|c| c["type"] == t)
                .cloned()
                .expect(t)
        };
        assert_eq!(s["phase"], "Running");
        assert_eq!(cond(&s, "Initialized")["status"], "True");
        assert_eq!(cond(&s, "Ready")["status"], "False");
        assert_eq!(
            cond(&s, "Ready")["message"],
            "containers with unready status: [b]"
        );
        assert_eq!(s["podIP"], "127.0.0.2");
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(s["containerStatuses"][1]["ready"], false);

        let prev: &'static [Value] = Box::leak(
            s["conditions"]
                .as_array()
                .expect("conditions")
                .clone()
                .into_boxed_slice(),
        );
        let later = pod_status(
            &frame(prev, "t2"),
            &[ended("init", 0)],
            &[running("a", true), running("b", true)],
        );
        assert_eq!(cond(&later, "Ready")["status"], "True");
        assert_eq!(cond(&later, "Ready")["lastTransitionTime"], "t2");
        assert_eq!(cond(&later, "Initialized")["lastTransitionTime"], "t1");

        let pending = pod_status(&frame(&[], "t1"), &[running("init", false)], &[]);
        assert_eq!(pending["phase"], "Pending");
        assert_eq!(
            cond(&pending, "Initialized")["message"],
            "containers with incomplete status: [init]"
        );
    }

    #[test]
    fn container_status_carries_last_state_and_restarts() {
        let v = container_status_json(&crash_looping("a"));
        assert_eq!(v["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(v["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(v["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(v["restartCount"], 3);
        let fresh = container_status_json(&running("a", true));
        assert_eq!(fresh["lastState"], json!({}));
        assert_eq!(fresh["state"]["running"]["startedAt"], "t0");
    }
}
