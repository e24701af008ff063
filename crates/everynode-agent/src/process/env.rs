//! A container's environment and command line, as the kubelet builds them: `env` in
//! order (each value may refer to the variables defined before it with `$(NAME)`),
//! `valueFrom.fieldRef` for the downward-API fields, then `command` and `args` expanded
//! against the result. Pure functions; the process layer only spawns what they return.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

/// Expands `$(NAME)` references as Kubernetes does (its `expansion` package): a defined
/// name is replaced by its value, an undefined one is kept verbatim, `$$` is an escaped
/// `$`, and a `$` followed by anything else (or an unclosed `$(`) stays as written.
pub fn expand(input: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' || i + 1 >= bytes.len() {
            // Copy one UTF-8 character.
            let ch = input[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8().max(1);
            continue;
        }
        match bytes[i + 1] {
            b'$' => {
                out.push('$');
                i += 2;
            }
            b'(' => match input[i + 2..].find(')') {
                Some(end) => {
                    let name = &input[i + 2..i + 2 + end];
                    match lookup(name) {
                        Some(v) if !name.is_empty() => out.push_str(&v),
                        _ => out.push_str(&input[i..i + 3 + end]),
                    }
                    i += 3 + end;
                }
                None => {
                    out.push_str(&input[i..]);
                    i = bytes.len();
                }
            },
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    out
}

/// What the downward API can tell a process about its pod and node.
#[derive(Clone, Debug, Default)]
pub struct PodFacts {
    pub node_name: String,
    pub pod_ip: String,
    pub host_ip: String,
}

/// A container's environment could not be built: the kubelet's
/// `CreateContainerConfigError`, with its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

fn field_value(pod: &Pod, facts: &PodFacts, path: &str) -> Result<String, ConfigError> {
    let meta = &pod.metadata;
    let from_map = |map: &Option<BTreeMap<String, String>>, key: &str| {
        map.as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default()
    };
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix("']"))
            .map(str::to_string)
    };
    Ok(match path {
        "spec.nodeName" => facts.node_name.clone(),
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        _ => {
            if let Some(key) = subscript("metadata.labels['") {
                from_map(&meta.labels, &key)
            } else if let Some(key) = subscript("metadata.annotations['") {
                from_map(&meta.annotations, &key)
            } else {
                return Err(ConfigError(format!(
                    "unsupported fieldRef fieldPath {path:?}"
                )));
            }
        }
    })
}

/// The variables every process gets before its own `env`: `PATH` (the agent's, as an
/// image would bring its own), `HOME`, and `HOSTNAME` (the node's name with
/// hostNetwork, else the pod's, as in a container).
pub fn base_env(pod: &Pod, facts: &PodFacts, agent_path: &str) -> Vec<(String, String)> {
    let host_network = pod
        .spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false);
    let hostname = if host_network {
        facts.node_name.clone()
    } else {
        pod.metadata.name.clone().unwrap_or_default()
    };
    vec![
        ("PATH".into(), agent_path.to_string()),
        ("HOME".into(), "/root".into()),
        ("HOSTNAME".into(), hostname),
    ]
}

/// The container's environment, in order, with later definitions of a name replacing
/// earlier ones (as in a container). `envFrom` and `valueFrom` other than `fieldRef`
/// need the API (ConfigMaps, Secrets) or container resources and are refused with a
/// message naming the variable.
pub fn container_env(
    pod: &Pod,
    c: &Container,
    facts: &PodFacts,
    base: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    if c.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return Err(ConfigError(format!(
            "container {:?}: envFrom is not supported by the process runtime",
            c.name
        )));
    }
    let mut env: Vec<(String, String)> = base;
    for var in c.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (_, Some(from)) => {
                if let Some(f) = &from.field_ref {
                    field_value(pod, facts, &f.field_path)?
                } else {
                    let kind = if from.config_map_key_ref.is_some() {
                        "configMapKeyRef"
                    } else if from.secret_key_ref.is_some() {
                        "secretKeyRef"
                    } else if from.resource_field_ref.is_some() {
                        "resourceFieldRef"
                    } else {
                        "valueFrom"
                    };
                    return Err(ConfigError(format!(
                        "env {:?}: {kind} is not supported by the process runtime",
                        var.name
                    )));
                }
            }
            (Some(v), None) => {
                let lookup = |name: &str| {
                    env.iter()
                        .rev()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                expand(v, &lookup)
            }
            (None, None) => String::new(),
        };
        env.retain(|(k, _)| k != &var.name);
        env.push((var.name.clone(), value));
    }
    Ok(env)
}

/// `command` + `args` with `$(NAME)` expanded against `env`; None without a command
/// (the image's entrypoint would run there, and images are not run).
pub fn command_line(c: &Container, env: &[(String, String)]) -> Option<Vec<String>> {
    let command = c.command.as_ref().filter(|c| !c.is_empty())?;
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    Some(
        command
            .iter()
            .chain(c.args.iter().flatten())
            .map(|s| expand(s, &lookup))
            .collect(),
    )
}

