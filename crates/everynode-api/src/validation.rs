//! Validation rules for the kinds everynode serves, reporting what kube-apiserver 1.33
//! reports (daemonset-semantics.md §3, kubectl-compat.md §7–8).
//!
//! Every function returns its field errors in the order Kubernetes produces them, so the
//! aggregate message — which kubectl prints verbatim — matches a real cluster. Values that
//! Kubernetes prints with Go's `%#v` are rendered by the `go` helpers in the same shape.
//!
//! The functions assume defaulting ([`crate::defaults`]) already ran, as it does in the
//! server: a missing `restartPolicy` or `imagePullPolicy` is reported as `Required value`
//! exactly as Kubernetes would report it on an undefaulted object.
//!
//! Layout: format checks (`fmt`), Go-syntax rendering (`go`), object metadata, label
//! selectors, then one section per kind, with the pod-spec rules shared by pods and
//! DaemonSet templates in the middle.
//!
//! Deliberate differences from kube-apiserver, each because the exact behaviour cannot be
//! reproduced or would hurt:
//! - k8s-openapi decodes a missing DaemonSet selector and `selector: {}` alike; both are
//!   treated as missing (the common case), giving the template-labels mismatch error.
//! - On update, spec errors are reported once (Kubernetes validates the spec twice and
//!   lists every spec error two times in `details.causes`).
//! - The diff appended to "pod updates may not change fields other than …" is a short
//!   per-field JSON diff, not Go's `cmp.Diff` of internal structs; pointer fields in
//!   rendered structs show a fixed address.
//! - `metadata.resourceVersion` presence on update is left to the server, which fills it in
//!   for unconditional updates.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetSpec, DaemonSetStatus, DaemonSetUpdateStrategy,
    RollingUpdateDaemonSet,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Affinity, ConfigMap, Container, ContainerPort, DownwardAPIVolumeFile, EnvFromSource, EnvVar,
    Event, HTTPGetAction, KeyToPath, LifecycleHandler, Namespace, Node, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, ObjectFieldSelector, Pod, PodAffinityTerm,
    PodSecurityContext, PodSpec, Probe, ResourceRequirements, Secret, SecurityContext, Service,
    ServicePort, ServiceSpec, Taint, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::defaults::qty;
use crate::field::FieldError;

type Errs = Vec<FieldError>;
type StringMap = BTreeMap<String, String>;

/// How an object's name is checked (Kubernetes' `ValidateNameFunc`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Subdomain,
    Dns1123Label,
    /// Only `/` and `%` and the names `.` / `..` are refused (kube's path-segment rule).
    PathSegment,
    /// RFC 1035 label (starts with a letter): Service names.
    Dns1035Label,
}

/// DaemonSet annotation carrying the internal template generation.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// The value Kubernetes' `ValidateNonnegativeField` rejects with.
const NON_NEGATIVE: &str = "must be greater than or equal to 0";
const IMMUTABLE: &str = "field is immutable";
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------
// Field paths and error shorthands

// Field paths are built for every field validated, error or not: plain pushes, not
// `format!`.
fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        return name.to_string();
    }
    let mut s = String::with_capacity(path.len() + 1 + name.len());
    s.push_str(path);
    s.push('.');
    s.push_str(name);
    s
}

fn idx(path: &str, i: usize) -> String {
    let mut s = String::with_capacity(path.len() + 6);
    s.push_str(path);
    s.push('[');
    let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{i}"));
    s.push(']');
    s
}

fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

fn invalid_num(path: impl Into<String>, n: impl std::fmt::Display, detail: &str) -> FieldError {
    FieldError::invalid_rendered(path, n.to_string(), detail)
}

fn not_supported_rendered(
    path: impl Into<String>,
    rendered: String,
    supported: &[&str],
) -> FieldError {
    let mut e = FieldError::not_supported(path, "", supported);
    e.value = Some(rendered);
    e
}

fn duplicate_rendered(path: impl Into<String>, rendered: String, detail: &str) -> FieldError {
    let mut e = FieldError::duplicate(path, "");
    e.value = Some(rendered);
    e.detail = detail.to_string();
    e
}

fn nonneg(errs: &mut Errs, path: impl Into<String>, value: i64) {
    if value < 0 {
        errs.push(invalid_num(path, value, NON_NEGATIVE));
    }
}

/// One `Invalid` error per message, all for the same string value.
fn invalid_each(errs: &mut Errs, path: &str, value: &str, msgs: Vec<String>) {
    errs.extend(
        msgs.into_iter()
            .map(|m| FieldError::invalid(path, value, m)),
    );
}

fn text(v: &Option<String>) -> &str {
    v.as_deref().unwrap_or("")
}

/// Kubernetes compares with `Semantic.DeepEqual`, where a nil and an empty list or map are
/// the same. Serialising and dropping empty containers gives the same notion of equality.
fn semantic_eq<T: Serialize>(a: &T, b: &T) -> bool {
    fn prune(v: serde_json::Value) -> Option<serde_json::Value> {
        use serde_json::Value;
        match v {
            Value::Null => None,
            Value::Array(items) if items.is_empty() => None,
            Value::Array(items) => Some(Value::Array(
                items
                    .into_iter()
                    .map(|i| prune(i).unwrap_or(Value::Null))
                    .collect(),
            )),
            Value::Object(map) => {
                let kept: serde_json::Map<String, Value> = map
                    .into_iter()
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect();
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            other => Some(other),
        }
    }
    let a = serde_json::to_value(a).ok().and_then(prune);
    let b = serde_json::to_value(b).ok().and_then(prune);
    a == b
}

// ---------------------------------------------------------------------------------------
// Format checks (apimachinery's util/validation): each returns Kubernetes' messages.

pub(crate) mod fmt {
    const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
    const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
    const DNS1123_SUBDOMAIN_FMT: &str =
        "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
    const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
    const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
    const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
    const QNAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
    const QNAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
    const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
    const PERCENT_FMT: &str = "[0-9]+%";
    const PERCENT_MSG: &str =
        "a valid percent string must be a numeric string followed by an ending '%'";
    const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
    const CONFIG_MAP_KEY_MSG: &str =
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
    const HTTP_HEADER_FMT: &str = "[-A-Za-z0-9]+";
    const HTTP_HEADER_MSG: &str =
        "a valid HTTP header must consist of alphanumeric characters or '-'";
    pub const RELAXED_ENV_MSG: &str = "a valid environment variable name must consist only of printable ASCII characters other than '='";
    pub const EMPTY: &str = "must be non-empty";

    /// `msg (e.g. 'a' or 'b', regex used for validation is 'fmt')`.
    pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
        if examples.is_empty() {
            return format!("{msg} (regex used for validation is '{fmt}')");
        }
        // As Go writes it: each example followed by ", ", joined by " or " (so two
        // spaces before each "or").
        let shown: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
        format!(
            "{msg} (e.g. {}regex used for validation is '{fmt}')",
            shown.join(" or ")
        )
    }

    pub fn max_len(n: usize) -> String {
        format!("must be no more than {n} characters")
    }

    pub fn inclusive_range(lo: i64, hi: i64) -> String {
        format!("must be between {lo} and {hi}, inclusive")
    }

    fn lower_alnum(b: u8) -> bool {
        b.is_ascii_lowercase() || b.is_ascii_digit()
    }

    fn is_label(v: &str) -> bool {
        let b = v.as_bytes();
        !b.is_empty()
            && lower_alnum(b[0])
            && lower_alnum(b[b.len() - 1])
            && b.iter().all(|&c| lower_alnum(c) || c == b'-')
    }

    fn is_subdomain(v: &str) -> bool {
        v.split('.').all(is_label)
    }

    pub fn dns1123_label(v: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if v.len() > 63 {
            errs.push(max_len(63));
        }
        if !is_label(v) {
            if is_subdomain(v) {
                errs.push("must not contain dots".to_string());
            } else {
                errs.push(regex_error(
                    DNS1123_LABEL_MSG,
                    DNS1123_LABEL_FMT,
                    &["my-name", "123-abc"],
                ));
            }
        }
        errs
    }

    pub fn dns1123_subdomain(v: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if v.len() > 253 {
            errs.push(max_len(253));
        }
        if !is_subdomain(v) {
            errs.push(regex_error(
                DNS1123_SUBDOMAIN_MSG,
                DNS1123_SUBDOMAIN_FMT,
                &["example.com"],
            ));
        }
        errs
    }

    pub fn dns1035_label(v: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if v.len() > 63 {
            errs.push(max_len(63));
        }
        let ok = is_label(v) && v.as_bytes()[0].is_ascii_lowercase();
        if !ok {
            errs.push(regex_error(
                DNS1035_LABEL_MSG,
                DNS1035_LABEL_FMT,
                &["my-name", "abc-123"],
            ));
        }
        errs
    }

    /// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
    fn is_qname_part(v: &str) -> bool {
        let b = v.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter()
                .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    }

    /// A label key, annotation key, finalizer or other "qualified name".
    pub fn qualified_name(v: &str) -> Vec<String> {
        let mut errs = Vec::new();
        let parts: Vec<&str> = v.split('/').collect();
        let name = match parts.as_slice() {
            [name] => *name,
            [prefix, name] => {
                if prefix.is_empty() {
                    errs.push(format!("prefix part {EMPTY}"));
                } else {
                    let msgs = dns1123_subdomain(prefix);
                    errs.extend(msgs.into_iter().map(|m| format!("prefix part {m}")));
                }
                *name
            }
            _ => {
                let regex = regex_error(QNAME_MSG, QNAME_FMT, &["MyName", "my.name", "123-abc"]);
                return vec![format!(
                    "a qualified name {regex} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
                )];
            }
        };
        if name.is_empty() {
            errs.push(format!("name part {EMPTY}"));
        } else if name.len() > 63 {
            errs.push(format!("name part {}", max_len(63)));
        }
        if !is_qname_part(name) {
            let regex = regex_error(QNAME_MSG, QNAME_FMT, &["MyName", "my.name", "123-abc"]);
            errs.push(format!("name part {regex}"));
        }
        errs
    }

    pub fn label_value(v: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if v.len() > 63 {
            errs.push(max_len(63));
        }
        if !v.is_empty() && !is_qname_part(v) {
            errs.push(regex_error(
                LABEL_VALUE_MSG,
                LABEL_VALUE_FMT,
                &["MyValue", "my_value", "12345"],
            ));
        }
        errs
    }

    /// An IANA service name (container and service port names).
    pub fn port_name(v: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if v.len() > 15 {
            errs.push(max_len(15));
        }
        if v.is_empty() || !v.bytes().all(|b| lower_alnum(b) || b == b'-') {
            errs.push(
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into(),
            );
        }
        if !v.bytes().any(|b| b.is_ascii_lowercase()) {
            errs.push("must contain at least one letter (a-z)".into());
        }
        if v.contains("--") {
            errs.push("must not contain consecutive hyphens".into());
        }
        if v.starts_with('-') || v.ends_with('-') {
            errs.push("must not begin or end with a hyphen".into());
        }
        errs
    }

    pub fn port_num(n: i64) -> Vec<String> {
        if (1..=65535).contains(&n) {
            Vec::new()
        } else {
            vec![inclusive_range(1, 65535)]
        }
    }

    pub fn is_percent(v: &str) -> bool {
        v.strip_suffix('%')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    }

    pub fn percent(v: &str) -> Vec<String> {
        if is_percent(v) {
            Vec::new()
        } else {
            vec![regex_error(PERCENT_MSG, PERCENT_FMT, &["1%", "93%"])]
        }
    }

    /// Environment variable names (the relaxed rule, on by default since 1.32).
    pub fn env_var_name(v: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if v.is_empty() {
            errs.push(format!("environment variable name {EMPTY}"));
        }
        if v.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
            errs.push(RELAXED_ENV_MSG.to_string());
        }
        errs
    }

    pub fn config_map_key(v: &str) -> Vec<String> {
        let mut errs = Vec::new();
        if v.len() > 253 {
            errs.push(max_len(253));
        }
        let ok = !v.is_empty()
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            errs.push(regex_error(
                CONFIG_MAP_KEY_MSG,
                CONFIG_MAP_KEY_FMT,
                &["key.name", "KEY_NAME", "key-name"],
            ));
        }
        if v == "." {
            errs.push("must not be '.'".into());
        } else if v == ".." {
            errs.push("must not be '..'".into());
        } else if v.starts_with("..") {
            errs.push("must not start with '..'".into());
        }
        errs
    }

    pub fn http_header_name(v: &str) -> Vec<String> {
        let ok = !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if ok {
            Vec::new()
        } else {
            vec![regex_error(
                HTTP_HEADER_MSG,
                HTTP_HEADER_FMT,
                &["X-Header-Name"],
            )]
        }
    }

    /// Names that must be usable as one URL path segment.
    pub fn path_segment_name(v: &str, prefix: bool) -> Vec<String> {
        if !prefix {
            for bad in [".", ".."] {
                if v == bad {
                    return vec![format!("may not be '{bad}'")];
                }
            }
        }
        ["/", "%"]
            .iter()
            .filter(|c| v.contains(*c))
            .map(|c| format!("may not contain '{c}'"))
            .collect()
    }

    pub const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
    pub const CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

    pub fn is_ip(v: &str) -> bool {
        v.parse::<std::net::IpAddr>().is_ok()
    }

    pub fn is_cidr(v: &str) -> bool {
        let Some((ip, bits)) = v.split_once('/') else {
            return false;
        };
        let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
            return false;
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        bits.parse::<u32>().is_ok_and(|b| b <= max) && !bits.starts_with('+')
    }
}

// ---------------------------------------------------------------------------------------
// Go-syntax rendering of values, as `%#v` prints them in `Invalid value: …`.

pub(crate) mod go {
    use super::*;
    use crate::field::quote;

    /// A non-nil pointer field: Go prints an address, which cannot be reproduced.
    const ADDRESS: &str = "0xc000010000";

    pub fn string_map(m: Option<&StringMap>) -> String {
        match m {
            None => "map[string]string(nil)".into(),
            Some(m) => {
                let entries: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{}:{}", quote(k), quote(v)))
                    .collect();
                format!("map[string]string{{{}}}", entries.join(", "))
            }
        }
    }

    pub fn string_slice(v: Option<&[String]>) -> String {
        match v {
            None => "[]string(nil)".into(),
            Some(v) => {
                let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
                format!("[]string{{{}}}", items.join(", "))
            }
        }
    }

    pub fn pointer(type_name: &str, present: bool) -> String {
        if present {
            format!("(*{type_name})({ADDRESS})")
        } else {
            format!("(*{type_name})(nil)")
        }
    }

    fn requirement(r: &LabelSelectorRequirement) -> String {
        format!(
            "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
            quote(&r.key),
            quote(&r.operator),
            string_slice(r.values.as_deref())
        )
    }

    pub fn label_selector(sel: &LabelSelector) -> String {
        let exprs = match &sel.match_expressions {
            None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
            Some(v) => {
                let items: Vec<String> = v.iter().map(requirement).collect();
                format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
            }
        };
        format!(
            "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{exprs}}}",
            string_map(sel.match_labels.as_ref())
        )
    }

    pub fn int_or_string(v: Option<&IntOrString>) -> String {
        match v {
            Some(IntOrString::String(s)) => {
                format!(
                    "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                    quote(s)
                )
            }
            Some(IntOrString::Int(i)) => {
                format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}")
            }
            None => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".into(),
        }
    }

    /// Go's `time.Time.String()` for a UTC instant.
    pub fn time(t: &jiff::Timestamp) -> String {
        let base = t.strftime("%Y-%m-%d %H:%M:%S").to_string();
        let nanos = t.subsec_nanosecond();
        let fraction = if nanos == 0 {
            String::new()
        } else {
            format!(".{nanos:09}").trim_end_matches('0').to_string()
        };
        format!("{base}{fraction} +0000 UTC")
    }

    pub fn owner_reference(r: &OwnerReference) -> String {
        format!(
            "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
            quote(&r.api_version),
            quote(&r.kind),
            quote(&r.name),
            quote(&r.uid),
            pointer("bool", r.controller.is_some()),
            pointer("bool", r.block_owner_deletion.is_some())
        )
    }

    pub fn taint(t: &Taint) -> String {
        format!(
            "core.Taint{{Key:{}, Value:{}, Effect:{}, TimeAdded:{}}}",
            quote(&t.key),
            quote(super::text(&t.value)),
            quote(&t.effect),
            pointer("v1.Time", t.time_added.is_some())
        )
    }

    /// The internal (unversioned) DaemonSet strategy, as the NotSupported error shows it.
    pub fn daemonset_strategy(st: Option<&DaemonSetUpdateStrategy>) -> String {
        let type_ = st.map(|x| super::text(&x.type_)).unwrap_or("");
        let rolling = st.is_some_and(|s| s.rolling_update.is_some());
        format!(
            "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:{}}}",
            quote(type_),
            pointer("apps.RollingUpdateDaemonSet", rolling)
        )
    }

    /// A ControllerRevision's data as the internal `runtime.Unknown` it converts to.
    pub fn raw_extension(v: Option<&serde_json::Value>) -> String {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return "null".into();
        };
        let raw = serde_json::to_vec(v).unwrap_or_default();
        let bytes: Vec<String> = raw.iter().map(|b| format!("{b:#04x}")).collect();
        format!(
            "runtime.Unknown{{TypeMeta:runtime.TypeMeta{{APIVersion:\"\", Kind:\"\"}}, Raw:[]uint8{{{}}}, ContentEncoding:\"\", ContentType:\"application/json\"}}",
            bytes.join(", ")
        )
    }
}

// ---------------------------------------------------------------------------------------
// Object metadata

fn name_messages(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    let masked;
    let name = if prefix && name.len() > 1 && name.ends_with('-') {
        // A generated suffix follows the prefix, so a trailing dash is fine. Kubernetes
        // replaces the last two characters by one letter to check the rest.
        let mut chars: Vec<char> = name.chars().collect();
        chars.truncate(chars.len().saturating_sub(2));
        chars.push('a');
        masked = chars.into_iter().collect::<String>();
        masked.as_str()
    } else {
        name
    };
    match rule {
        NameRule::Dns1123Subdomain => fmt::dns1123_subdomain(name),
        NameRule::Dns1123Label => fmt::dns1123_label(name),
        NameRule::Dns1035Label => fmt::dns1035_label(name),
        NameRule::PathSegment => fmt::path_segment_name(name, prefix),
    }
}

/// Create-time metadata rules (`ValidateObjectMeta`): name or generateName, name format,
/// namespace presence, labels, annotations, owner references and finalizers.
pub fn validate_object_meta(m: &ObjectMeta, namespaced: bool, rule: NameRule, path: &str) -> Errs {
    object_meta(m, namespaced, rule, path, true)
}

/// `kube_finalizers`: the core API group also requires unqualified finalizer names to be
/// one of the standard ones; other groups (coordination) do not.
fn object_meta(
    m: &ObjectMeta,
    namespaced: bool,
    rule: NameRule,
    path: &str,
    kube_finalizers: bool,
) -> Errs {
    let mut errs = Vec::new();
    let generate_name = text(&m.generate_name);
    if !generate_name.is_empty() {
        let msgs = name_messages(rule, generate_name, true);
        invalid_each(&mut errs, &child(path, "generateName"), generate_name, msgs);
    }
    let name = text(&m.name);
    if name.is_empty() {
        errs.push(FieldError::required(
            child(path, "name"),
            "name or generateName is required",
        ));
    } else {
        invalid_each(
            &mut errs,
            &child(path, "name"),
            name,
            name_messages(rule, name, false),
        );
    }
    let namespace = text(&m.namespace);
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(child(path, "namespace"), ""));
        } else {
            let msgs = name_messages(NameRule::Dns1123Label, namespace, false);
            invalid_each(&mut errs, &child(path, "namespace"), namespace, msgs);
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            child(path, "namespace"),
            "not allowed on this type",
        ));
    }
    nonneg(
        &mut errs,
        child(path, "generation"),
        m.generation.unwrap_or(0),
    );
    errs.extend(meta_content(m, path, kube_finalizers));
    errs
}

