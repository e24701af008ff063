//! Differential test: strategic merge patch against outputs recorded from stock kubectl
//! (`tests/smp/record.py` runs `kubectl patch --local --type strategic`; this test only
//! reads the recorded files).
//!
//! kubectl prints Go's raw merge result. kube-apiserver then decodes it into the typed
//! object, which drops `null` fields and unknown keys such as leftover directives; our
//! implementation returns that decoded view, so the expected value is normalised the same
//! way before comparing. Cases with a `divergence` note carry everynode's own result.

use everynode_api::smp::strategic_merge_patch;
use serde_json::Value;
use std::path::PathBuf;

fn is_directive_key(k: &str) -> bool {
    k == "$patch"
        || k == "$retainKeys"
        || k.starts_with("$setElementOrder")
        || k.starts_with("$deleteFromPrimitiveList")
}

fn typed_view(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, v| !v.is_null() && !is_directive_key(k));
            m.values_mut().for_each(typed_view);
        }
        Value::Array(a) => a.iter_mut().for_each(typed_view),
        _ => {}
    }
}

#[test]
fn smp_matches_recorded_kubectl_results() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smp");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 80, "corpus missing: {}", files.len());

    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let case: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        let kind = case["kind"].as_str().unwrap();
        let got = strategic_merge_patch(&case["original"], &case["patch"], kind);
        let outcome = if let Some(ours) = case.get("everynode") {
            assert!(
                case.get("divergence").is_some(),
                "{name}: override without a reason"
            );
            match got {
                Ok(v) if &v == ours => None,
                other => Some(format!("expected (everynode) {ours}, got {other:?}")),
            }
        } else if let Some(err) = case.get("expected_error") {
            let err = err.as_str().unwrap();
            match got {
                Err(e) if e.to_string().trim_end() == err => None,
                other => Some(format!("expected error {err:?}, got {other:?}")),
            }
        } else {
            let mut expected = case["expected"].clone();
            typed_view(&mut expected);
            match got {
                Ok(v) if v == expected => None,
                Ok(v) => Some(format!(
                    "\n expected {}\n got      {}",
                    serde_json::to_string(&expected).unwrap(),
                    serde_json::to_string(&v).unwrap()
                )),
                Err(e) => Some(format!("expected success, got error {e}")),
            }
        };
        if let Some(msg) = outcome {
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
