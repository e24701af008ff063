//! Kubernetes protobuf request bodies, turned into the JSON the rest of the server speaks.
//!
//! client-go's typed clientsets send bodies as `application/vnd.kubernetes.protobuf` and do
//! not retry in JSON after a 415, so `kubectl create namespace|configmap|secret|
//! serviceaccount|service|role|clusterrole|rolebinding|clusterrolebinding|priorityclass …` and `kubectl drain` (a policy/v1 Eviction) only work if we can
//! read them. [`decode`] produces the `serde_json::Value` the same client would have sent
//! as JSON.
//!
//! # The envelope
//! Four magic bytes `k8s\0`, then a `runtime.Unknown` message: 1 `typeMeta` (itself
//! 1 `apiVersion`, 2 `kind`), 2 `raw` (the object's own encoding), 3 `contentEncoding`,
//! 4 `contentType`. The object is proto2 as written by gogo-protobuf's generated code.
//!
//! # The schema
//! Each message is a static table of (field number, JSON name, type, cardinality),
//! transcribed from Kubernetes' `generated.proto` files; the presence rules come from the Go
//! types' JSON tags. Only the kinds listed in `KINDS` decode; anything else is
//! [`ProtobufError::UnsupportedKind`]. Field numbers the table does not know are skipped,
//! as Go's decoder skips them (newer clients may send fields this schema predates). Fields
//! the schema knows but does not model (legacy in-tree volume sources, a few alpha fields)
//! are `Ty::Unsupported`: setting one is [`ProtobufError::UnsupportedField`] rather than
//! silently dropping it. A Pod's `status` is skipped (the server owns it).
//!
//! # From proto2 to Go's JSON
//! Go's marshaller writes every non-pointer scalar and struct, even empty (`name: ""`), and
//! writes a pointer field only when it is non-nil. Go's JSON then omits the empty
//! `omitempty` ones. So each singular field has a `Presence`:
//! - `OmitEmpty` (non-pointer, `omitempty`): dropped when `""`, `0`, `false`, empty bytes,
//!   or a message that came out as `{}`. (Go prints `{}` for an empty struct even under
//!   `omitempty`; dropping it is equivalent for the server.)
//! - `Pointer` (a Go pointer): present on the wire means non-nil, so the value is kept even
//!   when `false`, `0`, `""` or `{}`.
//! - `Always` (no `omitempty`): kept even when zero. Among the kinds here: OwnerReference
//!   `apiVersion`/`kind`/`name`/`uid`, ServicePort `port` (`"port": 0`), PortStatus
//!   `port`/`protocol`, (Namespace)Condition `type`/`status` (and Condition
//!   `reason`/`message`), and in Pods: Container/EnvVar/Volume/VolumeMount/VolumeDevice/
//!   Sysctl/ResourceClaim `name`, ContainerPort `containerPort`, VolumeMount `mountPath`,
//!   KeyToPath `key`/`path`, HTTPGet/TCPSocket/GRPC `port`, selector requirements'
//!   `key`/`operator`, PreferredSchedulingTerm `preference`, …
//!
//! Go writes `Always` fields unconditionally, so they are on the wire whenever a Go client
//! sent the object; when a hand-made body leaves one out, it stays out of the JSON too
//! (rather than being filled with a zero value: filling would let a two-byte empty element
//! grow into several JSON values).
//!
//! Lists and maps are dropped when empty (every one is `omitempty` or would print `null`).
//! A zero `Time` prints `null` in Go and is dropped. `IntOrString` and `Quantity` are
//! structs in Go and always printed when present (`"targetPort": 0`, as kubectl's JSON
//! has). Strings that are not UTF-8 become U+FFFD, as Go's JSON encoder does. Map keys come
//! out sorted, a repeated key keeps its last value.
//!
//! Input is attacker-controlled: nothing here panics, lengths are checked against what is
//! left, recursion is bounded by the (acyclic) schema and a depth limit, and the number of
//! decoded values is capped at one per two input bytes (no Go-encoded object comes close:
//! every value Go writes takes at least a tag byte and a length or value byte).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value};

/// The prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Nesting deeper than this is refused (the schema itself is far shallower).
const MAX_DEPTH: usize = 32;

/// Why a protobuf body could not be turned into JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error("the protobuf body does not start with the Kubernetes magic bytes \"k8s\\0\"")]
    NoMagic,
    #[error("malformed protobuf body at {path}: {reason}")]
    Malformed { path: String, reason: String },
    #[error(
        "the protobuf body carries content encoding {0:?}; only unencoded bodies are supported"
    )]
    UnsupportedEncoding(String),
    #[error("protobuf bodies are supported for {list}; send JSON for {kind} ({api_version})", list = supported_list())]
    UnsupportedKind { api_version: String, kind: String },
    #[error("this server cannot read {path} from a protobuf body; send JSON")]
    UnsupportedField { path: String },
}

impl ProtobufError {
    /// True when the body may be fine but this server can't read it (a 415), false when the
    /// body is broken (a 400).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            ProtobufError::UnsupportedEncoding(_)
                | ProtobufError::UnsupportedKind { .. }
                | ProtobufError::UnsupportedField { .. }
        )
    }

    fn malformed(reason: impl Into<String>) -> Self {
        ProtobufError::Malformed {
            path: String::new(),
            reason: reason.into(),
        }
    }

    /// Prefixes the error's path with `segment` as it travels up out of a nested message.
    fn within(self, segment: &str) -> Self {
        let join = |path: String| {
            if path.is_empty() {
                segment.to_string()
            } else if path.starts_with('[') {
                format!("{segment}{path}")
            } else {
                format!("{segment}.{path}")
            }
        };
        match self {
            ProtobufError::Malformed { path, reason } => ProtobufError::Malformed {
                path: join(path),
                reason,
            },
            ProtobufError::UnsupportedField { path } => {
                ProtobufError::UnsupportedField { path: join(path) }
            }
            other => other,
        }
    }
}

type Result<T> = std::result::Result<T, ProtobufError>;

/// Decodes an `application/vnd.kubernetes.protobuf` body into the object's JSON form:
/// `apiVersion` and `kind` from the envelope, then the object's fields, as the same client
/// would have sent them in JSON. On error, [`ProtobufError::is_unsupported`] tells a 415
/// (a kind or field this server only reads as JSON) from a 400 (a broken body).
pub fn decode(bytes: &[u8]) -> Result<Value> {
    let body = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::NoMagic)?;
    let envelope = read_envelope(body).map_err(|e| e.within("envelope"))?;
    if !envelope.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(clip(
            envelope.content_encoding,
        )));
    }
    let Some(schema) = schema_for(&envelope.api_version, &envelope.kind) else {
        return Err(ProtobufError::UnsupportedKind {
            api_version: clip(envelope.api_version),
            kind: clip(envelope.kind),
        });
    };
    let mut object = Decoded::new(schema);
    let mut budget = bytes.len() / 2 + 16;
    let fields = object
        .merge(envelope.raw, 0, &mut budget)
        .and_then(|()| object.to_json())
        .map_err(|e| e.within(&envelope.kind))?;
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("apiVersion".into(), Value::String(envelope.api_version));
    out.insert("kind".into(), Value::String(envelope.kind));
    out.extend(fields);
    Ok(Value::Object(out))
}

/// The kinds [`decode`] reads: kind, the apiVersions it is accepted under (`None`: any, as
/// DeleteOptions is registered in every group version), and its schema.
static KINDS: &[(&str, Option<&[&str]>, &Msg)] = &[
    ("Namespace", Some(&["v1"]), &NAMESPACE),
    ("ConfigMap", Some(&["v1"]), &CONFIG_MAP),
    ("Secret", Some(&["v1"]), &SECRET),
    ("ServiceAccount", Some(&["v1"]), &SERVICE_ACCOUNT),
    ("Service", Some(&["v1"]), &SERVICE),
    ("Pod", Some(&["v1"]), &POD),
    (
        "Eviction",
        Some(&["policy/v1", "policy/v1beta1"]),
        &EVICTION,
    ),
    ("DeleteOptions", None, &DELETE_OPTIONS),
    ("Role", Some(&["rbac.authorization.k8s.io/v1"]), &ROLE),
    (
        "ClusterRole",
        Some(&["rbac.authorization.k8s.io/v1"]),
        &CLUSTER_ROLE,
    ),
    (
        "RoleBinding",
        Some(&["rbac.authorization.k8s.io/v1"]),
        &ROLE_BINDING,
    ),
    (
        "ClusterRoleBinding",
        Some(&["rbac.authorization.k8s.io/v1"]),
        &ROLE_BINDING,
    ),
    (
        "PriorityClass",
        Some(&["scheduling.k8s.io/v1"]),
        &PRIORITY_CLASS,
    ),
    (
        "CertificateSigningRequest",
        Some(&["certificates.k8s.io/v1"]),
        &CSR,
    ),
    (
        "SelfSubjectAccessReview",
        Some(&["authorization.k8s.io/v1"]),
        &SELF_SUBJECT_ACCESS_REVIEW,
    ),
    (
        "SelfSubjectReview",
        Some(&["authentication.k8s.io/v1"]),
        &SELF_SUBJECT_REVIEW,
    ),
    (
        "SelfSubjectRulesReview",
        Some(&["authorization.k8s.io/v1"]),
        &SELF_SUBJECT_RULES_REVIEW,
    ),
    (
        "TokenRequest",
        Some(&["authentication.k8s.io/v1"]),
        &TOKEN_REQUEST,
    ),
];

/// Shortens a client-chosen string before it is echoed in an error.
fn clip(mut s: String) -> String {
    if let Some((at, _)) = s.char_indices().nth(100) {
        s.truncate(at);
        s.push('…');
    }
    s
}

fn supported_list() -> String {
    let kinds: Vec<&str> = KINDS.iter().map(|(kind, _, _)| *kind).collect();
    kinds.join(", ")
}

fn schema_for(api_version: &str, kind: &str) -> Option<&'static Msg> {
    KINDS
        .iter()
        .find(|(k, versions, _)| {
            *k == kind && versions.is_none_or(|versions| versions.contains(&api_version))
        })
        .map(|(_, _, msg)| *msg)
}

// ---------------------------------------------------------------------------------------
// Wire format.

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const GROUP_START: u8 = 3;
const GROUP_END: u8 = 4;
const FIXED32: u8 = 5;

/// Reads protobuf wire data from a slice; every read is checked against what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// A base-128 varint of at most 10 bytes; bits past 64 are dropped, as Go's decoder does.
    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self
                .rest
                .split_first()
                .ok_or_else(|| ProtobufError::malformed("truncated varint"))?;
            self.rest = rest;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtobufError::malformed("varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let (head, rest) = self
            .rest
            .split_at_checked(n)
            .ok_or_else(|| ProtobufError::malformed("field runs past the end of its message"))?;
        self.rest = rest;
        Ok(head)
    }

    fn length_delimited(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .map_err(|_| ProtobufError::malformed("length does not fit in memory"))?;
        self.take(len)
    }

    /// A field key: (field number, wire type).
    fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        let wire = (key & 7) as u8;
        match u32::try_from(key >> 3) {
            Ok(num) if (1..=0x1fff_ffff).contains(&num) => Ok((num, wire)),
            _ => Err(ProtobufError::malformed(format!(
                "invalid field number {}",
                key >> 3
            ))),
        }
    }

    fn skip(&mut self, wire: u8) -> Result<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.length_delimited().map(drop),
            FIXED32 => self.take(4).map(drop),
            GROUP_START | GROUP_END => Err(ProtobufError::malformed(
                "protobuf groups are not used by Kubernetes",
            )),
            _ => Err(ProtobufError::malformed(format!(
                "invalid wire type {wire}"
            ))),
        }
    }
}

fn expect_wire(got: u8, want: u8) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(ProtobufError::malformed(format!(
            "wrong wire type {got} (expected {want})"
        )))
    }
}

fn lossy_string(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `runtime.Unknown` envelope.
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

fn read_envelope(body: &[u8]) -> Result<Envelope<'_>> {
    let mut envelope = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
    };
    let mut r = Reader::new(body);
    while !r.is_empty() {
        let (num, wire) = r.key()?;
        match num {
            1 => {
                expect_wire(wire, LEN).map_err(|e| e.within("typeMeta"))?;
                let mut tm = Reader::new(r.length_delimited().map_err(|e| e.within("typeMeta"))?);
                while !tm.is_empty() {
                    let (num, wire) = tm.key().map_err(|e| e.within("typeMeta"))?;
                    let slot = match num {
                        1 => &mut envelope.api_version,
                        2 => &mut envelope.kind,
                        _ => {
                            tm.skip(wire).map_err(|e| e.within("typeMeta"))?;
                            continue;
                        }
                    };
                    expect_wire(wire, LEN).map_err(|e| e.within("typeMeta"))?;
                    *slot = lossy_string(tm.length_delimited().map_err(|e| e.within("typeMeta"))?);
                }
            }
            2 => {
                expect_wire(wire, LEN).map_err(|e| e.within("raw"))?;
                envelope.raw = r.length_delimited().map_err(|e| e.within("raw"))?;
            }
            3 => {
                expect_wire(wire, LEN).map_err(|e| e.within("contentEncoding"))?;
                envelope.content_encoding = lossy_string(
                    r.length_delimited()
                        .map_err(|e| e.within("contentEncoding"))?,
                );
            }
            _ => r.skip(wire)?,
        }
    }
    if envelope.kind.is_empty() {
        return Err(ProtobufError::Malformed {
            path: "typeMeta.kind".into(),
            reason: "the envelope names no kind".into(),
        });
    }
    Ok(envelope)
}

// ---------------------------------------------------------------------------------------
// Schema.