/// The metadata rules shared by create and update: labels, annotations, owner
/// references, finalizers.
fn meta_content(m: &ObjectMeta, path: &str, kube_finalizers: bool) -> Errs {
    let mut errs = validate_labels(m.labels.as_ref(), &child(path, "labels"));
    errs.extend(validate_annotations(
        m.annotations.as_ref(),
        &child(path, "annotations"),
    ));
    errs.extend(owner_references(
        m.owner_references.as_deref().unwrap_or(&[]),
        &child(path, "ownerReferences"),
    ));
    let finalizers = m.finalizers.as_deref().unwrap_or(&[]);
    errs.extend(validate_finalizers(finalizers, &child(path, "finalizers")));
    if kube_finalizers {
        for (i, f) in finalizers.iter().enumerate() {
            errs.extend(kube_finalizer_name(f, &idx(&child(path, "finalizers"), i)));
        }
    }
    errs
}

/// Update-time metadata rules (`ValidateObjectMetaUpdate`): identity fields are
/// immutable, no finalizers may be added while deleting, generation never decreases, and
/// the content rules apply to the new object.
///
/// `resourceVersion` presence is left to the server, which fills it in for unconditional
/// updates before validating.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta, path: &str) -> Errs {
    object_meta_update(new, old, path, true)
}

fn object_meta_update(
    new: &ObjectMeta,
    old: &ObjectMeta,
    path: &str,
    kube_finalizers: bool,
) -> Errs {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_set: BTreeSet<&String> = old.finalizers.iter().flatten().collect();
        let added: BTreeSet<String> = new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_set.contains(f))
            .cloned()
            .collect();
        if !added.is_empty() {
            let added: Vec<String> = added.into_iter().collect();
            errs.push(FieldError::forbidden(
                child(path, "finalizers"),
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    go::string_slice(Some(&added))
                ),
            ));
        }
    }
    let (new_gen, old_gen) = (new.generation.unwrap_or(0), old.generation.unwrap_or(0));
    if new_gen < old_gen {
        errs.push(invalid_num(
            child(path, "generation"),
            new_gen,
            "must not be decremented",
        ));
    }
    for (field, n, o) in [
        ("name", &new.name, &old.name),
        ("namespace", &new.namespace, &old.namespace),
        ("uid", &new.uid, &old.uid),
    ] {
        if text(n) != text(o) {
            errs.push(FieldError::invalid(child(path, field), text(n), IMMUTABLE));
        }
    }
    let stamp = |t: &Option<Time>| t.as_ref().map(|t| t.0);
    if stamp(&new.creation_timestamp) != stamp(&old.creation_timestamp) {
        let shown = match &new.creation_timestamp {
            Some(t) => go::time(&t.0),
            None => "0001-01-01 00:00:00 +0000 UTC".to_string(),
        };
        errs.push(invalid_num(
            child(path, "creationTimestamp"),
            shown,
            IMMUTABLE,
        ));
    }
    if stamp(&new.deletion_timestamp) != stamp(&old.deletion_timestamp) {
        let shown = new
            .deletion_timestamp
            .as_ref()
            .map_or("null".to_string(), |t| go::time(&t.0));
        errs.push(invalid_num(
            child(path, "deletionTimestamp"),
            shown,
            IMMUTABLE,
        ));
    }
    if new.deletion_grace_period_seconds != old.deletion_grace_period_seconds {
        let shown = new
            .deletion_grace_period_seconds
            .map_or("null".to_string(), |v| v.to_string());
        errs.push(invalid_num(
            child(path, "deletionGracePeriodSeconds"),
            shown,
            IMMUTABLE,
        ));
    }
    errs.extend(validate_labels(new.labels.as_ref(), &child(path, "labels")));
    errs.extend(validate_annotations(
        new.annotations.as_ref(),
        &child(path, "annotations"),
    ));
    errs.extend(owner_references(
        new.owner_references.as_deref().unwrap_or(&[]),
        &child(path, "ownerReferences"),
    ));
    if kube_finalizers {
        for (i, f) in new.finalizers.iter().flatten().enumerate() {
            errs.extend(kube_finalizer_name(f, &idx(&child(path, "finalizers"), i)));
        }
    }
    errs
}

/// Label keys are qualified names, values at most 63 characters of the label alphabet.
pub fn validate_labels(labels: Option<&StringMap>, path: &str) -> Errs {
    let mut errs = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        invalid_each(&mut errs, path, k, fmt::qualified_name(k));
        invalid_each(&mut errs, path, v, fmt::label_value(v));
    }
    errs
}

/// A label key (taint keys, selector keys, topology keys…).
fn label_name(errs: &mut Errs, k: &str, path: &str) {
    invalid_each(errs, path, k, fmt::qualified_name(k));
}

