//! ServiceAccount tokens: the JWTs the API server issues for a `TokenRequest`
//! (`kubectl create token`: bound to an audience, a lifetime and optionally a Pod, Secret
//! or Node) and the ones the tokens controller writes into
//! `kubernetes.io/service-account-token` Secrets (legacy: no audience, no expiry), and
//! their verification. Both are ES256 JWTs signed with the cluster's service-account
//! key; their claims are the ones kube-apiserver puts in its tokens, so clients that
//! look inside (`kubernetes.io` claim, `sub`, `aud`) read the same thing.
//!
//! Signature checks are jsonwebtoken's; times, audiences and issuers are checked here
//! against the `now` the caller passes (the crate reads no clock). Whether the objects a
//! token names still exist is the caller's to check: see [`Verified`].

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::field::FieldError;

/// The issuer of bound tokens (kubeadm's `--service-account-issuer`), also the default
/// audience: what the API server accepts tokens for.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer of the tokens in ServiceAccount token Secrets.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// `spec.expirationSeconds` when a TokenRequest names none (authentication/v1 default).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The lifetime kubelets ask for their pods' tokens; such a token, bound to a pod and
/// for the API server, is issued for [`EXTENDED_EXPIRATION_SECONDS`] and carries a
/// `warnafter` claim at the lifetime asked for.
pub const KUBELET_EXPIRATION_SECONDS: i64 = 3607;
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 365 * 24 * 60 * 60;
/// Clock skew allowed on `exp`, `nbf` and `iat` (go-jose's default leeway).
const LEEWAY_SECONDS: i64 = 60;
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// How long a token bound to a Pod, Secret or Node keeps working after its object
/// started terminating (kube-apiserver's grace for objects being deleted).
pub const DELETION_GRACE_SECONDS: i64 = 60;

/// The Secret type whose tokens the tokens controller fills in.
pub const SECRET_TYPE: &str = "kubernetes.io/service-account-token";
/// The annotations naming a token Secret's ServiceAccount.
pub const SECRET_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
pub const SECRET_UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

/// The user name of ServiceAccount `name` in `namespace`.
pub fn user_name(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The groups every ServiceAccount of `namespace` is in (besides
/// `system:authenticated`).
pub fn groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
    ]
}

/// An object a token names: its name and uid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

/// The `kubernetes.io` claim of a bound token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub namespace: String,
    #[serde(rename = "serviceaccount")]
    pub service_account: ObjectRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    /// When a token issued with an extended lifetime counts as stale (seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// A token's claims, bound or legacy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aud: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(
        rename = "kubernetes.io",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kubernetes: Option<Bound>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/namespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_namespace: Option<String>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/secret.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_secret: Option<String>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/service-account.name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_name: Option<String>,
    #[serde(
        rename = "kubernetes.io/serviceaccount/service-account.uid",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub legacy_uid: Option<String>,
}

/// What a bound token is issued for.
#[derive(Clone, Debug, Default)]
pub struct Issue {
    pub bound: Bound,
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    /// See [`KUBELET_EXPIRATION_SECONDS`].
    pub warn_after: Option<i64>,
    /// Seconds since the epoch.
    pub now: i64,
    /// The token's unique id (a UUID), the `credential-id` of requests made with it.
    pub jti: String,
}

impl Claims {
    /// The claims of a bound token.
    pub fn bound(mut issue: Issue) -> Claims {
        issue.bound.warnafter = issue.warn_after;
        Claims {
            iss: ISSUER.to_string(),
            sub: user_name(&issue.bound.namespace, &issue.bound.service_account.name),
            aud: issue.audiences,
            exp: Some(issue.now + issue.expiration_seconds),
            iat: Some(issue.now),
            nbf: Some(issue.now),
            jti: Some(issue.jti),
            kubernetes: Some(issue.bound),
            ..Claims::default()
        }
    }

    /// The claims of the token in Secret `secret` for ServiceAccount `sa`.
    pub fn legacy(namespace: &str, sa: &ObjectRef, secret: &str) -> Claims {
        Claims {
            iss: LEGACY_ISSUER.to_string(),
            sub: user_name(namespace, &sa.name),
            legacy_namespace: Some(namespace.to_string()),
            legacy_secret: Some(secret.to_string()),
            legacy_name: Some(sa.name.clone()),
            legacy_uid: Some(sa.uid.clone()),
            ..Claims::default()
        }
    }
}

