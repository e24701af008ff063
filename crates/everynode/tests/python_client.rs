//! An independent client: Python's official `kubernetes` package (its typed models decode
//! every answer strictly) drives a 3-node `everynode up` through DaemonSets, rolling
//! updates with watches, pagination, errors, server-side apply, status, events,
//! evictions, Services, Secrets and deletion (tests/python/client_check.py).
//!
//! The client lives in a virtualenv under cargo's test scratch directory, made on first
//! use (`python3 -m venv`, then pip from PyPI, a pinned version); later runs reuse it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Server;

const CLIENT: &str = "kubernetes==33.1.0";

/// The venv's python, made (once) if missing.
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyclient");
    let python = venv.join("bin").join("python");
    let ready = venv.join(format!("{CLIENT}.installed"));
    if ready.exists() {
        return python;
    }
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv (Debian: apt-get install python3-venv)",
    );
    run(
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            CLIENT,
        ]),
        "pip install the kubernetes client",
    );
    std::fs::write(&ready, "").expect("marker");
    python
}

#[test]
fn the_python_kubernetes_client_drives_a_cluster() {
    let python = python();
    let s = Server::up(3);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_check.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg(s.data_dir().join("kubeconfig"))
        .env_remove("KUBECONFIG")
        .output()
        .expect("run the Python client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
