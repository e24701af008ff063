//! Pod-template hashing: the `controller-revision-hash` label and revision names
//! (`<ds name>-<hash>`).
//!
//! Kubernetes' `controller.ComputeHash` feeds FNV-1a (32 bit) with a `spew` dump of the Go
//! `PodTemplateSpec`, then with the collision count, and prints the sum through
//! `rand.SafeEncodeString`. The Go dump format cannot be reproduced outside Go, so we hash
//! our own canonical serialisation instead (compact JSON, object keys sorted). Everything
//! after that is the same: the same hash function, the same 8 collision-count bytes, the
//! same encoding. Hashes therefore differ from a real cluster's for the same template, but
//! only their equality matters to clients.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// FNV-1a, 32 bit (Go's `hash/fnv.New32a`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv1a32(u32);

impl Fnv1a32 {
    const OFFSET_BASIS: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;

    pub fn new() -> Self {
        Fnv1a32(Self::OFFSET_BASIS)
    }

    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u32::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    pub fn sum32(&self) -> u32 {
        self.0
    }
}

impl Default for Fnv1a32 {
    fn default() -> Self {
        Self::new()
    }
}

/// The characters Kubernetes uses for generated names and hashes (no vowels, no
/// look-alikes), `rand.SafeEncodeString`'s alphabet.
const SAFE_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

/// `rand.SafeEncodeString`: each byte of `s` replaced by `SAFE_ALPHABET[byte % 27]`. For
/// the decimal digits of a hash this maps `0123456789` to `456789bcdf`.
pub fn safe_encode_string(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()]))
        .collect()
}

/// Compact JSON with every object's keys in sorted order, so equal values always give
/// equal text whatever order their maps were built in.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // A string's Display is its JSON text, escapes included.
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        leaf => out.push_str(&leaf.to_string()),
    }
}

/// `controller.ComputeHash(template, collisionCount)`: 1 to 10 characters of `[4-9bcdf]`.
///
/// The template is hashed through [`canonical_json`] (see the module docs for why this is
/// not Go's byte stream). When `collision_count` is set, its value as a little-endian
/// `u32` padded to 8 bytes is fed in after the template, exactly as Kubernetes does, so
/// bumping `status.collisionCount` yields a new name after a hash collision.
pub fn compute_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // k8s-openapi types only have string-keyed maps, so turning one into a JSON value
    // cannot fail; should it ever, the error text still hashes deterministically.
    let value = serde_json::to_value(template)
        .unwrap_or_else(|e| Value::String(format!("unserializable pod template: {e}")));
    let mut hasher = Fnv1a32::new();
    hasher.write(canonical_json(&value).as_bytes());
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        // Go: binary.LittleEndian.PutUint32(make([]byte, 8), uint32(count)).
        bytes[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hasher.write(&bytes);
    }
    safe_encode_string(&hasher.sum32().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::collections::BTreeMap;

    fn template(image: &str, labels: &[(&str, &str)]) -> PodTemplateSpec {
        let mut map = BTreeMap::new();
        for (k, v) in labels {
            map.insert(k.to_string(), v.to_string());
        }
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(map),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "fluentd".to_string(),
                    image: Some(image.to_string()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    fn fnv(s: &str) -> u32 {
        let mut h = Fnv1a32::new();
        h.write(s.as_bytes());
        h.sum32()
    }

    #[test]
    fn fnv1a_reference_vectors() {
        assert_eq!(fnv(""), 0x811c_9dc5);
        assert_eq!(fnv("a"), 0xe40c_292c);
        assert_eq!(fnv("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_of_digits() {
        assert_eq!(safe_encode_string("0123456789"), "456789bcdf");
        assert_eq!(safe_encode_string(""), "");
        // Any byte works: 'a' is 97, 97 % 27 = 16, the 17th letter of the alphabet.
        assert_eq!(safe_encode_string("a"), "v");
    }

    #[test]
    fn canonical_json_sorts_keys_everywhere() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 1, "y": "\"q\""}], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[1,{"y":"\"q\"","z":1}]},"b":1}"#
        );
    }

    #[test]
    fn hash_is_deterministic_and_well_formed() {
        let t = template("fluentd:v1", &[("name", "fluentd")]);
        let h = compute_template_hash(&t, None);
        assert_eq!(h, compute_template_hash(&t.clone(), None));
        assert!((1..=10).contains(&h.len()), "{h}");
        assert!(h.chars().all(|c| "456789bcdf".contains(c)), "{h}");
        for count in [0, 1, 7, i32::MAX, -1] {
            let h = compute_template_hash(&t, Some(count));
            assert!(h.chars().all(|c| "456789bcdf".contains(c)), "{h}");
        }
    }

    #[test]
    fn hash_changes_with_the_template() {
        let a = compute_template_hash(&template("fluentd:v1", &[("name", "fluentd")]), None);
        let b = compute_template_hash(&template("fluentd:v2", &[("name", "fluentd")]), None);
        let c = compute_template_hash(&template("fluentd:v1", &[("name", "other")]), None);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
    }

    #[test]
    fn hash_changes_with_the_collision_count() {
        let t = template("fluentd:v1", &[("name", "fluentd")]);
        let none = compute_template_hash(&t, None);
        let zero = compute_template_hash(&t, Some(0));
        let one = compute_template_hash(&t, Some(1));
        let two = compute_template_hash(&t, Some(2));
        assert_ne!(none, zero);
        assert_ne!(zero, one);
        assert_ne!(one, two);
    }

    #[test]
    fn collision_count_bytes_follow_kubernetes() {
        let t = template("x", &[("a", "b")]);
        let mut h = Fnv1a32::new();
        h.write(canonical_json(&serde_json::to_value(&t).expect("serializable")).as_bytes());
        h.write(&[3, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            compute_template_hash(&t, Some(3)),
            safe_encode_string(&h.sum32().to_string())
        );
    }

    #[test]
    fn hash_ignores_map_insertion_order() {
        let forward = template("img", &[("a", "1"), ("b", "2"), ("c", "3")]);
        let backward = template("img", &[("c", "3"), ("b", "2"), ("a", "1")]);
        assert_eq!(
            compute_template_hash(&forward, None),
            compute_template_hash(&backward, None)
        );
        // Also through an order-preserving JSON round trip with shuffled keys.
        let shuffled: PodTemplateSpec = serde_json::from_str(
            r#"{"spec":{"containers":[{"image":"img","name":"fluentd"}]},
                "metadata":{"labels":{"c":"3","a":"1","b":"2"}}}"#,
        )
        .expect("valid template");
        assert_eq!(
            compute_template_hash(&shuffled, None),
            compute_template_hash(&forward, None)
        );
    }

    #[test]
    fn hash_is_pinned() {
        // Hashes name stored ControllerRevisions; a change here renames every revision.
        let t = template("fluentd:v1", &[("name", "fluentd")]);
        assert_eq!(compute_template_hash(&t, None), PINNED);
    }

    // Cross-checked with an independent script: FNV-1a of
    // {"metadata":{"labels":{"name":"fluentd"}},"spec":{"containers":[{"image":"fluentd:v1","name":"fluentd"}]}}
    const PINNED: &str = "85dbd65958";
}
