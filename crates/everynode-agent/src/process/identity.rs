//! Who a container's processes run as: `securityContext.runAsUser` / `runAsGroup` (the
//! container's over the pod's, as Kubernetes merges them), the pod's `fsGroup` and
//! `supplementalGroups`, and the kubelet's `runAsNonRoot` check. Pure: the agent's own
//! ids and the host's `/etc/passwd` (the process runtime's "image") are inputs.

use k8s_openapi::api::core::v1::{Container, Pod};

use super::env::ConfigError;

/// The credentials a container's processes get, set in the child before exec
/// ([`super::procs::run_as`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplemental groups: exactly these (fsGroup first, then supplementalGroups).
    pub groups: Vec<u32>,
    /// `HOME` for a user other than the agent's: its `/etc/passwd` entry's, else `/`
    /// (as containerd does for a uid the image does not know).
    pub home: Option<String>,
}

/// The node agent's own credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agent {
    pub uid: u32,
    pub gid: u32,
}

impl Agent {
    pub fn current() -> Agent {
        Agent {
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        }
    }
}

/// A user's primary group and home directory, from `/etc/passwd` text.
pub fn passwd_entry(passwd: &str, uid: u32) -> Option<(u32, String)> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || f[2].parse::<u32>().ok()? != uid {
            return None;
        }
        Some((f[3].parse().ok()?, f[5].to_string()))
    })
}

fn id(field: &str, value: i64) -> Result<u32, ConfigError> {
    u32::try_from(value).map_err(|_| ConfigError(format!("invalid {field} {value}")))
}