/// A message type: its fields, in Go struct order (the order the JSON comes out in).
struct Msg {
    fields: &'static [Field],
}

#[derive(Clone, Copy)]
struct Field {
    num: u32,
    json: &'static str,
    ty: Ty,
    card: Card,
}

#[derive(Clone, Copy)]
enum Ty {
    /// `string` (also Go's named string types).
    Str,
    /// `bytes`: a base64 string in JSON, as Go prints `[]byte`.
    Bytes,
    /// `int32`, from a varint truncated to 32 bits as Go does.
    I32,
    I64,
    Bool,
    Msg(&'static Msg),
    /// meta.v1.Time (seconds = 1, nanos = 2): an RFC 3339 string in whole seconds.
    Time,
    /// intstr.IntOrString (type = 1, intVal = 2, strVal = 3): a JSON number or string.
    IntOrString,
    /// resource.Quantity (string = 1): a JSON string.
    Quantity,
    /// meta.v1.FieldsV1 (raw = 1): raw JSON, spliced in as is.
    FieldsV1,
    /// Read past and left out of the JSON (a Pod's status).
    Ignored,
    /// Known, but not modelled here: its presence is an error.
    Unsupported,
}

#[derive(Clone, Copy)]
enum Card {
    One(Presence),
    /// `repeated`; scalars may also come packed.
    Repeated,
    /// `map<string, ty>`: entries with key = 1, value = 2.
    Map,
    /// A Go struct embedded with `json:",inline"`: its fields land in the parent object.
    Inline,
}

/// How a singular field's value shows in Go's JSON; see the module docs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Presence {
    OmitEmpty,
    Pointer,
    Always,
}

const fn field(num: u32, json: &'static str, ty: Ty, card: Card) -> Field {
    Field {
        num,
        json,
        ty,
        card,
    }
}

/// Non-pointer, `omitempty`.
const fn opt(num: u32, json: &'static str, ty: Ty) -> Field {
    field(num, json, ty, Card::One(Presence::OmitEmpty))
}

/// A Go pointer.
const fn ptr(num: u32, json: &'static str, ty: Ty) -> Field {
    field(num, json, ty, Card::One(Presence::Pointer))
}

/// No `omitempty`.
const fn req(num: u32, json: &'static str, ty: Ty) -> Field {
    field(num, json, ty, Card::One(Presence::Always))
}

const fn list(num: u32, json: &'static str, ty: Ty) -> Field {
    field(num, json, ty, Card::Repeated)
}

const fn map(num: u32, json: &'static str, ty: Ty) -> Field {
    field(num, json, ty, Card::Map)
}

const fn inline(num: u32, msg: &'static Msg) -> Field {
    field(num, "", Ty::Msg(msg), Card::Inline)
}

/// Known, but refused (see `Ty::Unsupported`).
const fn unsupported(num: u32, json: &'static str) -> Field {
    field(num, json, Ty::Unsupported, Card::One(Presence::Pointer))
}

use Ty::{Bool, Bytes, FieldsV1, I32, I64, IntOrString, Quantity, Str, Time};

// meta/v1 --------------------------------------------------------------------------------

static OBJECT_META: Msg = Msg {
    fields: &[
        opt(1, "name", Str),
        opt(2, "generateName", Str),
        opt(3, "namespace", Str),
        opt(4, "selfLink", Str),
        opt(5, "uid", Str),
        opt(6, "resourceVersion", Str),
        opt(7, "generation", I64),
        opt(8, "creationTimestamp", Time),
        ptr(9, "deletionTimestamp", Time),
        ptr(10, "deletionGracePeriodSeconds", I64),
        map(11, "labels", Str),
        map(12, "annotations", Str),
        list(13, "ownerReferences", Ty::Msg(&OWNER_REFERENCE)),
        list(14, "finalizers", Str),
        list(17, "managedFields", Ty::Msg(&MANAGED_FIELDS_ENTRY)),
    ],
};

static OWNER_REFERENCE: Msg = Msg {
    fields: &[
        req(5, "apiVersion", Str),
        req(1, "kind", Str),
        req(3, "name", Str),
        req(4, "uid", Str),
        ptr(6, "controller", Bool),
        ptr(7, "blockOwnerDeletion", Bool),
    ],
};

static MANAGED_FIELDS_ENTRY: Msg = Msg {
    fields: &[
        opt(1, "manager", Str),
        opt(2, "operation", Str),
        opt(3, "apiVersion", Str),
        ptr(4, "time", Time),
        opt(6, "fieldsType", Str),
        ptr(7, "fieldsV1", FieldsV1),
        opt(8, "subresource", Str),
    ],
};

static DELETE_OPTIONS: Msg = Msg {
    fields: &[
        ptr(1, "gracePeriodSeconds", I64),
        ptr(2, "preconditions", Ty::Msg(&PRECONDITIONS)),
        ptr(3, "orphanDependents", Bool),
        ptr(4, "propagationPolicy", Str),
        list(5, "dryRun", Str),
        ptr(6, "ignoreStoreReadErrorWithClusterBreakingPotential", Bool),
    ],
};

static PRECONDITIONS: Msg = Msg {
    fields: &[ptr(1, "uid", Str), ptr(2, "resourceVersion", Str)],
};

static CONDITION: Msg = Msg {
    fields: &[
        req(1, "type", Str),
        req(2, "status", Str),
        opt(3, "observedGeneration", I64),
        req(4, "lastTransitionTime", Time),
        req(5, "reason", Str),
        req(6, "message", Str),
    ],
};

static LABEL_SELECTOR: Msg = Msg {
    fields: &[
        map(1, "matchLabels", Str),
        list(2, "matchExpressions", Ty::Msg(&SELECTOR_REQUIREMENT)),
    ],
};

/// meta.v1.LabelSelectorRequirement and core.v1.NodeSelectorRequirement share a layout.
static SELECTOR_REQUIREMENT: Msg = Msg {
    fields: &[
        req(1, "key", Str),
        req(2, "operator", Str),
        list(3, "values", Str),
    ],
};

// certificates.k8s.io/v1 (`kubectl certificate approve|deny` writes it typed) -------------

static CSR: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        opt(2, "spec", Ty::Msg(&CSR_SPEC)),
        opt(3, "status", Ty::Msg(&CSR_STATUS)),
    ],
};

static CSR_SPEC: Msg = Msg {
    fields: &[
        req(1, "request", Bytes),
        req(7, "signerName", Str),
        ptr(8, "expirationSeconds", I32),
        list(5, "usages", Str),
        opt(2, "username", Str),
        opt(3, "uid", Str),
        list(4, "groups", Str),
        // The server sets the requestor's extra attributes itself.
        field(6, "extra", Ty::Ignored, Card::Repeated),
    ],
};

static CSR_STATUS: Msg = Msg {
    fields: &[
        list(1, "conditions", Ty::Msg(&CSR_CONDITION)),
        opt(2, "certificate", Bytes),
    ],
};

static CSR_CONDITION: Msg = Msg {
    fields: &[
        req(1, "type", Str),
        req(6, "status", Str),
        opt(2, "reason", Str),
        opt(3, "message", Str),
        opt(4, "lastUpdateTime", Time),
        opt(5, "lastTransitionTime", Time),
    ],
};

// authorization/v1, authentication/v1: what `kubectl auth can-i` and `whoami` send --------

static SELF_SUBJECT_ACCESS_REVIEW: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        opt(2, "spec", Ty::Msg(&SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
    ],
};

static SELF_SUBJECT_ACCESS_REVIEW_SPEC: Msg = Msg {
    fields: &[
        ptr(1, "resourceAttributes", Ty::Msg(&RESOURCE_ATTRIBUTES)),
        ptr(
            2,
            "nonResourceAttributes",
            Ty::Msg(&NON_RESOURCE_ATTRIBUTES),
        ),
    ],
};

static RESOURCE_ATTRIBUTES: Msg = Msg {
    fields: &[
        opt(1, "namespace", Str),
        opt(2, "verb", Str),
        opt(3, "group", Str),
        opt(4, "version", Str),
        opt(5, "resource", Str),
        opt(6, "subresource", Str),
        opt(7, "name", Str),
    ],
};

static NON_RESOURCE_ATTRIBUTES: Msg = Msg {
    fields: &[opt(1, "path", Str), opt(2, "verb", Str)],
};

static SELF_SUBJECT_RULES_REVIEW: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        opt(2, "spec", Ty::Msg(&SELF_SUBJECT_RULES_REVIEW_SPEC)),
    ],
};

static SELF_SUBJECT_RULES_REVIEW_SPEC: Msg = Msg {
    fields: &[opt(1, "namespace", Str)],
};

static SELF_SUBJECT_REVIEW: Msg = Msg {
    fields: &[opt(1, "metadata", Ty::Msg(&OBJECT_META))],
};

/// What `kubectl create token` sends (the status is the server's to fill in).
static TOKEN_REQUEST: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        opt(2, "spec", Ty::Msg(&TOKEN_REQUEST_SPEC)),
        opt(3, "status", Ty::Ignored),
    ],
};

static TOKEN_REQUEST_SPEC: Msg = Msg {
    fields: &[
        list(1, "audiences", Str),
        ptr(4, "expirationSeconds", I64),
        ptr(3, "boundObjectRef", Ty::Msg(&BOUND_OBJECT_REFERENCE)),
    ],
};

static BOUND_OBJECT_REFERENCE: Msg = Msg {
    fields: &[
        opt(1, "kind", Str),
        opt(2, "apiVersion", Str),
        opt(3, "name", Str),
        opt(4, "uid", Str),
    ],
};

// policy/v1 ------------------------------------------------------------------------------

static EVICTION: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        ptr(2, "deleteOptions", Ty::Msg(&DELETE_OPTIONS)),
    ],
};

// core/v1: Namespace, ConfigMap, Secret, ServiceAccount ---------------------------------

static NAMESPACE: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        opt(2, "spec", Ty::Msg(&NAMESPACE_SPEC)),
        opt(3, "status", Ty::Msg(&NAMESPACE_STATUS)),
    ],
};

static NAMESPACE_SPEC: Msg = Msg {
    fields: &[list(1, "finalizers", Str)],
};

static NAMESPACE_STATUS: Msg = Msg {
    fields: &[
        opt(1, "phase", Str),
        list(2, "conditions", Ty::Msg(&NAMESPACE_CONDITION)),
    ],
};

static NAMESPACE_CONDITION: Msg = Msg {
    fields: &[
        req(1, "type", Str),
        req(2, "status", Str),
        opt(4, "lastTransitionTime", Time),
        opt(5, "reason", Str),
        opt(6, "message", Str),
    ],
};

static CONFIG_MAP: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        ptr(4, "immutable", Bool),
        map(2, "data", Str),
        map(3, "binaryData", Bytes),
    ],
};

static SECRET: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        ptr(5, "immutable", Bool),
        map(2, "data", Bytes),
        map(4, "stringData", Str),
        opt(3, "type", Str),
    ],
};

static SERVICE_ACCOUNT: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        list(2, "secrets", Ty::Msg(&OBJECT_REFERENCE)),
        list(3, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        ptr(4, "automountServiceAccountToken", Bool),
    ],
};

static OBJECT_REFERENCE: Msg = Msg {
    fields: &[
        opt(1, "kind", Str),
        opt(2, "namespace", Str),
        opt(3, "name", Str),
        opt(4, "uid", Str),
        opt(5, "apiVersion", Str),
        opt(6, "resourceVersion", Str),
        opt(7, "fieldPath", Str),
    ],
};

static LOCAL_OBJECT_REFERENCE: Msg = Msg {
    fields: &[opt(1, "name", Str)],
};

// rbac.authorization.k8s.io/v1 and scheduling.k8s.io/v1 -----------------------------------

static ROLE: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        list(2, "rules", Ty::Msg(&POLICY_RULE)),
    ],
};

static CLUSTER_ROLE: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        list(2, "rules", Ty::Msg(&POLICY_RULE)),
        ptr(3, "aggregationRule", Ty::Msg(&AGGREGATION_RULE)),
    ],
};

static AGGREGATION_RULE: Msg = Msg {
    fields: &[list(1, "clusterRoleSelectors", Ty::Msg(&LABEL_SELECTOR))],
};

static POLICY_RULE: Msg = Msg {
    fields: &[
        list(1, "verbs", Str),
        list(2, "apiGroups", Str),
        list(3, "resources", Str),
        list(4, "resourceNames", Str),
        list(5, "nonResourceURLs", Str),
    ],
};

/// A RoleBinding and a ClusterRoleBinding have the same fields.
static ROLE_BINDING: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        list(2, "subjects", Ty::Msg(&SUBJECT)),
        req(3, "roleRef", Ty::Msg(&ROLE_REF)),
    ],
};

static SUBJECT: Msg = Msg {
    fields: &[
        req(1, "kind", Str),
        opt(2, "apiGroup", Str),
        req(3, "name", Str),
        opt(4, "namespace", Str),
    ],
};

static ROLE_REF: Msg = Msg {
    fields: &[
        req(1, "apiGroup", Str),
        req(2, "kind", Str),
        req(3, "name", Str),
    ],
};

static PRIORITY_CLASS: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        req(2, "value", I32),
        opt(3, "globalDefault", Bool),
        opt(4, "description", Str),
        ptr(5, "preemptionPolicy", Str),
    ],
};

// core/v1: Service -----------------------------------------------------------------------

static SERVICE: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        opt(2, "spec", Ty::Msg(&SERVICE_SPEC)),
        opt(3, "status", Ty::Msg(&SERVICE_STATUS)),
    ],
};

