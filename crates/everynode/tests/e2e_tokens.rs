//! ServiceAccount tokens with the real kubectl: `kubectl create token` (TokenRequest),
//! signing in with the token (`--token`), RBAC deciding what it may do, bound tokens
//! dying with their object, long-lived tokens in `kubernetes.io/service-account-token`
//! Secrets (the tokens controller), and tokens surviving a restart.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{Server, wait_for};

/// `kubectl --token=TOKEN ARGS` (the kubeconfig's own credentials are overridden).
fn as_token(s: &Server, token: &str, args: &[&str]) -> std::process::Output {
    let flag = format!("--token={token}");
    let mut a = vec![flag.as_str()];
    a.extend_from_slice(args);
    s.kubectl(&a)
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `ATTRIBUTE VALUE` rows of `kubectl auth whoami`, as (attribute, value).
fn whoami(s: &Server, token: &str) -> Vec<(String, String)> {
    let o = as_token(s, token, &["auth", "whoami"]);
    assert!(o.status.success(), "whoami: {}", stderr(&o));
    stdout(&o)
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once("  ")?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

fn attr<'a>(rows: &'a [(String, String)], key: &str) -> &'a str {
    rows.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {rows:?}"))
}

/// A pod whose container mounts something of its own where the token volume would go.
const OWN_MOUNT: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: own
spec:
  containers:
  - name: c
    image: nginx
    volumeMounts:
    - name: mine
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  volumes:
  - name: mine
    emptyDir: {}
"#;

fn unauthorized(o: &std::process::Output) -> bool {
    !o.status.success() && stderr(o).contains("Unauthorized")
}

