//! scheduling.k8s.io/v1 PriorityClasses and the Priority admission of pods, as
//! Kubernetes has them (`pkg/apis/scheduling/validation`, `pkg/apis/scheduling/v1`,
//! `plugin/pkg/admission/priority`).
//!
//! A pod names a class (`spec.priorityClassName`) and gets its value as
//! `spec.priority` and its `preemptionPolicy`; a pod that names none gets the
//! global default class's, or priority 0 and `PreemptLowerPriority`. The two system
//! classes exist in every cluster and cannot be deleted.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

use crate::field::{FieldError, quote};
use crate::validation::{NameRule, validate_object_meta, validate_object_meta_update};

type Errs = Vec<FieldError>;

/// The highest value a class not of the system may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// The value of `system-cluster-critical` (`system-node-critical` is 1000 more).
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
pub const SYSTEM_NODE_CRITICAL: &str = "system-node-critical";
pub const SYSTEM_CLUSTER_CRITICAL: &str = "system-cluster-critical";
/// Names with this prefix are the system's.
pub const SYSTEM_PREFIX: &str = "system-";
/// What a pod's priority is when it names no class and no class is the global default.
pub const DEFAULT_PRIORITY: i32 = 0;
pub const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";
const POLICIES: &[&str] = &[PREEMPT_LOWER_PRIORITY, "Never"];

/// The classes Kubernetes creates at start and never lets go.
pub fn system_priority_classes() -> Vec<PriorityClass> {
    let class = |name: &str, value: i32, description: &str| PriorityClass {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        value,
        description: Some(description.to_string()),
        preemption_policy: Some(PREEMPT_LOWER_PRIORITY.to_string()),
        global_default: None,
    };
    vec![
        class(
            SYSTEM_NODE_CRITICAL,
            SYSTEM_CRITICAL_PRIORITY + 1000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        class(
            SYSTEM_CLUSTER_CRITICAL,
            SYSTEM_CRITICAL_PRIORITY,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ]
}

pub fn is_system_class(name: &str) -> bool {
    name == SYSTEM_NODE_CRITICAL || name == SYSTEM_CLUSTER_CRITICAL
}

/// `IsKnownSystemPriorityClass`: why a `system-` class is not one of the system's.
fn known_system_class(name: &str, value: i32, global_default: bool) -> Result<(), String> {
    let known = system_priority_classes();
    let Some(spc) = known
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
    else {
        return Err(format!("{name} is not a known system priority class"));
    };
    if spc.value != value {
        return Err(format!(
            "value of {name} PriorityClass must be {}",
            spc.value
        ));
    }
    if spc.global_default.unwrap_or(false) != global_default {
        return Err(format!(
            "globalDefault of {name} PriorityClass must be {}",
            spc.global_default.unwrap_or(false)
        ));
    }
    Ok(())
}

/// `SetDefaults_PriorityClass`: classes preempt lower priorities unless told otherwise.
pub fn default_priority_class(pc: &mut PriorityClass) {
    if pc.preemption_policy.is_none() {
        pc.preemption_policy = Some(PREEMPT_LOWER_PRIORITY.to_string());
    }
}

fn preemption_policy(v: &Option<String>) -> Errs {
    match v.as_deref() {
        None => vec![],
        Some("") => vec![FieldError::required("preemptionPolicy", "")],
        Some(p) if POLICIES.contains(&p) => vec![],
        Some(p) => vec![FieldError::not_supported("preemptionPolicy", p, POLICIES)],
    }
}

pub fn validate_priority_class(pc: &PriorityClass) -> Errs {
    let mut errs =
        validate_object_meta(&pc.metadata, false, NameRule::Dns1123Subdomain, "metadata");
    let name = pc.metadata.name.as_deref().unwrap_or("");
    if name.starts_with(SYSTEM_PREFIX) {
        if let Err(e) = known_system_class(name, pc.value, pc.global_default.unwrap_or(false)) {
            errs.push(FieldError::forbidden(
                "metadata.name",
                &format!(
                    "priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {e}"
                ),
            ));
        }
    } else if pc.value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            &format!(
                "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
            ),
        ));
    }
    errs.extend(preemption_policy(&pc.preemption_policy));
    errs
}