/// The identity a container runs as; `None`: the agent's own, unchanged (nothing
/// asked for, or only what an unprivileged agent already is).
///
/// Errors are the kubelet's `CreateContainerConfigError`: `runAsNonRoot` with root as
/// the effective user (the kubelet's wording), and, when the agent is not root, a user
/// or group other than its own (it cannot switch; running as itself would be a silent
/// lie). An unprivileged agent cannot set supplemental groups either: its processes keep
/// the agent's.
pub fn resolve(
    pod: &Pod,
    c: &Container,
    agent: Agent,
    passwd: &str,
) -> Result<Option<Identity>, ConfigError> {
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let run_as_user = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user))
        .map(|u| id("runAsUser", u))
        .transpose()?;
    let run_as_group = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_sc.and_then(|s| s.run_as_group))
        .map(|g| id("runAsGroup", g))
        .transpose()?;
    let non_root = sc
        .and_then(|s| s.run_as_non_root)
        .or_else(|| pod_sc.and_then(|s| s.run_as_non_root))
        .unwrap_or(false);
    let mut groups = Vec::new();
    let requested = pod_sc.and_then(|s| s.fs_group).into_iter().chain(
        pod_sc
            .and_then(|s| s.supplemental_groups.clone())
            .into_iter()
            .flatten(),
    );
    for g in requested {
        let g = id("supplemental group", g)?;
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    if non_root {
        let pod_label = format!(
            "{}_{}({})",
            pod.metadata.name.as_deref().unwrap_or(""),
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.uid.as_deref().unwrap_or("")
        );
        match run_as_user {
            Some(0) => {
                return Err(ConfigError(format!(
                    "container's runAsUser breaks non-root policy (pod: {pod_label:?}, container: {})",
                    c.name
                )));
            }
            None if agent.uid == 0 => {
                return Err(ConfigError(format!(
                    "container has runAsNonRoot and image will run as root (pod: {pod_label:?}, container: {})",
                    c.name
                )));
            }
            _ => {}
        }
    }
    if run_as_user.is_none() && run_as_group.is_none() && groups.is_empty() {
        return Ok(None);
    }
    let uid = run_as_user.unwrap_or(agent.uid);
    let entry = passwd_entry(passwd, uid);
    // Without runAsGroup: the user's primary group (0 for a user the "image" does not
    // know, as with containerd), or the agent's own when that user is the agent.
    let gid = run_as_group.unwrap_or_else(|| {
        if uid == agent.uid {
            agent.gid
        } else {
            entry.as_ref().map_or(0, |(g, _)| *g)
        }
    });
    if agent.uid != 0 {
        if uid != agent.uid {
            return Err(ConfigError(format!(
                "container {:?} must run as user {uid} (runAsUser), but the node agent runs as user {} and cannot start processes as another user",
                c.name, agent.uid
            )));
        }
        if gid != agent.gid {
            return Err(ConfigError(format!(
                "container {:?} must run as group {gid} (runAsGroup), but the node agent runs as group {} and cannot start processes as another group",
                c.name, agent.gid
            )));
        }
        return Ok(None);
    }
    let home = (uid != agent.uid).then(|| entry.map_or_else(|| "/".into(), |(_, home)| home));
    Ok(Some(Identity {
        uid,
        gid,
        groups,
        home,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nbad line\n";
    const ROOT: Agent = Agent { uid: 0, gid: 0 };
    const USER: Agent = Agent {
        uid: 1000,
        gid: 1000,
    };

    fn pod(pod_sc: serde_json::Value, ctr_sc: serde_json::Value) -> (Pod, Container) {
        let p: Pod = serde_json::from_value(json!({
            "metadata": { "name": "p", "namespace": "ns", "uid": "u-1" },
            "spec": {
                "securityContext": pod_sc,
                "containers": [{ "name": "c", "securityContext": ctr_sc }],
            },
        }))
        .expect("pod");
        let c = p.spec.as_ref().expect("spec").containers[0].clone();
        (p, c)
    }

    fn ident(uid: u32, gid: u32, groups: &[u32], home: Option<&str>) -> Option<Identity> {
        Some(Identity {
            uid,
            gid,
            groups: groups.to_vec(),
            home: home.map(str::to_string),
        })
    }

    #[test]
    fn passwd_entries_give_the_primary_group_and_home() {
        assert_eq!(
            passwd_entry(PASSWD, 65534),
            Some((65534, "/nonexistent".into()))
        );
        assert_eq!(passwd_entry(PASSWD, 0), Some((0, "/root".into())));
        assert_eq!(passwd_entry(PASSWD, 1234), None);
    }

    #[test]
    fn the_containers_settings_override_the_pods() {
        let cases = [
            // Nothing asked: the agent's identity, untouched.
            (json!({}), json!({}), ROOT, None),
            // The pod's user and group.
            (
                json!({ "runAsUser": 1001, "runAsGroup": 2002 }),
                json!({}),
                ROOT,
                ident(1001, 2002, &[], Some("/")),
            ),
            // The container's user wins; the group stays the pod's.
            (
                json!({ "runAsUser": 1001, "runAsGroup": 2002 }),
                json!({ "runAsUser": 65534 }),
                ROOT,
                ident(65534, 2002, &[], Some("/nonexistent")),
            ),
            // No group: the user's primary group from /etc/passwd, else 0.
            (
                json!({}),
                json!({ "runAsUser": 65534 }),
                ROOT,
                ident(65534, 65534, &[], Some("/nonexistent")),
            ),
            (
                json!({}),
                json!({ "runAsUser": 4321 }),
                ROOT,
                ident(4321, 0, &[], Some("/")),
            ),
            // fsGroup and supplementalGroups: supplemental groups, once each.
            (
                json!({ "runAsUser": 1001, "fsGroup": 3000, "supplementalGroups": [4000, 3000] }),
                json!({}),
                ROOT,
                ident(1001, 0, &[3000, 4000], Some("/")),
            ),
            // Only a group: root in that group.
            (
                json!({}),
                json!({ "runAsGroup": 5 }),
                ROOT,
                ident(0, 5, &[], None),
            ),
            // An unprivileged agent asked to be itself: nothing to change.
            (
                json!({ "runAsUser": 1000, "supplementalGroups": [7] }),
                json!({ "runAsNonRoot": true }),
                USER,
                None,
            ),
            // runAsNonRoot with a non-root user passes.
            (
                json!({ "runAsNonRoot": true }),
                json!({ "runAsUser": 1001 }),
                ROOT,
                ident(1001, 0, &[], Some("/")),
            ),
        ];
        for (pod_sc, ctr_sc, agent, want) in cases {
            let (p, c) = pod(pod_sc.clone(), ctr_sc.clone());
            assert_eq!(
                resolve(&p, &c, agent, PASSWD),
                Ok(want),
                "{pod_sc} {ctr_sc} {agent:?}"
            );
        }
    }

    #[test]
    fn what_cannot_be_honoured_is_a_config_error() {
        let err = |pod_sc, ctr_sc, agent| {
            let (p, c) = pod(pod_sc, ctr_sc);
            resolve(&p, &c, agent, PASSWD).expect_err("refused").0
        };
        assert_eq!(
            err(json!({ "runAsNonRoot": true }), json!({}), ROOT),
            r#"container has runAsNonRoot and image will run as root (pod: "p_ns(u-1)", container: c)"#
        );
        // The container's runAsNonRoot over the pod's false.
        assert_eq!(
            err(
                json!({ "runAsNonRoot": false }),
                json!({ "runAsNonRoot": true, "runAsUser": 0 }),
                USER
            ),
            r#"container's runAsUser breaks non-root policy (pod: "p_ns(u-1)", container: c)"#
        );
        let msg = err(json!({ "runAsUser": 1001 }), json!({}), USER);
        assert!(
            msg.contains("must run as user 1001") && msg.contains("runs as user 1000"),
            "{msg}"
        );
        let msg = err(json!({}), json!({ "runAsGroup": 5 }), USER);
        assert!(msg.contains("must run as group 5"), "{msg}");
        // The container's false over the pod's true: root is fine.
        let (p, c) = pod(
            json!({ "runAsNonRoot": true }),
            json!({ "runAsNonRoot": false }),
        );
        assert_eq!(resolve(&p, &c, ROOT, PASSWD), Ok(None));
    }
}