fn validate_annotations(annotations: Option<&StringMap>, path: &str) -> Errs {
    let mut errs = Vec::new();
    let mut total = 0;
    for (k, v) in annotations.into_iter().flatten() {
        invalid_each(&mut errs, path, k, fmt::qualified_name(&k.to_lowercase()));
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

fn owner_references(refs: &[OwnerReference], path: &str) -> Errs {
    let mut errs = Vec::new();
    let mut first_controller: Option<String> = None;
    for r in refs {
        let version = match r.api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => *v,
            [_, v] => *v,
            _ => "",
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                &r.api_version,
                "version must not be empty",
            ));
        }
        for (field, value) in [("kind", &r.kind), ("name", &r.name), ("uid", &r.uid)] {
            if value.is_empty() {
                errs.push(FieldError::invalid(
                    child(path, field),
                    "",
                    "must not be empty",
                ));
            }
        }
        if r.api_version == "v1" && r.kind == "Event" {
            errs.push(invalid_num(
                path,
                go::owner_reference(r),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.controller == Some(true) {
            let this = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => {
                    let all: Vec<String> = refs.iter().map(go::owner_reference).collect();
                    errs.push(invalid_num(
                        path,
                        format!("[]v1.OwnerReference{{{}}}", all.join(", ")),
                        &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                    ));
                }
                None => first_controller = Some(this),
            }
        }
    }
    errs
}

fn validate_finalizers(finalizers: &[String], path: &str) -> Errs {
    let mut errs = Vec::new();
    for f in finalizers {
        invalid_each(&mut errs, path, f, fmt::qualified_name(f));
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has("orphan") && has("foregroundDeletion") {
        errs.push(invalid_num(
            path,
            go::string_slice(Some(finalizers)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// An unqualified finalizer must be one of the standard names.
fn kube_finalizer_name(f: &str, path: &str) -> Errs {
    let standard = ["kubernetes", "orphan", "foregroundDeletion"];
    if !f.contains('/') && !standard.contains(&f) {
        return vec![FieldError::invalid(
            path,
            f,
            "name is neither a standard finalizer name nor is it fully qualified",
        )];
    }
    Vec::new()
}

// ---------------------------------------------------------------------------------------
// Label selectors

/// `ValidateLabelSelector`: valid keys and values, operators with their value rules.
/// `allow_invalid_values` is set on updates whose old object already had bad values.
/// `ValidateLabelSelector` at `path` (ClusterRole aggregation selectors).
pub(crate) fn validate_label_selector(sel: &LabelSelector, path: &str) -> Errs {
    label_selector(sel, path, false)
}

fn label_selector(sel: &LabelSelector, path: &str, allow_invalid_values: bool) -> Errs {
    let mut errs = validate_labels(sel.match_labels.as_ref(), &child(path, "matchLabels"));
    for (i, r) in sel.match_expressions.iter().flatten().enumerate() {
        errs.extend(selector_requirement(
            r,
            &idx(&child(path, "matchExpressions"), i),
            allow_invalid_values,
        ));
    }
    errs
}

fn selector_requirement(
    r: &LabelSelectorRequirement,
    path: &str,
    allow_invalid_values: bool,
) -> Errs {
    let mut errs = Vec::new();
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            child(path, "values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            child(path, "values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
        other => errs.push(FieldError::invalid(
            child(path, "operator"),
            other,
            "not a valid selector operator",
        )),
    }
    label_name(&mut errs, &r.key, &child(path, "key"));
    if !allow_invalid_values {
        for (i, v) in values.iter().enumerate() {
            invalid_each(
                &mut errs,
                &idx(&child(path, "values"), i),
                v,
                fmt::label_value(v),
            );
        }
    }
    errs
}

/// Whether the selector converts to a working selector (`LabelSelectorAsSelector`).
fn selector_is_well_formed(sel: &LabelSelector) -> bool {
    label_selector(sel, "", false).is_empty()
}

fn selector_has_invalid_values(sel: &LabelSelector) -> bool {
    let mut values = sel
        .match_expressions
        .iter()
        .flatten()
        .flat_map(|r| r.values.iter().flatten());
    values.any(|v| !fmt::label_value(v).is_empty())
}

/// Label-selector semantics: every matchLabels pair and every expression must hold.
pub(crate) fn selector_matches(sel: &LabelSelector, labels: &StringMap) -> bool {
    let labels_ok = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = sel.match_expressions.iter().flatten().all(|r| {
        let values = r.values.as_deref().unwrap_or(&[]);
        let current = labels.get(&r.key);
        match r.operator.as_str() {
            "In" => current.is_some_and(|c| values.contains(c)),
            "NotIn" => current.is_none_or(|c| !values.contains(c)),
            "Exists" => current.is_some(),
            "DoesNotExist" => current.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// A DaemonSet selector that is entirely unset. k8s-openapi decodes a missing selector and
/// `selector: {}` to the same empty value; the missing one is far more common, so an
/// empty value is treated as absent (Kubernetes' nil selector, which selects nothing).
fn selector_is_unset(sel: &LabelSelector) -> bool {
    sel.match_labels.is_none() && sel.match_expressions.is_none()
}

// ---------------------------------------------------------------------------------------
// DaemonSet

/// The internal template generation, kept in an annotation on the v1 object.
fn template_generation(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)?
        .parse()
        .ok()
}

/// Create validation: metadata (namespaced, DNS subdomain name) and the spec.
pub fn validate_daemonset(ds: &DaemonSet) -> Errs {
    let mut errs = validate_object_meta(&ds.metadata, true, NameRule::Dns1123Subdomain, "metadata");
    let spec = ds.spec.clone().unwrap_or_default();
    errs.extend(daemonset_spec(
        &spec,
        template_generation(&ds.metadata).unwrap_or(0),
        false,
    ));
    errs
}

/// Update validation: the create rules on the new object, metadata update rules, template
/// generation consistency and (apps/v1) an immutable selector.
pub fn validate_daemonset_update(new: &DaemonSet, old: &DaemonSet) -> Errs {
    let new_spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.spec.clone().unwrap_or_default();
    let allow_invalid = selector_has_invalid_values(&old_spec.selector);
    let mut errs =
        validate_object_meta(&new.metadata, true, NameRule::Dns1123Subdomain, "metadata");
    let new_tg = template_generation(&new.metadata);
    errs.extend(daemonset_spec(
        &new_spec,
        new_tg.unwrap_or(0),
        allow_invalid,
    ));
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        "metadata",
    ));
    // The server bumps the generation when the stored template changes at all, so the
    // templates are compared exactly here (not semantically) to agree with it.
    if let (Some(new_tg), Some(old_tg)) = (new_tg, template_generation(&old.metadata)) {
        let changed = new_spec.template != old_spec.template;
        errs.extend(template_generation_update(new_tg, old_tg, changed));
    }
    if !semantic_eq(&new_spec.selector, &old_spec.selector) {
        let shown = if selector_is_unset(&new_spec.selector) {
            "null".to_string()
        } else {
            go::label_selector(&new_spec.selector)
        };
        errs.push(invalid_num("spec.selector", shown, IMMUTABLE));
    }
    errs
}

fn template_generation_update(new: i64, old: i64, template_changed: bool) -> Errs {
    let path = "spec.templateGeneration";
    if new < old {
        return vec![invalid_num(path, new, "must not be decremented")];
    }
    if new == old && template_changed {
        return vec![invalid_num(
            path,
            new,
            "must be incremented upon template update",
        )];
    }
    if new > old && !template_changed {
        return vec![invalid_num(
            path,
            new,
            "must not be incremented without template update",
        )];
    }
    Vec::new()
}

/// `/status` update validation: metadata update rules, non-negative counters and a
/// collision count that never goes down.
pub fn validate_daemonset_status_update(new: &DaemonSet, old: &DaemonSet) -> Errs {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, "metadata");
    let status = new.status.clone().unwrap_or_default();
    errs.extend(daemonset_status(&status));
    let new_count = status.collision_count;
    let old_count = old.status.as_ref().and_then(|s| s.collision_count);
    let decremented = match (new_count, old_count) {
        (None, Some(_)) => true,
        (Some(n), Some(o)) => n < o,
        _ => false,
    };
    if decremented {
        errs.push(invalid_num(
            "status.collisionCount",
            new_count.unwrap_or(0),
            "cannot be decremented",
        ));
    }
    errs
}

fn daemonset_status(st: &DaemonSetStatus) -> Errs {
    let mut errs = Vec::new();
    let path = |f: &str| child("status", f);
    let fields = [
        (
            "currentNumberScheduled",
            i64::from(st.current_number_scheduled),
        ),
        ("numberMisscheduled", i64::from(st.number_misscheduled)),
        (
            "desiredNumberScheduled",
            i64::from(st.desired_number_scheduled),
        ),
        ("numberReady", i64::from(st.number_ready)),
        ("observedGeneration", st.observed_generation.unwrap_or(0)),
        (
            "updatedNumberScheduled",
            i64::from(st.updated_number_scheduled.unwrap_or(0)),
        ),
        (
            "numberAvailable",
            i64::from(st.number_available.unwrap_or(0)),
        ),
        (
            "numberUnavailable",
            i64::from(st.number_unavailable.unwrap_or(0)),
        ),
    ];
    for (field, value) in fields {
        nonneg(&mut errs, path(field), value);
    }
    if let Some(c) = st.collision_count {
        nonneg(&mut errs, path("collisionCount"), i64::from(c));
    }
    errs
}

/// `ValidateDaemonSetSpec`.
fn daemonset_spec(
    spec: &DaemonSetSpec,
    template_generation: i64,
    allow_invalid_values: bool,
) -> Errs {
    let mut errs = Vec::new();
    let sel = &spec.selector;
    let unset = selector_is_unset(sel);
    if !unset {
        errs.extend(label_selector(sel, "spec.selector", allow_invalid_values));
    }
    let template_meta = spec.template.metadata.clone().unwrap_or_default();
    let labels = template_meta.labels.clone().unwrap_or_default();
    let matches = !unset && selector_matches(sel, &labels);
    if (unset || selector_is_well_formed(sel)) && !matches {
        errs.push(invalid_num(
            "spec.template.metadata.labels",
            go::string_map(template_meta.labels.as_ref()),
            "`selector` does not match template `labels`",
        ));
    }
    let empty = sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    if !unset && empty {
        errs.push(invalid_num(
            "spec.selector",
            go::label_selector(sel),
            "empty selector is invalid for daemonset",
        ));
    }
    let pod_spec = spec.template.spec.clone().unwrap_or_default();
    errs.extend(pod_template(&template_meta, &pod_spec, "spec.template"));
    let restart = text(&pod_spec.restart_policy);
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            restart,
            &["Always"],
        ));
    }
    if pod_spec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonneg(
        &mut errs,
        "spec.minReadySeconds",
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
    );
    nonneg(&mut errs, "spec.templateGeneration", template_generation);
    errs.extend(update_strategy(spec.update_strategy.as_ref()));
    if let Some(limit) = spec.revision_history_limit {
        nonneg(&mut errs, "spec.revisionHistoryLimit", i64::from(limit));
    }
    errs
}

fn update_strategy(st: Option<&DaemonSetUpdateStrategy>) -> Errs {
    let path = "spec.updateStrategy";
    match st.map(|x| text(&x.type_)) {
        Some("OnDelete") => Vec::new(),
        Some("RollingUpdate") => match st.and_then(|s| s.rolling_update.as_ref()) {
            None => vec![FieldError::required(child(path, "rollingUpdate"), "")],
            Some(r) => rolling_update(r, &child(path, "rollingUpdate")),
        },
        _ => vec![not_supported_rendered(
            path,
            go::daemonset_strategy(st),
            &["RollingUpdate", "OnDelete"],
        )],
    }
}

fn rolling_update(r: &RollingUpdateDaemonSet, path: &str) -> Errs {
    let unavailable_path = child(path, "maxUnavailable");
    let surge_path = child(path, "maxSurge");
    let (unavailable, surge) = (r.max_unavailable.as_ref(), r.max_surge.as_ref());
    let mut errs = int_or_percent(unavailable, &unavailable_path);
    errs.extend(int_or_percent(surge, &surge_path));
    errs.extend(at_most_100_percent(unavailable, &unavailable_path));
    errs.extend(at_most_100_percent(surge, &surge_path));
    let has_unavailable = int_or_percent_value(unavailable) != 0;
    let has_surge = int_or_percent_value(surge) != 0;
    if has_unavailable && has_surge {
        errs.push(invalid_num(
            &surge_path,
            go::int_or_string(surge),
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        errs.push(FieldError::required(
            unavailable_path,
            "cannot be 0 when maxSurge is 0",
        ));
    }
    errs
}

/// `ValidatePositiveIntOrPercent`: a non-negative integer or `N%`.
fn int_or_percent(v: Option<&IntOrString>, path: &str) -> Errs {
    match v {
        Some(IntOrString::String(s)) => fmt::percent(s)
            .into_iter()
            .map(|m| invalid_num(path, go::int_or_string(v), &m))
            .collect(),
        Some(IntOrString::Int(i)) if *i < 0 => vec![invalid_num(path, i, NON_NEGATIVE)],
        _ => Vec::new(),
    }
}

fn at_most_100_percent(v: Option<&IntOrString>, path: &str) -> Errs {
    match v {
        Some(IntOrString::String(s)) if fmt::is_percent(s) && percent_value(s) > 100 => {
            vec![invalid_num(
                path,
                go::int_or_string(v),
                "must not be greater than 100%",
            )]
        }
        _ => Vec::new(),
    }
}

fn percent_value(s: &str) -> i64 {
    s.trim_end_matches('%').parse().unwrap_or(i64::MAX)
}

/// The number an int-or-percent stands for when only "is it zero" matters.
fn int_or_percent_value(v: Option<&IntOrString>) -> i64 {
    match v {
        Some(IntOrString::String(s)) if fmt::is_percent(s) => percent_value(s),
        Some(IntOrString::String(s)) => s.parse().unwrap_or(0),
        Some(IntOrString::Int(i)) => i64::from(*i),
        None => 0,
    }
}

// ---------------------------------------------------------------------------------------
// ControllerRevision

pub fn validate_controller_revision(r: &ControllerRevision) -> Errs {
    let mut errs = validate_object_meta(&r.metadata, true, NameRule::Dns1123Subdomain, "metadata");
    if r.data.as_ref().is_none_or(|d| d.0.is_null()) {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    nonneg(&mut errs, "revision", r.revision);
    errs
}

/// Update: the create rules, metadata update rules, and `data` may not change (the
/// revision number may).
pub fn validate_controller_revision_update(
    new: &ControllerRevision,
    old: &ControllerRevision,
) -> Errs {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, "metadata");
    errs.extend(validate_controller_revision(new));
    let data = |r: &ControllerRevision| r.data.as_ref().map(|d| d.0.clone());
    if data(new) != data(old) {
        let shown = go::raw_extension(new.data.as_ref().map(|d| &d.0));
        errs.push(invalid_num("data", shown, IMMUTABLE));
    }
    errs
}

// ---------------------------------------------------------------------------------------
// Pod templates and pod specs

/// `ValidatePodTemplateSpec` (the template's own labels are reported at
/// `<path>.labels`, as Kubernetes does).
fn pod_template(meta: &ObjectMeta, spec: &PodSpec, path: &str) -> Errs {
    let mut errs = validate_labels(meta.labels.as_ref(), &child(path, "labels"));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &child(path, "annotations"),
    ));
    let spec_path = child(path, "spec");
    errs.extend(pod_spec(spec, &spec_path, false));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            child(&spec_path, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpec`. `is_pod` is set for pods (host ports must then equal container
/// ports under host networking); templates may leave host ports unset.
fn pod_spec(spec: &PodSpec, path: &str, is_pod: bool) -> Errs {
    let mut errs = Vec::new();
    let grace = spec.termination_grace_period_seconds;
    match grace {
        None => errs.push(FieldError::required(
            child(path, "terminationGracePeriodSeconds"),
            "",
        )),
        Some(g) => nonneg(&mut errs, child(path, "terminationGracePeriodSeconds"), g),
    }
    let (volumes, volume_errs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or(&[]),
        &child(path, "volumes"),
    );
    errs.extend(volume_errs);
    errs.extend(containers(
        &spec.containers,
        &volumes,
        grace,
        &child(path, "containers"),
    ));
    let init = spec.init_containers.as_deref().unwrap_or(&[]);
    errs.extend(init_containers(
        init,
        &spec.containers,
        &volumes,
        grace,
        &child(path, "initContainers"),
    ));
    errs.extend(host_network_ports(spec, path, is_pod));
    errs.extend(one_of(
        &spec.restart_policy,
        &child(path, "restartPolicy"),
        &["Always", "OnFailure", "Never"],
    ));
    errs.extend(one_of(
        &spec.dns_policy,
        &child(path, "dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &child(path, "nodeSelector"),
    ));
    if let Some(sc) = spec.security_context.as_ref() {
        errs.extend(pod_security_context(
            sc,
            spec,
            &child(path, "securityContext"),
        ));
    }
    if let Some(a) = spec.affinity.as_ref() {
        errs.extend(affinity(a, &child(path, "affinity")));
    }
    errs.extend(dns_config(spec, &child(path, "dnsConfig")));
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        let p = child(&idx(&child(path, "readinessGates"), i), "conditionType");
        invalid_each(
            &mut errs,
            &p,
            &gate.condition_type,
            fmt::qualified_name(&gate.condition_type),
        );
    }
    let mut gates = BTreeSet::new();
    for (i, gate) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = idx(&child(path, "schedulingGates"), i);
        invalid_each(&mut errs, &p, &gate.name, fmt::qualified_name(&gate.name));
        if !gates.insert(gate.name.as_str()) {
            errs.push(FieldError::duplicate(p, &gate.name));
        }
    }
    for (field, value) in [
        ("serviceAccountName", &spec.service_account_name),
        ("nodeName", &spec.node_name),
    ] {
        let v = text(value);
        if !v.is_empty() {
            invalid_each(&mut errs, &child(path, field), v, fmt::dns1123_subdomain(v));
        }
    }
    if let Some(v) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&v)
    {
        errs.push(invalid_num(
            child(path, "activeDeadlineSeconds"),
            v,
            &fmt::inclusive_range(1, i64::from(i32::MAX)),
        ));
    }
    for (field, value) in [("hostname", &spec.hostname), ("subdomain", &spec.subdomain)] {
        let v = text(value);
        if !v.is_empty() {
            invalid_each(&mut errs, &child(path, field), v, fmt::dns1123_label(v));
        }
    }
    errs.extend(tolerations(
        spec.tolerations.as_deref().unwrap_or(&[]),
        &child(path, "tolerations"),
    ));
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let p = idx(&child(path, "hostAliases"), i);
        if !fmt::is_ip(&alias.ip) {
            errs.push(FieldError::invalid(child(&p, "ip"), &alias.ip, fmt::IP_MSG));
        }
        for (j, h) in alias.hostnames.iter().flatten().enumerate() {
            invalid_each(
                &mut errs,
                &idx(&child(&p, "hostnames"), j),
                h,
                fmt::dns1123_subdomain(h),
            );
        }
    }
    for (field, value) in [
        ("priorityClassName", &spec.priority_class_name),
        ("runtimeClassName", &spec.runtime_class_name),
    ] {
        if let Some(v) = value
            .as_deref()
            .filter(|v| !v.is_empty() || field == "runtimeClassName")
        {
            invalid_each(&mut errs, &child(path, field), v, fmt::dns1123_subdomain(v));
        }
    }
    if spec.preemption_policy.is_some() {
        errs.extend(one_of(
            &spec.preemption_policy,
            &child(path, "preemptionPolicy"),
            &["PreemptLowerPriority", "Never"],
        ));
    }
    if let Some(os) = spec.os.as_ref() {
        if os.name.is_empty() {
            errs.push(FieldError::required(
                child(&child(path, "os"), "name"),
                "cannot be empty",
            ));
        } else if !matches!(os.name.as_str(), "linux" | "windows") {
            errs.push(FieldError::not_supported(
                child(path, "os"),
                &os.name,
                &["linux", "windows"],
            ));
        }
    }
    errs
}

/// An enumerated string field: missing is `Required`, unknown is `NotSupported`.
fn one_of(value: &Option<String>, path: &str, supported: &[&str]) -> Errs {
    let v = text(value);
    if v.is_empty() {
        vec![FieldError::required(path, "")]
    } else if !supported.contains(&v) {
        vec![FieldError::not_supported(path, v, supported)]
    } else {
        Vec::new()
    }
}

/// With host networking a container port is also a host port: an explicit host port must
/// equal the container port (pods get it defaulted; templates may leave it 0).
fn host_network_ports(spec: &PodSpec, path: &str, is_pod: bool) -> Errs {
    if spec.host_network != Some(true) {
        return Vec::new();
    }
    let mut errs = Vec::new();
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let host = port.host_port.unwrap_or(0);
            if (is_pod || host != 0) && host != port.container_port {
                let p = child(
                    &idx(&child(&idx(&child(path, "containers"), i), "ports"), j),
                    "hostPort",
                );
                errs.push(invalid_num(
                    p,
                    host,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

// -- volumes

/// Validates the volume list; returns the names of the well-formed volumes (mounts may
/// refer only to those) and the errors.
fn validate_volumes<'a>(vols: &'a [Volume], path: &str) -> (BTreeMap<&'a str, &'a Volume>, Errs) {
    let mut valid = BTreeMap::new();
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, v) in vols.iter().enumerate() {
        let p = idx(path, i);
        let name_path = child(&p, "name");
        let mut own = volume_source(v, &p);
        if v.name.is_empty() {
            own.push(FieldError::required(&name_path, ""));
        } else {
            invalid_each(&mut own, &name_path, &v.name, fmt::dns1123_label(&v.name));
        }
        if names.contains(v.name.as_str()) {
            own.push(FieldError::duplicate(&name_path, &v.name));
        }
        if own.is_empty() {
            names.insert(v.name.as_str());
            valid.insert(v.name.as_str(), v);
        } else {
            errs.extend(own);
        }
    }
    (valid, errs)
}

/// Exactly one source per volume, each source's own rules. The order (and the odd path
/// names) are Kubernetes'.
fn volume_source(v: &Volume, path: &str) -> Errs {
    let sources: [(&str, bool); 30] = [
        ("emptyDir", v.empty_dir.is_some()),
        ("hostPath", v.host_path.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("secret", v.secret.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("rbd", v.rbd.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephFS", v.cephfs.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("downwarAPI", v.downward_api.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("configMap", v.config_map.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("storageos", v.storageos.is_some()),
        ("projected", v.projected.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
    ];
    let mut errs = Vec::new();
    let mut seen = 0;
    for (name, present) in sources {
        if !present {
            continue;
        }
        if seen > 0 {
            errs.push(FieldError::forbidden(
                child(path, name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        seen += 1;
        errs.extend(source_rules(v, name, path));
    }
    if seen == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

/// The rules of the one source a volume uses (only the common sources are checked in
/// depth; the rest are accepted as given).
fn source_rules(v: &Volume, source: &str, path: &str) -> Errs {
    let mut errs = Vec::new();
    let p = child(path, source);
    match source {
        "emptyDir" => {
            let limit = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref());
            if limit
                .and_then(|q| qty::parse(&q.0))
                .is_some_and(|q| q.is_negative())
            {
                errs.push(FieldError::forbidden(
                    child(&p, "sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => {
            if let Some(h) = v.host_path.as_ref() {
                if h.path.is_empty() {
                    errs.push(FieldError::required(child(&p, "path"), ""));
                } else {
                    errs.extend(no_backsteps(&h.path, &child(&p, "path")));
                    let supported = [
                        "",
                        "BlockDevice",
                        "CharDevice",
                        "Directory",
                        "DirectoryOrCreate",
                        "File",
                        "FileOrCreate",
                        "Socket",
                    ];
                    if let Some(t) = h.type_.as_deref().filter(|t| !supported.contains(t)) {
                        errs.push(FieldError::not_supported(child(&p, "type"), t, &supported));
                    }
                }
            }
        }
        "secret" => {
            if let Some(sec) = v.secret.as_ref() {
                if text(&sec.secret_name).is_empty() {
                    errs.push(FieldError::required(child(&p, "secretName"), ""));
                }
                errs.extend(file_mode(sec.default_mode, &child(&p, "defaultMode")));
                errs.extend(key_to_paths(
                    sec.items.as_deref().unwrap_or(&[]),
                    &child(&p, "items"),
                ));
            }
        }
        "configMap" => {
            if let Some(cm) = v.config_map.as_ref() {
                if cm.name.is_empty() {
                    errs.push(FieldError::required(child(&p, "name"), ""));
                }
                errs.extend(file_mode(cm.default_mode, &child(&p, "defaultMode")));
                errs.extend(key_to_paths(
                    cm.items.as_deref().unwrap_or(&[]),
                    &child(&p, "items"),
                ));
            }
        }
        "persistentVolumeClaim"
            if v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name.is_empty()) =>
        {
            errs.push(FieldError::required(child(&p, "claimName"), ""));
        }
        "nfs" => {
            if let Some(nfs) = v.nfs.as_ref() {
                if nfs.server.is_empty() {
                    errs.push(FieldError::required(child(&p, "server"), ""));
                }
                if nfs.path.is_empty() {
                    errs.push(FieldError::required(child(&p, "path"), ""));
                }
                if !nfs.path.starts_with('/') {
                    errs.push(FieldError::invalid(
                        child(&p, "path"),
                        &nfs.path,
                        "must be an absolute path",
                    ));
                }
            }
        }
        "downwarAPI" => {
            if let Some(d) = v.downward_api.as_ref() {
                let p = child(path, "downwardAPI");
                errs.extend(file_mode(d.default_mode, &child(&p, "defaultMode")));
                for item in d.items.iter().flatten() {
                    errs.extend(downward_api_file(item, &p));
                }
            }
        }
        "projected" => {
            if let Some(proj) = v.projected.as_ref() {
                errs.extend(file_mode(proj.default_mode, &child(&p, "defaultMode")));
                errs.extend(projection_sources(
                    proj.sources.as_deref().unwrap_or(&[]),
                    &p,
                ));
            }
        }
        _ => {}
    }
    errs
}

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

fn file_mode(mode: Option<i32>, path: &str) -> Errs {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![invalid_num(path, m, FILE_MODE_MSG)],
        _ => Vec::new(),
    }
}

fn key_to_paths(items: &[KeyToPath], path: &str) -> Errs {
    let mut errs = Vec::new();
    for (i, kp) in items.iter().enumerate() {
        let p = idx(path, i);
        if kp.key.is_empty() {
            errs.push(FieldError::required(child(&p, "key"), ""));
        }
        if kp.path.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        }
        errs.extend(local_non_reserved_path(&kp.path, &child(&p, "path")));
        errs.extend(file_mode(kp.mode, &child(&p, "mode")));
    }
    errs
}

fn no_backsteps(target: &str, path: &str) -> Errs {
    if target.split('/').any(|part| part == "..") {
        vec![FieldError::invalid(path, target, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

fn local_descending_path(target: &str, path: &str) -> Errs {
    let mut errs = Vec::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(no_backsteps(target, path));
    errs
}

fn local_non_reserved_path(target: &str, path: &str) -> Errs {
    let mut errs = local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
    errs
}

fn downward_api_file(f: &DownwardAPIVolumeFile, path: &str) -> Errs {
    let mut errs = Vec::new();
    if f.path.is_empty() {
        errs.push(FieldError::required(child(path, "path"), ""));
    }
    errs.extend(local_non_reserved_path(&f.path, &child(path, "path")));
    match (&f.field_ref, &f.resource_field_ref) {
        (Some(field_ref), other) => {
            let allowed = [
                "metadata.annotations",
                "metadata.labels",
                "metadata.name",
                "metadata.namespace",
                "metadata.uid",
            ];
            errs.extend(object_field_selector(
                field_ref,
                &allowed,
                &child(path, "fieldRef"),
            ));
            if other.is_some() {
                errs.push(FieldError::invalid(
                    path,
                    "resource",
                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                ));
            }
        }
        (None, Some(r)) => {
            if text(&r.container_name).is_empty() {
                errs.push(FieldError::required(
                    child(&child(path, "resourceFieldRef"), "containerName"),
                    "",
                ));
            }
        }
        (None, None) => errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        )),
    }
    errs.extend(file_mode(f.mode, &child(path, "mode")));
    errs
}

fn projection_sources(
    sources: &[k8s_openapi::api::core::v1::VolumeProjection],
    path: &str,
) -> Errs {
    let mut errs = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let sp = idx(&child(path, "sources"), i);
        let mut count = 0;
        if let Some(sec) = src.secret.as_ref() {
            count += 1;
            if sec.name.is_empty() {
                errs.push(FieldError::required(
                    child(&child(&sp, "secret"), "name"),
                    "",
                ));
            }
            errs.extend(key_to_paths(
                sec.items.as_deref().unwrap_or(&[]),
                &child(&child(&sp, "secret"), "items"),
            ));
        }
        if let Some(cm) = src.config_map.as_ref() {
            count += 1;
            if cm.name.is_empty() {
                errs.push(FieldError::required(
                    child(&child(&sp, "configMap"), "name"),
                    "",
                ));
            }
            errs.extend(key_to_paths(
                cm.items.as_deref().unwrap_or(&[]),
                &child(&child(&sp, "configMap"), "items"),
            ));
        }
        if let Some(d) = src.downward_api.as_ref() {
            count += 1;
            for item in d.items.iter().flatten() {
                errs.extend(downward_api_file(item, &child(&sp, "downwardAPI")));
            }
        }
        if let Some(t) = src.service_account_token.as_ref() {
            count += 1;
            let tp = child(&sp, "serviceAccountToken");
            let exp = t.expiration_seconds.unwrap_or(0);
            if exp < 600 {
                errs.push(invalid_num(
                    child(&tp, "expirationSeconds"),
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(invalid_num(
                    child(&tp, "expirationSeconds"),
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            if t.path.is_empty() {
                errs.push(FieldError::required(child(path, "path"), ""));
            } else {
                errs.extend(local_non_reserved_path(&t.path, &child(path, "path")));
            }
        }
        if src.cluster_trust_bundle.is_some() {
            count += 1;
        }
        if count > 1 {
            errs.push(FieldError::forbidden(
                sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

// -- containers

fn containers(
    list: &[Container],
    vols: &BTreeMap<&str, &Volume>,
    grace: Option<i64>,
    path: &str,
) -> Errs {
    if list.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = idx(path, i);
        errs.extend(container_common(c, vols, &p));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), &c.name));
        }
        errs.extend(probes_and_lifecycle(c, grace, &p));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(list.iter().enumerate(), path));
    errs
}

fn init_containers(
    list: &[Container],
    regular: &[Container],
    vols: &BTreeMap<&str, &Volume>,
    grace: Option<i64>,
    path: &str,
) -> Errs {
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in list.iter().enumerate() {
        let p = idx(path, i);
        errs.extend(container_common(c, vols, &p));
        let mut restartable = false;
        if let Some(policy) = c.restart_policy.as_deref() {
            restartable = policy == "Always";
            if !restartable {
                errs.push(FieldError::not_supported(
                    child(&p, "restartPolicy"),
                    policy,
                    &["Always"],
                ));
            }
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        errs.extend(host_port_conflicts(std::iter::once((i, c)), path));
        if restartable {
            errs.extend(probes_and_lifecycle(c, grace, &p));
        } else {
            let set = [
                ("lifecycle", c.lifecycle.is_some()),
                ("livenessProbe", c.liveness_probe.is_some()),
                ("readinessProbe", c.readiness_probe.is_some()),
                ("startupProbe", c.startup_probe.is_some()),
            ];
            for (field, present) in set {
                if present {
                    errs.push(FieldError::forbidden(
                        child(&p, field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

/// Host ports may be used once per protocol and host IP.
fn host_port_conflicts<'a>(list: impl Iterator<Item = (usize, &'a Container)>, path: &str) -> Errs {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, c) in list {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let host = port.host_port.unwrap_or(0);
            if host == 0 {
                continue;
            }
            let tag = format!("{}/{}/{host}", text(&port.protocol), text(&port.host_ip));
            if !seen.insert(tag.clone()) {
                let p = child(&idx(&child(&idx(path, i), "ports"), j), "hostPort");
                errs.push(FieldError::duplicate(p, &tag));
            }
        }
    }
    errs
}

/// `validateContainerCommon`: the rules every kind of container shares.
fn container_common(c: &Container, vols: &BTreeMap<&str, &Volume>, path: &str) -> Errs {
    let mut errs = Vec::new();
    if c.name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else {
        invalid_each(
            &mut errs,
            &child(path, "name"),
            &c.name,
            fmt::dns1123_label(&c.name),
        );
    }
    if text(&c.image).is_empty() {
        errs.push(FieldError::required(child(path, "image"), ""));
    }
    errs.extend(one_of(
        &c.termination_message_policy,
        &child(path, "terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    ));
    // (Empty lists have nothing to check: skip building their paths.)
    if let Some(ports) = c.ports.as_deref().filter(|l| !l.is_empty()) {
        errs.extend(container_ports(ports, &child(path, "ports")));
    }
    if let Some(list) = c.env.as_deref().filter(|l| !l.is_empty()) {
        errs.extend(env(list, &child(path, "env")));
    }
    if let Some(list) = c.env_from.as_deref().filter(|l| !l.is_empty()) {
        errs.extend(env_from(list, &child(path, "envFrom")));
    }
    let privileged = c.security_context.as_ref().and_then(|sc| sc.privileged) == Some(true);
    if let Some(mounts) = c.volume_mounts.as_deref().filter(|l| !l.is_empty()) {
        errs.extend(volume_mounts(
            mounts,
            vols,
            privileged,
            &child(path, "volumeMounts"),
        ));
    }
    errs.extend(one_of(
        &c.image_pull_policy,
        &child(path, "imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    ));
    if let Some(r) = c.resources.as_ref() {
        errs.extend(resources(r, &child(path, "resources")));
    }
    if let Some(sc) = c.security_context.as_ref() {
        errs.extend(security_context(sc, &child(path, "securityContext")));
    }
    errs
}

fn container_ports(ports: &[ContainerPort], path: &str) -> Errs {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = idx(path, i);
        let name = text(&port.name);
        if !name.is_empty() {
            let msgs = fmt::port_name(name);
            if !msgs.is_empty() {
                invalid_each(&mut errs, &child(&p, "name"), name, msgs);
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(child(&p, "containerPort"), ""));
        } else {
            for m in fmt::port_num(i64::from(port.container_port)) {
                errs.push(invalid_num(
                    child(&p, "containerPort"),
                    port.container_port,
                    &m,
                ));
            }
        }
        let host = port.host_port.unwrap_or(0);
        if host != 0 {
            for m in fmt::port_num(i64::from(host)) {
                errs.push(invalid_num(child(&p, "hostPort"), host, &m));
            }
        }
        errs.extend(protocol(&port.protocol, &child(&p, "protocol")));
    }
    errs
}

fn protocol(value: &Option<String>, path: &str) -> Errs {
    one_of(value, path, &["SCTP", "TCP", "UDP"])
}

fn env(vars: &[EnvVar], path: &str) -> Errs {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = idx(path, i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            invalid_each(
                &mut errs,
                &child(&p, "name"),
                &ev.name,
                fmt::env_var_name(&ev.name),
            );
        }
        errs.extend(env_value_from(ev, &child(&p, "valueFrom")));
    }
    errs
}

fn env_value_from(ev: &EnvVar, path: &str) -> Errs {
    let Some(from) = ev.value_from.as_ref() else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let mut count = 0;
    if let Some(f) = from.field_ref.as_ref() {
        count += 1;
        let allowed = [
            "metadata.name",
            "metadata.namespace",
            "metadata.uid",
            "spec.nodeName",
            "spec.serviceAccountName",
            "status.hostIP",
            "status.hostIPs",
            "status.podIP",
            "status.podIPs",
        ];
        errs.extend(object_field_selector(f, &allowed, &child(path, "fieldRef")));
    }
    if let Some(r) = from.resource_field_ref.as_ref() {
        count += 1;
        let rp = child(path, "resourceFieldRef");
        let allowed = [
            "limits.cpu",
            "limits.ephemeral-storage",
            "limits.memory",
            "requests.cpu",
            "requests.ephemeral-storage",
            "requests.memory",
        ];
        let hugepages = r.resource.starts_with("requests.hugepages-")
            || r.resource.starts_with("limits.hugepages-");
        if r.resource.is_empty() {
            errs.push(FieldError::required(child(&rp, "resource"), ""));
        } else if !allowed.contains(&r.resource.as_str()) && !hugepages {
            errs.push(FieldError::not_supported(
                child(&rp, "resource"),
                &r.resource,
                &allowed,
            ));
        }
    }
    let key_refs = [
        (
            "configMapKeyRef",
            from.config_map_key_ref
                .as_ref()
                .map(|r| (r.name.as_str(), r.key.as_str())),
        ),
        (
            "secretKeyRef",
            from.secret_key_ref
                .as_ref()
                .map(|r| (r.name.as_str(), r.key.as_str())),
        ),
    ];
    for (field, reference) in key_refs {
        let Some((name, k)) = reference else {
            continue;
        };
        count += 1;
        let kp = child(path, field);
        invalid_each(
            &mut errs,
            &child(&kp, "name"),
            name,
            fmt::dns1123_subdomain(name),
        );
        if k.is_empty() {
            errs.push(FieldError::required(child(&kp, "key"), ""));
        } else {
            invalid_each(&mut errs, &child(&kp, "key"), k, fmt::config_map_key(k));
        }
    }
    if count == 0 {
        errs.push(FieldError::invalid(
            path,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if !text(&ev.value).is_empty() {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if count > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// Downward-API field references: `v1` paths from `allowed`, or subscripted labels and
/// annotations.
fn object_field_selector(f: &ObjectFieldSelector, allowed: &[&str], path: &str) -> Errs {
    let version = text(&f.api_version);
    if version.is_empty() {
        return vec![FieldError::required(child(path, "apiVersion"), "")];
    }
    if f.field_path.is_empty() {
        return vec![FieldError::required(child(path, "fieldPath"), "")];
    }
    let fp = f.field_path.as_str();
    let subscripted = fp.strip_suffix("']").and_then(|rest| rest.split_once("['"));
    let conversion_error = if version != "v1" {
        Some(format!("unsupported pod version: {version}"))
    } else if let Some((base, _)) = subscripted {
        (!matches!(base, "metadata.annotations" | "metadata.labels"))
            .then(|| format!("field label does not support subscript: {fp}"))
    } else {
        let known = [
            "metadata.annotations",
            "metadata.labels",
            "metadata.name",
            "metadata.namespace",
            "metadata.uid",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.serviceAccountName",
            "spec.schedulerName",
            "status.phase",
            "status.hostIP",
            "status.hostIPs",
            "status.podIP",
            "status.podIPs",
        ];
        (!known.contains(&fp)).then(|| format!("field label not supported: {fp}"))
    };
    if let Some(err) = conversion_error {
        return vec![FieldError::invalid(
            child(path, "fieldPath"),
            fp,
            format!("error converting fieldPath: {err}"),
        )];
    }
    let mut errs = Vec::new();
    match subscripted {
        Some(("metadata.annotations", sub)) => {
            let sub = sub.to_lowercase();
            invalid_each(&mut errs, path, &sub, fmt::qualified_name(&sub));
        }
        Some((_, sub)) => invalid_each(&mut errs, path, sub, fmt::qualified_name(sub)),
        None if !allowed.contains(&fp) => errs.push(FieldError::not_supported(
            child(path, "fieldPath"),
            fp,
            allowed,
        )),
        None => {}
    }
    errs
}

fn env_from(sources: &[EnvFromSource], path: &str) -> Errs {
    let mut errs = Vec::new();
    for (i, ev) in sources.iter().enumerate() {
        let p = idx(path, i);
        let prefix = text(&ev.prefix);
        if !prefix.is_empty() {
            invalid_each(
                &mut errs,
                &child(&p, "prefix"),
                prefix,
                fmt::env_var_name(prefix),
            );
        }
        let refs = [
            (
                "configMapRef",
                ev.config_map_ref.as_ref().map(|r| r.name.as_str()),
            ),
            ("secretRef", ev.secret_ref.as_ref().map(|r| r.name.as_str())),
        ];
        let mut count = 0;
        for (field, name) in refs {
            let Some(name) = name else { continue };
            count += 1;
            let np = child(&child(&p, field), "name");
            if name.is_empty() {
                errs.push(FieldError::required(np, ""));
            } else {
                invalid_each(
                    &mut errs,
                    &np,
                    name,
                    name_messages(NameRule::Dns1123Subdomain, name, true),
                );
            }
        }
        if count == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if count > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

fn volume_mounts(
    mounts: &[VolumeMount],
    vols: &BTreeMap<&str, &Volume>,
    privileged: bool,
    path: &str,
) -> Errs {
    let mut errs = Vec::new();
    let mut mount_points = BTreeSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = idx(path, i);
        if m.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !vols.contains_key(m.name.as_str()) {
            errs.push(FieldError::not_found(child(&p, "name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        let sub_path = text(&m.sub_path);
        if !sub_path.is_empty() {
            errs.extend(local_descending_path(sub_path, &child(path, "subPath")));
        }
        let expr = text(&m.sub_path_expr);
        if !expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    child(&p, "subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(expr, &child(path, "subPathExpr")));
        }
        if let Some(prop) = m.mount_propagation.as_deref() {
            let pp = child(path, "mountPropagation");
            let supported = ["Bidirectional", "HostToContainer", "None"];
            if !supported.contains(&prop) {
                errs.push(FieldError::not_supported(&pp, prop, &supported));
            }
            if prop == "Bidirectional" && !privileged {
                errs.push(FieldError::forbidden(
                    pp,
                    "Bidirectional mount propagation is available only to privileged containers",
                ));
            }
        }
        errs.extend(recursive_read_only(m, &child(path, "recursiveReadOnly")));
    }
    errs
}

fn recursive_read_only(m: &VolumeMount, path: &str) -> Errs {
    match m.recursive_read_only.as_deref() {
        None | Some("Disabled") => Vec::new(),
        Some("Enabled" | "IfPossible") => {
            let mut errs = Vec::new();
            if m.read_only != Some(true) {
                errs.push(FieldError::forbidden(
                    path,
                    "may only be specified when readOnly is true",
                ));
            }
            if m.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                errs.push(FieldError::forbidden(
                    path,
                    "may only be specified when mountPropagation is None or not specified",
                ));
            }
            errs
        }
        Some(other) => vec![FieldError::not_supported(
            path,
            other,
            &["Disabled", "Enabled", "IfPossible"],
        )],
    }
}

// -- resources

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// Resources the kernel can overcommit: the native ones except huge pages.
fn overcommit_allowed(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    native && !is_hugepages(name)
}

fn resource_name(name: &str, path: &str) -> Errs {
    let mut errs = Vec::new();
    invalid_each(&mut errs, path, name, fmt::qualified_name(name));
    if !errs.is_empty() || name.contains('/') {
        return errs;
    }
    let standard = [
        "cpu",
        "memory",
        "ephemeral-storage",
        "storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "services.nodeports",
        "services.loadbalancers",
        "requests.cpu",
        "requests.memory",
        "requests.storage",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
    ];
    let is_standard =
        standard.contains(&name) || is_hugepages(name) || name.starts_with("requests.hugepages-");
    if !is_standard {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        ));
    }
    let container_standard =
        matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_hugepages(name);
    if !container_standard {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource for containers",
        ));
    }
    errs
}

/// Names, quantities, and `requests ≤ limits` (`=` for resources that cannot overcommit).
fn resources(r: &ResourceRequirements, path: &str) -> Errs {
    let mut errs = Vec::new();
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let compute = |n: &str| n == "cpu" || n == "memory";
    for (name, q) in limits {
        let p = key(&lim_path, name);
        errs.extend(resource_name(name, &p));
        errs.extend(quantity_value(name, &q.0, &p));
    }
    for (name, q) in requests {
        let p = key(&req_path, name);
        errs.extend(resource_name(name, &p));
        errs.extend(quantity_value(name, &q.0, &p));
        let (Some(req), limit) = (qty::parse(&q.0), limits.get(name)) else {
            continue;
        };
        match limit.and_then(|l| qty::parse(&l.0)) {
            Some(lim) => {
                let shown = req.canonical();
                let ord = req.cmp_value(&lim);
                if !ord.is_eq() && !overcommit_allowed(name) {
                    let detail = format!("must be equal to {name} limit of {}", lim.canonical());
                    errs.push(FieldError::invalid(&req_path, &shown, detail));
                } else if ord.is_gt() {
                    let detail = format!(
                        "must be less than or equal to {name} limit of {}",
                        lim.canonical()
                    );
                    errs.push(FieldError::invalid(&req_path, &shown, detail));
                }
            }
            None if limit.is_none() && !overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
    let any_compute = limits.keys().chain(requests.keys()).any(|n| compute(n));
    let any_huge = limits
        .keys()
        .chain(requests.keys())
        .any(|n| is_hugepages(n));
    if any_huge && !any_compute {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    errs
}

/// A quantity must parse, be non-negative, and be whole for integer resources.
fn quantity_value(name: &str, raw: &str, path: &str) -> Errs {
    let Some(q) = qty::parse(raw) else {
        return vec![FieldError::invalid(path, raw, qty::SYNTAX_ERROR)];
    };
    let mut errs = Vec::new();
    if q.is_negative() {
        errs.push(FieldError::invalid(path, &q.canonical(), NON_NEGATIVE));
    }
    let integer_resource =
        (name.contains('/') && !name.contains("kubernetes.io/")) || name == "pods";
    if integer_resource && !q.is_integer() {
        errs.push(FieldError::invalid(
            path,
            &q.canonical(),
            "must be an integer",
        ));
    }
    errs
}

// -- probes and handlers

fn probes_and_lifecycle(c: &Container, grace: Option<i64>, path: &str) -> Errs {
    let mut errs = Vec::new();
    if let Some(l) = c.lifecycle.as_ref() {
        for (field, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
            if let Some(h) = h {
                errs.extend(lifecycle_handler(
                    h,
                    grace,
                    &child(&child(path, "lifecycle"), field),
                ));
            }
        }
    }
    if let Some(p) = c.liveness_probe.as_ref() {
        let pp = child(path, "livenessProbe");
        errs.extend(probe(p, &pp));
        errs.extend(success_threshold_is_one(p, &pp));
    }
    if let Some(p) = c.readiness_probe.as_ref() {
        let pp = child(path, "readinessProbe");
        errs.extend(probe(p, &pp));
        if let Some(t) = p.termination_grace_period_seconds {
            errs.push(invalid_num(
                child(&pp, "terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(p) = c.startup_probe.as_ref() {
        let pp = child(path, "startupProbe");
        errs.extend(probe(p, &pp));
        errs.extend(success_threshold_is_one(p, &pp));
    }
    errs
}

fn success_threshold_is_one(p: &Probe, path: &str) -> Errs {
    let t = p.success_threshold.unwrap_or(0);
    if t == 1 {
        Vec::new()
    } else {
        vec![invalid_num(child(path, "successThreshold"), t, "must be 1")]
    }
}

fn probe(p: &Probe, path: &str) -> Errs {
    let handlers = [
        (
            "exec",
            p.exec
                .as_ref()
                .map(|e| exec_action(e.command.as_deref(), &child(path, "exec"))),
        ),
        (
            "httpGet",
            p.http_get
                .as_ref()
                .map(|h| http_get(h, &child(path, "httpGet"))),
        ),
        (
            "tcpSocket",
            p.tcp_socket
                .as_ref()
                .map(|t| port_num_or_name(&t.port, &child(&child(path, "tcpSocket"), "port"))),
        ),
        (
            "grpc",
            p.grpc.as_ref().map(|g| {
                port_num_or_name(
                    &IntOrString::Int(g.port),
                    &child(&child(path, "grpc"), "port"),
                )
            }),
        ),
    ];
    let mut errs = exactly_one_handler(handlers, path);
    for (field, value) in [
        ("initialDelaySeconds", p.initial_delay_seconds),
        ("timeoutSeconds", p.timeout_seconds),
        ("periodSeconds", p.period_seconds),
        ("successThreshold", p.success_threshold),
        ("failureThreshold", p.failure_threshold),
    ] {
        nonneg(&mut errs, child(path, field), i64::from(value.unwrap_or(0)));
    }
    if let Some(t) = p.termination_grace_period_seconds.filter(|t| *t <= 0) {
        errs.push(invalid_num(
            child(path, "terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    errs
}

fn lifecycle_handler(h: &LifecycleHandler, grace: Option<i64>, path: &str) -> Errs {
    let sleep = h.sleep.as_ref().map(|sl| match grace {
        Some(g) if sl.seconds < 0 || sl.seconds > g => vec![invalid_num(
            child(path, "sleep"),
            sl.seconds,
            &format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
        )],
        _ => Vec::new(),
    });
    let handlers = [
        (
            "exec",
            h.exec
                .as_ref()
                .map(|e| exec_action(e.command.as_deref(), &child(path, "exec"))),
        ),
        (
            "httpGet",
            h.http_get
                .as_ref()
                .map(|g| http_get(g, &child(path, "httpGet"))),
        ),
        (
            "tcpSocket",
            h.tcp_socket
                .as_ref()
                .map(|t| port_num_or_name(&t.port, &child(&child(path, "tcpSocket"), "port"))),
        ),
        ("sleep", sleep),
    ];
    exactly_one_handler(handlers, path)
}

/// The first handler present is validated; any further one is forbidden.
fn exactly_one_handler(handlers: [(&str, Option<Errs>); 4], path: &str) -> Errs {
    let mut errs = Vec::new();
    let mut seen = false;
    for (field, result) in handlers {
        let Some(result) = result else { continue };
        if seen {
            errs.push(FieldError::forbidden(
                child(path, field),
                "may not specify more than 1 handler type",
            ));
        } else {
            seen = true;
            errs.extend(result);
        }
    }
    if !seen {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

fn exec_action(command: Option<&[String]>, path: &str) -> Errs {
    if command.is_none_or(|c| c.is_empty()) {
        vec![FieldError::required(child(path, "command"), "")]
    } else {
        Vec::new()
    }
}

fn http_get(h: &HTTPGetAction, path: &str) -> Errs {
    let mut errs = Vec::new();
    if text(&h.path).is_empty() {
        errs.push(FieldError::required(child(path, "path"), ""));
    }
    errs.extend(port_num_or_name(&h.port, &child(path, "port")));
    let scheme = text(&h.scheme);
    if scheme != "HTTP" && scheme != "HTTPS" {
        errs.push(FieldError::not_supported(
            child(path, "scheme"),
            scheme,
            &["HTTP", "HTTPS"],
        ));
    }
    for header in h.http_headers.iter().flatten() {
        invalid_each(
            &mut errs,
            &child(path, "httpHeaders"),
            &header.name,
            fmt::http_header_name(&header.name),
        );
    }
    errs
}

fn port_num_or_name(port: &IntOrString, path: &str) -> Errs {
    match port {
        IntOrString::Int(n) => fmt::port_num(i64::from(*n))
            .into_iter()
            .map(|m| invalid_num(path, n, &m))
            .collect(),
        IntOrString::String(name) => fmt::port_name(name)
            .into_iter()
            .map(|m| FieldError::invalid(path, name, m))
            .collect(),
    }
}

// -- security contexts

const ID_RANGE_MAX: i64 = 4_294_967_295;

fn id_in_range(errs: &mut Errs, value: Option<i64>, path: String) {
    if let Some(v) = value.filter(|v| !(0..=ID_RANGE_MAX).contains(v)) {
        errs.push(invalid_num(path, v, &fmt::inclusive_range(0, ID_RANGE_MAX)));
    }
}

fn seccomp_profile(p: Option<&k8s_openapi::api::core::v1::SeccompProfile>, path: &str) -> Errs {
    let Some(p) = p else {
        return Vec::new();
    };
    let mut errs = Vec::new();
    let supported = ["Localhost", "RuntimeDefault", "Unconfined"];
    if p.type_.is_empty() {
        errs.push(FieldError::required(
            child(path, "type"),
            "type is required when seccompProfile is set",
        ));
    } else if !supported.contains(&p.type_.as_str()) {
        errs.push(FieldError::not_supported(
            child(path, "type"),
            &p.type_,
            &supported,
        ));
    }
    if p.type_ == "Localhost" {
        match p.localhost_profile.as_deref() {
            None => errs.push(FieldError::required(
                child(path, "localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(lp) => errs.extend(local_descending_path(lp, &child(path, "localhostProfile"))),
        }
    }
    errs
}

fn security_context(sc: &SecurityContext, path: &str) -> Errs {
    let mut errs = Vec::new();
    id_in_range(&mut errs, sc.run_as_user, child(path, "runAsUser"));
    id_in_range(&mut errs, sc.run_as_group, child(path, "runAsGroup"));
    if let Some(pm) = sc.proc_mount.as_deref()
        && !matches!(pm, "Default" | "Unmasked")
    {
        errs.push(FieldError::not_supported(
            child(path, "procMount"),
            pm,
            &["Default", "Unmasked"],
        ));
    }
    errs.extend(seccomp_profile(
        sc.seccomp_profile.as_ref(),
        &child(path, "seccompProfile"),
    ));
    errs
}

fn pod_security_context(sc: &PodSecurityContext, spec: &PodSpec, path: &str) -> Errs {
    let mut errs = Vec::new();
    id_in_range(&mut errs, sc.fs_group, child(path, "fsGroup"));
    id_in_range(&mut errs, sc.run_as_user, child(path, "runAsUser"));
    id_in_range(&mut errs, sc.run_as_group, child(path, "runAsGroup"));
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        id_in_range(
            &mut errs,
            Some(*g),
            idx(&child(path, "supplementalGroups"), i),
        );
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(invalid_num(
            child(path, "shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let mut sysctl_names = BTreeSet::new();
    for (i, sysctl) in sc.sysctls.iter().flatten().enumerate() {
        let p = child(&idx(&child(path, "sysctls"), i), "name");
        if sysctl.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !sysctl_name_is_valid(&sysctl.name) {
            errs.push(FieldError::invalid(
                &p,
                &sysctl.name,
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if !sysctl_names.insert(sysctl.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &sysctl.name));
        }
    }
    if let Some(policy) = sc.fs_group_change_policy.as_deref()
        && !matches!(policy, "Always" | "OnRootMismatch")
    {
        errs.push(FieldError::not_supported(
            child(path, "fsGroupChangePolicy"),
            policy,
            &["Always", "OnRootMismatch"],
        ));
    }
    errs.extend(seccomp_profile(
        sc.seccomp_profile.as_ref(),
        &child(path, "seccompProfile"),
    ));
    errs
}

fn sysctl_name_is_valid(name: &str) -> bool {
    name.len() <= 253
        && name.split(['.', '/']).all(|seg| {
            let b = seg.as_bytes();
            let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            !b.is_empty()
                && edge(b[0])
                && edge(b[b.len() - 1])
                && b.iter().all(|&c| edge(c) || c == b'-' || c == b'_')
        })
}

// -- scheduling constraints

fn tolerations(list: &[Toleration], path: &str) -> Errs {
    let mut errs = Vec::new();
    for (i, t) in list.iter().enumerate() {
        let p = idx(path, i);
        let (k, op, value, effect) = (
            text(&t.key),
            text(&t.operator),
            text(&t.value),
            text(&t.effect),
        );
        if !k.is_empty() {
            label_name(&mut errs, k, &child(&p, "key"));
        }
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = fmt::label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.extend(taint_effect(effect, &child(&p, "effect")));
        }
    }
    errs
}

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn taint_effect(effect: &str, path: &str) -> Errs {
    if TAINT_EFFECTS.contains(&effect) {
        Vec::new()
    } else {
        vec![FieldError::not_supported(path, effect, &TAINT_EFFECTS)]
    }
}

fn affinity(a: &Affinity, path: &str) -> Errs {
    let mut errs = Vec::new();
    if let Some(na) = a.node_affinity.as_ref() {
        let np = child(path, "nodeAffinity");
        if let Some(required) = na
            .required_during_scheduling_ignored_during_execution
            .as_ref()
        {
            errs.extend(node_selector(
                required,
                &child(&np, "requiredDuringSchedulingIgnoredDuringExecution"),
            ));
        }
        let pp = child(&np, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in na
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let tp = idx(&pp, i);
            if !(1..=100).contains(&term.weight) {
                errs.push(invalid_num(
                    child(&tp, "weight"),
                    term.weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(node_selector_term(
                &term.preference,
                true,
                &child(&tp, "preference"),
            ));
        }
    }
    let pod_affinities = [
        (
            "podAffinity",
            a.pod_affinity.as_ref().map(|p| {
                (
                    &p.required_during_scheduling_ignored_during_execution,
                    &p.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
        (
            "podAntiAffinity",
            a.pod_anti_affinity.as_ref().map(|p| {
                (
                    &p.required_during_scheduling_ignored_during_execution,
                    &p.preferred_during_scheduling_ignored_during_execution,
                )
            }),
        ),
    ];
    for (field, terms) in pod_affinities {
        let Some((required, preferred)) = terms else {
            continue;
        };
        let fp = child(path, field);
        let rp = child(&fp, "requiredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in required.iter().flatten().enumerate() {
            errs.extend(pod_affinity_term(term, &idx(&rp, i)));
        }
        let pp = child(&fp, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, w) in preferred.iter().flatten().enumerate() {
            let wp = idx(&pp, i);
            if !(1..=100).contains(&w.weight) {
                errs.push(invalid_num(
                    child(&wp, "weight"),
                    w.weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(pod_affinity_term(
                &w.pod_affinity_term,
                &child(&wp, "podAffinityTerm"),
            ));
        }
    }
    errs
}

fn pod_affinity_term(term: &PodAffinityTerm, path: &str) -> Errs {
    let mut errs = Vec::new();
    if let Some(sel) = term.label_selector.as_ref() {
        errs.extend(label_selector(sel, &child(path, "labelSelector"), false));
    }
    for ns in term.namespaces.iter().flatten() {
        invalid_each(
            &mut errs,
            &child(path, "namespace"),
            ns,
            fmt::dns1123_label(ns),
        );
    }
    if term.topology_key.is_empty() {
        errs.push(FieldError::required(
            child(path, "topologyKey"),
            "can not be empty",
        ));
    }
    label_name(&mut errs, &term.topology_key, &child(path, "topologyKey"));
    errs
}

fn node_selector(sel: &NodeSelector, path: &str) -> Errs {
    let terms_path = child(path, "nodeSelectorTerms");
    if sel.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            terms_path,
            "must have at least one node selector term",
        )];
    }
    let mut errs = Vec::new();
    for (i, term) in sel.node_selector_terms.iter().enumerate() {
        errs.extend(node_selector_term(term, false, &idx(&terms_path, i)));
    }
    errs
}

fn node_selector_term(term: &NodeSelectorTerm, allow_invalid_values: bool, path: &str) -> Errs {
    let mut errs = Vec::new();
    for (i, r) in term.match_expressions.iter().flatten().enumerate() {
        errs.extend(node_selector_requirement(
            r,
            allow_invalid_values,
            &idx(&child(path, "matchExpressions"), i),
        ));
    }
    for (i, r) in term.match_fields.iter().flatten().enumerate() {
        let p = idx(&child(path, "matchFields"), i);
        let values = r.values.as_deref().unwrap_or(&[]);
        match r.operator.as_str() {
            "In" | "NotIn" if values.len() != 1 => errs.push(FieldError::required(
                child(&p, "values"),
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
            )),
            "In" | "NotIn" => {}
            other => errs.push(FieldError::invalid(
                child(&p, "operator"),
                other,
                "not a valid selector operator",
            )),
        }
        if r.key != "metadata.name" {
            errs.push(FieldError::invalid(
                child(&p, "key"),
                &r.key,
                "not a valid field selector key",
            ));
        } else {
            for (j, v) in values.iter().enumerate() {
                invalid_each(
                    &mut errs,
                    &idx(&child(&p, "values"), j),
                    v,
                    fmt::dns1123_subdomain(v),
                );
            }
        }
    }
    errs
}

fn node_selector_requirement(
    r: &NodeSelectorRequirement,
    allow_invalid_values: bool,
    path: &str,
) -> Errs {
    let mut errs = Vec::new();
    let values = r.values.as_deref().unwrap_or(&[]);
    let vp = child(path, "values");
    match r.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            &vp,
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            &vp,
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            &vp,
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid(
            child(path, "operator"),
            other,
            "not a valid selector operator",
        )),
    }
    label_name(&mut errs, &r.key, &child(path, "key"));
    if !allow_invalid_values {
        for (i, v) in values.iter().enumerate() {
            invalid_each(&mut errs, &idx(&vp, i), v, fmt::label_value(v));
        }
    }
    errs
}

fn dns_config(spec: &PodSpec, path: &str) -> Errs {
    let policy_none = text(&spec.dns_policy) == "None";
    let Some(cfg) = spec.dns_config.as_ref() else {
        return if policy_none {
            vec![FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )]
        } else {
            Vec::new()
        };
    };
    let nameservers = cfg.nameservers.as_deref().unwrap_or(&[]);
    if policy_none && nameservers.is_empty() {
        return vec![FieldError::required(
            child(path, "nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        )];
    }
    let mut errs = Vec::new();
    if nameservers.len() > 3 {
        errs.push(invalid_num(
            child(path, "nameservers"),
            go::string_slice(Some(nameservers)),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        if !fmt::is_ip(ns) {
            errs.push(FieldError::invalid(
                idx(&child(path, "nameservers"), i),
                ns,
                fmt::IP_MSG,
            ));
        }
    }
    let searches = cfg.searches.as_deref().unwrap_or(&[]);
    if searches.len() > 32 {
        errs.push(invalid_num(
            child(path, "searches"),
            go::string_slice(Some(searches)),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(invalid_num(
            child(path, "searches"),
            go::string_slice(Some(searches)),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        if search != "." {
            let trimmed = search.strip_suffix('.').unwrap_or(search);
            let ok = trimmed.split('.').all(|l| {
                let l = l.strip_prefix('_').unwrap_or(l);
                !l.is_empty()
                    && l.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                    })
            });
            if !ok || trimmed.len() > 253 {
                let msg = fmt::regex_error(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
                    "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*",
                    &["example.com"],
                );
                errs.push(FieldError::invalid(
                    idx(&child(path, "searches"), i),
                    trimmed,
                    msg,
                ));
            }
        }
    }
    for (i, o) in cfg.options.iter().flatten().enumerate() {
        if text(&o.name).is_empty() {
            errs.push(FieldError::required(
                idx(&child(path, "options"), i),
                "must not be empty",
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------
// Pod

/// Pod create validation (`ValidatePodCreate`).
pub fn validate_pod(p: &Pod) -> Errs {
    let empty;
    let spec = match &p.spec {
        Some(s) => s,
        None => {
            empty = PodSpec::default();
            &empty
        }
    };
    let mut errs = pod_metadata_and_spec(&p.metadata, spec);
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !text(&spec.node_name).is_empty()
        && spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
    {
        errs.push(FieldError::forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

fn pod_metadata_and_spec(meta: &ObjectMeta, spec: &PodSpec) -> Errs {
    let mut errs = validate_object_meta(meta, true, NameRule::Dns1123Subdomain, "metadata");
    errs.extend(pod_spec(spec, "spec", true));
    if text(&spec.service_account_name).is_empty() {
        for (vi, v) in spec.volumes.iter().flatten().enumerate() {
            for (si, src) in v
                .projected
                .iter()
                .flat_map(|p| p.sources.iter().flatten())
                .enumerate()
            {
                if src.service_account_token.is_some() {
                    let p =
                        format!("spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken");
                    errs.push(FieldError::forbidden(
                        p,
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    for (field, list) in [
        ("containers", &spec.containers[..]),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or(&[]),
        ),
    ] {
        for (i, c) in list.iter().enumerate() {
            let image = text(&c.image);
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    format!("spec.{field}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// The pod spec fields an update may change, as Kubernetes lists them.
const UPDATABLE_POD_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Pod update validation (`ValidatePodUpdate`): besides the create rules, only images,
/// a shrinking `activeDeadlineSeconds`, added tolerations, removed scheduling gates and a
/// negative grace period becoming 1 may change in the spec.
pub fn validate_pod_update(new: &Pod, old: &Pod) -> Errs {
    let new_spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.spec.clone().unwrap_or_default();
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, "metadata");
    errs.extend(pod_metadata_and_spec(&new.metadata, &new_spec));
    let new_init = new_spec.init_containers.as_deref().unwrap_or(&[]);
    let old_init = old_spec.init_containers.as_deref().unwrap_or(&[]);
    for (field, n, o) in [
        (
            "containers",
            &new_spec.containers[..],
            &old_spec.containers[..],
        ),
        ("initContainers", new_init, old_init),
    ] {
        let path = child("spec", field);
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                path,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = text(&c.image);
            if image.is_empty() {
                errs.push(FieldError::required(child(&idx(&path, i), "image"), ""));
            }
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    child(&idx(&path, i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let deadline_path = "spec.activeDeadlineSeconds";
    match (
        new_spec.active_deadline_seconds,
        old_spec.active_deadline_seconds,
    ) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(invalid_num(
                deadline_path,
                n,
                &fmt::inclusive_range(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(invalid_num(
                deadline_path,
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(invalid_num(
            deadline_path,
            "null",
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    errs.extend(only_added_tolerations(&new_spec, &old_spec));
    errs.extend(only_removed_scheduling_gates(&new_spec, &old_spec));
    if !semantic_eq(&new_spec, &old_spec) {
        let munged = munge_updatable_pod_fields(&new_spec, &old_spec);
        if !semantic_eq(&munged, &old_spec) {
            let detail = format!(
                "pod updates may not change fields other than {UPDATABLE_POD_FIELDS}\n{}",
                pod_spec_diff(&old_spec, &munged)
            );
            errs.push(FieldError::forbidden("spec", &detail));
        }
    }
    errs
}

fn only_added_tolerations(new: &PodSpec, old: &PodSpec) -> Errs {
    let new_t = new.tolerations.as_deref().unwrap_or(&[]);
    for o in old.tolerations.iter().flatten() {
        let kept = new_t.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            semantic_eq(&o, n)
        });
        if !kept {
            return vec![FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    tolerations(new_t, "spec.tolerations")
}

fn only_removed_scheduling_gates(new: &PodSpec, old: &PodSpec) -> Errs {
    let old_names: BTreeSet<&str> = old
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    let mut added: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in new.scheduling_gates.iter().flatten().enumerate() {
        if !old_names.contains(g.name.as_str()) {
            added.insert(g.name.as_str(), i);
        }
    }
    added
        .into_iter()
        .map(|(name, i)| {
            FieldError::forbidden(
                format!("spec.schedulingGates[{i}].name"),
                &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            )
        })
        .collect()
}

/// The new spec with every updatable field set back to its old value.
fn munge_updatable_pod_fields(new: &PodSpec, old: &PodSpec) -> PodSpec {
    let mut m = new.clone();
    for (c, o) in m.containers.iter_mut().zip(&old.containers) {
        c.image = o.image.clone();
    }
    for (c, o) in m
        .init_containers
        .iter_mut()
        .flatten()
        .zip(old.init_containers.iter().flatten())
    {
        c.image = o.image.clone();
    }
    m.active_deadline_seconds = old.active_deadline_seconds;
    m.scheduling_gates = old.scheduling_gates.clone();
    m.tolerations = old.tolerations.clone();
    if old.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && m.termination_grace_period_seconds == Some(1)
    {
        m.termination_grace_period_seconds = old.termination_grace_period_seconds;
    }
    m
}

/// A short field-by-field diff in the spirit of the one Kubernetes appends (its exact
/// `cmp.Diff` output of the internal structs cannot be reproduced).
fn pod_spec_diff(old: &PodSpec, new: &PodSpec) -> String {
    let as_map = |s: &PodSpec| match serde_json::to_value(s) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        if semantic_eq(&o, &n) {
            continue;
        }
        let field = capitalised(k);
        let show = |v: Option<&serde_json::Value>| v.map_or("nil".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "- \t{field}: {},\n+ \t{field}: {},\n",
            show(o),
            show(n)
        ));
    }
    out.push_str("  }\n");
    out
}

fn capitalised(k: &str) -> String {
    let mut chars = k.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Node

/// Node create validation. Nodes are cluster-scoped; taint errors are reported under
/// `metadata.taints`, as Kubernetes does.
pub fn validate_node(n: &Node) -> Errs {
    let mut errs = validate_object_meta(&n.metadata, false, NameRule::Dns1123Subdomain, "metadata");
    let spec = n.spec.clone().unwrap_or_default();
    errs.extend(node_taints(
        spec.taints.as_deref().unwrap_or(&[]),
        "metadata.taints",
    ));
    errs.extend(node_resources(n));
    for (i, cidr) in spec.pod_cidrs.iter().flatten().enumerate() {
        if !fmt::is_cidr(cidr) {
            errs.push(FieldError::invalid(
                idx("spec.podCIDRs", i),
                cidr,
                fmt::CIDR_MSG,
            ));
        }
    }
    errs
}

/// Node update validation: the create rules plus immutable pod CIDRs, provider ID and
/// external ID, and unique addresses.
pub fn validate_node_update(new: &Node, old: &Node) -> Errs {
    let mut errs = validate_node(new);
    errs.extend(validate_object_meta_update(
        &new.metadata,
        &old.metadata,
        "metadata",
    ));
    let (spec, old_spec) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    let mut seen = BTreeSet::new();
    for (i, a) in new
        .status
        .iter()
        .flat_map(|s| s.addresses.iter().flatten())
        .enumerate()
    {
        if !seen.insert((a.type_.as_str(), a.address.as_str())) {
            let shown = format!(
                "core.NodeAddress{{Type:{}, Address:{}}}",
                crate::field::quote(&a.type_),
                crate::field::quote(&a.address)
            );
            errs.push(duplicate_rendered(idx("status.addresses", i), shown, ""));
        }
    }
    let old_cidrs = old_spec.pod_cidrs.unwrap_or_default();
    if !old_cidrs.is_empty() && spec.pod_cidrs.as_deref().unwrap_or(&[]) != old_cidrs.as_slice() {
        errs.push(FieldError::forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let old_provider = text(&old_spec.provider_id);
    if !old_provider.is_empty() && old_provider != text(&spec.provider_id) {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if spec.external_id != old_spec.external_id {
        errs.push(FieldError::forbidden(
            "spec.externalID",
            "may not be updated",
        ));
    }
    errs
}

fn node_taints(taints: &[Taint], path: &str) -> Errs {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = idx(path, i);
        label_name(&mut errs, &t.key, &child(&p, "key"));
        let value = text(&t.value);
        let msgs = fmt::label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "value"),
                value,
                msgs.join(";"),
            ));
        }
        if t.effect.is_empty() {
            errs.push(FieldError::required(child(&p, "effect"), ""));
        } else {
            errs.extend(taint_effect(&t.effect, &child(&p, "effect")));
        }
        if !seen.insert((t.effect.as_str(), t.key.as_str())) {
            errs.push(duplicate_rendered(
                p,
                go::taint(t),
                "taints must be unique by key and effect pair",
            ));
        }
    }
    errs
}

fn node_resources(n: &Node) -> Errs {
    let mut errs = Vec::new();
    let status = n.status.as_ref();
    for (field, list) in [
        ("capacity", status.and_then(|s| s.capacity.as_ref())),
        ("allocatable", status.and_then(|s| s.allocatable.as_ref())),
    ] {
        for (name, q) in list.into_iter().flatten() {
            errs.extend(quantity_value(
                name,
                &q.0,
                &format!("status.{field}.{name}"),
            ));
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------
// Namespace, Service, Lease, Event

/// Namespaces: cluster-scoped, DNS-1123 label names, valid spec finalizers.
pub fn validate_namespace(n: &Namespace) -> Errs {
    let mut errs = validate_object_meta(&n.metadata, false, NameRule::Dns1123Label, "metadata");
    for f in n.spec.iter().flat_map(|s| s.finalizers.iter().flatten()) {
        invalid_each(&mut errs, "spec.finalizers", f, fmt::qualified_name(f));
        errs.extend(kube_finalizer_name(f, "spec.finalizers"));
    }
    errs
}

/// Services (`ValidateService`): DNS-1035 names, ports, selector labels, session
/// affinity, cluster IPs and traffic policies.
pub fn validate_service(svc: &Service) -> Errs {
    let mut errs = validate_object_meta(&svc.metadata, true, NameRule::Dns1035Label, "metadata");
    let spec = svc.spec.clone().unwrap_or_default();
    let type_ = text(&spec.type_);
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    let headless = is_headless(&spec);
    if ports.is_empty() && !headless && type_ != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    errs.extend(service_type_rules(&spec, headless));
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(service_port(
            port,
            ports.len() > 1,
            &mut names,
            &idx("spec.ports", i),
        ));
    }
    if spec.selector.is_some() {
        errs.extend(validate_labels(spec.selector.as_ref(), "spec.selector"));
    }
    errs.extend(session_affinity(&spec));
    errs.extend(cluster_ips(&spec));
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        if !fmt::is_ip(ip) {
            errs.push(FieldError::invalid(
                idx("spec.externalIPs", i),
                ip,
                fmt::IP_MSG,
            ));
        }
    }
    errs.extend(one_of(
        &spec.type_,
        "spec.type",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
    ));
    if type_ == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.node_port.unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    child(&idx("spec.ports", i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    errs.extend(duplicate_service_ports(ports));
    if spec
        .load_balancer_source_ranges
        .as_ref()
        .is_some_and(|r| !r.is_empty())
    {
        let p = "spec.LoadBalancerSourceRanges";
        if type_ != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                p,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in spec
            .load_balancer_source_ranges
            .iter()
            .flatten()
            .enumerate()
        {
            if !fmt::is_cidr(r.trim()) {
                errs.push(FieldError::invalid(idx(p, i), r.trim(), fmt::CIDR_MSG));
            }
        }
    }
    if spec.allocate_load_balancer_node_ports.is_some() && type_ != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if type_ == "LoadBalancer" && spec.allocate_load_balancer_node_ports.is_none() {
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    errs.extend(traffic_policies(&spec));
    errs
}

/// Service updates (`ValidateServiceUpdate`): metadata update rules, the cluster IP is
/// immutable once set (unless the type changes to or from ExternalName), then the
/// create-time rules.
pub fn validate_service_update(new: &Service, old: &Service) -> Errs {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, "metadata");
    let (n, o) = (
        new.spec.clone().unwrap_or_default(),
        old.spec.clone().unwrap_or_default(),
    );
    let external = |s: &ServiceSpec| text(&s.type_) == "ExternalName";
    if !external(&n) && !external(&o) {
        let (new_ip, old_ip) = (text(&n.cluster_ip), text(&o.cluster_ip));
        if !old_ip.is_empty() && new_ip != old_ip {
            errs.push(FieldError::invalid(
                "spec.clusterIP",
                new_ip,
                "field is immutable",
            ));
        }
        let new_first = n.cluster_ips.as_deref().and_then(<[String]>::first);
        let old_first = o.cluster_ips.as_deref().and_then(<[String]>::first);
        if let (Some(nf), Some(of)) = (new_first, old_first)
            && nf != of
        {
            errs.push(FieldError::invalid(
                "spec.clusterIPs[0]",
                nf,
                "may not change once set",
            ));
        }
    }
    errs.extend(validate_service(new));
    errs
}

fn is_headless(spec: &ServiceSpec) -> bool {
    spec.cluster_ips
        .as_deref()
        .is_some_and(|ips| ips.len() == 1 && ips[0] == "None")
}

fn service_type_rules(spec: &ServiceSpec, headless: bool) -> Errs {
    let mut errs = Vec::new();
    match text(&spec.type_) {
        t @ ("LoadBalancer" | "NodePort") if headless => {
            let detail = format!("may not be set to 'None' for {t} services");
            errs.push(FieldError::invalid("spec.clusterIPs[0]", "None", detail));
        }
        "ExternalName" => {
            if spec.cluster_ips.as_ref().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|v| !v.is_empty()) {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = text(&spec.external_name);
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                invalid_each(
                    &mut errs,
                    "spec.externalName",
                    cname,
                    fmt::dns1123_subdomain(cname),
                );
            }
        }
        _ => {}
    }
    errs
}

fn service_port<'a>(
    p: &'a ServicePort,
    require_name: bool,
    names: &mut BTreeSet<&'a str>,
    path: &str,
) -> Errs {
    let mut errs = Vec::new();
    let name = text(&p.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    } else if !name.is_empty() {
        invalid_each(
            &mut errs,
            &child(path, "name"),
            name,
            fmt::dns1123_label(name),
        );
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(path, "name"), name));
        }
    }
    for m in fmt::port_num(i64::from(p.port)) {
        errs.push(invalid_num(child(path, "port"), p.port, &m));
    }
    errs.extend(protocol(&p.protocol, &child(path, "protocol")));
    let target = p.target_port.clone().unwrap_or(IntOrString::Int(0));
    errs.extend(port_num_or_name(&target, &child(path, "targetPort")));
    if let Some(app) = p.app_protocol.as_deref() {
        invalid_each(
            &mut errs,
            &child(path, "appProtocol"),
            app,
            fmt::qualified_name(app),
        );
    }
    errs
}

fn duplicate_service_ports(ports: &[ServicePort]) -> Errs {
    let mut errs = Vec::new();
    let mut node_ports = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        let np = p.node_port.unwrap_or(0);
        if np != 0 && !node_ports.insert((text(&p.protocol), np)) {
            errs.push(duplicate_rendered(
                child(&idx("spec.ports", i), "nodePort"),
                np.to_string(),
                "",
            ));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, p) in ports.iter().enumerate() {
        if !seen.insert((text(&p.protocol), p.port)) {
            let shown = format!(
                "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                crate::field::quote(text(&p.protocol)),
                p.port
            );
            errs.push(duplicate_rendered(idx("spec.ports", i), shown, ""));
        }
    }
    errs
}

fn session_affinity(spec: &ServiceSpec) -> Errs {
    let mut errs = one_of(
        &spec.session_affinity,
        "spec.sessionAffinity",
        &["ClientIP", "None"],
    );
    let path = "spec.sessionAffinityConfig";
    match text(&spec.session_affinity) {
        "ClientIP" => {
            let when = "when session affinity type is ClientIP";
            let client_ip = spec
                .session_affinity_config
                .as_ref()
                .map(|c| c.client_ip.as_ref());
            match client_ip {
                None => errs.push(FieldError::required(path, when)),
                Some(None) => errs.push(FieldError::required(child(path, "clientIP"), when)),
                Some(Some(c)) => match c.timeout_seconds {
                    None => errs.push(FieldError::required(
                        format!("{path}.clientIP.timeoutSeconds"),
                        when,
                    )),
                    Some(t) if t <= 0 || t > 86400 => errs.push(invalid_num(
                        format!("{path}.clientIP.timeoutSeconds"),
                        t,
                        "must be greater than 0 and less than 86400",
                    )),
                    Some(_) => {}
                },
            }
        }
        "None" if spec.session_affinity_config.is_some() => {
            errs.push(FieldError::forbidden(
                path,
                "must not be set when session affinity is None",
            ));
        }
        _ => {}
    }
    errs
}

fn cluster_ips(spec: &ServiceSpec) -> Errs {
    if text(&spec.type_) == "ExternalName" {
        return Vec::new();
    }
    let mut errs = Vec::new();
    let path = "spec.clusterIPs";
    let ip = text(&spec.cluster_ip);
    let ips = spec.cluster_ips.as_deref().unwrap_or(&[]);
    let shown = || go::string_slice(Some(ips));
    if !ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(path, ""));
        } else if ips[0] != ip {
            errs.push(invalid_num(
                path,
                shown(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(invalid_num(
            path,
            shown(),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut families = BTreeSet::new();
    for (i, f) in spec.ip_families.iter().flatten().enumerate() {
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(
                idx("spec.ipFamilies", i),
                f,
                &["IPv4", "IPv6"],
            ));
        }
        if !families.insert(f.as_str()) {
            errs.push(FieldError::duplicate(idx("spec.ipFamilies", i), f));
        }
    }
    if let Some(policy) = spec.ip_family_policy.as_deref() {
        let supported = ["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !supported.contains(&policy) {
            errs.push(FieldError::not_supported(
                "spec.ipFamilyPolicy",
                policy,
                &supported,
            ));
        }
    }
    let mut bad_ip = false;
    for (i, cip) in ips.iter().enumerate() {
        if i == 0 && cip == "None" {
            if ips.len() > 1 {
                bad_ip = true;
                errs.push(invalid_num(
                    path,
                    shown(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        if !fmt::is_ip(cip) {
            bad_ip = true;
            errs.push(FieldError::invalid(idx(path, i), cip, fmt::IP_MSG));
        }
    }
    if ips.len() > 2 {
        errs.push(invalid_num(path, shown(), "may only hold up to 2 values"));
    }
    if bad_ip {
        return errs;
    }
    let is_v6 = |a: &str| a.parse::<std::net::Ipv6Addr>().is_ok();
    if ips.len() > 1 && ips.iter().filter(|a| is_v6(a)).count() != 1 {
        errs.push(invalid_num(
            path,
            shown(),
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(spec) {
        for (i, (cip, family)) in ips
            .iter()
            .zip(spec.ip_families.iter().flatten())
            .enumerate()
        {
            if family == "IPv4" && is_v6(cip) {
                errs.push(FieldError::invalid(
                    idx(path, i),
                    cip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if family == "IPv6" && !is_v6(cip) {
                errs.push(FieldError::invalid(
                    idx(path, i),
                    cip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

fn traffic_policies(spec: &ServiceSpec) -> Errs {
    let mut errs = Vec::new();
    let type_ = text(&spec.type_);
    let external_ips = spec.external_ips.as_ref().is_some_and(|v| !v.is_empty());
    let externally_accessible =
        type_ == "LoadBalancer" || type_ == "NodePort" || (type_ == "ClusterIP" && external_ips);
    let etp = text(&spec.external_traffic_policy);
    if !externally_accessible {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else {
        errs.extend(one_of(
            &spec.external_traffic_policy,
            "spec.externalTrafficPolicy",
            &["Cluster", "Local"],
        ));
    }
    let needs_health_check = type_ == "LoadBalancer" && etp == "Local";
    let hc = spec.health_check_node_port.unwrap_or(0);
    if !needs_health_check && hc != 0 {
        errs.push(invalid_num(
            "spec.healthCheckNodePort",
            hc,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    }
    // kube-apiserver allocates the port before validating and then requires it; here
    // validation comes first and the allocator fills a missing one in
    // (`service_alloc`), so only a given port is checked.
    if needs_health_check && hc != 0 {
        for m in fmt::port_num(i64::from(hc)) {
            errs.push(invalid_num("spec.healthCheckNodePort", hc, &m));
        }
    }
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(type_, "NodePort" | "LoadBalancer" | "ClusterIP") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""));
        }
        Some(p) if p != "Cluster" && p != "Local" => {
            errs.push(FieldError::not_supported(
                "spec.internalTrafficPolicy",
                p,
                &["Cluster", "Local"],
            ));
        }
        _ => {}
    }
    if let Some(td) = spec.traffic_distribution.as_deref()
        && td != "PreferClose"
    {
        errs.push(FieldError::not_supported(
            "spec.trafficDistribution",
            td,
            &["PreferClose"],
        ));
    }
    errs
}

/// A ConfigMap's keys (its metadata and size are checked with every generic object):
/// each a valid key, none in both `data` and `binaryData`.
pub fn validate_config_map(cm: &ConfigMap) -> Errs {
    let mut errs = Vec::new();
    let data = cm.data.as_ref();
    for k in data.into_iter().flat_map(|d| d.keys()) {
        invalid_each(&mut errs, &key("data", k), k, fmt::config_map_key(k));
    }
    for k in cm.binary_data.iter().flat_map(|d| d.keys()) {
        invalid_each(&mut errs, &key("binaryData", k), k, fmt::config_map_key(k));
        if data.is_some_and(|d| d.contains_key(k)) {
            errs.push(FieldError::invalid(
                key("data", k),
                k,
                "duplicate of key present in data",
            ));
        }
    }
    errs
}

const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

/// An update of a ConfigMap: one marked `immutable` keeps its data and the mark.
pub fn validate_config_map_update(new: &ConfigMap, old: &ConfigMap) -> Errs {
    let mut errs = Vec::new();
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
        }
        if new.data != old.data {
            errs.push(FieldError::forbidden("data", IMMUTABLE_WHEN_SET));
        }
        if new.binary_data != old.binary_data {
            errs.push(FieldError::forbidden("binaryData", IMMUTABLE_WHEN_SET));
        }
    }
    errs.extend(validate_config_map(new));
    errs
}

/// A Secret's keys and what its type requires (metadata and size are checked with every
/// generic object).
pub fn validate_secret(secret: &Secret) -> Errs {
    let mut errs = Vec::new();
    let data = secret.data.as_ref();
    for k in data.into_iter().flat_map(|d| d.keys()) {
        invalid_each(&mut errs, &key("data", k), k, fmt::config_map_key(k));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    let value = |k: &str| data.and_then(|d| d.get(k)).map(|b| b.0.as_slice());
    let json_object = |bytes: &[u8]| -> Result<(), String> {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
            .map(drop)
            .map_err(|e| e.to_string())
    };
    match secret.type_.as_deref().unwrap_or("") {
        "kubernetes.io/service-account-token" => {
            let named = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .is_some_and(|v| !v.is_empty());
            if !named {
                errs.push(FieldError::required(
                    key("metadata.annotations", "kubernetes.io/service-account.name"),
                    "",
                ));
            }
        }
        t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
            let k = if t == "kubernetes.io/dockercfg" {
                ".dockercfg"
            } else {
                ".dockerconfigjson"
            };
            match value(k) {
                None => errs.push(FieldError::required(key("data", k), "")),
                Some(bytes) => {
                    if let Err(e) = json_object(bytes) {
                        errs.push(FieldError::invalid(
                            key("data", k),
                            "<secret contents redacted>",
                            e,
                        ));
                    }
                }
            }
        }
        // Either may be empty, but one must be there.
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(FieldError::required(key("data", "username"), ""));
            errs.push(FieldError::required(key("data", "password"), ""));
        }
        "kubernetes.io/ssh-auth" if value("ssh-privatekey").is_none_or(<[u8]>::is_empty) => {
            errs.push(FieldError::required(key("data", "ssh-privatekey"), ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    errs.push(FieldError::required(key("data", k), ""));
                }
            }
        }
        _ => {}
    }
    errs
}

/// An update of a Secret: its type never changes, and one marked `immutable` keeps its
/// data and the mark.
pub fn validate_secret_update(new: &Secret, old: &Secret) -> Errs {
    let mut errs = Vec::new();
    // (Secrets stored before their type was defaulted count as Opaque.)
    let type_of = |s: &Secret| match text(&s.type_) {
        "" => "Opaque".to_string(),
        t => t.to_string(),
    };
    if type_of(new) != type_of(old) {
        errs.push(FieldError::invalid(
            "type",
            text(&new.type_),
            "field is immutable",
        ));
    }
    if old.immutable == Some(true) {
        if new.immutable != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
        }
        if new.data != old.data {
            errs.push(FieldError::forbidden("data", IMMUTABLE_WHEN_SET));
        }
    }
    errs.extend(validate_secret(new));
    errs
}

/// An EndpointSlice's address type (metadata is checked with every generic object): one
/// of the three, at most 1,000 endpoints, each with 1 to 100 addresses.
pub fn validate_endpoint_slice(es: &k8s_openapi::api::discovery::v1::EndpointSlice) -> Errs {
    let mut errs = Vec::new();
    if !["FQDN", "IPv4", "IPv6"].contains(&es.address_type.as_str()) {
        errs.push(FieldError::not_supported(
            "addressType",
            &es.address_type,
            &["FQDN", "IPv4", "IPv6"],
        ));
    }
    if es.endpoints.len() > 1000 {
        errs.push(FieldError::too_many("endpoints", es.endpoints.len(), 1000));
    }
    for (i, e) in es.endpoints.iter().enumerate() {
        let path = format!("endpoints[{i}].addresses");
        if e.addresses.is_empty() {
            errs.push(FieldError::required(
                path,
                "must contain at least 1 address",
            ));
        } else if e.addresses.len() > 100 {
            errs.push(FieldError::too_many(path, e.addresses.len(), 100));
        }
    }
    errs
}

/// An update of an EndpointSlice: its address type never changes.
pub fn validate_endpoint_slice_update(
    new: &k8s_openapi::api::discovery::v1::EndpointSlice,
    old: &k8s_openapi::api::discovery::v1::EndpointSlice,
) -> Errs {
    let mut errs = validate_endpoint_slice(new);
    if new.address_type != old.address_type {
        errs.push(FieldError::invalid(
            "addressType",
            &new.address_type,
            "field is immutable",
        ));
    }
    errs
}

/// Leases (coordination.k8s.io): metadata plus positive durations and a known strategy.
pub fn validate_lease(l: &Lease) -> Errs {
    let mut errs = object_meta(
        &l.metadata,
        true,
        NameRule::Dns1123Subdomain,
        "metadata",
        false,
    );
    let Some(spec) = l.spec.as_ref() else {
        return errs;
    };
    if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
        errs.push(invalid_num(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.push(invalid_num("spec.leaseTransitions", t, NON_NEGATIVE));
    }
    let strategy = text(&spec.strategy);
    if spec.strategy.is_some() {
        if !strategy.contains('/') {
            if strategy != "OldestEmulationVersion" {
                errs.push(FieldError::not_supported(
                    "spec.strategy.strategy",
                    strategy,
                    &["OldestEmulationVersion"],
                ));
            }
        } else {
            invalid_each(
                &mut errs,
                "spec.strategy.strategy",
                strategy,
                fmt::qualified_name(strategy),
            );
        }
    }
    if !text(&spec.preferred_holder).is_empty() && strategy.is_empty() {
        errs.push(FieldError::forbidden(
            "spec.preferredHolder",
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

/// core/v1 Events: the legacy consistency rules; if those pass, the generic metadata
/// rules (path-segment names) the registry applies to every object.
pub fn validate_event(e: &Event) -> Errs {
    let errs = legacy_event(e);
    if !errs.is_empty() {
        return errs;
    }
    validate_object_meta(&e.metadata, true, NameRule::PathSegment, "metadata")
}

fn legacy_event(e: &Event) -> Errs {
    let mut errs = Vec::new();
    let namespace = text(&e.metadata.namespace);
    let involved_ns = text(&e.involved_object.namespace);
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        )
    };
    if e.event_time.is_none() {
        if involved_ns.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                errs.push(mismatch());
            }
        } else if namespace != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = text(&e.reporting_component);
        if controller.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        invalid_each(
            &mut errs,
            "reportingController",
            controller,
            fmt::qualified_name(controller),
        );
        for (field, value, limit) in [
            ("reportingInstance", text(&e.reporting_instance), 128),
            ("action", text(&e.action), 128),
            ("reason", text(&e.reason), 128),
        ] {
            if value.is_empty() {
                errs.push(FieldError::required(field, ""));
            }
            if value.len() > limit {
                errs.push(FieldError::invalid(
                    field,
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
        if text(&e.message).len() > 1024 {
            errs.push(FieldError::invalid(
                "message",
                "",
                "can have at most 1024 characters",
            ));
        }
    }
    invalid_each(
        &mut errs,
        "namespace",
        namespace,
        fmt::dns1123_subdomain(namespace),
    );
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;
    use crate::field::aggregate_message;
    use serde_json::{Value, json};

    /// A valid DaemonSet (before defaulting) to derive broken ones from.
    fn ds_json() -> Value {
        json!({
            "metadata": {"name": "fluentd", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "fluentd"}},
                "template": {
                    "metadata": {"labels": {"app": "fluentd"}},
                    "spec": {"containers": [{"name": "fluentd", "image": "fluentd:v1"}]}
                }
            }
        })
    }

    /// Sets `value` at a JSON pointer, creating objects on the way.
    fn set(doc: &mut Value, pointer: &str, value: Value) {
        let mut cur = doc;
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            cur = match cur {
                Value::Array(items) => {
                    let at: usize = part.parse().expect("array index");
                    &mut items[at]
                }
                other => {
                    if !other.is_object() {
                        *other = json!({});
                    }
                    let map = other.as_object_mut().expect("object");
                    if last {
                        map.insert(part.to_string(), value);
                        return;
                    }
                    map.entry(part.to_string()).or_insert(json!({}))
                }
            };
            if last {
                *cur = value;
                return;
            }
        }
    }

    fn daemonset(doc: Value) -> DaemonSet {
        let mut ds: DaemonSet = serde_json::from_value(doc).expect("daemonset json");
        defaults::default_daemonset(&mut ds);
        ds
    }

    fn ds_with(edits: &[(&str, Value)]) -> DaemonSet {
        let mut doc = ds_json();
        for (pointer, value) in edits {
            set(&mut doc, pointer, value.clone());
        }
        daemonset(doc)
    }

    fn without(pointer: &str) -> DaemonSet {
        let mut doc = ds_json();
        let (parent, field) = pointer.rsplit_once('/').expect("pointer");
        if let Some(obj) = doc.pointer_mut(parent).and_then(Value::as_object_mut) {
            obj.remove(field);
        }
        daemonset(doc)
    }

    fn msg(errs: &[FieldError]) -> String {
        aggregate_message(errs)
    }

    const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn valid_daemonset_has_no_errors() {
        assert_eq!(msg(&validate_daemonset(&daemonset(ds_json()))), "");
    }

    #[test]
    fn daemonset_spec_rules_render_like_kube_apiserver() {
        let sel = "/spec/selector";
        let pod = "/spec/template/spec";
        let ru = "/spec/updateStrategy/rollingUpdate";
        let cases: Vec<(&str, DaemonSet, String)> = vec![
            (
                "missing selector",
                without(sel),
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"fluentd\"}: `selector` does not match template `labels`".into(),
            ),
            (
                "selector does not match",
                ds_with(&[(sel, json!({"matchLabels": {"app": "other"}}))]),
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"fluentd\"}: `selector` does not match template `labels`".into(),
            ),
            (
                "template without labels",
                ds_with(&[("/spec/template/metadata", json!({}))]),
                "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`".into(),
            ),
            (
                "empty selector",
                ds_with(&[(sel, json!({"matchLabels": {}}))]),
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset".into(),
            ),
            (
                "In without values",
                ds_with(&[(sel, json!({"matchExpressions": [{"key": "app", "operator": "In"}]}))]),
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
            ),
            (
                "Exists with values",
                ds_with(&[(sel, json!({"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}))]),
                "spec.selector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'".into(),
            ),
            (
                "unknown operator",
                ds_with(&[(sel, json!({"matchExpressions": [{"key": "app", "operator": "Is"}]}))]),
                "spec.selector.matchExpressions[0].operator: Invalid value: \"Is\": not a valid selector operator".into(),
            ),
            (
                "expression selector that matches",
                ds_with(&[(sel, json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["fluentd", "x"]}]}))]),
                String::new(),
            ),
            (
                "restartPolicy Never",
                ds_with(&[(&format!("{pod}/restartPolicy"), json!("Never"))]),
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".into(),
            ),
            (
                "activeDeadlineSeconds",
                ds_with(&[(&format!("{pod}/activeDeadlineSeconds"), json!(30))]),
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in DaemonSet is not Supported".into(),
            ),
            (
                "minReadySeconds",
                ds_with(&[("/spec/minReadySeconds", json!(-1))]),
                "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0".into(),
            ),
            (
                "revisionHistoryLimit",
                ds_with(&[("/spec/revisionHistoryLimit", json!(-1))]),
                "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0".into(),
            ),
            ("revisionHistoryLimit 0", ds_with(&[("/spec/revisionHistoryLimit", json!(0))]), String::new()),
            (
                "unknown strategy",
                ds_with(&[("/spec/updateStrategy", json!({"type": "Recreate"}))]),
                "spec.updateStrategy: Unsupported value: apps.DaemonSetUpdateStrategy{Type:\"Recreate\", RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: \"RollingUpdate\", \"OnDelete\"".into(),
            ),
            (
                "OnDelete keeps a stray rollingUpdate",
                ds_with(&[("/spec/updateStrategy", json!({"type": "OnDelete", "rollingUpdate": {"maxSurge": 1}}))]),
                String::new(),
            ),
            (
                "both zero",
                ds_with(&[(ru, json!({"maxUnavailable": 0, "maxSurge": 0}))]),
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0".into(),
            ),
            (
                "both zero percent",
                ds_with(&[(ru, json!({"maxUnavailable": "0%", "maxSurge": 0}))]),
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0".into(),
            ),
            (
                "both non-zero",
                ds_with(&[(ru, json!({"maxUnavailable": 1, "maxSurge": "10%"}))]),
                "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"10%\"}: may not be set when maxUnavailable is non-zero".into(),
            ),
            ("surge only", ds_with(&[(ru, json!({"maxUnavailable": 0, "maxSurge": 1}))]), String::new()),
            (
                "not a percent",
                ds_with(&[(ru, json!({"maxUnavailable": "10"}))]),
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"10\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')".into(),
            ),
            (
                "over 100%",
                ds_with(&[(ru, json!({"maxUnavailable": "150%"}))]),
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%".into(),
            ),
            (
                "negative",
                ds_with(&[(ru, json!({"maxUnavailable": -1}))]),
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: -1: must be greater than or equal to 0".into(),
            ),
            (
                "template generation annotation",
                ds_with(&[("/metadata/annotations", json!({TEMPLATE_GENERATION_ANNOTATION: "-1"}))]),
                "spec.templateGeneration: Invalid value: -1: must be greater than or equal to 0".into(),
            ),
        ];
        for (name, ds, want) in cases {
            assert_eq!(msg(&validate_daemonset(&ds)), want, "{name}");
        }
    }

    #[test]
    fn pod_template_rules_render_like_kube_apiserver() {
        let c0 = "/spec/template/spec/containers/0";
        let pod = "/spec/template/spec";
        let container = |extra: Value| {
            let mut c = json!({"name": "fluentd", "image": "fluentd:v1"});
            if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
                c.extend(extra.clone());
            }
            c
        };
        let cases: Vec<(&str, DaemonSet, String)> = vec![
            (
                "no containers",
                ds_with(&[(&format!("{pod}/containers"), json!([]))]),
                "spec.template.spec.containers: Required value".into(),
            ),
            (
                "no image",
                ds_with(&[(&format!("{c0}/image"), json!(""))]),
                "spec.template.spec.containers[0].image: Required value".into(),
            ),
            (
                "no container name",
                ds_with(&[(&format!("{c0}/name"), json!(""))]),
                "spec.template.spec.containers[0].name: Required value".into(),
            ),
            (
                "container name not a label",
                ds_with(&[(&format!("{c0}/name"), json!("Fluent_d"))]),
                "spec.template.spec.containers[0].name: Invalid value: \"Fluent_d\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into(),
            ),
            (
                "duplicate container names",
                ds_with(&[(&format!("{pod}/containers"), json!([container(json!({})), container(json!({}))]))]),
                "spec.template.spec.containers[1].name: Duplicate value: \"fluentd\"".into(),
            ),
            (
                "init container shares a name",
                ds_with(&[(&format!("{pod}/initContainers"), json!([container(json!({}))]))]),
                "spec.template.spec.initContainers[0].name: Duplicate value: \"fluentd\"".into(),
            ),
            (
                "port out of range",
                ds_with(&[(&format!("{c0}/ports"), json!([{"containerPort": 70000}]))]),
                "spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive".into(),
            ),
            (
                "port missing",
                ds_with(&[(&format!("{c0}/ports"), json!([{"containerPort": 0}]))]),
                "spec.template.spec.containers[0].ports[0].containerPort: Required value".into(),
            ),
            (
                "bad protocol",
                ds_with(&[(&format!("{c0}/ports"), json!([{"containerPort": 80, "protocol": "HTTP"}]))]),
                "spec.template.spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into(),
            ),
            (
                "port name too long and duplicate",
                ds_with(&[(&format!("{c0}/ports"), json!([
                    {"containerPort": 80, "name": "http"},
                    {"containerPort": 81, "name": "http"},
                    {"containerPort": 82, "name": "a-very-long-port-name"}
                ]))]),
                "[spec.template.spec.containers[0].ports[1].name: Duplicate value: \"http\", spec.template.spec.containers[0].ports[2].name: Invalid value: \"a-very-long-port-name\": must be no more than 15 characters]".into(),
            ),
            (
                "host port in use twice",
                ds_with(&[(&format!("{c0}/ports"), json!([
                    {"containerPort": 80, "hostPort": 8080},
                    {"containerPort": 81, "hostPort": 8080}
                ]))]),
                "spec.template.spec.containers[0].ports[1].hostPort: Duplicate value: \"TCP//8080\"".into(),
            ),
            (
                "host network with a different host port",
                ds_with(&[
                    (&format!("{pod}/hostNetwork"), json!(true)),
                    (&format!("{c0}/ports"), json!([{"containerPort": 80, "hostPort": 8080}])),
                ]),
                "spec.template.spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when `hostNetwork` is true".into(),
            ),
            (
                "host network template without host port",
                ds_with(&[(&format!("{pod}/hostNetwork"), json!(true)), (&format!("{c0}/ports"), json!([{"containerPort": 80}]))]),
                String::new(),
            ),
            (
                "env name with =",
                ds_with(&[(&format!("{c0}/env"), json!([{"name": "A=B", "value": "x"}]))]),
                "spec.template.spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='".into(),
            ),
            (
                "env name relaxed",
                ds_with(&[(&format!("{c0}/env"), json!([{"name": "1-weird.NAME", "value": "x"}]))]),
                String::new(),
            ),
            (
                "env fieldRef unsupported",
                ds_with(&[(&format!("{c0}/env"), json!([{"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}]))]),
                "spec.template.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"metadata.labels\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"".into(),
            ),
            (
                "env value and valueFrom",
                ds_with(&[(&format!("{c0}/env"), json!([{"name": "N", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]))]),
                "spec.template.spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty".into(),
            ),
            (
                "requests above limits",
                ds_with(&[(&format!("{c0}/resources"), json!({"limits": {"cpu": "100m"}, "requests": {"cpu": "0.2"}}))]),
                "spec.template.spec.containers[0].resources.requests: Invalid value: \"200m\": must be less than or equal to cpu limit of 100m".into(),
            ),
            (
                "not a quantity",
                ds_with(&[(&format!("{c0}/resources"), json!({"limits": {"memory": "lots"}}))]),
                "spec.template.spec.containers[0].resources.limits[memory]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into(),
            ),
            (
                "negative quantity",
                ds_with(&[(&format!("{c0}/resources"), json!({"requests": {"cpu": "-1"}}))]),
                "spec.template.spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0".into(),
            ),
            (
                "unknown resource",
                ds_with(&[(&format!("{c0}/resources"), json!({"limits": {"gpu": "1"}}))]),
                "[spec.template.spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified, spec.template.spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers]".into(),
            ),
            (
                "extended resource must request its limit",
                ds_with(&[(&format!("{c0}/resources"), json!({"limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}}))]),
                "spec.template.spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2".into(),
            ),
            (
                "mount of a missing volume",
                ds_with(&[(&format!("{c0}/volumeMounts"), json!([{"name": "data", "mountPath": "/data"}]))]),
                "spec.template.spec.containers[0].volumeMounts[0].name: Not found: \"data\"".into(),
            ),
            (
                "mount without path",
                ds_with(&[
                    (&format!("{pod}/volumes"), json!([{"name": "data", "emptyDir": {}}])),
                    (&format!("{c0}/volumeMounts"), json!([{"name": "data", "mountPath": ""}])),
                ]),
                "spec.template.spec.containers[0].volumeMounts[0].mountPath: Required value".into(),
            ),
            (
                "duplicate volumes",
                ds_with(&[(&format!("{pod}/volumes"), json!([{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]))]),
                "spec.template.spec.volumes[1].name: Duplicate value: \"data\"".into(),
            ),
            (
                "two volume sources",
                ds_with(&[(&format!("{pod}/volumes"), json!([{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x"}}]))]),
                "spec.template.spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type".into(),
            ),
            (
                "hostPath without path",
                ds_with(&[(&format!("{pod}/volumes"), json!([{"name": "data", "hostPath": {"path": ""}}]))]),
                "spec.template.spec.volumes[0].hostPath.path: Required value".into(),
            ),
            (
                "hostPath type",
                ds_with(&[(&format!("{pod}/volumes"), json!([{"name": "data", "hostPath": {"path": "/x", "type": "Dir"}}]))]),
                "spec.template.spec.volumes[0].hostPath.type: Unsupported value: \"Dir\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\"".into(),
            ),
            (
                "configMap without name",
                ds_with(&[(&format!("{pod}/volumes"), json!([{"name": "cfg", "configMap": {"name": ""}}]))]),
                "spec.template.spec.volumes[0].configMap.name: Required value".into(),
            ),
            (
                "bad volume name",
                ds_with(&[(&format!("{pod}/volumes"), json!([{"name": "My_Data", "emptyDir": {}}]))]),
                "spec.template.spec.volumes[0].name: Invalid value: \"My_Data\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')".into(),
            ),
            (
                "dnsPolicy",
                ds_with(&[(&format!("{pod}/dnsPolicy"), json!("Cluster"))]),
                "spec.template.spec.dnsPolicy: Unsupported value: \"Cluster\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"".into(),
            ),
            (
                "negative grace period",
                ds_with(&[(&format!("{pod}/terminationGracePeriodSeconds"), json!(-1))]),
                "spec.template.spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0".into(),
            ),
            (
                "toleration Exists with value",
                ds_with(&[(&format!("{pod}/tolerations"), json!([{"key": "k", "operator": "Exists", "value": "x"}]))]),
                "spec.template.spec.tolerations[0].operator: Invalid value: \"x\": value must be empty when `operator` is 'Exists'".into(),
            ),
            (
                "toleration operator",
                ds_with(&[(&format!("{pod}/tolerations"), json!([{"key": "k", "operator": "In"}]))]),
                "spec.template.spec.tolerations[0].operator: Unsupported value: \"In\": supported values: \"Equal\", \"Exists\"".into(),
            ),
            (
                "toleration effect",
                ds_with(&[(&format!("{pod}/tolerations"), json!([{"key": "k", "operator": "Exists", "effect": "NoRun"}]))]),
                "spec.template.spec.tolerations[0].effect: Unsupported value: \"NoRun\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".into(),
            ),
            (
                "tolerationSeconds without NoExecute",
                ds_with(&[(&format!("{pod}/tolerations"), json!([{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]))]),
                "spec.template.spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set".into(),
            ),
            (
                "empty key needs Exists",
                ds_with(&[(&format!("{pod}/tolerations"), json!([{"operator": "Equal"}]))]),
                "spec.template.spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"".into(),
            ),
            (
                "tolerate everything",
                ds_with(&[(&format!("{pod}/tolerations"), json!([{"operator": "Exists"}]))]),
                String::new(),
            ),
            (
                "nodeSelector value",
                ds_with(&[(&format!("{pod}/nodeSelector"), json!({"disk": "ssd only"}))]),
                "spec.template.spec.nodeSelector: Invalid value: \"ssd only\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into(),
            ),
            (
                "probe without handler",
                ds_with(&[(&format!("{c0}/livenessProbe"), json!({"periodSeconds": 5}))]),
                "spec.template.spec.containers[0].livenessProbe: Required value: must specify a handler type".into(),
            ),
            (
                "liveness success threshold",
                ds_with(&[(&format!("{c0}/livenessProbe"), json!({"tcpSocket": {"port": 80}, "successThreshold": 2}))]),
                "spec.template.spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1".into(),
            ),
            (
                "template labels reported at template.labels",
                ds_with(&[
                    ("/spec/template/metadata/labels", json!({"app": "fluentd", "bad key": "x"})),
                ]),
                "spec.template.labels: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into(),
            ),
            (
                "node affinity without terms",
                ds_with(&[(&format!("{pod}/affinity"), json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}))]),
                "spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term".into(),
            ),
            (
                "ephemeral containers in a template",
                ds_with(&[(&format!("{pod}/ephemeralContainers"), json!([{"name": "debug", "image": "busybox"}]))]),
                "spec.template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template".into(),
            ),
        ];
        for (name, ds, want) in cases {
            assert_eq!(msg(&validate_daemonset(&ds)), want, "{name}");
        }
    }

    #[test]
    fn object_meta_rules() {
        let meta = |v: Value| -> ObjectMeta { serde_json::from_value(v).expect("meta") };
        let ns =
            |m: &ObjectMeta| validate_object_meta(m, true, NameRule::Dns1123Subdomain, "metadata");
        let cluster =
            |m: &ObjectMeta| validate_object_meta(m, false, NameRule::Dns1123Subdomain, "metadata");
        let long_annotation = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let cases: Vec<(&str, Errs, String)> = vec![
            ("valid", ns(&meta(json!({"name": "a.b-c", "namespace": "default"}))), String::new()),
            (
                "no name",
                ns(&meta(json!({"namespace": "default"}))),
                "metadata.name: Required value: name or generateName is required".into(),
            ),
            (
                "bad name",
                ns(&meta(json!({"name": "Fluentd", "namespace": "default"}))),
                format!("metadata.name: Invalid value: \"Fluentd\": {SUBDOMAIN}"),
            ),
            (
                "name too long",
                ns(&meta(json!({"name": "a".repeat(254), "namespace": "default"}))),
                format!("metadata.name: Invalid value: \"{}\": must be no more than 253 characters", "a".repeat(254)),
            ),
            (
                "generateName with trailing dash is fine",
                ns(&meta(json!({"generateName": "web-", "name": "web-x7k2p", "namespace": "default"}))),
                String::new(),
            ),
            (
                "bad generateName",
                ns(&meta(json!({"generateName": "Web-", "name": "Web-x7k2p", "namespace": "default"}))),
                format!("[metadata.generateName: Invalid value: \"Web-\": {SUBDOMAIN}, metadata.name: Invalid value: \"Web-x7k2p\": {SUBDOMAIN}]"),
            ),
            ("no namespace", ns(&meta(json!({"name": "a"}))), "metadata.namespace: Required value".into()),
            (
                "namespace on a cluster-scoped object",
                cluster(&meta(json!({"name": "a", "namespace": "default"}))),
                "metadata.namespace: Forbidden: not allowed on this type".into(),
            ),
            (
                "label key",
                ns(&meta(json!({"name": "a", "namespace": "d", "labels": {"example.com/": "x"}}))),
                "[metadata.labels: Invalid value: \"example.com/\": name part must be non-empty, metadata.labels: Invalid value: \"example.com/\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')]".into(),
            ),
            (
                "label value too long",
                ns(&meta(json!({"name": "a", "namespace": "d", "labels": {"k": "v".repeat(64)}}))),
                format!("metadata.labels: Invalid value: \"{}\": must be no more than 63 characters", "v".repeat(64)),
            ),
            (
                "annotation key with two slashes",
                ns(&meta(json!({"name": "a", "namespace": "d", "annotations": {"a/b/c": "x"}}))),
                "metadata.annotations: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".into(),
            ),
            (
                "annotations too large",
                ns(&meta(json!({"name": "a", "namespace": "d", "annotations": {"k": long_annotation}}))),
                "metadata.annotations: Too long: may not be more than 262144 bytes".into(),
            ),
            (
                "owner reference fields",
                ns(&meta(json!({"name": "a", "namespace": "d", "ownerReferences": [{"apiVersion": "", "kind": "", "name": "x", "uid": "u"}]}))),
                "[metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty, metadata.ownerReferences.kind: Invalid value: \"\": must not be empty]".into(),
            ),
            (
                "two controllers",
                ns(&meta(json!({"name": "a", "namespace": "d", "ownerReferences": [
                    {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "x", "uid": "1", "controller": true},
                    {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "y", "uid": "2", "controller": true}
                ]}))),
                "metadata.ownerReferences: Invalid value: []v1.OwnerReference{v1.OwnerReference{APIVersion:\"apps/v1\", Kind:\"DaemonSet\", Name:\"x\", UID:\"1\", Controller:(*bool)(0xc000010000), BlockOwnerDeletion:(*bool)(nil)}, v1.OwnerReference{APIVersion:\"apps/v1\", Kind:\"DaemonSet\", Name:\"y\", UID:\"2\", Controller:(*bool)(0xc000010000), BlockOwnerDeletion:(*bool)(nil)}}: Only one reference can have Controller set to true. Found \"true\" in references for DaemonSet/x and DaemonSet/y".into(),
            ),
            (
                "finalizer not qualified",
                ns(&meta(json!({"name": "a", "namespace": "d", "finalizers": ["foo"]}))),
                "metadata.finalizers[0]: Invalid value: \"foo\": name is neither a standard finalizer name nor is it fully qualified".into(),
            ),
            (
                "standard finalizers",
                ns(&meta(json!({"name": "a", "namespace": "d", "finalizers": ["kubernetes", "example.com/x"]}))),
                String::new(),
            ),
            (
                "orphan and foreground",
                ns(&meta(json!({"name": "a", "namespace": "d", "finalizers": ["orphan", "foregroundDeletion"]}))),
                "metadata.finalizers: Invalid value: []string{\"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set".into(),
            ),
            (
                "path segment names",
                validate_object_meta(&meta(json!({"name": "a/b%", "namespace": "d"})), true, NameRule::PathSegment, "metadata"),
                "[metadata.name: Invalid value: \"a/b%\": may not contain '/', metadata.name: Invalid value: \"a/b%\": may not contain '%']".into(),
            ),
            (
                "dot name",
                validate_object_meta(&meta(json!({"name": "..", "namespace": "d"})), true, NameRule::PathSegment, "metadata"),
                "metadata.name: Invalid value: \"..\": may not be '..'".into(),
            ),
        ];
        for (name, errs, want) in cases {
            assert_eq!(msg(&errs), want, "{name}");
        }
    }

    #[test]
    fn object_meta_update_rules() {
        let meta = |v: Value| -> ObjectMeta { serde_json::from_value(v).expect("meta") };
        let old = meta(
            json!({"name": "a", "namespace": "d", "uid": "1", "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 2}),
        );
        let update = |new: Value| msg(&validate_object_meta_update(&meta(new), &old, "metadata"));
        assert_eq!(
            update(
                json!({"name": "a", "namespace": "d", "uid": "1", "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 2, "labels": {"x": "y"}})
            ),
            ""
        );
        assert_eq!(
            update(
                json!({"name": "b", "namespace": "d", "uid": "1", "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 2})
            ),
            "metadata.name: Invalid value: \"b\": field is immutable"
        );
        assert_eq!(
            update(
                json!({"name": "a", "namespace": "e", "uid": "2", "creationTimestamp": "2024-01-01T00:00:00Z", "generation": 1})
            ),
            "[metadata.generation: Invalid value: 1: must not be decremented, metadata.namespace: Invalid value: \"e\": field is immutable, metadata.uid: Invalid value: \"2\": field is immutable]"
        );
        assert_eq!(
            update(
                json!({"name": "a", "namespace": "d", "uid": "1", "creationTimestamp": "2024-05-06T07:08:09.5Z", "generation": 2})
            ),
            "metadata.creationTimestamp: Invalid value: 2024-05-06 07:08:09.5 +0000 UTC: field is immutable"
        );
        let deleting = meta(
            json!({"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a/b"]}),
        );
        let new = meta(
            json!({"name": "a", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a/b", "x/z", "x/y"]}),
        );
        assert_eq!(
            msg(&validate_object_meta_update(&new, &deleting, "metadata")),
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x/y\", \"x/z\"}"
        );
    }

    fn stored(mut ds: DaemonSet, generation: &str) -> DaemonSet {
        ds.metadata.annotations = Some(
            [(
                TEMPLATE_GENERATION_ANNOTATION.to_string(),
                generation.to_string(),
            )]
            .into(),
        );
        ds
    }

    #[test]
    fn daemonset_update_rules() {
        let old = stored(daemonset(ds_json()), "1");
        let same = stored(daemonset(ds_json()), "1");
        assert_eq!(msg(&validate_daemonset_update(&same, &old)), "");

        let image_changed = stored(
            ds_with(&[(
                "/spec/template/spec/containers/0/image",
                json!("fluentd:v2"),
            )]),
            "2",
        );
        assert_eq!(msg(&validate_daemonset_update(&image_changed, &old)), "");

        let selector_changed = stored(
            ds_with(&[
                (
                    "/spec/selector",
                    json!({"matchLabels": {"app": "fluentd", "tier": "logs"}}),
                ),
                (
                    "/spec/template/metadata/labels",
                    json!({"app": "fluentd", "tier": "logs"}),
                ),
            ]),
            "2",
        );
        assert_eq!(
            msg(&validate_daemonset_update(&selector_changed, &old)),
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"fluentd\", \"tier\":\"logs\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
        );

        let not_bumped = stored(
            ds_with(&[(
                "/spec/template/spec/containers/0/image",
                json!("fluentd:v2"),
            )]),
            "1",
        );
        assert_eq!(
            msg(&validate_daemonset_update(&not_bumped, &old)),
            "spec.templateGeneration: Invalid value: 1: must be incremented upon template update"
        );
        let bumped_for_nothing = stored(daemonset(ds_json()), "2");
        assert_eq!(
            msg(&validate_daemonset_update(&bumped_for_nothing, &old)),
            "spec.templateGeneration: Invalid value: 2: must not be incremented without template update"
        );
        let renamed = stored(ds_with(&[("/metadata/name", json!("other"))]), "1");
        assert_eq!(
            msg(&validate_daemonset_update(&renamed, &old)),
            "metadata.name: Invalid value: \"other\": field is immutable"
        );
    }

    #[test]
    fn daemonset_status_update_rules() {
        let with_status = |status: Value| {
            let mut doc = ds_json();
            set(&mut doc, "/status", status);
            daemonset(doc)
        };
        let old = with_status(
            json!({"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1, "collisionCount": 2}),
        );
        let ok = with_status(
            json!({"currentNumberScheduled": 2, "desiredNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2, "collisionCount": 2}),
        );
        assert_eq!(msg(&validate_daemonset_status_update(&ok, &old)), "");
        let bad = with_status(
            json!({"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": -1, "observedGeneration": -2, "collisionCount": 1}),
        );
        assert_eq!(
            msg(&validate_daemonset_status_update(&bad, &old)),
            "[status.numberReady: Invalid value: -1: must be greater than or equal to 0, status.observedGeneration: Invalid value: -2: must be greater than or equal to 0, status.collisionCount: Invalid value: 1: cannot be decremented]"
        );
        let dropped = with_status(
            json!({"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1}),
        );
        assert_eq!(
            msg(&validate_daemonset_status_update(&dropped, &old)),
            "status.collisionCount: Invalid value: 0: cannot be decremented"
        );
    }

    #[test]
    fn controller_revision_rules() {
        let rev = |v: Value| -> ControllerRevision { serde_json::from_value(v).expect("revision") };
        let ok = rev(
            json!({"metadata": {"name": "fluentd-5d4f", "namespace": "d"}, "data": {"spec": {}}, "revision": 1}),
        );
        assert_eq!(msg(&validate_controller_revision(&ok)), "");
        let bad =
            rev(json!({"metadata": {"name": "fluentd-5d4f", "namespace": "d"}, "revision": -1}));
        assert_eq!(
            msg(&validate_controller_revision(&bad)),
            "[data: Required value: data is mandatory, revision: Invalid value: -1: must be greater than or equal to 0]"
        );
        let renumbered = rev(
            json!({"metadata": {"name": "fluentd-5d4f", "namespace": "d"}, "data": {"spec": {}}, "revision": 3}),
        );
        assert_eq!(
            msg(&validate_controller_revision_update(&renumbered, &ok)),
            ""
        );
        let changed = rev(
            json!({"metadata": {"name": "fluentd-5d4f", "namespace": "d"}, "data": {"a": 1}, "revision": 1}),
        );
        assert_eq!(
            msg(&validate_controller_revision_update(&changed, &ok)),
            "data: Invalid value: runtime.Unknown{TypeMeta:runtime.TypeMeta{APIVersion:\"\", Kind:\"\"}, Raw:[]uint8{0x7b, 0x22, 0x61, 0x22, 0x3a, 0x31, 0x7d}, ContentEncoding:\"\", ContentType:\"application/json\"}: field is immutable"
        );
    }

    fn pod(v: Value) -> Pod {
        let mut p: Pod = serde_json::from_value(v).expect("pod");
        defaults::default_pod(&mut p);
        p
    }

    fn pod_json() -> Value {
        json!({
            "metadata": {"name": "fluentd-x7k2p", "namespace": "default"},
            "spec": {
                "nodeName": "node-1",
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"}],
                "containers": [{"name": "fluentd", "image": "fluentd:v1", "ports": [{"containerPort": 24224}]}]
            }
        })
    }

    #[test]
    fn pod_rules() {
        assert_eq!(msg(&validate_pod(&pod(pod_json()))), "");
        let mut host = pod_json();
        set(&mut host, "/spec/hostNetwork", json!(true));
        assert_eq!(
            msg(&validate_pod(&pod(host.clone()))),
            "",
            "host ports are defaulted for pods"
        );
        let mut undefaulted: Pod = serde_json::from_value(host).expect("pod");
        if let Some(spec) = undefaulted.spec.as_mut() {
            spec.containers[0].ports = Some(vec![ContainerPort {
                container_port: 24224,
                host_port: Some(1),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]);
        }
        defaults::default_pod(&mut undefaulted);
        assert_eq!(
            msg(&validate_pod(&undefaulted)),
            "spec.containers[0].ports[0].hostPort: Invalid value: 1: must match `containerPort` when `hostNetwork` is true"
        );
        let mut padded = pod_json();
        set(
            &mut padded,
            "/spec/containers/0/image",
            json!(" fluentd:v1"),
        );
        assert_eq!(
            msg(&validate_pod(&pod(padded))),
            "spec.containers[0].image: Invalid value: \" fluentd:v1\": must not have leading or trailing whitespace"
        );
        let mut never = pod_json();
        set(&mut never, "/spec/restartPolicy", json!("Sometimes"));
        assert_eq!(
            msg(&validate_pod(&pod(never))),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
        );
    }

    #[test]
    fn pod_update_rules() {
        let old = pod(pod_json());
        let with = |pointer: &str, value: Value| {
            let mut doc = pod_json();
            set(&mut doc, pointer, value);
            pod(doc)
        };
        assert_eq!(
            msg(&validate_pod_update(
                &with("/spec/containers/0/image", json!("fluentd:v2")),
                &old
            )),
            ""
        );
        let more_tolerations = with(
            "/spec/tolerations",
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
                {"key": "extra", "operator": "Exists"}
            ]),
        );
        assert_eq!(msg(&validate_pod_update(&more_tolerations, &old)), "");
        assert_eq!(
            msg(&validate_pod_update(
                &with("/spec/tolerations", json!([])),
                &old
            )),
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );
        assert_eq!(
            msg(&validate_pod_update(
                &with("/spec/containers", json!([])),
                &old
            )),
            "[spec.containers: Required value, spec.containers: Forbidden: pod updates may not add or remove containers]"
        );
        let moved = validate_pod_update(&with("/spec/nodeName", json!("node-2")), &old);
        assert_eq!(moved.len(), 1);
        let rendered = moved[0].message();
        let expected_start = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n";
        assert!(rendered.starts_with(expected_start), "{rendered}");
        assert!(
            rendered.contains("- \tNodeName: \"node-1\",\n+ \tNodeName: \"node-2\","),
            "{rendered}"
        );
        let deadline_old = with("/spec/activeDeadlineSeconds", json!(100));
        let longer = with("/spec/activeDeadlineSeconds", json!(200));
        assert_eq!(
            msg(&validate_pod_update(&longer, &deadline_old)),
            "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
        );
        let shorter = with("/spec/activeDeadlineSeconds", json!(50));
        assert_eq!(msg(&validate_pod_update(&shorter, &deadline_old)), "");
    }

    fn node(v: Value) -> Node {
        let mut n: Node = serde_json::from_value(v).expect("node");
        defaults::default_node(&mut n);
        n
    }

    #[test]
    fn node_rules() {
        let ok = node(json!({"metadata": {"name": "node-1"}, "spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoExecute"}
        ]}, "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}));
        assert_eq!(msg(&validate_node(&ok)), "");
        let bad = node(
            json!({"metadata": {"name": "node-1", "namespace": "default"}, "spec": {"taints": [
                {"key": "dedicated", "value": "gpu", "effect": "NoRun"},
                {"key": "k", "effect": "NoSchedule"},
                {"key": "k", "value": "other", "effect": "NoSchedule"},
                {"key": "", "effect": ""}
            ]}}),
        );
        assert_eq!(
            msg(&validate_node(&bad)),
            "[metadata.namespace: Forbidden: not allowed on this type, \
metadata.taints[0].effect: Unsupported value: \"NoRun\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\", \
metadata.taints[2]: Duplicate value: core.Taint{Key:\"k\", Value:\"other\", Effect:\"NoSchedule\", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair, \
metadata.taints[3].key: Invalid value: \"\": name part must be non-empty, \
metadata.taints[3].key: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'), \
metadata.taints[3].effect: Required value]"
        );
        let old = node(
            json!({"metadata": {"name": "node-1"}, "spec": {"podCIDRs": ["10.244.1.0/24"], "providerID": "kind://a"}}),
        );
        let new = node(
            json!({"metadata": {"name": "node-1"}, "spec": {"podCIDRs": ["10.244.2.0/24"], "providerID": "kind://b", "unschedulable": true}}),
        );
        assert_eq!(
            msg(&validate_node_update(&new, &old)),
            "[spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid, spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid]"
        );
        let cordoned = node(
            json!({"metadata": {"name": "node-1"}, "spec": {"podCIDRs": ["10.244.1.0/24"], "providerID": "kind://a", "unschedulable": true}}),
        );
        assert_eq!(msg(&validate_node_update(&cordoned, &old)), "");
    }

    #[test]
    fn namespace_rules() {
        let ns = |v: Value| {
            let mut n: Namespace = serde_json::from_value(v).expect("namespace");
            defaults::default_namespace(&mut n);
            msg(&validate_namespace(&n))
        };
        assert_eq!(ns(json!({"metadata": {"name": "team-a"}})), "");
        assert_eq!(
            ns(json!({"metadata": {"name": "team.a"}})),
            "metadata.name: Invalid value: \"team.a\": must not contain dots"
        );
        assert_eq!(
            ns(json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["custom"]}})),
            "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
        );
    }

    #[test]
    fn service_update_keeps_the_cluster_ip() {
        let svc = |ip: &str| -> Service {
            let mut s: Service = serde_json::from_value(json!({
                "metadata": {"name": "web", "namespace": "default", "resourceVersion": "1"},
                "spec": {"clusterIP": ip, "ports": [{"port": 80}]},
            }))
            .expect("service");
            defaults::default_service(&mut s);
            s
        };
        assert_eq!(
            msg(&validate_service_update(
                &svc("10.96.0.5"),
                &svc("10.96.0.5")
            )),
            ""
        );
        assert_eq!(
            msg(&validate_service_update(
                &svc("10.96.0.6"),
                &svc("10.96.0.5")
            )),
            "[spec.clusterIP: Invalid value: \"10.96.0.6\": field is immutable, spec.clusterIPs[0]: Invalid value: \"10.96.0.6\": may not change once set]"
        );
        let mut external = svc("");
        if let Some(s) = external.spec.as_mut() {
            s.type_ = Some("ExternalName".into());
            s.external_name = Some("example.com".into());
            s.cluster_ip = None;
            s.cluster_ips = None;
            s.ip_families = None;
            s.ip_family_policy = None;
            s.internal_traffic_policy = None;
        }
        assert_eq!(
            msg(&validate_service_update(&external, &svc("10.96.0.5"))),
            ""
        );
    }

    #[test]
    fn service_rules() {
        let svc = |v: Value| {
            let mut s: Service = serde_json::from_value(v).expect("service");
            defaults::default_service(&mut s);
            msg(&validate_service(&s))
        };
        let meta = json!({"name": "web", "namespace": "default"});
        assert_eq!(
            svc(
                json!({"metadata": meta, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
            ),
            ""
        );
        assert_eq!(
            svc(
                json!({"metadata": meta, "spec": {"clusterIP": "None", "selector": {"app": "web"}}})
            ),
            ""
        );
        assert_eq!(
            svc(json!({"metadata": meta, "spec": {"selector": {"app": "web"}}})),
            "spec.ports: Required value"
        );
        assert_eq!(
            svc(
                json!({"metadata": {"name": "1web", "namespace": "d"}, "spec": {"ports": [{"port": 80}]}})
            ),
            "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        );
        assert_eq!(
            svc(
                json!({"metadata": meta, "spec": {"ports": [{"port": 80}, {"port": 70000, "name": "b", "protocol": "HTTP"}]}})
            ),
            "[spec.ports[0].name: Required value, spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\", spec.ports[1].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive]"
        );
        assert_eq!(
            svc(
                json!({"metadata": meta, "spec": {"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "a"}]}})
            ),
            "[spec.ports[1].name: Duplicate value: \"a\", spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}]"
        );
        assert_eq!(
            svc(
                json!({"metadata": meta, "spec": {"clusterIP": "10.0.0.300", "ports": [{"port": 80}]}})
            ),
            "spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        );
        assert_eq!(
            svc(json!({"metadata": meta, "spec": {"type": "Ingress", "ports": [{"port": 80}]}})),
            "spec.type: Unsupported value: \"Ingress\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
        );
        assert_eq!(
            svc(
                json!({"metadata": meta, "spec": {"type": "ExternalName", "externalName": "db.example.com."}})
            ),
            ""
        );
    }

    #[test]
    fn lease_and_event_rules() {
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": "node-1", "namespace": "kube-node-lease", "finalizers": ["custom"]},
            "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 0}
        }))
        .expect("lease");
        assert_eq!(
            msg(&validate_lease(&lease)),
            "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
        let event = |v: Value| -> Event { serde_json::from_value(v).expect("event") };
        let ok = event(json!({
            "metadata": {"name": "fluentd.17a", "namespace": "default"},
            "involvedObject": {"kind": "DaemonSet", "name": "fluentd", "namespace": "default"},
            "reason": "SuccessfulCreate", "message": "Created pod: fluentd-x7k2p", "type": "Normal"
        }));
        assert_eq!(msg(&validate_event(&ok)), "");
        let mismatch = event(json!({
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}
        }));
        assert_eq!(
            msg(&validate_event(&mismatch)),
            "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
        );
        let unnamed = event(
            json!({"metadata": {"namespace": "default"}, "involvedObject": {"namespace": "default"}}),
        );
        assert_eq!(
            msg(&validate_event(&unnamed)),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn format_helpers() {
        assert!(fmt::qualified_name("example.com/my-key_1.x").is_empty());
        assert!(fmt::qualified_name("MyName").is_empty());
        assert_eq!(
            fmt::qualified_name("/x"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert!(fmt::label_value("").is_empty());
        assert!(fmt::dns1123_label("a".repeat(63).as_str()).is_empty());
        assert_eq!(
            fmt::dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
        assert_eq!(
            fmt::port_name("HTTP"),
            vec![
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
                    .to_string(),
                "must contain at least one letter (a-z)".to_string(),
            ]
        );
        assert!(fmt::env_var_name("PATH").is_empty());
        assert_eq!(
            fmt::env_var_name("é"),
            vec![fmt::RELAXED_ENV_MSG.to_string()]
        );
        assert!(
            fmt::is_cidr("10.0.0.0/8") && !fmt::is_cidr("10.0.0.0/33") && !fmt::is_cidr("10.0.0.0")
        );
        assert_eq!(
            go::string_map(Some(
                &[
                    ("b".to_string(), "2".to_string()),
                    ("a".to_string(), "1".to_string())
                ]
                .into()
            )),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(
            go::int_or_string(Some(&IntOrString::Int(-1))),
            "intstr.IntOrString{Type:0, IntVal:-1, StrVal:\"\"}"
        );
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let sel = |v: Value| -> LabelSelector { serde_json::from_value(v).expect("selector") };
        let labels: StringMap = [
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "fe".to_string()),
        ]
        .into();
        let cases = [
            (json!({"matchLabels": {"app": "web"}}), true),
            (json!({"matchLabels": {"app": "db"}}), false),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "db"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
                false,
            ),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "env", "operator": "Exists"}]}),
                false,
            ),
        ];
        for (s, want) in cases {
            assert_eq!(selector_matches(&sel(s.clone()), &labels), want, "{s}");
        }
    }

    fn messages(errs: &Errs) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    #[test]
    fn config_map_keys_are_checked_and_not_repeated_in_binary_data() {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "c"},
            "data": {"ok": "1", "a/b": "2"},
            "binaryData": {"ok": "eA=="}
        }))
        .unwrap();
        let got = messages(&validate_config_map(&cm));
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].starts_with("data[a/b]: Invalid value: \"a/b\": a valid config key"));
        assert_eq!(
            got[1],
            "data[ok]: Invalid value: \"ok\": duplicate of key present in data"
        );
    }

    #[test]
    fn secret_types_require_their_keys() {
        let secret = |t: &str, data: Value| -> Secret {
            serde_json::from_value(json!({"metadata": {"name": "s"}, "type": t, "data": data}))
                .unwrap()
        };
        let cases = [
            ("Opaque", json!({}), vec![]),
            ("example.com/custom", json!({}), vec![]),
            (
                "kubernetes.io/tls",
                json!({"tls.key": "eA=="}),
                vec!["data[tls.crt]: Required value"],
            ),
            ("kubernetes.io/basic-auth", json!({"password": ""}), vec![]),
            (
                "kubernetes.io/basic-auth",
                json!({}),
                vec![
                    "data[username]: Required value",
                    "data[password]: Required value",
                ],
            ),
            (
                "kubernetes.io/ssh-auth",
                json!({"ssh-privatekey": ""}),
                vec!["data[ssh-privatekey]: Required value"],
            ),
            (
                "kubernetes.io/dockerconfigjson",
                json!({".dockerconfigjson": "e30="}),
                vec![],
            ),
            (
                "kubernetes.io/service-account-token",
                json!({}),
                vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
            ),
        ];
        for (t, data, want) in cases {
            assert_eq!(messages(&validate_secret(&secret(t, data))), want, "{t}");
        }
        // Not JSON: named, its contents withheld.
        let got = messages(&validate_secret(&secret(
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "bm9wZQ=="}),
        )));
        assert_eq!(got.len(), 1);
        assert!(
            got[0].starts_with(
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": "
            ),
            "{got:?}"
        );
        // A Secret stored before types were defaulted counts as Opaque.
        let mut old = secret("Opaque", json!({}));
        old.type_ = None;
        assert!(validate_secret_update(&secret("Opaque", json!({})), &old).is_empty());
    }

    #[test]
    fn endpoint_slices_name_a_known_address_type_that_never_changes() {
        let slice = |t: &str, addresses: Value| -> k8s_openapi::api::discovery::v1::EndpointSlice {
            serde_json::from_value(json!({ "metadata": { "name": "s" }, "addressType": t,
                                           "endpoints": [{ "addresses": addresses }] }))
            .unwrap()
        };
        assert!(validate_endpoint_slice(&slice("IPv4", json!(["10.0.0.1"]))).is_empty());
        assert_eq!(
            messages(&validate_endpoint_slice(&slice("Bogus", json!(["x"])))),
            vec![
                "addressType: Unsupported value: \"Bogus\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
            ]
        );
        assert_eq!(
            messages(&validate_endpoint_slice(&slice("IPv4", json!([])))),
            vec!["endpoints[0].addresses: Required value: must contain at least 1 address"]
        );
        assert_eq!(
            messages(&validate_endpoint_slice_update(
                &slice("IPv6", json!(["::1"])),
                &slice("IPv4", json!(["10.0.0.1"]))
            )),
            vec!["addressType: Invalid value: \"IPv6\": field is immutable"]
        );
    }
}