static SERVICE_SPEC: Msg = Msg {
    fields: &[
        list(1, "ports", Ty::Msg(&SERVICE_PORT)),
        map(2, "selector", Str),
        opt(3, "clusterIP", Str),
        list(18, "clusterIPs", Str),
        opt(4, "type", Str),
        list(5, "externalIPs", Str),
        opt(7, "sessionAffinity", Str),
        opt(8, "loadBalancerIP", Str),
        list(9, "loadBalancerSourceRanges", Str),
        opt(10, "externalName", Str),
        opt(11, "externalTrafficPolicy", Str),
        opt(12, "healthCheckNodePort", I32),
        opt(13, "publishNotReadyAddresses", Bool),
        ptr(
            14,
            "sessionAffinityConfig",
            Ty::Msg(&SESSION_AFFINITY_CONFIG),
        ),
        list(19, "ipFamilies", Str),
        ptr(17, "ipFamilyPolicy", Str),
        ptr(20, "allocateLoadBalancerNodePorts", Bool),
        ptr(21, "loadBalancerClass", Str),
        ptr(22, "internalTrafficPolicy", Str),
        ptr(23, "trafficDistribution", Str),
    ],
};

static SERVICE_PORT: Msg = Msg {
    fields: &[
        opt(1, "name", Str),
        opt(2, "protocol", Str),
        ptr(6, "appProtocol", Str),
        req(3, "port", I32),
        opt(4, "targetPort", IntOrString),
        opt(5, "nodePort", I32),
    ],
};

static SESSION_AFFINITY_CONFIG: Msg = Msg {
    fields: &[ptr(1, "clientIP", Ty::Msg(&CLIENT_IP_CONFIG))],
};

static CLIENT_IP_CONFIG: Msg = Msg {
    fields: &[ptr(1, "timeoutSeconds", I32)],
};

static SERVICE_STATUS: Msg = Msg {
    fields: &[
        opt(1, "loadBalancer", Ty::Msg(&LOAD_BALANCER_STATUS)),
        list(2, "conditions", Ty::Msg(&CONDITION)),
    ],
};

static LOAD_BALANCER_STATUS: Msg = Msg {
    fields: &[list(1, "ingress", Ty::Msg(&LOAD_BALANCER_INGRESS))],
};

static LOAD_BALANCER_INGRESS: Msg = Msg {
    fields: &[
        opt(1, "ip", Str),
        opt(2, "hostname", Str),
        ptr(3, "ipMode", Str),
        list(4, "ports", Ty::Msg(&PORT_STATUS)),
    ],
};

static PORT_STATUS: Msg = Msg {
    fields: &[
        req(1, "port", I32),
        req(2, "protocol", Str),
        ptr(3, "error", Str),
    ],
};

// core/v1: Pod ---------------------------------------------------------------------------

static POD: Msg = Msg {
    fields: &[
        opt(1, "metadata", Ty::Msg(&OBJECT_META)),
        opt(2, "spec", Ty::Msg(&POD_SPEC)),
        opt(3, "status", Ty::Ignored),
    ],
};

static POD_SPEC: Msg = Msg {
    fields: &[
        list(1, "volumes", Ty::Msg(&VOLUME)),
        list(20, "initContainers", Ty::Msg(&CONTAINER)),
        list(2, "containers", Ty::Msg(&CONTAINER)),
        list(34, "ephemeralContainers", Ty::Msg(&EPHEMERAL_CONTAINER)),
        opt(3, "restartPolicy", Str),
        ptr(4, "terminationGracePeriodSeconds", I64),
        ptr(5, "activeDeadlineSeconds", I64),
        opt(6, "dnsPolicy", Str),
        map(7, "nodeSelector", Str),
        opt(8, "serviceAccountName", Str),
        opt(9, "serviceAccount", Str),
        ptr(21, "automountServiceAccountToken", Bool),
        opt(10, "nodeName", Str),
        opt(11, "hostNetwork", Bool),
        opt(12, "hostPID", Bool),
        opt(13, "hostIPC", Bool),
        ptr(27, "shareProcessNamespace", Bool),
        ptr(14, "securityContext", Ty::Msg(&POD_SECURITY_CONTEXT)),
        list(15, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        opt(16, "hostname", Str),
        opt(17, "subdomain", Str),
        ptr(18, "affinity", Ty::Msg(&AFFINITY)),
        opt(19, "schedulerName", Str),
        list(22, "tolerations", Ty::Msg(&TOLERATION)),
        list(23, "hostAliases", Ty::Msg(&HOST_ALIAS)),
        opt(24, "priorityClassName", Str),
        ptr(25, "priority", I32),
        ptr(26, "dnsConfig", Ty::Msg(&POD_DNS_CONFIG)),
        list(28, "readinessGates", Ty::Msg(&POD_READINESS_GATE)),
        ptr(29, "runtimeClassName", Str),
        ptr(30, "enableServiceLinks", Bool),
        ptr(31, "preemptionPolicy", Str),
        map(32, "overhead", Quantity),
        list(
            33,
            "topologySpreadConstraints",
            Ty::Msg(&TOPOLOGY_SPREAD_CONSTRAINT),
        ),
        ptr(35, "setHostnameAsFQDN", Bool),
        ptr(36, "os", Ty::Msg(&NAME_ONLY)),
        ptr(37, "hostUsers", Bool),
        list(38, "schedulingGates", Ty::Msg(&NAME_ONLY)),
        list(39, "resourceClaims", Ty::Msg(&POD_RESOURCE_CLAIM)),
        ptr(40, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        ptr(41, "hostnameOverride", Str),
        unsupported(42, "workloadRef"),
    ],
};

/// PodOS and PodSchedulingGate: a lone required `name`.
static NAME_ONLY: Msg = Msg {
    fields: &[req(1, "name", Str)],
};

static POD_SECURITY_CONTEXT: Msg = Msg {
    fields: &[
        ptr(1, "seLinuxOptions", Ty::Msg(&SE_LINUX_OPTIONS)),
        ptr(8, "windowsOptions", Ty::Msg(&WINDOWS_OPTIONS)),
        ptr(2, "runAsUser", I64),
        ptr(6, "runAsGroup", I64),
        ptr(3, "runAsNonRoot", Bool),
        list(4, "supplementalGroups", I64),
        ptr(12, "supplementalGroupsPolicy", Str),
        ptr(5, "fsGroup", I64),
        list(7, "sysctls", Ty::Msg(&SYSCTL)),
        ptr(9, "fsGroupChangePolicy", Str),
        ptr(10, "seccompProfile", Ty::Msg(&PROFILE)),
        ptr(11, "appArmorProfile", Ty::Msg(&PROFILE)),
        ptr(13, "seLinuxChangePolicy", Str),
    ],
};

static SE_LINUX_OPTIONS: Msg = Msg {
    fields: &[
        opt(1, "user", Str),
        opt(2, "role", Str),
        opt(3, "type", Str),
        opt(4, "level", Str),
    ],
};

static WINDOWS_OPTIONS: Msg = Msg {
    fields: &[
        ptr(1, "gmsaCredentialSpecName", Str),
        ptr(2, "gmsaCredentialSpec", Str),
        ptr(3, "runAsUserName", Str),
        ptr(4, "hostProcess", Bool),
    ],
};

static SYSCTL: Msg = Msg {
    fields: &[req(1, "name", Str), req(2, "value", Str)],
};

/// SeccompProfile and AppArmorProfile share a layout.
static PROFILE: Msg = Msg {
    fields: &[req(1, "type", Str), ptr(2, "localhostProfile", Str)],
};

static AFFINITY: Msg = Msg {
    fields: &[
        ptr(1, "nodeAffinity", Ty::Msg(&NODE_AFFINITY)),
        ptr(2, "podAffinity", Ty::Msg(&POD_AFFINITY)),
        ptr(3, "podAntiAffinity", Ty::Msg(&POD_AFFINITY)),
    ],
};

static NODE_AFFINITY: Msg = Msg {
    fields: &[
        ptr(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&NODE_SELECTOR),
        ),
        list(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&PREFERRED_SCHEDULING_TERM),
        ),
    ],
};

static NODE_SELECTOR: Msg = Msg {
    fields: &[list(1, "nodeSelectorTerms", Ty::Msg(&NODE_SELECTOR_TERM))],
};

static NODE_SELECTOR_TERM: Msg = Msg {
    fields: &[
        list(1, "matchExpressions", Ty::Msg(&SELECTOR_REQUIREMENT)),
        list(2, "matchFields", Ty::Msg(&SELECTOR_REQUIREMENT)),
    ],
};

static PREFERRED_SCHEDULING_TERM: Msg = Msg {
    fields: &[
        req(1, "weight", I32),
        req(2, "preference", Ty::Msg(&NODE_SELECTOR_TERM)),
    ],
};