/// A token whose signature, issuer, times and audience were good: what it says, for the
/// caller to check against the objects it names (each must exist with that uid and not
/// be terminating for longer than [`DELETION_GRACE_SECONDS`]; a legacy token's Secret
/// must still hold it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verified {
    Bound {
        bound: Bound,
        jti: Option<String>,
    },
    Legacy {
        namespace: String,
        service_account: ObjectRef,
        secret: String,
    },
}

impl Verified {
    pub fn namespace(&self) -> &str {
        match self {
            Verified::Bound { bound, .. } => &bound.namespace,
            Verified::Legacy { namespace, .. } => namespace,
        }
    }

    pub fn service_account(&self) -> &ObjectRef {
        match self {
            Verified::Bound { bound, .. } => &bound.service_account,
            Verified::Legacy {
                service_account, ..
            } => service_account,
        }
    }
}

/// Why a token was refused (logged; the client sees 401).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT, or not one of ours (another algorithm or key).
    NotOurs,
    BadSignature,
    WrongIssuer,
    Expired,
    NotYetValid,
    WrongAudience,
    /// Signed by us but missing the claims a ServiceAccount token has.
    Incomplete,
}

/// Whether `token` has a JWT's shape (three base64url parts, a JSON header), so that
/// other kinds of bearer token are not parsed as one.
pub fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

/// The DER prefix of a P-256 public key's SubjectPublicKeyInfo (the uncompressed point
/// follows): how kube-apiserver derives a key id, and how `sa.pub` is written.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The cluster's service-account signing key (ECDSA P-256).
pub struct Keys {
    pkcs8: Vec<u8>,
    /// The uncompressed public point, 0x04 || x || y.
    point: Vec<u8>,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").field("kid", &self.kid).finish()
    }
}

impl Keys {
    /// A new random key.
    pub fn generate() -> Result<Keys, String> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| "generating the service-account key".to_string())?;
        Keys::from_pkcs8_der(doc.as_ref())
    }

    /// The key in its PKCS#8 DER form.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Keys, String> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
                .map_err(|e| format!("not a PKCS#8 ECDSA P-256 key: {e}"))?;
        let point = pair.public_key().as_ref().to_vec();
        let kid = b64url(ring::digest::digest(&ring::digest::SHA256, &spki(&point)).as_ref());
        Ok(Keys {
            pkcs8: der.to_vec(),
            decoding: DecodingKey::from_ec_der(&point),
            encoding: EncodingKey::from_ec_der(der),
            point,
            kid,
        })
    }

    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        spki(&self.point)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JSON Web Key Set (`/openid/v1/jwks`).
    pub fn jwks(&self) -> Value {
        let (x, y) = self.point[1..].split_at(32);
        json!({ "keys": [{
            "use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
            "x": b64url(x), "y": b64url(y),
        }] })
    }

    /// The signed token for `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    /// Checks `token`'s signature, issuer, lifetime at `now` and (for bound tokens)
    /// that one of its audiences is in `audiences`.
    pub fn verify(&self, token: &str, audiences: &[String], now: i64) -> Result<Verified, Refusal> {
        self.verify_signature(token)?.check(audiences, now)
    }

    /// The claims of `token` if it is one of ours with a good signature (nothing else is
    /// checked: see [`Claims::check`]). What a server may cache per token.
    pub fn verify_signature(&self, token: &str) -> Result<Claims, Refusal> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Refusal::NotOurs)?;
        if header.alg != Algorithm::ES256 || header.kid.as_deref().is_some_and(|k| k != self.kid) {
            return Err(Refusal::NotOurs);
        }
        // Only the signature is jsonwebtoken's to check; the rest is checked below.
        let mut v = Validation::new(Algorithm::ES256);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Refusal::BadSignature,
                _ => Refusal::NotOurs,
            })?
            .claims;
        Ok(claims)
    }
}