/// Finds `program` as execve would with `PATH` from `env`: a name with a slash is taken
/// as is, otherwise the first executable file in PATH.
pub fn resolve_program(program: &str, env: &[(String, String)]) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt;
    if program.contains('/') {
        return Ok(program.to_string());
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/local/bin:/usr/bin:/bin");
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = std::path::Path::new(dir).join(program);
        if let Ok(meta) = std::fs::metadata(&candidate)
            && meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
        {
            return Ok(candidate.to_string_lossy().into_owned());
        }
    }
    Err(format!(
        "exec: {program:?}: executable file not found in $PATH"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "A" => Some("x".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let cases = [
            ("$(A)", "x"),
            ("a-$(A)-b", "a-x-b"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("$A", "$A"),
            ("$(A", "$(A"),
            ("$", "$"),
            ("$()", "$()"),
            ("$(EMPTY)!", "!"),
            ("ü$(A)ß", "üxß"),
            ("$(A)$(A)", "xx"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &lookup), want, "input {input:?}");
        }
    }

    fn pod(containers: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "p", "namespace": "ns", "uid": "u-1", "labels": { "app": "a" } },
            "spec": { "containers": containers, "serviceAccountName": "sa" },
        }))
        .expect("pod")
    }

    fn facts() -> PodFacts {
        PodFacts {
            node_name: "node1".into(),
            pod_ip: "127.0.0.2".into(),
            host_ip: "127.0.0.2".into(),
        }
    }

    #[test]
    fn env_resolves_field_refs_and_earlier_variables() {
        let p = pod(
            json!([{ "name": "c", "command": ["echo", "$(NODE)", "$(GREETING)"], "env": [
                { "name": "NODE", "valueFrom": { "fieldRef": { "fieldPath": "spec.nodeName" } } },
                { "name": "POD", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
                { "name": "NS", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
                { "name": "UID", "valueFrom": { "fieldRef": { "fieldPath": "metadata.uid" } } },
                { "name": "IP", "valueFrom": { "fieldRef": { "fieldPath": "status.podIP" } } },
                { "name": "HOST", "valueFrom": { "fieldRef": { "fieldPath": "status.hostIP" } } },
                { "name": "APP", "valueFrom": { "fieldRef": { "fieldPath": "metadata.labels['app']" } } },
                { "name": "GREETING", "value": "hi-$(POD)-$(LATER)" },
                { "name": "LATER", "value": "l" },
                { "name": "NODE", "value": "again-$(NODE)" },
            ]}]),
        );
        let c = &p.spec.as_ref().expect("spec").containers[0];
        let env =
            container_env(&p, c, &facts(), vec![("PATH".into(), "/bin".into())]).expect("env");
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .expect(k)
        };
        assert_eq!(get("POD"), "p");
        assert_eq!(get("NS"), "ns");
        assert_eq!(get("UID"), "u-1");
        assert_eq!(get("IP"), "127.0.0.2");
        assert_eq!(get("HOST"), "127.0.0.2");
        assert_eq!(get("APP"), "a");
        assert_eq!(get("GREETING"), "hi-p-$(LATER)");
        assert_eq!(get("NODE"), "again-node1");
        assert_eq!(env.iter().filter(|(k, _)| k == "NODE").count(), 1);
        assert_eq!(
            command_line(c, &env).expect("command"),
            ["echo", "again-node1", "hi-p-$(LATER)"]
        );
    }

    #[test]
    fn unsupported_sources_are_config_errors() {
        let cases = [
            (
                json!({ "name": "c", "command": ["x"], "env": [{ "name": "S", "valueFrom": { "secretKeyRef": { "name": "s", "key": "k" } } }] }),
                "secretKeyRef",
            ),
            (
                json!({ "name": "c", "command": ["x"], "env": [{ "name": "C", "valueFrom": { "configMapKeyRef": { "name": "s", "key": "k" } } }] }),
                "configMapKeyRef",
            ),
            (
                json!({ "name": "c", "command": ["x"], "env": [{ "name": "F", "valueFrom": { "fieldRef": { "fieldPath": "spec.bogus" } } }] }),
                "spec.bogus",
            ),
            (
                json!({ "name": "c", "command": ["x"], "envFrom": [{ "configMapRef": { "name": "m" } }] }),
                "envFrom",
            ),
        ];
        for (c, needle) in cases {
            let p = pod(json!([c]));
            let c = &p.spec.as_ref().expect("spec").containers[0];
            let err = container_env(&p, c, &facts(), vec![]).expect_err("refused");
            assert!(err.0.contains(needle), "{err:?} should name {needle}");
        }
    }

    #[test]
    fn no_command_means_no_command_line() {
        let p = pod(json!([{ "name": "c", "image": "nginx", "args": ["-g"] }]));
        let c = &p.spec.as_ref().expect("spec").containers[0];
        assert_eq!(command_line(c, &[]), None);
    }

    #[test]
    fn programs_resolve_through_path() {
        let env = vec![("PATH".to_string(), "/nonexistent:/bin:/usr/bin".to_string())];
        let sh = resolve_program("sh", &env).expect("sh");
        assert!(sh.ends_with("/sh"), "{sh}");
        assert_eq!(
            resolve_program("./x", &env).expect("as is"),
            "./x".to_string()
        );
        let err = resolve_program("no-such-program-here", &env).expect_err("missing");
        assert!(err.contains("executable file not found in $PATH"), "{err}");
    }
}
