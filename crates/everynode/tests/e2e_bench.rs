//! e2e: the `everynode bench …` commands keep their contract on small workloads: with
//! `--json` one JSON object on stdout holding the workload size, the measured time or
//! rate, the same-run floor and the peak RSS, every figure consistent with the others.
//! (Performance itself is measured by running the benchmarks, never asserted here.)

use std::process::Command;

use serde_json::Value;

/// Runs `everynode bench ARGS --json` and returns its one JSON object.
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_everynode"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("running everynode bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one JSON object expected on stdout: {stdout}"
    );
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn positive(v: &Value, field: &str) -> f64 {
    let x = v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"));
    assert!(x > 0.0 && x.is_finite(), "{field} = {x} in {v}");
    x
}

/// `a` equals `b` up to the rounding of the printed floats.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

#[test]
fn bench_api_reports_its_run_and_both_floors() {
    let v = bench(&["api", "--creates", "300", "--clients", "4"]);
    assert_eq!(v["benchmark"], "api");
    assert_eq!(v["creates"], 300);
    assert_eq!(v["clients"], 4);
    assert_eq!(v["client"], "raw");
    let secs = positive(&v, "seconds");
    let rate = positive(&v, "creates_per_second");
    assert!(close(rate, 300.0 / secs), "{v}");
    let (p50, p99) = (positive(&v, "p50_ms"), positive(&v, "p99_ms"));
    assert!(p50 <= p99, "{v}");
    positive(&v, "peak_rss_bytes");
    positive(&v, "server_cpu_seconds");
    // Every write of every commit came from one of the four clients.
    let batch = positive(&v, "mean_commit_batch");
    assert!((1.0..=4.0).contains(&batch), "{v}");
    for (floor, rate, ratio) in [
        ("floor_seconds", "floor_rate", "ratio_to_floor"),
        (
            "as_shipped_floor_seconds",
            "as_shipped_floor_rate",
            "ratio_to_as_shipped_floor",
        ),
    ] {
        let f = positive(&v, floor);
        assert!(close(positive(&v, rate), 300.0 / f), "{rate}: {v}");
        assert!(close(positive(&v, ratio), secs / f), "{ratio}: {v}");
    }
    let runs = v["floor_runs_seconds"].as_array().expect("floor runs");
    assert_eq!(runs.len(), 3, "{v}");
}

#[test]
fn bench_commit_reports_both_file_backends() {
    let v = bench(&["commit", "--commits", "40", "--batch", "3", "--rounds", "1"]);
    assert_eq!(v["benchmark"], "commit");
    assert_eq!(
        (v["commits"].as_u64(), v["batch"].as_u64()),
        (Some(40), Some(3))
    );
    let (secs, floor) = (positive(&v, "seconds"), positive(&v, "floor_seconds"));
    assert!(close(positive(&v, "ratio_to_floor"), secs / floor), "{v}");
    assert!(
        close(positive(&v, "us_per_commit"), secs * 1e6 / 40.0),
        "{v}"
    );
    // The pod as the server stores it: defaulted, with uid and status.
    assert!(positive(&v, "value_bytes") > 500.0, "{v}");
    positive(&v, "peak_rss_bytes");
}