/// Updates may change neither the value nor the preemption policy.
pub fn validate_priority_class_update(new: &PriorityClass, old: &PriorityClass) -> Errs {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, "metadata");
    if new.value != old.value {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    if new.preemption_policy != old.preemption_policy {
        let shown = new
            .preemption_policy
            .as_deref()
            .map_or("null".to_string(), quote);
        errs.push(FieldError::invalid_rendered(
            "preemptionPolicy",
            shown,
            "field is immutable",
        ));
    }
    errs
}

/// What the Priority admission reads of a stored class.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Class {
    #[serde(default)]
    pub metadata: ClassMeta,
    #[serde(default)]
    pub value: i32,
    #[serde(default)]
    pub preemption_policy: Option<String>,
    #[serde(default)]
    pub global_default: Option<bool>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ClassMeta {
    #[serde(default)]
    pub name: String,
}

impl Class {
    pub fn is_global_default(&self) -> bool {
        self.global_default.unwrap_or(false)
    }
}

/// Of several global defaults (only a race makes more than one), the lowest value wins.
pub fn pick_global_default(classes: impl IntoIterator<Item = Class>) -> Option<Class> {
    classes
        .into_iter()
        .filter(Class::is_global_default)
        .min_by_key(|c| c.value)
}

/// The class a pod names, or `None` when it names none.
pub fn named_class(spec: &PodSpec) -> Option<&str> {
    spec.priority_class_name
        .as_deref()
        .filter(|n| !n.is_empty())
}