/// PodAffinity and PodAntiAffinity share a layout.
static POD_AFFINITY: Msg = Msg {
    fields: &[
        list(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&POD_AFFINITY_TERM),
        ),
        list(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
};

static POD_AFFINITY_TERM: Msg = Msg {
    fields: &[
        ptr(1, "labelSelector", Ty::Msg(&LABEL_SELECTOR)),
        list(2, "namespaces", Str),
        req(3, "topologyKey", Str),
        ptr(4, "namespaceSelector", Ty::Msg(&LABEL_SELECTOR)),
        list(5, "matchLabelKeys", Str),
        list(6, "mismatchLabelKeys", Str),
    ],
};

static WEIGHTED_POD_AFFINITY_TERM: Msg = Msg {
    fields: &[
        req(1, "weight", I32),
        req(2, "podAffinityTerm", Ty::Msg(&POD_AFFINITY_TERM)),
    ],
};

static TOLERATION: Msg = Msg {
    fields: &[
        opt(1, "key", Str),
        opt(2, "operator", Str),
        opt(3, "value", Str),
        opt(4, "effect", Str),
        ptr(5, "tolerationSeconds", I64),
    ],
};

static HOST_ALIAS: Msg = Msg {
    fields: &[req(1, "ip", Str), list(2, "hostnames", Str)],
};

static POD_DNS_CONFIG: Msg = Msg {
    fields: &[
        list(1, "nameservers", Str),
        list(2, "searches", Str),
        list(3, "options", Ty::Msg(&POD_DNS_CONFIG_OPTION)),
    ],
};

static POD_DNS_CONFIG_OPTION: Msg = Msg {
    fields: &[opt(1, "name", Str), ptr(2, "value", Str)],
};

static POD_READINESS_GATE: Msg = Msg {
    fields: &[req(1, "conditionType", Str)],
};

static TOPOLOGY_SPREAD_CONSTRAINT: Msg = Msg {
    fields: &[
        req(1, "maxSkew", I32),
        req(2, "topologyKey", Str),
        req(3, "whenUnsatisfiable", Str),
        ptr(4, "labelSelector", Ty::Msg(&LABEL_SELECTOR)),
        ptr(5, "minDomains", I32),
        ptr(6, "nodeAffinityPolicy", Str),
        ptr(7, "nodeTaintsPolicy", Str),
        list(8, "matchLabelKeys", Str),
    ],
};

static POD_RESOURCE_CLAIM: Msg = Msg {
    fields: &[
        req(1, "name", Str),
        ptr(3, "resourceClaimName", Str),
        ptr(4, "resourceClaimTemplateName", Str),
    ],
};

/// Container's fields; EphemeralContainerCommon has the same numbers and names.
const CONTAINER_FIELDS: &[Field] = &[
    req(1, "name", Str),
    opt(2, "image", Str),
    list(3, "command", Str),
    list(4, "args", Str),
    opt(5, "workingDir", Str),
    list(6, "ports", Ty::Msg(&CONTAINER_PORT)),
    list(19, "envFrom", Ty::Msg(&ENV_FROM_SOURCE)),
    list(7, "env", Ty::Msg(&ENV_VAR)),
    opt(8, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
    list(23, "resizePolicy", Ty::Msg(&CONTAINER_RESIZE_POLICY)),
    ptr(24, "restartPolicy", Str),
    list(25, "restartPolicyRules", Ty::Msg(&CONTAINER_RESTART_RULE)),
    list(9, "volumeMounts", Ty::Msg(&VOLUME_MOUNT)),
    list(21, "volumeDevices", Ty::Msg(&VOLUME_DEVICE)),
    ptr(10, "livenessProbe", Ty::Msg(&PROBE)),
    ptr(11, "readinessProbe", Ty::Msg(&PROBE)),
    ptr(22, "startupProbe", Ty::Msg(&PROBE)),
    ptr(12, "lifecycle", Ty::Msg(&LIFECYCLE)),
    opt(13, "terminationMessagePath", Str),
    opt(20, "terminationMessagePolicy", Str),
    opt(14, "imagePullPolicy", Str),
    ptr(15, "securityContext", Ty::Msg(&SECURITY_CONTEXT)),
    opt(16, "stdin", Bool),
    opt(17, "stdinOnce", Bool),
    opt(18, "tty", Bool),
];

static CONTAINER: Msg = Msg {
    fields: CONTAINER_FIELDS,
};

static EPHEMERAL_CONTAINER_COMMON: Msg = Msg {
    fields: CONTAINER_FIELDS,
};

static EPHEMERAL_CONTAINER: Msg = Msg {
    fields: &[
        inline(1, &EPHEMERAL_CONTAINER_COMMON),
        opt(2, "targetContainerName", Str),
    ],
};

static CONTAINER_PORT: Msg = Msg {
    fields: &[
        opt(1, "name", Str),
        opt(2, "hostPort", I32),
        req(3, "containerPort", I32),
        opt(4, "protocol", Str),
        opt(5, "hostIP", Str),
    ],
};

static ENV_FROM_SOURCE: Msg = Msg {
    fields: &[
        opt(1, "prefix", Str),
        ptr(2, "configMapRef", Ty::Msg(&OPTIONAL_REFERENCE)),
        ptr(3, "secretRef", Ty::Msg(&OPTIONAL_REFERENCE)),
    ],
};

/// ConfigMapEnvSource and SecretEnvSource: an inline LocalObjectReference, `optional`.
static OPTIONAL_REFERENCE: Msg = Msg {
    fields: &[inline(1, &LOCAL_OBJECT_REFERENCE), ptr(2, "optional", Bool)],
};

static ENV_VAR: Msg = Msg {
    fields: &[
        req(1, "name", Str),
        opt(2, "value", Str),
        ptr(3, "valueFrom", Ty::Msg(&ENV_VAR_SOURCE)),
    ],
};

static ENV_VAR_SOURCE: Msg = Msg {
    fields: &[
        ptr(1, "fieldRef", Ty::Msg(&OBJECT_FIELD_SELECTOR)),
        ptr(2, "resourceFieldRef", Ty::Msg(&RESOURCE_FIELD_SELECTOR)),
        ptr(3, "configMapKeyRef", Ty::Msg(&KEY_SELECTOR)),
        ptr(4, "secretKeyRef", Ty::Msg(&KEY_SELECTOR)),
        ptr(5, "fileKeyRef", Ty::Msg(&FILE_KEY_SELECTOR)),
    ],
};

static OBJECT_FIELD_SELECTOR: Msg = Msg {
    fields: &[opt(1, "apiVersion", Str), req(2, "fieldPath", Str)],
};

static RESOURCE_FIELD_SELECTOR: Msg = Msg {
    fields: &[
        opt(1, "containerName", Str),
        req(2, "resource", Str),
        opt(3, "divisor", Quantity),
    ],
};

/// ConfigMapKeySelector and SecretKeySelector share a layout.
static KEY_SELECTOR: Msg = Msg {
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        req(2, "key", Str),
        ptr(3, "optional", Bool),
    ],
};

static FILE_KEY_SELECTOR: Msg = Msg {
    fields: &[
        req(1, "volumeName", Str),
        req(2, "path", Str),
        req(3, "key", Str),
        ptr(4, "optional", Bool),
    ],
};

static RESOURCE_REQUIREMENTS: Msg = Msg {
    fields: &[
        map(1, "limits", Quantity),
        map(2, "requests", Quantity),
        list(3, "claims", Ty::Msg(&RESOURCE_CLAIM)),
    ],
};

static RESOURCE_CLAIM: Msg = Msg {
    fields: &[req(1, "name", Str), opt(2, "request", Str)],
};

static CONTAINER_RESIZE_POLICY: Msg = Msg {
    fields: &[req(1, "resourceName", Str), req(2, "restartPolicy", Str)],
};

static CONTAINER_RESTART_RULE: Msg = Msg {
    fields: &[
        opt(1, "action", Str),
        ptr(
            2,
            "exitCodes",
            Ty::Msg(&CONTAINER_RESTART_RULE_ON_EXIT_CODES),
        ),
    ],
};

static CONTAINER_RESTART_RULE_ON_EXIT_CODES: Msg = Msg {
    fields: &[req(1, "operator", Str), list(2, "values", I32)],
};

static VOLUME_MOUNT: Msg = Msg {
    fields: &[
        req(1, "name", Str),
        opt(2, "readOnly", Bool),
        ptr(7, "recursiveReadOnly", Str),
        req(3, "mountPath", Str),
        opt(4, "subPath", Str),
        ptr(5, "mountPropagation", Str),
        opt(6, "subPathExpr", Str),
    ],
};

static VOLUME_DEVICE: Msg = Msg {
    fields: &[req(1, "name", Str), req(2, "devicePath", Str)],
};

static PROBE: Msg = Msg {
    fields: &[
        inline(1, &PROBE_HANDLER),
        opt(2, "initialDelaySeconds", I32),
        opt(3, "timeoutSeconds", I32),
        opt(4, "periodSeconds", I32),
        opt(5, "successThreshold", I32),
        opt(6, "failureThreshold", I32),
        ptr(7, "terminationGracePeriodSeconds", I64),
    ],
};

static PROBE_HANDLER: Msg = Msg {
    fields: &[
        ptr(1, "exec", Ty::Msg(&EXEC_ACTION)),
        ptr(2, "httpGet", Ty::Msg(&HTTP_GET_ACTION)),
        ptr(3, "tcpSocket", Ty::Msg(&TCP_SOCKET_ACTION)),
        ptr(4, "grpc", Ty::Msg(&GRPC_ACTION)),
    ],
};

static EXEC_ACTION: Msg = Msg {
    fields: &[list(1, "command", Str)],
};

static HTTP_GET_ACTION: Msg = Msg {
    fields: &[
        opt(1, "path", Str),
        req(2, "port", IntOrString),
        opt(3, "host", Str),
        opt(4, "scheme", Str),
        list(5, "httpHeaders", Ty::Msg(&HTTP_HEADER)),
    ],
};

static HTTP_HEADER: Msg = Msg {
    fields: &[req(1, "name", Str), req(2, "value", Str)],
};

static TCP_SOCKET_ACTION: Msg = Msg {
    fields: &[req(1, "port", IntOrString), opt(2, "host", Str)],
};

static GRPC_ACTION: Msg = Msg {
    fields: &[req(1, "port", I32), ptr(2, "service", Str)],
};

static LIFECYCLE: Msg = Msg {
    fields: &[
        ptr(1, "postStart", Ty::Msg(&LIFECYCLE_HANDLER)),
        ptr(2, "preStop", Ty::Msg(&LIFECYCLE_HANDLER)),
        ptr(3, "stopSignal", Str),
    ],
};

static LIFECYCLE_HANDLER: Msg = Msg {
    fields: &[
        ptr(1, "exec", Ty::Msg(&EXEC_ACTION)),
        ptr(2, "httpGet", Ty::Msg(&HTTP_GET_ACTION)),
        ptr(3, "tcpSocket", Ty::Msg(&TCP_SOCKET_ACTION)),
        ptr(4, "sleep", Ty::Msg(&SLEEP_ACTION)),
    ],
};

static SLEEP_ACTION: Msg = Msg {
    fields: &[req(1, "seconds", I64)],
};

static SECURITY_CONTEXT: Msg = Msg {
    fields: &[
        ptr(1, "capabilities", Ty::Msg(&CAPABILITIES)),
        ptr(2, "privileged", Bool),
        ptr(3, "seLinuxOptions", Ty::Msg(&SE_LINUX_OPTIONS)),
        ptr(10, "windowsOptions", Ty::Msg(&WINDOWS_OPTIONS)),
        ptr(4, "runAsUser", I64),
        ptr(8, "runAsGroup", I64),
        ptr(5, "runAsNonRoot", Bool),
        ptr(6, "readOnlyRootFilesystem", Bool),
        ptr(7, "allowPrivilegeEscalation", Bool),
        ptr(9, "procMount", Str),
        ptr(11, "seccompProfile", Ty::Msg(&PROFILE)),
        ptr(12, "appArmorProfile", Ty::Msg(&PROFILE)),
    ],
};

static CAPABILITIES: Msg = Msg {
    fields: &[list(1, "add", Str), list(2, "drop", Str)],
};

static VOLUME: Msg = Msg {
    fields: &[req(1, "name", Str), inline(2, &VOLUME_SOURCE)],
};

static VOLUME_SOURCE: Msg = Msg {
    fields: &[
        ptr(1, "hostPath", Ty::Msg(&HOST_PATH_VOLUME_SOURCE)),
        ptr(2, "emptyDir", Ty::Msg(&EMPTY_DIR_VOLUME_SOURCE)),
        unsupported(3, "gcePersistentDisk"),
        unsupported(4, "awsElasticBlockStore"),
        unsupported(5, "gitRepo"),
        ptr(6, "secret", Ty::Msg(&SECRET_VOLUME_SOURCE)),
        ptr(7, "nfs", Ty::Msg(&NFS_VOLUME_SOURCE)),
        unsupported(8, "iscsi"),
        unsupported(9, "glusterfs"),
        ptr(10, "persistentVolumeClaim", Ty::Msg(&PVC_VOLUME_SOURCE)),
        unsupported(11, "rbd"),
        unsupported(12, "flexVolume"),
        unsupported(13, "cinder"),
        unsupported(14, "cephfs"),
        unsupported(15, "flocker"),
        ptr(16, "downwardAPI", Ty::Msg(&DOWNWARD_API_VOLUME_SOURCE)),
        unsupported(17, "fc"),
        unsupported(18, "azureFile"),
        ptr(19, "configMap", Ty::Msg(&CONFIG_MAP_VOLUME_SOURCE)),
        unsupported(20, "vsphereVolume"),
        unsupported(21, "quobyte"),
        unsupported(22, "azureDisk"),
        unsupported(23, "photonPersistentDisk"),
        ptr(26, "projected", Ty::Msg(&PROJECTED_VOLUME_SOURCE)),
        unsupported(24, "portworxVolume"),
        unsupported(25, "scaleIO"),
        unsupported(27, "storageos"),
        unsupported(28, "csi"),
        unsupported(29, "ephemeral"),
        ptr(30, "image", Ty::Msg(&IMAGE_VOLUME_SOURCE)),
    ],
};

static HOST_PATH_VOLUME_SOURCE: Msg = Msg {
    fields: &[req(1, "path", Str), ptr(2, "type", Str)],
};

static EMPTY_DIR_VOLUME_SOURCE: Msg = Msg {
    fields: &[opt(1, "medium", Str), ptr(2, "sizeLimit", Quantity)],
};

static SECRET_VOLUME_SOURCE: Msg = Msg {
    fields: &[
        opt(1, "secretName", Str),
        list(2, "items", Ty::Msg(&KEY_TO_PATH)),
        ptr(3, "defaultMode", I32),
        ptr(4, "optional", Bool),
    ],
};

static CONFIG_MAP_VOLUME_SOURCE: Msg = Msg {
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        list(2, "items", Ty::Msg(&KEY_TO_PATH)),
        ptr(3, "defaultMode", I32),
        ptr(4, "optional", Bool),
    ],
};

static KEY_TO_PATH: Msg = Msg {
    fields: &[req(1, "key", Str), req(2, "path", Str), ptr(3, "mode", I32)],
};

static NFS_VOLUME_SOURCE: Msg = Msg {
    fields: &[
        req(1, "server", Str),
        req(2, "path", Str),
        opt(3, "readOnly", Bool),
    ],
};

static PVC_VOLUME_SOURCE: Msg = Msg {
    fields: &[req(1, "claimName", Str), opt(2, "readOnly", Bool)],
};

static DOWNWARD_API_VOLUME_SOURCE: Msg = Msg {
    fields: &[
        list(1, "items", Ty::Msg(&DOWNWARD_API_VOLUME_FILE)),
        ptr(2, "defaultMode", I32),
    ],
};

static DOWNWARD_API_VOLUME_FILE: Msg = Msg {
    fields: &[
        req(1, "path", Str),
        ptr(2, "fieldRef", Ty::Msg(&OBJECT_FIELD_SELECTOR)),
        ptr(3, "resourceFieldRef", Ty::Msg(&RESOURCE_FIELD_SELECTOR)),
        ptr(4, "mode", I32),
    ],
};

static PROJECTED_VOLUME_SOURCE: Msg = Msg {
    fields: &[
        list(1, "sources", Ty::Msg(&VOLUME_PROJECTION)),
        ptr(2, "defaultMode", I32),
    ],
};

static VOLUME_PROJECTION: Msg = Msg {
    fields: &[
        ptr(1, "secret", Ty::Msg(&KEY_PROJECTION)),
        ptr(2, "downwardAPI", Ty::Msg(&DOWNWARD_API_PROJECTION)),
        ptr(3, "configMap", Ty::Msg(&KEY_PROJECTION)),
        ptr(4, "serviceAccountToken", Ty::Msg(&SA_TOKEN_PROJECTION)),
        ptr(
            5,
            "clusterTrustBundle",
            Ty::Msg(&CLUSTER_TRUST_BUNDLE_PROJECTION),
        ),
        unsupported(6, "podCertificate"),
    ],
};

/// SecretProjection and ConfigMapProjection share a layout.
static KEY_PROJECTION: Msg = Msg {
    fields: &[
        inline(1, &LOCAL_OBJECT_REFERENCE),
        list(2, "items", Ty::Msg(&KEY_TO_PATH)),
        ptr(4, "optional", Bool),
    ],
};

static DOWNWARD_API_PROJECTION: Msg = Msg {
    fields: &[list(1, "items", Ty::Msg(&DOWNWARD_API_VOLUME_FILE))],
};

static SA_TOKEN_PROJECTION: Msg = Msg {
    fields: &[
        opt(1, "audience", Str),
        ptr(2, "expirationSeconds", I64),
        req(3, "path", Str),
    ],
};

static CLUSTER_TRUST_BUNDLE_PROJECTION: Msg = Msg {
    fields: &[
        ptr(1, "name", Str),
        ptr(2, "signerName", Str),
        ptr(3, "labelSelector", Ty::Msg(&LABEL_SELECTOR)),
        ptr(5, "optional", Bool),
        req(4, "path", Str),
    ],
};

static IMAGE_VOLUME_SOURCE: Msg = Msg {
    fields: &[opt(1, "reference", Str), opt(2, "pullPolicy", Str)],
};

// ---------------------------------------------------------------------------------------
// Decoding into an intermediate form, then JSON.

/// A message as read so far: values for the fields that appeared, by index into the
/// schema's field list. Sparse, so the size follows the input, not the schema.
struct Decoded {
    msg: &'static Msg,
    slots: Vec<(usize, Slot)>,
}