impl Claims {
    /// The checks after the signature's: issuer, lifetime at `now` (a minute's leeway),
    /// for bound tokens an audience in `audiences`, and the claims a ServiceAccount
    /// token has.
    pub fn check(self, audiences: &[String], now: i64) -> Result<Verified, Refusal> {
        let claims = self;
        match claims.iss.as_str() {
            ISSUER => {
                let exp = claims.exp.ok_or(Refusal::Incomplete)?;
                if now - LEEWAY_SECONDS > exp {
                    return Err(Refusal::Expired);
                }
                let future = |t: Option<i64>| t.is_some_and(|t| now + LEEWAY_SECONDS < t);
                if future(claims.nbf) || future(claims.iat) {
                    return Err(Refusal::NotYetValid);
                }
                if !claims.aud.iter().any(|a| audiences.contains(a)) {
                    return Err(Refusal::WrongAudience);
                }
                let bound = claims.kubernetes.ok_or(Refusal::Incomplete)?;
                if claims.sub != user_name(&bound.namespace, &bound.service_account.name) {
                    return Err(Refusal::Incomplete);
                }
                Ok(Verified::Bound {
                    bound,
                    jti: claims.jti,
                })
            }
            LEGACY_ISSUER => {
                let (Some(namespace), Some(name), Some(uid), Some(secret)) = (
                    claims.legacy_namespace,
                    claims.legacy_name,
                    claims.legacy_uid,
                    claims.legacy_secret,
                ) else {
                    return Err(Refusal::Incomplete);
                };
                if claims.sub != user_name(&namespace, &name) {
                    return Err(Refusal::Incomplete);
                }
                Ok(Verified::Legacy {
                    namespace,
                    service_account: ObjectRef { name, uid },
                    secret,
                })
            }
            _ => Err(Refusal::WrongIssuer),
        }
    }
}

fn spki(point: &[u8]) -> Vec<u8> {
    let mut der = P256_SPKI_PREFIX.to_vec();
    der.extend_from_slice(point);
    der
}

/// PEM armour for DER `bytes` under `label` (64-column base64, as openssl writes it).
pub fn pem(label: &str, bytes: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER inside the first PEM block labelled `label` of `text`.
pub fn pem_der(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A TokenRequest's spec, defaulted and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequestSpec {
    pub audiences: Vec<String>,
    pub expiration_seconds: i64,
    pub bound_object: Option<BoundObjectRef>,
}

/// `spec.boundObjectRef`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundObjectRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: Option<String>,
}

impl BoundObjectRef {
    /// The object's group (empty for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    /// Go's `GroupVersionKind.String()`: `apps/v1, Kind=Deployment`, `/v1, Kind=Pod`.
    pub fn gvk_string(&self) -> String {
        let (group, version) = self
            .api_version
            .rsplit_once('/')
            .unwrap_or(("", self.api_version.as_str()));
        format!("{group}/{version}, Kind={}", self.kind)
    }
}