#[test]
fn create_token_signs_in_as_the_service_account_and_rbac_decides() {
    let s = Server::start();
    s.ok(&["create", "serviceaccount", "robot"]);
    let token = s.ok(&["create", "token", "robot"]).trim().to_string();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    let me = whoami(&s, &token);
    assert_eq!(attr(&me, "Username"), "system:serviceaccount:default:robot");
    let uid = s.ok(&["get", "sa", "robot", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(attr(&me, "UID"), uid);
    assert_eq!(
        attr(&me, "Groups"),
        "[system:serviceaccounts system:serviceaccounts:default system:authenticated]"
    );
    assert!(
        attr(&me, "Extra: authentication.kubernetes.io/credential-id").starts_with("[JTI="),
        "{me:?}"
    );

    // Nothing granted yet: kube-apiserver's refusal, naming the ServiceAccount.
    let o = as_token(&s, &token, &["get", "pods"]);
    assert!(
        stderr(&o).contains(
            "pods is forbidden: User \"system:serviceaccount:default:robot\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        ),
        "{}",
        stderr(&o)
    );
    // Granted by a RoleBinding to the ServiceAccount: reads in its namespace only.
    s.ok(&[
        "create",
        "rolebinding",
        "robot-view",
        "--clusterrole=view",
        "--serviceaccount=default:robot",
    ]);
    let o = as_token(&s, &token, &["get", "pods"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_token(&s, &token, &["get", "pods", "-n", "kube-system"]);
    assert!(stderr(&o).contains("forbidden"), "{}", stderr(&o));
    let o = as_token(&s, &token, &["create", "configmap", "c"]);
    assert!(
        stderr(&o).contains("cannot create resource"),
        "{}",
        stderr(&o)
    );
    // The administrator asking on its behalf gets the same answers.
    assert_eq!(
        s.ok(&[
            "auth",
            "can-i",
            "list",
            "pods",
            "--as=system:serviceaccount:default:robot"
        ])
        .trim(),
        "yes"
    );
    // A group binding reaches every ServiceAccount of the namespace.
    s.ok(&[
        "create",
        "rolebinding",
        "all-edit",
        "--clusterrole=edit",
        "--group=system:serviceaccounts:default",
    ]);
    let o = as_token(&s, &token, &["create", "configmap", "c"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // A deleted ServiceAccount's tokens stop working, even if the name comes back.
    s.ok(&["delete", "sa", "robot"]);
    assert!(unauthorized(&as_token(&s, &token, &["get", "pods"])));
    s.ok(&["create", "serviceaccount", "robot"]);
    assert!(unauthorized(&as_token(&s, &token, &["get", "pods"])));
    // So does a token that was tampered with or signed by someone else.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let fresh = s.ok(&["create", "token", "robot"]).trim().to_string();
    assert!(as_token(&s, &fresh, &["get", "pods"]).status.success());
    let mut parts: Vec<&str> = fresh.split('.').collect();
    let other_sig = token.split('.').nth(2).expect("signature");
    parts[2] = other_sig;
    assert!(unauthorized(&as_token(
        &s,
        &parts.join("."),
        &["get", "pods"]
    )));
}

#[test]
fn token_requests_are_validated_as_kubernetes_does() {
    let s = Server::up(2);
    assert!(
        s.fails(&["create", "token", "default", "--duration=1m"]).contains(
            "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        )
    );
    assert!(
        s.fails(&["create", "token", "nobody"])
            .contains("error: failed to create token: serviceaccounts \"nobody\" not found")
    );
    assert!(
        s.fails(&[
            "create",
            "token",
            "default",
            "--bound-object-kind=Pod",
            "--bound-object-name=nothere",
        ])
        .contains("pods \"nothere\" not found")
    );
    // The lifetime asked for is the one granted.
    let t = s.json(&["create", "token", "default", "--duration=2h"]);
    let exp: jiff::Timestamp = t["status"]["expirationTimestamp"]
        .as_str()
        .expect("expirationTimestamp")
        .parse()
        .expect("a time");
    let left = exp.as_second() - jiff::Timestamp::now().as_second();
    assert!((7100..=7200).contains(&left), "{left} s left");
    assert_eq!(t["spec"]["expirationSeconds"], 7200);
    assert_eq!(
        t["spec"]["audiences"],
        serde_json::json!(["https://kubernetes.default.svc.cluster.local"])
    );
    // A token for another audience is not one the API server accepts.
    let vault = s
        .ok(&[
            "create",
            "token",
            "default",
            "--audience=https://vault.example",
        ])
        .trim()
        .to_string();
    assert!(unauthorized(&as_token(&s, &vault, &["auth", "whoami"])));

    // Bound to a pod: the pod must run as that ServiceAccount, the uid must match, and
    // the token names the pod and its node.
    s.ok(&["create", "serviceaccount", "robot"]);
    s.ok(&[
        "run",
        "p",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"serviceAccountName":"robot"}}"#,
    ]);
    let node = s.eventually(
        "pod p bound",
        &["get", "pod", "p", "-o", "jsonpath={.spec.nodeName}"],
        |n| !n.is_empty(),
    );
    let bind = ["--bound-object-kind=Pod", "--bound-object-name=p"];
    let mut args = vec!["create", "token", "default"];
    args.extend(bind);
    assert!(s.fails(&args).contains(
        "cannot bind token for serviceaccount \"default\" to pod running with different serviceaccount name."
    ));
    let mut args = vec![
        "create",
        "token",
        "robot",
        "--bound-object-uid=0d4691ed-659b-4935-a832-355f77ee47cc",
    ];
    args.extend(bind);
    assert!(s.fails(&args).contains(
        "Operation cannot be fulfilled on Pod \"p\": the UID in the bound object reference (0d4691ed-659b-4935-a832-355f77ee47cc) does not match the UID in record. The object might have been deleted and then recreated"
    ));
    let mut args = vec!["create", "token", "robot"];
    args.extend(bind);
    let token = s.ok(&args).trim().to_string();
    let me = whoami(&s, &token);
    let pod_uid = s.ok(&["get", "pod", "p", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(
        attr(&me, "Extra: authentication.kubernetes.io/pod-uid"),
        format!("[{pod_uid}]")
    );
    assert_eq!(
        attr(&me, "Extra: authentication.kubernetes.io/pod-name"),
        "[p]"
    );
    assert_eq!(
        attr(&me, "Extra: authentication.kubernetes.io/node-name"),
        format!("[{node}]")
    );
    // ... and dies with it.
    s.ok(&["delete", "pod", "p", "--wait=true"]);
    assert!(unauthorized(&as_token(&s, &token, &["auth", "whoami"])));
}

#[test]
fn token_secrets_are_filled_in_and_go_with_their_service_account() {
    let s = Server::start();
    s.ok(&["create", "serviceaccount", "build-robot"]);
    let o = s.apply_yaml(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: build-robot-secret
  annotations:
    kubernetes.io/service-account.name: build-robot
type: kubernetes.io/service-account-token
"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let secret = wait_for(Duration::from_secs(30), "the token in the Secret", || {
        let v = s.json(&["get", "secret", "build-robot-secret"]);
        v.pointer("/data/token").is_some().then_some(v)
    });
    let b64 = |k: &str| {
        let text = secret["data"][k].as_str().expect("data key");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .expect("base64"),
        )
        .expect("utf-8")
    };
    assert_eq!(b64("namespace"), "default");
    let ca = std::fs::read_to_string(s.data_dir().join("ca.crt")).expect("ca.crt");
    assert_eq!(b64("ca.crt"), ca);
    let sa_uid = s.ok(&["get", "sa", "build-robot", "-o", "jsonpath={.metadata.uid}"]);
    assert_eq!(
        secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"],
        sa_uid.as_str()
    );
    let token = b64("token");
    assert_eq!(
        attr(&whoami(&s, &token), "Username"),
        "system:serviceaccount:default:build-robot"
    );
    // `kubectl describe` shows the token, as for any token Secret.
    let d = s.ok(&["describe", "secret", "build-robot-secret"]);
    assert!(
        d.contains("Type:  kubernetes.io/service-account-token"),
        "{d}"
    );
    assert!(d.contains(&format!("token:      {token}")), "{d}");

    // A token Secret for a ServiceAccount that does not exist is deleted.
    let o = s.apply_yaml(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: orphan
  annotations:
    kubernetes.io/service-account.name: nobody
type: kubernetes.io/service-account-token
"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    wait_for(
        Duration::from_secs(30),
        "the orphan token Secret to go",
        || {
            let o = s.kubectl(&["get", "secret", "orphan"]);
            stderr(&o).contains("NotFound").then_some(())
        },
    );

    // Deleting the ServiceAccount takes its token Secrets, and the token stops working.
    s.ok(&["delete", "sa", "build-robot"]);
    wait_for(Duration::from_secs(30), "the token Secret to go", || {
        let o = s.kubectl(&["get", "secret", "build-robot-secret"]);
        stderr(&o).contains("NotFound").then_some(())
    });
    assert!(unauthorized(&as_token(&s, &token, &["auth", "whoami"])));
}

#[test]
fn tokens_survive_a_restart_and_the_key_is_kept() {
    let mut s = Server::start();
    s.ok(&["create", "serviceaccount", "robot"]);
    let token = s.ok(&["create", "token", "robot"]).trim().to_string();
    let key = std::fs::read_to_string(s.data_dir().join("sa.key")).expect("sa.key");
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    let public = std::fs::read_to_string(s.data_dir().join("sa.pub")).expect("sa.pub");
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.data_dir().join("sa.key"))
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    s.crash_and_restart();
    assert_eq!(
        attr(&whoami(&s, &token), "Username"),
        "system:serviceaccount:default:robot"
    );
    assert_eq!(
        std::fs::read_to_string(s.data_dir().join("sa.key")).expect("sa.key"),
        key
    );
}

#[test]
fn the_issuer_publishes_its_keys_and_non_resource_paths_follow_rbac() {
    let s = Server::start();
    let config = s.ok(&["get", "--raw", "/.well-known/openid-configuration"]);
    let config: serde_json::Value = serde_json::from_str(&config).expect("JSON");
    assert_eq!(
        config["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        config["jwks_uri"],
        "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"
    );
    let jwks: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "--raw", "/openid/v1/jwks"])).expect("JSON");
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["alg"], "ES256");
    // The token header names the published key.
    s.ok(&["create", "serviceaccount", "robot"]);
    let token = s.ok(&["create", "token", "robot"]).trim().to_string();
    let header = token.split('.').next().expect("header");
    let header: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .expect("base64url"),
    )
    .expect("JSON");
    assert_eq!(header["kid"], key["kid"]);
    assert_eq!(header["alg"], "ES256");

    // A ServiceAccount may read the issuer's documents, not the server's metrics...
    let o = as_token(&s, &token, &["get", "--raw", "/openid/v1/jwks"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = as_token(&s, &token, &["get", "--raw", "/metrics"]);
    assert!(
        stderr(&o).contains(
            "Error from server (Forbidden): forbidden: User \"system:serviceaccount:default:robot\" cannot get path \"/metrics\""
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        String::from_utf8_lossy(
            &s.kubectl(&[
                "auth",
                "can-i",
                "get",
                "/metrics",
                "--as=system:serviceaccount:default:robot"
            ])
            .stdout
        )
        .trim(),
        "no"
    );
    // ... until a ClusterRole with nonResourceURLs is bound to it.
    s.ok(&[
        "create",
        "clusterrole",
        "metrics-reader",
        "--verb=get",
        "--non-resource-url=/metrics",
    ]);
    s.ok(&[
        "create",
        "clusterrolebinding",
        "robot-metrics",
        "--clusterrole=metrics-reader",
        "--serviceaccount=default:robot",
    ]);
    let o = as_token(&s, &token, &["get", "--raw", "/metrics"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        s.ok(&[
            "auth",
            "can-i",
            "get",
            "/metrics",
            "--as=system:serviceaccount:default:robot"
        ])
        .trim(),
        "yes"
    );
}

#[test]
fn pods_get_the_api_access_volume_unless_they_opt_out() {
    let s = Server::start();
    s.ok(&["run", "plain", "--image=nginx"]);
    let pod = s.json(&["get", "pod", "plain"]);
    let volumes = pod["spec"]["volumes"].as_array().expect("volumes");
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    let name = volumes[0]["name"].as_str().expect("name");
    assert!(
        name.starts_with("kube-api-access-") && name.len() == "kube-api-access-".len() + 5,
        "{name}"
    );
    assert_eq!(
        volumes[0]["projected"],
        serde_json::json!({
            "defaultMode": 420,
            "sources": [
                { "serviceAccountToken": { "expirationSeconds": 3607, "path": "token" } },
                { "configMap": { "name": "kube-root-ca.crt",
                                 "items": [{ "key": "ca.crt", "path": "ca.crt" }] } },
                { "downwardAPI": { "items": [{ "path": "namespace",
                    "fieldRef": { "apiVersion": "v1", "fieldPath": "metadata.namespace" } }] } },
            ]
        })
    );
    assert_eq!(
        pod["spec"]["containers"][0]["volumeMounts"],
        serde_json::json!([{ "name": name, "readOnly": true,
                             "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount" }])
    );
    let d = s.ok(&["describe", "pod", "plain"]);
    assert!(d.contains(&format!("{name}:")), "{d}");
    assert!(d.contains("TokenExpirationSeconds:  3607"), "{d}");
    assert!(
        d.contains("ConfigMapName:           kube-root-ca.crt"),
        "{d}"
    );

    // Opting out: on the pod, or on its ServiceAccount (the pod's word wins).
    s.ok(&[
        "run",
        "optout",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"automountServiceAccountToken":false}}"#,
    ]);
    assert!(
        s.json(&["get", "pod", "optout"])["spec"]
            .get("volumes")
            .is_none()
    );
    let o = s.apply_yaml(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: quiet\nautomountServiceAccountToken: false\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    s.ok(&[
        "run",
        "quiet",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"serviceAccountName":"quiet"}}"#,
    ]);
    assert!(
        s.json(&["get", "pod", "quiet"])["spec"]
            .get("volumes")
            .is_none()
    );
    s.ok(&[
        "run",
        "loud",
        "--image=nginx",
        "--overrides",
        r#"{"spec":{"serviceAccountName":"quiet","automountServiceAccountToken":true}}"#,
    ]);
    assert!(s.json(&["get", "pod", "loud"])["spec"]["volumes"][0]["projected"].is_object());
    // A pod that mounts something of its own there keeps it.
    let o = s.apply_yaml(OWN_MOUNT);
    assert!(o.status.success(), "{}", stderr(&o));
    let own = s.json(&["get", "pod", "own"]);
    assert_eq!(own["spec"]["volumes"].as_array().map(Vec::len), Some(1));
    assert_eq!(own["spec"]["volumes"][0]["name"], "mine");
    // Containers decide one by one: those without their own mount there get the
    // volume's.
    let o = s.apply_yaml(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: mixed
spec:
  initContainers:
  - name: i
    image: busybox
  containers:
  - name: a
    image: nginx
  - name: b
    image: nginx
    volumeMounts:
    - name: mine
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  volumes:
  - name: mine
    emptyDir: {}
"#,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mixed = s.json(&["get", "pod", "mixed"]);
    let access = mixed["spec"]["volumes"][1]["name"]
        .as_str()
        .expect("added volume");
    assert!(access.starts_with("kube-api-access-"), "{mixed}");
    let mount_of = |c: &serde_json::Value| c["volumeMounts"][0]["name"].clone();
    assert_eq!(mount_of(&mixed["spec"]["initContainers"][0]), access);
    assert_eq!(mount_of(&mixed["spec"]["containers"][0]), access);
    assert_eq!(mount_of(&mixed["spec"]["containers"][1]), "mine");
    // Applying the manifest again changes nothing (the volume is the server's).
    let again = s.apply_yaml(OWN_MOUNT);
    assert!(
        stdout(&again).contains("pod/own unchanged"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn service_accounts_impersonate_as_rbac_allows() {
    let s = Server::start();
    for sa in ["bot", "helper", "tmp"] {
        s.ok(&["create", "serviceaccount", sa]);
    }
    let bot = s.ok(&["create", "token", "bot"]).trim().to_string();
    let helper = s.ok(&["create", "token", "helper"]).trim().to_string();
    // (kubectl's discovery, refused too while impersonating, would answer `unknown`:
    // warm its cache first, as any earlier command would have.)
    assert!(as_token(&s, &bot, &["api-resources"]).status.success());
    // Nothing granted: impersonating a user, or a ServiceAccount (checked on that
    // ServiceAccount, in its namespace), is refused.
    let o = as_token(&s, &bot, &["get", "pods", "--as=alice"]);
    assert!(
        stderr(&o).contains("users \"alice\" is forbidden: User \"system:serviceaccount:default:bot\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{}",
        stderr(&o)
    );
    let o = as_token(
        &s,
        &helper,
        &["get", "pods", "--as=system:serviceaccount:default:tmp"],
    );
    assert!(
        stderr(&o).contains("serviceaccounts \"tmp\" is forbidden: User \"system:serviceaccount:default:helper\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"default\""),
        "{}",
        stderr(&o)
    );
    // cluster-admin may impersonate anyone; a Role with `impersonate` on ServiceAccounts
    // lets its holder act as those of its namespace.
    s.ok(&[
        "create",
        "clusterrolebinding",
        "bot-admin",
        "--clusterrole=cluster-admin",
        "--serviceaccount=default:bot",
    ]);
    let o = as_token(
        &s,
        &bot,
        &["auth", "whoami", "--as=alice", "--as-group=team"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("alice"), "{}", stdout(&o));
    s.ok(&[
        "create",
        "role",
        "act-as",
        "--verb=impersonate",
        "--resource=serviceaccounts",
    ]);
    s.ok(&[
        "create",
        "rolebinding",
        "helper-acts",
        "--role=act-as",
        "--serviceaccount=default:helper",
    ]);
    let o = as_token(
        &s,
        &helper,
        &["auth", "whoami", "--as=system:serviceaccount:default:tmp"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("system:serviceaccounts:default"),
        "{}",
        stdout(&o)
    );
    // ... but not as a user.
    let o = as_token(&s, &helper, &["get", "pods", "--as=alice"]);
    assert!(
        stderr(&o).contains("cannot impersonate resource \"users\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn token_requests_follow_kube_apiserver_step_by_step() {
    let s = Server::start();
    s.ok(&["create", "serviceaccount", "bot"]);
    // The response names the ServiceAccount and carries its creation time.
    let t = s.json(&["create", "token", "bot"]);
    assert_eq!(t["metadata"]["name"], "bot");
    assert_eq!(t["metadata"]["namespace"], "default");
    assert!(t["metadata"]["creationTimestamp"].as_str().is_some(), "{t}");
    // Tokens are only created.
    let o = s.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/serviceaccounts/bot/token",
    ]);
    assert!(
        stderr(&o).contains("the server does not allow this method on the requested resource"),
        "{}",
        stderr(&o)
    );
    // The ServiceAccount is looked up before the request is validated.
    assert!(
        s.fails(&["create", "token", "nosa", "--duration=1s"])
            .contains("serviceaccounts \"nosa\" not found")
    );
    let post = |body: &str| {
        let path = s.data_dir().join("token-request.json");
        std::fs::write(&path, body).expect("write body");
        s.kubectl(&[
            "create",
            "--raw",
            "/api/v1/namespaces/default/serviceaccounts/bot/token",
            "-f",
            path.to_str().expect("utf-8 path"),
        ])
    };
    let o = post(
        r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{"name":"other"}}"#,
    );
    assert!(
        // (kubectl words a 422 from `create --raw` its own way: "The TokenRequest ...")
        stderr(&o).contains("TokenRequest \"bot\" is invalid: metadata.name: Invalid value: \"other\": must match the service account name if specified"),
        "{}",
        stderr(&o)
    );
    let o = post(
        r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","spec":{"expirationSeconds":"abc"}}"#,
    );
    assert!(
        stderr(&o).contains("TokenRequest in version \\\"v1\\\" cannot be handled as a TokenRequest: json: cannot unmarshal string into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64")
            || stderr(&o).contains("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal string into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64"),
        "{}",
        stderr(&o)
    );
    let o = post(r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","spec":{}}"#);
    assert!(o.status.success(), "{}", stderr(&o));

    // A legacy token's Secret records the day its token was last used.
    let o = s.apply_yaml(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bot-token\n  annotations:\n    kubernetes.io/service-account.name: bot\ntype: kubernetes.io/service-account-token\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let token = wait_for(Duration::from_secs(30), "the legacy token", || {
        let b64 = s.ok(&["get", "secret", "bot-token", "-o", "jsonpath={.data.token}"]);
        (!b64.is_empty()).then(|| {
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .expect("base64"),
            )
            .expect("utf-8")
        })
    });
    let label = "jsonpath={.metadata.labels.kubernetes\\.io/legacy-token-last-used}";
    assert_eq!(s.ok(&["get", "secret", "bot-token", "-o", label]), "");
    assert!(as_token(&s, &token, &["auth", "whoami"]).status.success());
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    s.eventually(
        "the last-used label",
        &["get", "secret", "bot-token", "-o", label],
        |v| v == today,
    );

    // The bootstrap discovery roles exist and answer `can-i` for the paths.
    for role in [
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:service-account-issuer-discovery",
    ] {
        s.ok(&["get", "clusterrole", role]);
        s.ok(&["get", "clusterrolebinding", role]);
    }
    let me = "--as=system:serviceaccount:default:bot";
    assert_eq!(
        s.ok(&["auth", "can-i", "get", "/openid/v1/jwks/", me])
            .trim(),
        "yes"
    );
    assert_eq!(
        s.ok(&["auth", "can-i", "get", "/version/", me]).trim(),
        "yes"
    );
}

#[test]
fn rbac_changes_take_effect_at_once_for_a_signed_in_service_account() {
    let s = Server::start();
    s.ok(&["create", "serviceaccount", "narrow"]);
    s.ok(&["create", "configmap", "c", "--from-literal=k=v"]);
    let token = s.ok(&["create", "token", "narrow"]).trim().to_string();
    let read = || as_token(&s, &token, &["get", "configmap", "c"]);
    assert!(stderr(&read()).contains("forbidden"));
    s.ok(&[
        "create",
        "role",
        "cm",
        "--verb=get",
        "--resource=configmaps",
    ]);
    s.ok(&[
        "create",
        "rolebinding",
        "cm",
        "--role=cm",
        "--serviceaccount=default:narrow",
    ]);
    assert!(read().status.success(), "{}", stderr(&read()));
    // The role loses the verb: refused at the next request.
    s.ok(&[
        "patch",
        "role",
        "cm",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/rules/0/verbs","value":["list"]}]"#,
    ]);
    assert!(stderr(&read()).contains("forbidden"), "{}", stderr(&read()));
    // Back, then the binding goes.
    s.ok(&[
        "patch",
        "role",
        "cm",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/rules/0/verbs","value":["get"]}]"#,
    ]);
    assert!(read().status.success(), "{}", stderr(&read()));
    s.ok(&["delete", "rolebinding", "cm"]);
    assert!(stderr(&read()).contains("forbidden"), "{}", stderr(&read()));
}