enum Slot {
    One(Val),
    List(Vec<Val>),
    Map(BTreeMap<String, Val>),
}

enum Val {
    Str(String),
    Bytes(Vec<u8>),
    Int(i64),
    Bool(bool),
    Msg(Decoded),
    /// Seconds and nanoseconds since the epoch; `None` is Go's zero time.
    Time(Option<(i64, i32)>),
    IntOrString {
        kind: i64,
        int: i32,
        string: String,
    },
    Quantity(String),
    FieldsV1(Vec<u8>),
}

impl Val {
    fn zero(ty: Ty) -> Option<Val> {
        Some(match ty {
            Ty::Str => Val::Str(String::new()),
            Ty::Bytes => Val::Bytes(Vec::new()),
            Ty::I32 | Ty::I64 => Val::Int(0),
            Ty::Bool => Val::Bool(false),
            Ty::Msg(msg) => Val::Msg(Decoded::new(msg)),
            Ty::Time => Val::Time(None),
            Ty::IntOrString => Val::IntOrString {
                kind: 0,
                int: 0,
                string: String::new(),
            },
            Ty::Quantity => Val::Quantity("0".into()),
            Ty::FieldsV1 => Val::FieldsV1(Vec::new()),
            Ty::Ignored | Ty::Unsupported => return None,
        })
    }