/// Reads, defaults (1 hour; the audiences are the caller's default when none are
/// given) and validates a TokenRequest's spec as kube-apiserver does.
pub fn token_request_spec(
    obj: &Value,
    default_audiences: &[String],
) -> Result<TokenRequestSpec, Vec<FieldError>> {
    let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut errs = Vec::new();
    let expiration_seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v.as_i64().unwrap_or(0),
    };
    if expiration_seconds < MIN_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid_rendered(
            "spec.expirationSeconds",
            expiration_seconds.to_string(),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration_seconds > MAX_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid_rendered(
            "spec.expirationSeconds",
            expiration_seconds.to_string(),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = default_audiences.to_vec();
    }
    let bound_object = spec
        .get("boundObjectRef")
        .filter(|r| r.is_object())
        .map(|r| BoundObjectRef {
            api_version: text(r, "apiVersion"),
            kind: text(r, "kind"),
            name: text(r, "name"),
            uid: Some(text(r, "uid")).filter(|u| !u.is_empty()),
        });
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(TokenRequestSpec {
        audiences,
        expiration_seconds,
        bound_object,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(keys: &Keys, now: i64) -> String {
        let claims = Claims::bound(Issue {
            bound: Bound {
                namespace: "default".into(),
                service_account: ObjectRef {
                    name: "build-robot".into(),
                    uid: "u-1".into(),
                },
                pod: Some(ObjectRef {
                    name: "p".into(),
                    uid: "u-2".into(),
                }),
                ..Bound::default()
            },
            audiences: vec![ISSUER.into()],
            expiration_seconds: 3600,
            warn_after: None,
            now,
            jti: "j-1".into(),
        });
        keys.sign(&claims).expect("sign")
    }

    fn api() -> Vec<String> {
        vec![ISSUER.to_string()]
    }

    #[test]
    fn a_bound_token_verifies_until_it_expires() {
        let keys = Keys::generate().expect("key");
        let t = issue(&keys, 1_000);
        assert!(looks_like_jwt(&t));
        let v = keys.verify(&t, &api(), 1_000).expect("valid");
        let Verified::Bound { bound, jti } = &v else {
            panic!("not bound: {v:?}")
        };
        assert_eq!(bound.service_account.name, "build-robot");
        assert_eq!(bound.pod.as_ref().map(|p| p.uid.as_str()), Some("u-2"));
        assert_eq!(jti.as_deref(), Some("j-1"));
        assert_eq!(v.namespace(), "default");
        // A minute's leeway either side, for clocks that disagree.
        assert_eq!(keys.verify(&t, &api(), 4_660).map(|_| ()), Ok(()));
        assert_eq!(keys.verify(&t, &api(), 4_661), Err(Refusal::Expired));
        assert_eq!(keys.verify(&t, &api(), 940).map(|_| ()), Ok(()));
        assert_eq!(keys.verify(&t, &api(), 939), Err(Refusal::NotYetValid));
    }

    #[test]
    fn the_audience_must_be_one_the_server_accepts() {
        let keys = Keys::generate().expect("key");
        let t = issue(&keys, 1_000);
        assert_eq!(
            keys.verify(&t, &["https://vault.example".to_string()], 1_000),
            Err(Refusal::WrongAudience)
        );
    }

    #[test]
    fn another_key_or_a_changed_payload_is_refused() {
        let keys = Keys::generate().expect("key");
        let other = Keys::generate().expect("key");
        let t = issue(&other, 1_000);
        assert_eq!(keys.verify(&t, &api(), 1_000), Err(Refusal::NotOurs));
        // Same key id, a payload that was not signed.
        let t = issue(&keys, 1_000);
        let parts: Vec<&str> = t.split('.').collect();
        let forged = Claims {
            sub: user_name("kube-system", "build-robot"),
            ..Claims::legacy("kube-system", &ObjectRef::default(), "s")
        };
        let body = b64url(&serde_json::to_vec(&forged).expect("json"));
        let tampered = format!("{}.{body}.{}", parts[0], parts[2]);
        assert_eq!(
            keys.verify(&tampered, &api(), 1_000),
            Err(Refusal::BadSignature)
        );
        assert_eq!(keys.verify("abc.def", &api(), 1_000), Err(Refusal::NotOurs));
        assert!(!looks_like_jwt("abcdef.0123456789abcdef"));
    }

    #[test]
    fn legacy_tokens_never_expire() {
        let keys = Keys::generate().expect("key");
        let sa = ObjectRef {
            name: "robot".into(),
            uid: "u".into(),
        };
        let t = keys
            .sign(&Claims::legacy("ns1", &sa, "robot-token"))
            .expect("sign");
        let v = keys.verify(&t, &[], i64::MAX - 1).expect("valid");
        assert_eq!(
            v,
            Verified::Legacy {
                namespace: "ns1".into(),
                service_account: sa,
                secret: "robot-token".into(),
            }
        );
    }

    #[test]
    fn keys_survive_their_der_form_and_publish_their_public_half() {
        let keys = Keys::generate().expect("key");
        let again = Keys::from_pkcs8_der(keys.pkcs8_der()).expect("reload");
        assert_eq!(keys.kid(), again.kid());
        let t = issue(&keys, 5);
        assert!(again.verify(&t, &api(), 5).is_ok());
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"][0]["kid"], keys.kid());
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
        let pem_text = pem("PRIVATE KEY", keys.pkcs8_der());
        assert_eq!(
            pem_der(&pem_text, "PRIVATE KEY").as_deref(),
            Some(keys.pkcs8_der())
        );
        assert!(Keys::from_pkcs8_der(b"nonsense").is_err());
    }

    #[test]
    fn token_request_specs_are_defaulted_and_validated() {
        let aud = api();
        let s = token_request_spec(&json!({}), &aud).expect("defaults");
        assert_eq!(s.expiration_seconds, 3600);
        assert_eq!(s.audiences, aud);
        assert_eq!(s.bound_object, None);
        let errs = token_request_spec(&json!({"spec": {"expirationSeconds": 60}}), &aud)
            .expect_err("too short");
        assert_eq!(
            errs[0].message(),
            "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        );
        let errs = token_request_spec(
            &json!({"spec": {"expirationSeconds": 5_000_000_000i64}}),
            &aud,
        )
        .expect_err("too long");
        assert!(errs[0].message().ends_with("larger than 2^32 seconds"));
        let s = token_request_spec(
            &json!({"spec": {"audiences": ["vault"], "boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1", "name": "d"}}}),
            &aud,
        )
        .expect("valid");
        assert_eq!(s.audiences, vec!["vault".to_string()]);
        let r = s.bound_object.expect("ref");
        assert_eq!(r.group(), "apps");
        assert_eq!(r.gvk_string(), "apps/v1, Kind=Deployment");
        assert_eq!(
            BoundObjectRef {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: "p".into(),
                uid: None
            }
            .gvk_string(),
            "/v1, Kind=Pod"
        );
    }
}