/// The Priority admission of a new pod. `named` is the class the pod names as found
/// (`Ok(None)`: no such class); `global_default` is asked only when it names none. The
/// error is the reason of the 403 (`pods "x" is forbidden: REASON`).
pub fn admit_pod(
    spec: &mut PodSpec,
    named: Option<Class>,
    global_default: impl FnOnce() -> Option<Class>,
) -> Result<(), String> {
    let (priority, policy) = match named_class(spec) {
        Some(name) => {
            let Some(class) = named else {
                return Err(format!("no PriorityClass with name {name} was found"));
            };
            (class.value, class.preemption_policy)
        }
        None => match global_default() {
            Some(class) => {
                spec.priority_class_name = Some(class.metadata.name);
                (class.value, class.preemption_policy)
            }
            None => (DEFAULT_PRIORITY, Some(PREEMPT_LOWER_PRIORITY.to_string())),
        },
    };
    if let Some(given) = spec.priority
        && given != priority
    {
        return Err(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        ));
    }
    spec.priority = Some(priority);
    if let Some(policy) = policy {
        if let Some(given) = spec.preemption_policy.as_deref()
            && given != policy
        {
            return Err(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            ));
        }
        spec.preemption_policy = Some(policy);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(FieldError::message).collect()
    }

    fn pc(name: &str, value: i32) -> PriorityClass {
        PriorityClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            value,
            ..PriorityClass::default()
        }
    }

    fn class(name: &str, value: i32, policy: &str, global: bool) -> Class {
        Class {
            metadata: ClassMeta { name: name.into() },
            value,
            preemption_policy: Some(policy.into()),
            global_default: Some(global),
        }
    }

    #[test]
    fn system_classes_are_valid_and_reserved() {
        for c in system_priority_classes() {
            assert!(
                validate_priority_class(&c).is_empty(),
                "{:?}",
                c.metadata.name
            );
        }
        assert_eq!(system_priority_classes()[0].value, 2_000_001_000);
        assert_eq!(
            msgs(&validate_priority_class(&pc("system-mine", 10))),
            [
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
            ]
        );
        assert_eq!(
            msgs(&validate_priority_class(&pc("system-node-critical", 10))),
            [
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000"
            ]
        );
    }

    #[test]
    fn user_values_and_policies() {
        assert!(validate_priority_class(&pc("high", 1_000_000_000)).is_empty());
        assert!(validate_priority_class(&pc("low", -5)).is_empty());
        assert_eq!(
            msgs(&validate_priority_class(&pc("too-high", 1_000_000_001))),
            ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
        );
        let mut p = pc("p", 1);
        p.preemption_policy = Some("Sometimes".into());
        assert_eq!(
            msgs(&validate_priority_class(&p)),
            [
                "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\""
            ]
        );
        let mut p = pc("p", 1);
        default_priority_class(&mut p);
        assert_eq!(p.preemption_policy.as_deref(), Some("PreemptLowerPriority"));
    }

    #[test]
    fn value_and_policy_are_immutable() {
        let mut old = pc("p", 1);
        default_priority_class(&mut old);
        let mut new = old.clone();
        new.value = 2;
        new.preemption_policy = Some("Never".into());
        new.description = Some("changed".into());
        assert_eq!(
            msgs(&validate_priority_class_update(&new, &old)),
            [
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"Never\": field is immutable",
            ]
        );
        let mut ok = old.clone();
        ok.description = Some("changed".into());
        assert!(validate_priority_class_update(&ok, &old).is_empty());
    }

    #[test]
    fn pods_get_their_class_value() {
        let mut spec = PodSpec {
            priority_class_name: Some("system-node-critical".into()),
            ..PodSpec::default()
        };
        let found = class(
            "system-node-critical",
            2_000_001_000,
            "PreemptLowerPriority",
            false,
        );
        admit_pod(&mut spec, Some(found.clone()), || unreachable!("named")).expect("admitted");
        assert_eq!(spec.priority, Some(2_000_001_000));
        assert_eq!(
            spec.preemption_policy.as_deref(),
            Some("PreemptLowerPriority")
        );

        // Setting the same value is fine; another one is refused.
        let mut same = spec.clone();
        assert!(admit_pod(&mut same, Some(found.clone()), || None).is_ok());
        let mut other = spec.clone();
        other.priority = Some(7);
        assert_eq!(
            admit_pod(&mut other, Some(found.clone()), || None),
            Err("the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 2000001000 from the given PriorityClass name".into())
        );
        let mut other = spec.clone();
        other.preemption_policy = Some("Never".into());
        assert_eq!(
            admit_pod(&mut other, Some(found), || None),
            Err("the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name".into())
        );
    }

    #[test]
    fn unknown_classes_are_refused() {
        let mut spec = PodSpec {
            priority_class_name: Some("nope".into()),
            ..PodSpec::default()
        };
        assert_eq!(
            admit_pod(&mut spec, None, || None),
            Err("no PriorityClass with name nope was found".into())
        );
    }

    #[test]
    fn pods_without_a_class_get_the_global_default_or_zero() {
        let mut spec = PodSpec::default();
        admit_pod(&mut spec, None, || None).expect("admitted");
        assert_eq!(spec.priority, Some(0));
        assert_eq!(
            spec.preemption_policy.as_deref(),
            Some("PreemptLowerPriority")
        );
        assert_eq!(spec.priority_class_name, None);

        let mut spec = PodSpec::default();
        let default = pick_global_default([
            class("a", 5, "Never", true),
            class("b", 3, "Never", true),
            class("c", 1, "Never", false),
        ]);
        admit_pod(&mut spec, None, || default).expect("admitted");
        assert_eq!(spec.priority, Some(3));
        assert_eq!(spec.priority_class_name.as_deref(), Some("b"));
        assert_eq!(spec.preemption_policy.as_deref(), Some("Never"));

        let mut spec = PodSpec {
            priority: Some(1),
            ..PodSpec::default()
        };
        assert!(admit_pod(&mut spec, None, || None).is_err());
    }

    #[test]
    fn classes_decode_from_stored_json() {
        let c: Class = serde_json::from_str(
            r#"{"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name":"x","labels":{"a":"b"}},"value":10,"globalDefault":true,"preemptionPolicy":"Never","description":"d"}"#,
        )
        .expect("decodes");
        assert_eq!(c, class("x", 10, "Never", true));
    }
}