    /// Reads one occurrence of a field of type `ty` into `self`: scalars replace, messages
    /// merge (proto semantics; Go's hand-written Time and Quantity decoders replace).
    fn read(
        &mut self,
        ty: Ty,
        wire: u8,
        r: &mut Reader<'_>,
        depth: usize,
        budget: &mut usize,
    ) -> Result<()> {
        match (self, ty) {
            (Val::Int(v), Ty::I32) => {
                expect_wire(wire, VARINT)?;
                *v = i64::from(r.varint()? as i32);
            }
            (Val::Int(v), _) => {
                expect_wire(wire, VARINT)?;
                *v = r.varint()? as i64;
            }
            (Val::Bool(v), _) => {
                expect_wire(wire, VARINT)?;
                *v = r.varint()? != 0;
            }
            (Val::Str(v), _) => {
                expect_wire(wire, LEN)?;
                *v = lossy_string(r.length_delimited()?);
            }
            (Val::Bytes(v), _) => {
                expect_wire(wire, LEN)?;
                *v = r.length_delimited()?.to_vec();
            }
            (Val::Msg(d), _) => {
                expect_wire(wire, LEN)?;
                d.merge(r.length_delimited()?, depth + 1, budget)?;
            }
            (Val::Time(v), _) => {
                expect_wire(wire, LEN)?;
                *v = read_time(r.length_delimited()?)?;
            }
            (Val::IntOrString { kind, int, string }, _) => {
                expect_wire(wire, LEN)?;
                let mut m = Reader::new(r.length_delimited()?);
                while !m.is_empty() {
                    match m.key()? {
                        (1, wire) => {
                            expect_wire(wire, VARINT).map_err(|e| e.within("type"))?;
                            *kind = m.varint()? as i64;
                        }
                        (2, wire) => {
                            expect_wire(wire, VARINT).map_err(|e| e.within("intVal"))?;
                            *int = m.varint()? as i32;
                        }
                        (3, wire) => {
                            expect_wire(wire, LEN).map_err(|e| e.within("strVal"))?;
                            *string = lossy_string(m.length_delimited()?);
                        }
                        (_, wire) => m.skip(wire)?,
                    }
                }
            }
            (Val::Quantity(v), _) => {
                expect_wire(wire, LEN)?;
                let mut m = Reader::new(r.length_delimited()?);
                while !m.is_empty() {
                    match m.key()? {
                        (1, wire) => {
                            expect_wire(wire, LEN)?;
                            *v = lossy_string(m.length_delimited()?);
                        }
                        (_, wire) => m.skip(wire)?,
                    }
                }
            }
            (Val::FieldsV1(v), _) => {
                expect_wire(wire, LEN)?;
                let mut m = Reader::new(r.length_delimited()?);
                while !m.is_empty() {
                    match m.key()? {
                        (1, wire) => {
                            expect_wire(wire, LEN)?;
                            *v = m.length_delimited()?.to_vec();
                        }
                        (_, wire) => m.skip(wire)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// The value as Go's JSON would print it; `None` for Go's `null` (a zero Time, an
    /// empty FieldsV1), which we leave out.
    fn to_json(&self) -> Result<Option<Value>> {
        Ok(Some(match self {
            Val::Str(s) => Value::String(s.clone()),
            Val::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
            Val::Int(i) => Value::from(*i),
            Val::Bool(b) => Value::Bool(*b),
            Val::Msg(d) => Value::Object(d.to_json()?),
            Val::Time(None) => return Ok(None),
            Val::Time(Some((seconds, nanos))) => match format_time(*seconds, *nanos)? {
                Some(s) => Value::String(s),
                None => return Ok(None),
            },
            Val::IntOrString { kind, int, string } => match kind {
                0 => Value::from(*int),
                1 => Value::String(string.clone()),
                _ => {
                    return Err(ProtobufError::malformed(format!(
                        "IntOrString has type {kind}, which is neither 0 (int) nor 1 (string)"
                    )));
                }
            },
            Val::Quantity(q) => Value::String(q.clone()),
            Val::FieldsV1(raw) if raw.is_empty() => return Ok(None),
            Val::FieldsV1(raw) => serde_json::from_slice(raw).map_err(|e| {
                ProtobufError::malformed(format!("fieldsV1 is not valid JSON: {e}"))
            })?,
        }))
    }
}

/// A meta.v1.Time's wire form: empty for the zero time, else a Timestamp.
fn read_time(bytes: &[u8]) -> Result<Option<(i64, i32)>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let (mut seconds, mut nanos) = (0i64, 0i32);
    let mut r = Reader::new(bytes);
    while !r.is_empty() {
        match r.key()? {
            (1, wire) => {
                expect_wire(wire, VARINT)?;
                seconds = r.varint()? as i64;
            }
            (2, wire) => {
                expect_wire(wire, VARINT)?;
                nanos = r.varint()? as i32;
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    Ok(Some((seconds, nanos)))
}

/// Seconds from 0000-01-01T00:00:00Z to the Unix epoch, and from 0001-01-01 (Go's zero
/// time), and the last second of 9999.
const YEAR_0: i64 = -62_167_219_200;
const GO_ZERO_TIME: i64 = -62_135_596_800;
const YEAR_9999_END: i64 = 253_402_300_799;

/// Formats a Time as Go's JSON does: RFC 3339 in UTC, whole seconds (Go's `time.Unix`
/// normalizes out-of-range nanoseconds first). `None` for Go's zero time, which prints
/// `null`. Years outside 0000–9999 are an error: RFC 3339 cannot express them.
fn format_time(seconds: i64, nanos: i32) -> Result<Option<String>> {
    let nanos = i64::from(nanos);
    let seconds = seconds.checked_add(nanos.div_euclid(1_000_000_000));
    let Some(seconds) = seconds.filter(|s| (YEAR_0..=YEAR_9999_END).contains(s)) else {
        return Err(ProtobufError::malformed(
            "timestamp is outside the years 0000-9999",
        ));
    };
    if seconds == GO_ZERO_TIME && nanos.rem_euclid(1_000_000_000) == 0 {
        return Ok(None);
    }
    let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    Ok(Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )))
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day) — the well-known
/// era/day-of-era computation, on 400-year cycles starting at March 1st.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Decoded {
    fn new(msg: &'static Msg) -> Self {
        Decoded {
            msg,
            slots: Vec::new(),
        }
    }

    /// The slot for field `index`, created by `make` on the field's first occurrence.
    fn slot_mut(&mut self, index: usize, make: impl FnOnce() -> Slot) -> Option<&mut Slot> {
        let entry = match self.slots.iter().position(|(i, _)| *i == index) {
            Some(pos) => self.slots.get_mut(pos),
            None => {
                self.slots.push((index, make()));
                self.slots.last_mut()
            }
        };
        entry.map(|(_, slot)| slot)
    }

    /// Reads `bytes` (one occurrence of this message on the wire) into `self`.
    fn merge(&mut self, bytes: &[u8], depth: usize, budget: &mut usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(ProtobufError::malformed("messages nested too deeply"));
        }
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            let (num, wire) = r.key()?;
            let Some((index, field)) = self
                .msg
                .fields
                .iter()
                .enumerate()
                .find(|(_, f)| f.num == num)
            else {
                r.skip(wire)?;
                continue;
            };
            self.read_field(index, *field, wire, &mut r, depth, budget)
                .map_err(|e| match field.card {
                    Card::Inline => e,
                    _ => e.within(field.json),
                })?;
        }
        Ok(())
    }

    fn read_field(
        &mut self,
        index: usize,
        field: Field,
        wire: u8,
        r: &mut Reader<'_>,
        depth: usize,
        budget: &mut usize,
    ) -> Result<()> {
        match field.ty {
            Ty::Ignored => return r.skip(wire),
            Ty::Unsupported => {
                return Err(ProtobufError::UnsupportedField {
                    path: String::new(),
                });
            }
            _ => {}
        }
        let Some(zero) = Val::zero(field.ty) else {
            return r.skip(wire);
        };
        spend(budget)?;
        match field.card {
            Card::One(_) | Card::Inline => {
                if let Some(Slot::One(val)) = self.slot_mut(index, || Slot::One(zero)) {
                    val.read(field.ty, wire, r, depth, budget)?;
                }
            }
            Card::Repeated => {
                let Some(Slot::List(items)) = self.slot_mut(index, || Slot::List(Vec::new()))
                else {
                    return Ok(());
                };
                let packable = matches!(field.ty, Ty::I32 | Ty::I64 | Ty::Bool);
                if packable && wire == LEN {
                    let mut packed = Reader::new(r.length_delimited()?);
                    while !packed.is_empty() {
                        let Some(mut item) = Val::zero(field.ty) else {
                            break;
                        };
                        spend(budget)?;
                        item.read(field.ty, VARINT, &mut packed, depth, budget)?;
                        items.push(item);
                    }
                } else {
                    let mut item = zero;
                    item.read(field.ty, wire, r, depth, budget)
                        .map_err(|e| e.within(&format!("[{}]", items.len())))?;
                    items.push(item);
                }
            }
            Card::Map => {
                expect_wire(wire, LEN)?;
                let mut entry = Reader::new(r.length_delimited()?);
                let (mut key, mut value) = (String::new(), zero);
                while !entry.is_empty() {
                    match entry.key()? {
                        (1, wire) => {
                            expect_wire(wire, LEN)?;
                            key = lossy_string(entry.length_delimited()?);
                        }
                        (2, wire) => value.read(field.ty, wire, &mut entry, depth, budget)?,
                        (_, wire) => entry.skip(wire)?,
                    }
                }
                if let Some(Slot::Map(entries)) =
                    self.slot_mut(index, || Slot::Map(BTreeMap::new()))
                {
                    entries.insert(key, value);
                }
            }
        }
        Ok(())
    }

    /// The message as Go's JSON would print it, in schema (Go struct) order.
    fn to_json(&self) -> Result<Map<String, Value>> {
        let mut out = Map::new();
        for (index, field) in self.msg.fields.iter().enumerate() {
            let slot = self.slots.iter().find(|(i, _)| *i == index).map(|(_, s)| s);
            let name = field.json;
            let value = match (field.card, slot) {
                (Card::One(presence), Some(Slot::One(val))) => {
                    let json = val.to_json().map_err(|e| e.within(name))?;
                    match json {
                        Some(json) if presence == Presence::OmitEmpty && is_empty(val, &json) => {
                            None
                        }
                        json => json,
                    }
                }
                (Card::Inline, Some(Slot::One(val))) => {
                    if let Some(Value::Object(inner)) = val.to_json()? {
                        out.extend(inner);
                    }
                    None
                }
                (Card::Repeated, Some(Slot::List(items))) if !items.is_empty() => {
                    let mut json = Vec::with_capacity(items.len());
                    for (i, item) in items.iter().enumerate() {
                        let v = item
                            .to_json()
                            .map_err(|e| e.within(&format!("[{i}]")).within(name))?;
                        json.push(v.unwrap_or(Value::Null));
                    }
                    Some(Value::Array(json))
                }
                (Card::Map, Some(Slot::Map(entries))) if !entries.is_empty() => {
                    let mut json = Map::new();
                    for (key, item) in entries {
                        let v = item.to_json().map_err(|e| e.within(name))?;
                        json.insert(key.clone(), v.unwrap_or(Value::Null));
                    }
                    Some(Value::Object(json))
                }
                _ => None,
            };
            if let Some(value) = value {
                out.insert(name.to_string(), value);
            }
        }
        Ok(out)
    }
}

/// Counts one decoded value against the body's allowance.
fn spend(budget: &mut usize) -> Result<()> {
    *budget = budget
        .checked_sub(1)
        .ok_or_else(|| ProtobufError::malformed("more values than the body's size allows"))?;
    Ok(())
}

/// Whether Go's `omitempty` drops this value: a zero scalar or a message with nothing in
/// it. IntOrString and Quantity are Go structs, never omitted.
fn is_empty(val: &Val, json: &Value) -> bool {
    match val {
        Val::Str(s) => s.is_empty(),
        Val::Bytes(b) => b.is_empty(),
        Val::Int(i) => *i == 0,
        Val::Bool(b) => !b,
        Val::Msg(_) => json.as_object().is_some_and(Map::is_empty),
        Val::Time(_) | Val::FieldsV1(_) => false,
        Val::IntOrString { .. } | Val::Quantity(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tiny protobuf encoder, enough to write what gogo-protobuf writes.
    #[derive(Clone, Default)]
    struct Enc(Vec<u8>);

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    impl Enc {
        fn new() -> Self {
            Enc(Vec::new())
        }
        fn key(mut self, num: u32, wire: u8) -> Self {
            put_varint(&mut self.0, (u64::from(num) << 3) | u64::from(wire));
            self
        }
        fn varint(self, num: u32, v: u64) -> Self {
            let mut e = self.key(num, VARINT);
            put_varint(&mut e.0, v);
            e
        }
        /// int32 and int64 alike: negative values are sign-extended to 10 bytes.
        fn int(self, num: u32, v: i64) -> Self {
            self.varint(num, v as u64)
        }
        fn bool(self, num: u32, v: bool) -> Self {
            self.varint(num, u64::from(v))
        }
        fn bytes(self, num: u32, b: &[u8]) -> Self {
            let mut e = self.key(num, LEN);
            put_varint(&mut e.0, b.len() as u64);
            e.0.extend_from_slice(b);
            e
        }
        fn str(self, num: u32, s: &str) -> Self {
            self.bytes(num, s.as_bytes())
        }
        fn msg(self, num: u32, m: Enc) -> Self {
            self.bytes(num, &m.0)
        }
        fn entry(self, num: u32, k: &str, v: &str) -> Self {
            self.msg(num, Enc::new().str(1, k).str(2, v))
        }
        fn entry_msg(self, num: u32, k: &str, v: Enc) -> Self {
            self.msg(num, Enc::new().str(1, k).msg(2, v))
        }
        fn fixed32(self, num: u32) -> Self {
            let mut e = self.key(num, FIXED32);
            e.0.extend_from_slice(&[1, 2, 3, 4]);
            e
        }
        fn fixed64(self, num: u32) -> Self {
            let mut e = self.key(num, FIXED64);
            e.0.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
            e
        }
    }

    /// The envelope client-go writes around an object.
    fn body(api_version: &str, kind: &str, raw: Enc) -> Vec<u8> {
        let unknown = Enc::new()
            .msg(1, Enc::new().str(1, api_version).str(2, kind))
            .msg(2, raw)
            .str(3, "")
            .str(4, "");
        [MAGIC.as_slice(), &unknown.0].concat()
    }

    /// An ObjectMeta as gogo writes it for a fresh object: every string, `generation`,
    /// and an empty `creationTimestamp`, then whatever `more` adds.
    fn meta(name: &str, more: Enc) -> Enc {
        let mut e = Enc::new()
            .str(1, name)
            .str(2, "")
            .str(3, "")
            .str(4, "")
            .str(5, "")
            .str(6, "")
            .int(7, 0)
            .msg(8, Enc::new());
        e.0.extend_from_slice(&more.0);
        e
    }

    fn ok(bytes: &[u8]) -> Value {
        decode(bytes).unwrap_or_else(|e| panic!("decode failed: {e}"))
    }

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn configmap_captured_from_kubectl() {
        let bytes = hex(
            "6b 38 73 00 0a 0f 0a 02 76 31 12 09 43 6f 6e 66 69 67 4d 61 70 12 1e 0a 14 0a 04 \
             66 6f 6f 32 12 00 1a 00 22 00 2a 00 32 00 38 00 42 00 12 06 0a 01 61 12 01 62 1a \
             00 22 00",
        );
        let v = ok(&bytes);
        assert_eq!(
            v,
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"foo2"},"data":{"a":"b"}})
        );
        // apiVersion and kind lead, as in kubectl's JSON.
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "data"]);
    }

    #[test]
    fn configmap_binary_data_and_immutable() {
        let raw = Enc::new()
            .msg(1, meta("c", Enc::new()))
            .entry(2, "z", "last")
            .entry(2, "a", "first")
            .msg(3, Enc::new().str(1, "bin").bytes(2, &[0, 1, 0xff]))
            .bool(4, false);
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw)),
            json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},
                   "immutable":false,"data":{"a":"first","z":"last"},
                   "binaryData":{"bin":"AAH/"}})
        );
    }

    #[test]
    fn namespace_as_kubectl_create_namespace_writes_it() {
        // Spec {} and Status {phase: ""}: non-pointer structs are always written.
        let raw = Enc::new()
            .msg(1, meta("team-a", Enc::new()))
            .msg(2, Enc::new())
            .msg(3, Enc::new().str(1, ""));
        assert_eq!(
            ok(&body("v1", "Namespace", raw)),
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-a"}})
        );
        let raw = Enc::new()
            .msg(1, meta("gone", Enc::new()))
            .msg(2, Enc::new().str(1, "kubernetes"))
            .msg(
                3,
                Enc::new().str(1, "Terminating").msg(
                    2,
                    Enc::new()
                        .str(1, "NamespaceDeletionContentFailure")
                        .str(2, "False")
                        .msg(4, Enc::new().int(1, 1_767_225_599))
                        .str(5, "")
                        .str(6, ""),
                ),
            );
        assert_eq!(
            ok(&body("v1", "Namespace", raw)),
            json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"gone"},
                   "spec":{"finalizers":["kubernetes"]},
                   "status":{"phase":"Terminating","conditions":[{
                       "type":"NamespaceDeletionContentFailure","status":"False",
                       "lastTransitionTime":"2025-12-31T23:59:59Z"}]}})
        );
    }

    #[test]
    fn secret_generic_from_literals() {
        let raw = Enc::new()
            .msg(1, meta("creds", Enc::new()))
            .msg(2, Enc::new().str(1, "password").bytes(2, b"s3cr3t"))
            .msg(2, Enc::new().str(1, "user").bytes(2, b"admin"))
            .str(3, "Opaque");
        assert_eq!(
            ok(&body("v1", "Secret", raw)),
            json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"creds"},
                   "data":{"password":"czNjcjN0","user":"YWRtaW4="},"type":"Opaque"})
        );
        let raw = Enc::new()
            .msg(1, meta("s", Enc::new()))
            .bool(5, true)
            .entry(4, "plain", "text")
            .msg(2, Enc::new().str(1, "empty"))
            .str(3, "");
        assert_eq!(
            ok(&body("v1", "Secret", raw)),
            json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"immutable":true,
                   "data":{"empty":""},"stringData":{"plain":"text"}})
        );
    }

    #[test]
    fn certificate_signing_request_approval() {
        // What `kubectl certificate approve` PUTs to /approval: the object with an
        // Approved condition added; the requestor's extra attributes are skipped.
        let cond = Enc::new()
            .str(1, "Approved")
            .str(6, "True")
            .str(2, "KubectlApprove")
            .str(3, "This CSR was approved by kubectl certificate approve.");
        let raw = Enc::new()
            .msg(1, meta("node-csr-1", Enc::new()))
            .msg(
                2,
                Enc::new()
                    .bytes(1, b"PEM")
                    .str(2, "admin")
                    .str(4, "system:masters")
                    .str(5, "client auth")
                    .msg(6, Enc::new().str(1, "k").msg(2, Enc::new().str(1, "v")))
                    .str(7, "kubernetes.io/kube-apiserver-client-kubelet"),
            )
            .msg(3, Enc::new().msg(1, cond));
        assert_eq!(
            ok(&body(
                "certificates.k8s.io/v1",
                "CertificateSigningRequest",
                raw
            )),
            json!({"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest",
                   "metadata":{"name":"node-csr-1"},
                   "spec":{"request":"UEVN","signerName":"kubernetes.io/kube-apiserver-client-kubelet",
                           "usages":["client auth"],"username":"admin","groups":["system:masters"]},
                   "status":{"conditions":[{"type":"Approved","status":"True","reason":"KubectlApprove",
                             "message":"This CSR was approved by kubectl certificate approve."}]}})
        );
    }

    #[test]
    fn service_account() {
        let raw = Enc::new().msg(1, meta("robot", Enc::new()));
        assert_eq!(
            ok(&body("v1", "ServiceAccount", raw)),
            json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"robot"}})
        );
        let object_ref = Enc::new()
            .str(1, "Secret")
            .str(2, "")
            .str(3, "robot-token")
            .str(4, "")
            .str(5, "")
            .str(6, "")
            .str(7, "");
        let raw = Enc::new()
            .msg(1, meta("robot", Enc::new()))
            .msg(2, object_ref)
            .msg(3, Enc::new().str(1, "regcred"))
            .msg(3, Enc::new().str(1, ""))
            .bool(4, false);
        assert_eq!(
            ok(&body("v1", "ServiceAccount", raw)),
            json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"robot"},
                   "secrets":[{"kind":"Secret","name":"robot-token"}],
                   "imagePullSecrets":[{"name":"regcred"},{}],
                   "automountServiceAccountToken":false})
        );
    }

    /// `kubectl create service clusterip web --tcp=80:8080`, field for field as gogo
    /// writes the Service.
    #[test]
    fn service_clusterip() {
        let port = Enc::new()
            .str(1, "80-8080")
            .str(2, "TCP")
            .int(3, 80)
            .msg(4, Enc::new().int(1, 0).int(2, 8080).str(3, ""))
            .int(5, 0);
        let spec = Enc::new()
            .msg(1, port)
            .entry(2, "app", "web")
            .str(3, "")
            .str(4, "ClusterIP")
            .str(7, "")
            .str(8, "")
            .str(10, "")
            .str(11, "")
            .int(12, 0)
            .bool(13, false);
        let status = Enc::new().msg(1, Enc::new());
        let raw = Enc::new()
            .msg(1, meta("web", Enc::new().entry(11, "app", "web")))
            .msg(2, spec)
            .msg(3, status);
        assert_eq!(
            ok(&body("v1", "Service", raw)),
            json!({"apiVersion":"v1","kind":"Service",
                   "metadata":{"name":"web","labels":{"app":"web"}},
                   "spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],
                           "selector":{"app":"web"},"type":"ClusterIP"}})
        );
    }

    #[test]
    fn service_every_spec_field() {
        let port = Enc::new()
            .str(1, "http")
            .str(2, "TCP")
            .str(6, "")
            .int(3, 0)
            .msg(4, Enc::new().int(1, 1).int(2, 0).str(3, "web"))
            .int(5, 30080);
        let lb_port = Enc::new().int(1, 443).str(2, "TCP").str(3, "");
        let spec = Enc::new()
            .msg(1, port)
            .str(3, "10.0.0.10")
            .str(18, "10.0.0.10")
            .str(18, "fd00::10")
            .str(4, "LoadBalancer")
            .str(5, "192.0.2.1")
            .str(7, "ClientIP")
            .str(8, "192.0.2.2")
            .str(9, "10.0.0.0/8")
            .str(10, "")
            .str(11, "Local")
            .int(12, 32000)
            .bool(13, true)
            .msg(14, Enc::new().msg(1, Enc::new().int(1, 10800)))
            .str(19, "IPv4")
            .str(19, "IPv6")
            .str(17, "PreferDualStack")
            .bool(20, false)
            .str(21, "example.com/lb")
            .str(22, "Cluster")
            .str(23, "PreferClose");
        let status = Enc::new()
            .msg(
                1,
                Enc::new().msg(
                    1,
                    Enc::new()
                        .str(1, "192.0.2.9")
                        .str(2, "")
                        .str(3, "VIP")
                        .msg(4, lb_port),
                ),
            )
            .msg(
                2,
                Enc::new()
                    .str(1, "Ready")
                    .str(2, "True")
                    .int(3, 2)
                    .msg(4, Enc::new().int(1, 0))
                    .str(5, "")
                    .str(6, ""),
            );
        let raw = Enc::new()
            .msg(1, meta("lb", Enc::new()))
            .msg(2, spec)
            .msg(3, status);
        assert_eq!(
            ok(&body("v1", "Service", raw)),
            json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"lb"},
                "spec":{
                    "ports":[{"name":"http","protocol":"TCP","appProtocol":"","port":0,
                              "targetPort":"web","nodePort":30080}],
                    "clusterIP":"10.0.0.10","clusterIPs":["10.0.0.10","fd00::10"],
                    "type":"LoadBalancer","externalIPs":["192.0.2.1"],
                    "sessionAffinity":"ClientIP","loadBalancerIP":"192.0.2.2",
                    "loadBalancerSourceRanges":["10.0.0.0/8"],
                    "externalTrafficPolicy":"Local","healthCheckNodePort":32000,
                    "publishNotReadyAddresses":true,
                    "sessionAffinityConfig":{"clientIP":{"timeoutSeconds":10800}},
                    "ipFamilies":["IPv4","IPv6"],"ipFamilyPolicy":"PreferDualStack",
                    "allocateLoadBalancerNodePorts":false,"loadBalancerClass":"example.com/lb",
                    "internalTrafficPolicy":"Cluster","trafficDistribution":"PreferClose"},
                "status":{
                    "loadBalancer":{"ingress":[{"ip":"192.0.2.9","ipMode":"VIP",
                        "ports":[{"port":443,"protocol":"TCP","error":""}]}]},
                    "conditions":[{"type":"Ready","status":"True","observedGeneration":2,
                        "lastTransitionTime":"1970-01-01T00:00:00Z","reason":"","message":""}]}})
        );
    }

    /// `kubectl drain` evicts with a policy/v1 Eviction.
    #[test]
    fn eviction() {
        let raw = Enc::new()
            .msg(1, meta("web-0", Enc::new()).str(3, "default"))
            .msg(2, Enc::new());
        assert_eq!(
            ok(&body("policy/v1", "Eviction", raw)),
            json!({"apiVersion":"policy/v1","kind":"Eviction",
                   "metadata":{"name":"web-0","namespace":"default"},"deleteOptions":{}})
        );
        let options = Enc::new()
            .int(1, 0)
            .msg(2, Enc::new().str(1, "6f1c-uid"))
            .str(4, "Foreground")
            .str(5, "All")
            .bool(6, false);
        let raw = Enc::new()
            .msg(1, meta("web-0", Enc::new()).str(3, "default"))
            .msg(2, options);
        assert_eq!(
            ok(&body("policy/v1beta1", "Eviction", raw)),
            json!({"apiVersion":"policy/v1beta1","kind":"Eviction",
                   "metadata":{"name":"web-0","namespace":"default"},
                   "deleteOptions":{"gracePeriodSeconds":0,"preconditions":{"uid":"6f1c-uid"},
                       "propagationPolicy":"Foreground","dryRun":["All"],
                       "ignoreStoreReadErrorWithClusterBreakingPotential":false}})
        );
    }

    #[test]
    fn delete_options_in_any_group_version() {
        let raw = Enc::new()
            .int(1, 30)
            .msg(2, Enc::new().str(1, "").str(2, "42"))
            .bool(3, false)
            .str(4, "");
        let want = |api: &str| {
            json!({"apiVersion":api,"kind":"DeleteOptions","gracePeriodSeconds":30,
                   "preconditions":{"uid":"","resourceVersion":"42"},
                   "orphanDependents":false,"propagationPolicy":""})
        };
        for api in ["v1", "meta.k8s.io/v1", "apps/v1"] {
            assert_eq!(ok(&body(api, "DeleteOptions", raw.clone())), want(api));
        }
        assert_eq!(
            ok(&body("v1", "DeleteOptions", Enc::new())),
            json!({"apiVersion":"v1","kind":"DeleteOptions"})
        );
    }

    #[test]
    fn object_meta_every_field() {
        let owner = Enc::new()
            .str(1, "ReplicaSet")
            .str(3, "web-5d8")
            .str(4, "")
            .str(5, "apps/v1")
            .bool(6, true)
            .bool(7, false);
        let managed = Enc::new()
            .str(1, "kubectl")
            .str(2, "Update")
            .str(3, "v1")
            .msg(4, Enc::new().int(1, 1_767_323_045))
            .str(6, "FieldsV1")
            .msg(7, Enc::new().bytes(1, br#"{"f:data":{".":{},"f:a":{}}}"#))
            .str(8, "");
        let more = Enc::new()
            .msg(9, Enc::new().int(1, 1_767_323_045).int(2, 999_999_999))
            .int(10, 0)
            .entry(11, "tier", "web")
            .entry(11, "app", "x")
            .entry(12, "note", "")
            .msg(13, owner)
            .str(14, "example.com/keep")
            .str(14, "")
            .msg(17, managed)
            .str(15, "old-cluster-name");
        let mut meta = Enc::new()
            .str(1, "x")
            .str(2, "x-")
            .str(3, "ns")
            .str(4, "/api/v1/namespaces/ns/configmaps/x")
            .str(5, "0b1c")
            .str(6, "12")
            .int(7, 3)
            .msg(8, Enc::new().int(1, 1_767_323_045));
        meta.0.extend_from_slice(&more.0);
        let v = ok(&body("v1", "ConfigMap", Enc::new().msg(1, meta)));
        assert_eq!(
            v["metadata"],
            json!({"name":"x","generateName":"x-","namespace":"ns",
                "selfLink":"/api/v1/namespaces/ns/configmaps/x","uid":"0b1c",
                "resourceVersion":"12","generation":3,
                "creationTimestamp":"2026-01-02T03:04:05Z",
                "deletionTimestamp":"2026-01-02T03:04:05Z",
                "deletionGracePeriodSeconds":0,
                "labels":{"app":"x","tier":"web"},"annotations":{"note":""},
                "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet",
                    "name":"web-5d8","uid":"","controller":true,"blockOwnerDeletion":false}],
                "finalizers":["example.com/keep",""],
                "managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"v1",
                    "time":"2026-01-02T03:04:05Z","fieldsType":"FieldsV1",
                    "fieldsV1":{"f:data":{".":{},"f:a":{}}}}]})
        );
    }

    #[test]
    fn pod_with_most_of_a_spec() {
        let container = Enc::new()
            .str(1, "app")
            .str(2, "nginx:1.27")
            .str(3, "nginx")
            .str(4, "-g")
            .str(4, "daemon off;")
            .str(5, "")
            .msg(
                6,
                Enc::new().str(1, "http").int(2, 0).int(3, 80).str(4, "TCP"),
            )
            .msg(
                19,
                Enc::new()
                    .str(1, "CFG_")
                    .msg(2, Enc::new().msg(1, Enc::new().str(1, "settings"))),
            )
            .msg(
                7,
                Enc::new().str(1, "POD_IP").str(2, "").msg(
                    3,
                    Enc::new().msg(1, Enc::new().str(1, "v1").str(2, "status.podIP")),
                ),
            )
            .msg(
                7,
                Enc::new().str(1, "PASSWORD").msg(
                    3,
                    Enc::new().msg(
                        4,
                        Enc::new()
                            .msg(1, Enc::new().str(1, "creds"))
                            .str(2, "password")
                            .bool(3, true),
                    ),
                ),
            )
            .msg(
                8,
                Enc::new()
                    .entry_msg(1, "memory", Enc::new().str(1, "128Mi"))
                    .entry_msg(2, "cpu", Enc::new().str(1, "100m")),
            )
            .msg(
                9,
                Enc::new()
                    .str(1, "config")
                    .bool(2, true)
                    .str(3, "/etc/app")
                    .str(4, ""),
            )
            .msg(
                10,
                Enc::new()
                    .msg(
                        1,
                        Enc::new().msg(
                            2,
                            Enc::new()
                                .str(1, "/healthz")
                                .msg(2, Enc::new().int(1, 1).str(3, "http"))
                                .str(4, "HTTP"),
                        ),
                    )
                    .int(2, 5)
                    .int(3, 1)
                    .int(4, 10)
                    .int(5, 1)
                    .int(6, 3),
            )
            .msg(
                12,
                Enc::new().msg(2, Enc::new().msg(4, Enc::new().int(1, 5))),
            )
            .str(13, "/dev/termination-log")
            .str(20, "File")
            .str(14, "IfNotPresent")
            .msg(
                15,
                Enc::new()
                    .msg(1, Enc::new().str(2, "ALL"))
                    .bool(7, false)
                    .msg(11, Enc::new().str(1, "RuntimeDefault")),
            )
            .bool(16, false)
            .bool(17, false)
            .bool(18, false);
        let debug = Enc::new()
            .msg(
                1,
                Enc::new()
                    .str(1, "debugger")
                    .str(2, "busybox")
                    .bool(16, true)
                    .bool(18, true),
            )
            .str(2, "app");
        let volumes = [
            Enc::new().str(1, "config").msg(
                2,
                Enc::new().msg(
                    19,
                    Enc::new()
                        .msg(1, Enc::new().str(1, "settings"))
                        .msg(2, Enc::new().str(1, "a").str(2, "a.conf"))
                        .int(3, 0o644),
                ),
            ),
            Enc::new().str(1, "kube-api-access").msg(
                2,
                Enc::new().msg(
                    26,
                    Enc::new()
                        .msg(
                            1,
                            Enc::new().msg(4, Enc::new().str(1, "").int(2, 3607).str(3, "token")),
                        )
                        .int(2, 420),
                ),
            ),
            Enc::new().str(1, "scratch").msg(
                2,
                Enc::new().msg(2, Enc::new().str(1, "").msg(2, Enc::new().str(1, "1Gi"))),
            ),
        ];
        let affinity = Enc::new().msg(
            1,
            Enc::new().msg(
                1,
                Enc::new().msg(
                    1,
                    Enc::new().msg(
                        1,
                        Enc::new()
                            .str(1, "kubernetes.io/os")
                            .str(2, "In")
                            .str(3, "linux"),
                    ),
                ),
            ),
        );
        let mut spec = Enc::new();
        for v in volumes {
            spec = spec.msg(1, v);
        }
        let spec = spec
            .msg(2, container)
            .str(3, "Always")
            .int(4, 30)
            .str(6, "ClusterFirst")
            .entry(7, "disk", "ssd")
            .str(8, "default")
            .str(9, "default")
            .str(10, "")
            .bool(11, false)
            .bool(12, false)
            .bool(13, false)
            .msg(
                14,
                Enc::new()
                    .int(2, 1000)
                    .bool(3, true)
                    .int(4, 1)
                    .int(4, 2)
                    .msg(4, Enc(vec![3, 4])) // a packed run appended to the list
                    .int(5, 2000),
            )
            .str(16, "")
            .str(17, "")
            .msg(18, affinity)
            .str(19, "default-scheduler")
            .msg(
                22,
                Enc::new()
                    .str(1, "node.kubernetes.io/not-ready")
                    .str(2, "Exists")
                    .str(3, "")
                    .str(4, "NoExecute")
                    .int(5, 300),
            )
            .str(24, "")
            .int(25, 0)
            .bool(30, true)
            .str(31, "PreemptLowerPriority")
            .msg(34, debug);
        let status = Enc::new().str(1, "Pending").str(99, "ignored");
        let raw = Enc::new()
            .msg(1, meta("web", Enc::new()))
            .msg(2, spec)
            .msg(3, status);
        let v = ok(&body("v1", "Pod", raw));
        assert_eq!(
            v,
            json!({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},"spec":{
                "volumes":[
                    {"name":"config","configMap":{"name":"settings",
                        "items":[{"key":"a","path":"a.conf"}],"defaultMode":420}},
                    {"name":"kube-api-access","projected":{"sources":[
                        {"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}}],
                        "defaultMode":420}},
                    {"name":"scratch","emptyDir":{"sizeLimit":"1Gi"}}],
                "containers":[{
                    "name":"app","image":"nginx:1.27","command":["nginx"],
                    "args":["-g","daemon off;"],
                    "ports":[{"name":"http","containerPort":80,"protocol":"TCP"}],
                    "envFrom":[{"prefix":"CFG_","configMapRef":{"name":"settings"}}],
                    "env":[
                        {"name":"POD_IP","valueFrom":{"fieldRef":{"apiVersion":"v1",
                            "fieldPath":"status.podIP"}}},
                        {"name":"PASSWORD","valueFrom":{"secretKeyRef":{"name":"creds",
                            "key":"password","optional":true}}}],
                    "resources":{"limits":{"memory":"128Mi"},"requests":{"cpu":"100m"}},
                    "volumeMounts":[{"name":"config","readOnly":true,"mountPath":"/etc/app"}],
                    "livenessProbe":{"httpGet":{"path":"/healthz","port":"http",
                        "scheme":"HTTP"},"initialDelaySeconds":5,"timeoutSeconds":1,
                        "periodSeconds":10,"successThreshold":1,"failureThreshold":3},
                    "lifecycle":{"preStop":{"sleep":{"seconds":5}}},
                    "terminationMessagePath":"/dev/termination-log",
                    "terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent",
                    "securityContext":{"capabilities":{"drop":["ALL"]},
                        "allowPrivilegeEscalation":false,
                        "seccompProfile":{"type":"RuntimeDefault"}}}],
                "ephemeralContainers":[{"name":"debugger","image":"busybox","stdin":true,
                    "tty":true,"targetContainerName":"app"}],
                "restartPolicy":"Always","terminationGracePeriodSeconds":30,
                "dnsPolicy":"ClusterFirst","nodeSelector":{"disk":"ssd"},
                "serviceAccountName":"default","serviceAccount":"default",
                "securityContext":{"runAsUser":1000,"runAsNonRoot":true,
                    "supplementalGroups":[1,2,3,4],"fsGroup":2000},
                "affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms":[{"matchExpressions":[
                        {"key":"kubernetes.io/os","operator":"In","values":["linux"]}]}]}}},
                "schedulerName":"default-scheduler",
                "tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists",
                    "effect":"NoExecute","tolerationSeconds":300}],
                "priority":0,"enableServiceLinks":true,
                "preemptionPolicy":"PreemptLowerPriority"}})
        );
    }

    #[test]
    fn zero_values_go_always_prints_are_kept() {
        // Fields without `omitempty` keep their zero values; absent ones stay absent.
        let raw = Enc::new().msg(
            1,
            Enc::new().msg(13, Enc::new().str(5, "").str(1, "").str(3, "").str(4, "")),
        );
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw))["metadata"],
            json!({"ownerReferences":[{"apiVersion":"","kind":"","name":"","uid":""}]})
        );
        let raw = Enc::new().msg(1, Enc::new().msg(13, Enc::new().str(1, "K")));
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw))["metadata"],
            json!({"ownerReferences":[{"kind":"K"}]})
        );
        let raw = Enc::new().msg(2, Enc::new().msg(1, Enc::new().str(1, "p").int(3, 0)));
        assert_eq!(
            ok(&body("v1", "Service", raw))["spec"],
            json!({"ports":[{"name":"p","port":0}]})
        );
        let probe = Enc::new().msg(1, Enc::new().msg(2, Enc::new().msg(2, Enc::new())));
        let term = Enc::new().int(1, 0).msg(2, Enc::new());
        let affinity = Enc::new().msg(1, Enc::new().msg(2, term));
        let raw = Enc::new().msg(
            2,
            Enc::new()
                .msg(2, Enc::new().str(1, "c").msg(11, probe))
                .msg(18, affinity),
        );
        let spec = &ok(&body("v1", "Pod", raw))["spec"];
        assert_eq!(
            spec["containers"][0]["readinessProbe"],
            json!({"httpGet":{"port":0}})
        );
        assert_eq!(
            spec["affinity"],
            json!({"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[
                {"weight":0,"preference":{}}]}})
        );
    }

    #[test]
    fn value_budget() {
        // A packed list spends one byte per value, past the one-per-two-bytes allowance.
        let groups = vec![1u8; 1000];
        let spec = Enc::new().msg(14, Enc::new().bytes(4, &groups));
        let err = decode(&body("v1", "Pod", Enc::new().msg(2, spec))).unwrap_err();
        assert!(err.to_string().contains("more values"), "{err}");
        assert!(!err.is_unsupported());
        // Two-byte elements fit, however many.
        let mut meta = Enc::new();
        for _ in 0..10_000 {
            meta = meta.msg(13, Enc::new());
        }
        let v = ok(&body("v1", "ConfigMap", Enc::new().msg(1, meta)));
        assert_eq!(
            v["metadata"]["ownerReferences"].as_array().unwrap().len(),
            10_000
        );
    }

    #[test]
    fn unsupported_kinds_and_fields() {
        for (api, kind) in [
            ("apps/v1", "Deployment"),
            ("v2", "ConfigMap"),
            ("v1", "Eviction"),
        ] {
            let err = decode(&body(api, kind, Enc::new())).unwrap_err();
            assert!(err.is_unsupported(), "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("send JSON for {kind} ({api})")),
                "{msg}"
            );
            assert!(msg.contains("ConfigMap, Secret"), "{msg}");
        }
        let volume = Enc::new()
            .str(1, "data")
            .msg(2, Enc::new().msg(3, Enc::new().str(1, "pd")));
        let raw = Enc::new().msg(2, Enc::new().msg(1, Enc::new()).msg(1, volume));
        let err = decode(&body("v1", "Pod", raw)).unwrap_err();
        assert!(err.is_unsupported());
        assert_eq!(
            err,
            ProtobufError::UnsupportedField {
                path: "Pod.spec.volumes[1].gcePersistentDisk".into()
            }
        );
        let long = "K".repeat(5000);
        match decode(&body("v1", &long, Enc::new())) {
            Err(ProtobufError::UnsupportedKind { kind, .. }) => assert!(kind.len() < 200),
            other => panic!("{other:?}"),
        }
        let mut gzipped = Enc::new()
            .msg(1, Enc::new().str(1, "v1").str(2, "ConfigMap"))
            .str(3, "gzip");
        gzipped.0.splice(0..0, MAGIC.iter().copied());
        let err = decode(&gzipped.0).unwrap_err();
        assert_eq!(err, ProtobufError::UnsupportedEncoding("gzip".into()));
        assert!(err.is_unsupported());
    }

    #[test]
    fn malformed_bodies() {
        let good = body("v1", "ConfigMap", Enc::new().msg(1, meta("x", Enc::new())));
        assert_eq!(
            decode(b"{\"kind\":\"ConfigMap\"}"),
            Err(ProtobufError::NoMagic)
        );
        assert_eq!(decode(b""), Err(ProtobufError::NoMagic));
        // Every proper prefix fails cleanly (or, cut at a field boundary, decodes).
        for end in 0..good.len() {
            if let Err(e) = decode(&good[..end]) {
                assert!(!e.is_unsupported() || end < 20, "{e}");
            }
        }
        let cases: Vec<(Enc, &str, &str)> = vec![
            (
                Enc::new().msg(1, Enc::new().int(1, 7)),
                "ConfigMap.metadata.name",
                "wrong wire type 0",
            ),
            (
                Enc::new().msg(1, Enc(vec![0x0a, 0x05, b'a'])),
                "ConfigMap.metadata.name",
                "past the end",
            ),
            (
                Enc::new().msg(1, Enc(vec![0x00, 0x00])),
                "ConfigMap.metadata",
                "invalid field number 0",
            ),
            (
                Enc::new().msg(1, Enc(vec![0x7b])),
                "ConfigMap.metadata",
                "groups",
            ),
            (
                Enc::new().msg(1, Enc::new().key(100, 6)),
                "ConfigMap.metadata",
                "invalid wire type 6",
            ),
            (
                Enc::new().msg(1, Enc([vec![0x38], vec![0xff; 10], vec![0x01]].concat())),
                "ConfigMap.metadata.generation",
                "longer than 10 bytes",
            ),
            (
                Enc::new().msg(1, Enc(vec![0x38, 0xff])),
                "ConfigMap.metadata.generation",
                "truncated varint",
            ),
            (
                Enc::new().msg(
                    1,
                    Enc::new().msg(17, Enc::new().msg(7, Enc::new().bytes(1, b"{nope"))),
                ),
                "ConfigMap.metadata.managedFields[0].fieldsV1",
                "not valid JSON",
            ),
            (
                Enc::new().msg(1, Enc::new().msg(8, Enc::new().int(1, 253_402_300_800))),
                "ConfigMap.metadata.creationTimestamp",
                "0000-9999",
            ),
        ];
        for (raw, at, why) in cases {
            match decode(&body("v1", "ConfigMap", raw)) {
                Err(ProtobufError::Malformed { path, reason }) => {
                    assert_eq!(path, at, "{reason}");
                    assert!(reason.contains(why), "{reason}");
                }
                other => panic!("expected a malformed-body error at {at}, got {other:?}"),
            }
        }
        let port = Enc::new().msg(4, Enc::new().int(1, 2));
        let raw = Enc::new().msg(2, Enc::new().msg(1, port));
        match decode(&body("v1", "Service", raw)) {
            Err(ProtobufError::Malformed { path, reason }) => {
                assert_eq!(path, "Service.spec.ports[0].targetPort");
                assert!(reason.contains("IntOrString"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // No kind in the envelope.
        let err = decode(&body("v1", "", Enc::new())).unwrap_err();
        assert!(!err.is_unsupported());
        assert!(err.to_string().contains("typeMeta.kind"), "{err}");
    }

    #[test]
    fn wire_details() {
        // Unknown fields of every wire type are skipped; a message seen twice merges;
        // a later scalar wins, even when it is empty.
        let raw = Enc::new()
            .msg(
                1,
                Enc::new()
                    .str(1, "first")
                    .str(3, "ns")
                    .fixed32(100)
                    .fixed64(101)
                    .varint(102, u64::MAX)
                    .str(103, "?"),
            )
            .msg(1, Enc::new().str(1, "second").str(3, ""))
            .msg(1, Enc::new().str(2, "gen-"))
            .str(9, "unknown to ConfigMap");
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw)),
            json!({"apiVersion":"v1","kind":"ConfigMap",
                   "metadata":{"name":"second","generateName":"gen-"}})
        );
        // int32 truncates a 64-bit varint as Go does; negative numbers survive.
        let port = Enc::new()
            .int(3, -1)
            .varint(5, (1 << 32) + 7)
            .msg(4, Enc::new().int(2, -5));
        let raw = Enc::new().msg(2, Enc::new().msg(1, port));
        assert_eq!(
            ok(&body("v1", "Service", raw))["spec"]["ports"][0],
            json!({"port":-1,"targetPort":-5,"nodePort":7})
        );
        let raw = Enc::new().msg(1, Enc::new().int(10, -30).int(7, i64::MIN));
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw))["metadata"],
            json!({"generation":i64::MIN,"deletionGracePeriodSeconds":-30})
        );
        // Strings that are not UTF-8 print U+FFFD, as Go's JSON does.
        let raw = Enc::new().msg(1, Enc::new().bytes(1, b"a\xffb"));
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw))["metadata"]["name"],
            json!("a\u{fffd}b")
        );
        // A map entry without a value holds the zero value; the last of a repeated key wins.
        let raw = Enc::new()
            .msg(2, Enc::new().str(1, "k"))
            .entry(2, "dup", "1")
            .entry(2, "dup", "2");
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw))["data"],
            json!({"dup":"2","k":""})
        );
        // Envelope fields it does not know are skipped, and the magic alone is no body.
        let mut extra = body("v1", "ConfigMap", Enc::new());
        extra.extend(Enc::new().fixed64(9).varint(10, 1).0);
        assert_eq!(ok(&extra), json!({"apiVersion":"v1","kind":"ConfigMap"}));
        assert!(decode(MAGIC).is_err());
    }

    #[test]
    fn times() {
        assert_eq!(
            format_time(1_767_323_045, 0),
            Ok(Some("2026-01-02T03:04:05Z".into()))
        );
        assert_eq!(format_time(0, 0), Ok(Some("1970-01-01T00:00:00Z".into())));
        // Nanoseconds are normalized into the seconds, then dropped.
        assert_eq!(format_time(10, -1), Ok(Some("1970-01-01T00:00:09Z".into())));
        assert_eq!(
            format_time(10, 1_999_999_999),
            Ok(Some("1970-01-01T00:00:11Z".into()))
        );
        assert_eq!(format_time(GO_ZERO_TIME, 0), Ok(None));
        assert_eq!(
            format_time(GO_ZERO_TIME, 1),
            Ok(Some("0001-01-01T00:00:00Z".into()))
        );
        assert_eq!(
            format_time(YEAR_0, 0),
            Ok(Some("0000-01-01T00:00:00Z".into()))
        );
        assert_eq!(
            format_time(YEAR_9999_END, 0),
            Ok(Some("9999-12-31T23:59:59Z".into()))
        );
        assert!(format_time(YEAR_0 - 1, 0).is_err());
        assert!(format_time(i64::MAX, i32::MAX).is_err());
        assert!(format_time(i64::MIN, i32::MIN).is_err());
        // Against jiff, over its whole range (years -9999..=9999, here clipped to 0..=9999).
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let span = (YEAR_9999_END - YEAR_0 + 1) as u64;
            let s = YEAR_0 + (state % span) as i64;
            let want = jiff::Timestamp::from_second(s).unwrap().to_string();
            assert_eq!(format_time(s, 0), Ok(Some(want)), "{s}");
        }
        // A Time on the wire: empty is the zero time (dropped); otherwise seconds.
        let raw = Enc::new().msg(1, Enc::new().msg(9, Enc::new()));
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw)),
            json!({"apiVersion":"v1","kind":"ConfigMap"})
        );
        let raw = Enc::new().msg(1, Enc::new().msg(9, Enc::new().int(2, 5)));
        assert_eq!(
            ok(&body("v1", "ConfigMap", raw))["metadata"],
            json!({"deletionTimestamp":"1970-01-01T00:00:00Z"})
        );
    }

    /// Valid bodies of each kind, for the fuzzing below.
    fn samples() -> Vec<Vec<u8>> {
        let kubectl = hex(
            "6b 38 73 00 0a 0f 0a 02 76 31 12 09 43 6f 6e 66 69 67 4d 61 70 12 1e 0a 14 0a 04 \
             66 6f 6f 32 12 00 1a 00 22 00 2a 00 32 00 38 00 42 00 12 06 0a 01 61 12 01 62 1a \
             00 22 00",
        );
        let port = Enc::new()
            .str(1, "p")
            .int(3, 80)
            .msg(4, Enc::new().int(1, 1).str(3, "web"));
        let meta = meta(
            "x",
            Enc::new()
                .msg(9, Enc::new().int(1, 5))
                .entry(11, "a", "b")
                .msg(13, Enc::new().str(1, "K").bool(6, true))
                .msg(17, Enc::new().msg(7, Enc::new().bytes(1, b"{\"a\":[1]}"))),
        );
        let container = Enc::new()
            .str(1, "c")
            .msg(8, Enc::new().entry_msg(1, "cpu", Enc::new().str(1, "1")))
            .msg(
                10,
                Enc::new().msg(
                    1,
                    Enc::new().msg(3, Enc::new().msg(1, Enc::new().int(2, 8))),
                ),
            );
        vec![
            kubectl,
            body(
                "v1",
                "Secret",
                Enc::new().msg(1, meta.clone()).entry(2, "k", "v"),
            ),
            body(
                "v1",
                "Service",
                Enc::new()
                    .msg(1, meta.clone())
                    .msg(2, Enc::new().msg(1, port)),
            ),
            body(
                "policy/v1",
                "Eviction",
                Enc::new()
                    .msg(1, meta.clone())
                    .msg(2, Enc::new().int(1, 0).str(5, "All")),
            ),
            body(
                "v1",
                "Pod",
                Enc::new().msg(1, meta).msg(
                    2,
                    Enc::new().msg(2, container).msg(14, Enc::new().int(4, 7)),
                ),
            ),
        ]
    }

    #[test]
    fn samples_decode() {
        for sample in samples() {
            ok(&sample);
        }
    }

    #[test]
    fn truncations_and_bit_flips_never_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for sample in samples() {
            for end in 0..=sample.len() {
                let _ = decode(&sample[..end]);
            }
            for _ in 0..2_000 {
                let mut mutated = sample.clone();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % mutated.len();
                    mutated[i] = next() as u8;
                }
                let _ = decode(&mutated);
            }
        }
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                let _ = decode(&bytes);
                let with_magic = [MAGIC.as_slice(), &bytes].concat();
                let _ = decode(&with_magic);
            }

            #[test]
            fn arbitrary_objects_never_panic(
                kind in 0usize..9,
                raw in proptest::collection::vec(any::<u8>(), 0..512),
            ) {
                let (api, kind) = [
                    ("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"),
                    ("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "Pod"),
                    ("policy/v1", "Eviction"), ("v1", "DeleteOptions"),
                    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
                ][kind];
                let _ = decode(&body(api, kind, Enc(raw)));
            }

            #[test]
            fn spliced_samples_never_panic(
                which in 0usize..5,
                at in any::<prop::sample::Index>(),
                insert in proptest::collection::vec(any::<u8>(), 0..16),
                cut in 0usize..8,
            ) {
                let mut sample = samples().swap_remove(which);
                let i = at.index(sample.len() + 1);
                sample.splice(i..i, insert);
                let keep = sample.len().saturating_sub(cut);
                sample.truncate(keep);
                let _ = decode(&sample);
            }
        }
    }
}
