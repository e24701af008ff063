//! The control plane's side of joining machines: bootstrap tokens (`everynode token
//! create|list`, one made at server start), the `kube-public/cluster-info` ConfigMap
//! joining agents discover the CA from, and the join command to print. All through the
//! Kubernetes API with the admin's client.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use everynode_apiserver::auth::{BOOTSTRAP_SECRET_TYPE, BootstrapToken};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

/// The extra group every token made here carries (kubeadm uses
/// `system:bootstrappers:kubeadm:default-node-token`).
pub const TOKEN_GROUP: &str = "system:bootstrappers:everynode:default-node-token";

/// Parses a TTL: `0` (never expires) or a number with a unit `s`, `m`, `h` or `d`
/// (`90m`, `24h`, `7d`), or several (`1h30m`).
pub fn parse_ttl(s: &str) -> Result<Option<Duration>, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(None);
    }
    let mut total = 0u64;
    let mut num = String::new();
    let mut any = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            _ => {
                return Err(format!(
                    "invalid TTL {s:?}: unknown unit {c:?} (use s, m, h or d)"
                ));
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid TTL {s:?}: a number must come before {c:?}"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
        any = true;
    }
    if !num.is_empty() || !any {
        return Err(format!(
            "invalid TTL {s:?}: want a duration like 24h, 90m or 7d (0: never expires)"
        ));
    }
    Ok(Some(Duration::from_secs(total)))
}

/// The Secret that backs `token`.
pub fn token_secret(
    token: &BootstrapToken,
    ttl: Option<Duration>,
    description: &str,
    now: jiff::Timestamp,
) -> Secret {
    let mut data: BTreeMap<String, ByteString> = BTreeMap::new();
    let mut put = |k: &str, v: &str| {
        data.insert(k.to_string(), ByteString(v.as_bytes().to_vec()));
    };
    put("token-id", &token.id);
    put("token-secret", &token.secret);
    put("usage-bootstrap-authentication", "true");
    put("usage-bootstrap-signing", "true");
    put("auth-extra-groups", TOKEN_GROUP);
    if !description.is_empty() {
        put("description", description);
    }
    if let Some(ttl) = ttl {
        let exp = now
            .checked_add(jiff::SignedDuration::from_secs(
                i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2),
            ))
            .unwrap_or(jiff::Timestamp::MAX);
        put(
            "expiration",
            &exp.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(token.secret_name()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        type_: Some(BOOTSTRAP_SECRET_TYPE.into()),
        data: Some(data),
        ..Default::default()
    }
}

/// Creates a new bootstrap token in the cluster.
pub async fn create_token(
    client: &kube::Client,
    ttl: Option<Duration>,
    description: &str,
) -> Result<BootstrapToken, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let token = BootstrapToken::generate();
    let secret = token_secret(&token, ttl, description, jiff::Timestamp::now());
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| format!("creating the token: {e}"))?;
    Ok(token)
}

fn secret_field(s: &Secret, k: &str) -> String {
    s.data
        .as_ref()
        .and_then(|d| d.get(k))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .unwrap_or_default()
}

/// A token's Secret, if it exists and has not expired.
async fn live_token(client: &kube::Client, token: &BootstrapToken) -> Result<bool, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let Some(s) = secrets
        .get_opt(&token.secret_name())
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(false);
    };
    let exp = secret_field(&s, "expiration");
    let alive = exp.is_empty()
        || exp
            .parse::<jiff::Timestamp>()
            .is_ok_and(|t| t > jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10));
    Ok(alive && secret_field(&s, "token-secret") == token.secret)
}

/// `DATA_DIR/join-token`: the token made at start, kept while it lives (a new one, valid
/// 24 h, replaces it when it has expired or been deleted).
pub async fn ensure_start_token(
    client: &kube::Client,
    data_dir: &Path,
) -> Result<BootstrapToken, String> {
    let path = data_dir.join("join-token");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Some(t) = BootstrapToken::parse(&text)
        && live_token(client, &t).await?
    {
        return Ok(t);
    }
    let t = create_token(
        client,
        Some(Duration::from_secs(24 * 3600)),
        "made by everynode at start",
    )
    .await?;
    everynode_agent::join::write_private(&path, format!("{}\n", t.to_token_string()).as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(t)
}

/// `everynode token list`: one row per bootstrap token.
pub async fn list_tokens(client: &kube::Client) -> Result<String, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let list = secrets
        .list(&ListParams::default().fields(&format!("type={BOOTSTRAP_SECRET_TYPE}")))
        .await
        .map_err(|e| e.to_string())?;
    let now = jiff::Timestamp::now();
    let mut out = format!(
        "{:<24} {:<10} {:<21} {}\n",
        "TOKEN", "TTL", "EXPIRES", "DESCRIPTION"
    );
    for s in &list.items {
        let token = format!(
            "{}.{}",
            secret_field(s, "token-id"),
            secret_field(s, "token-secret")
        );
        let exp = secret_field(s, "expiration");
        let (ttl, expires) = match exp.parse::<jiff::Timestamp>() {
            Ok(t) if t <= now => ("expired".to_string(), exp.clone()),
            Ok(t) => (
                everynode_api::table::human_duration(t.duration_since(now)),
                exp.clone(),
            ),
            Err(_) if exp.is_empty() => ("<forever>".into(), "<never>".into()),
            Err(_) => ("<invalid>".into(), exp.clone()),
        };
        out.push_str(&format!(
            "{token:<24} {ttl:<10} {expires:<21} {}\n",
            secret_field(s, "description")
        ));
    }
    Ok(out)
}

/// Publishes (or refreshes) `kube-public/cluster-info`: a kubeconfig with the server's
/// address and CA, no credentials. Anyone may read it; joining agents check the CA
/// against the hash they were given.
pub async fn publish_cluster_info(
    client: &kube::Client,
    server_url: &str,
    ca_pem: &str,
) -> Result<(), String> {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem.as_bytes());
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server_url}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\npreferences: {{}}\nusers: null\n"
    );
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    let want: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "cluster-info", "namespace": "kube-public" },
        "data": { "kubeconfig": kubeconfig },
    }))
    .map_err(|e| e.to_string())?;
    match cms
        .get_opt("cluster-info")
        .await
        .map_err(|e| e.to_string())?
    {
        None => {
            cms.create(&PostParams::default(), &want)
                .await
                .map_err(|e| format!("creating kube-public/cluster-info: {e}"))?;
        }
        Some(cur) if cur.data == want.data => {}
        Some(mut cur) => {
            cur.data = want.data;
            cms.replace("cluster-info", &PostParams::default(), &cur)
                .await
                .map_err(|e| format!("updating kube-public/cluster-info: {e}"))?;
        }
    }
    Ok(())
}

/// The address other machines most likely reach this one at: the source address of
/// the default route (found by "connecting" a UDP socket; nothing is sent).
pub fn primary_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
}

/// The URL to publish and print for joining: the bound address, or for a wildcard
/// listener the primary address (loopback if there is none).
pub fn advertised_url(bound: std::net::SocketAddr) -> String {
    match primary_ip() {
        Some(ip) if bound.ip().is_unspecified() => {
            format!(
                "https://{}",
                crate::pki::client_address(std::net::SocketAddr::new(ip, bound.port()))
            )
        }
        _ => format!("https://{}", crate::pki::client_address(bound)),
    }
}

/// The command a machine runs to join (the token goes into a file first, so it stays
/// out of process listings and shell history).
pub fn join_command(server_url: &str, ca_hash: &str) -> String {
    format!(
        "everynode agent --server {server_url} --token-file TOKEN_FILE --ca-cert-hash {ca_hash} --node-name NAME"
    )
}

/// Prints how to join, for `up`, `server` and `token create`.
pub fn print_join(token: &BootstrapToken, server_url: &str, ca_pem: &str) -> Result<(), String> {
    let hash = everynode_agent::join::ca_cert_hash(ca_pem).map_err(|e| e.to_string())?;
    println!("To join a machine, put the token in a file there and run the agent:");
    println!();
    println!(
        "  echo {} > token && chmod 600 token",
        token.to_token_string()
    );
    println!(
        "  {}",
        join_command(server_url, &hash).replace("TOKEN_FILE", "token")
    );
    println!();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse() {
        assert_eq!(parse_ttl("0").unwrap(), None);
        assert_eq!(parse_ttl("24h").unwrap(), Some(Duration::from_secs(86400)));
        assert_eq!(parse_ttl("1h30m").unwrap(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("7d").unwrap(), Some(Duration::from_secs(604800)));
        assert_eq!(parse_ttl("45s").unwrap(), Some(Duration::from_secs(45)));
        for bad in ["", "h", "24", "24x", "1.5h", "-1h"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn token_secrets_authenticate_until_they_expire() {
        use everynode_apiserver::auth::{TokenRefusal, bootstrap_user};
        let now: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t = BootstrapToken::generate();
        let s = serde_json::to_value(token_secret(&t, Some(Duration::from_secs(3600)), "d", now))
            .unwrap();
        let u = bootstrap_user(&s, &t, now).expect("authenticates");
        assert_eq!(u.name, format!("system:bootstrap:{}", t.id));
        assert!(u.groups.iter().any(|g| g == TOKEN_GROUP));
        let later = now + jiff::SignedDuration::from_secs(3601);
        assert_eq!(bootstrap_user(&s, &t, later), Err(TokenRefusal::Expired));
        let forever = serde_json::to_value(token_secret(&t, None, "", now)).unwrap();
        assert!(bootstrap_user(&forever, &t, later).is_ok());
    }
}
