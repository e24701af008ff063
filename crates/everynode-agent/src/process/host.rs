//! Facts about the host a process node runs on: capacity (CPUs, memory, disk), the
//! Node's `nodeInfo`, and whether cgroup v2 can hold resource limits.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// `MemTotal` from a `/proc/meminfo` text, in bytes.
pub fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// `PRETTY_NAME` from an os-release text.
pub fn pretty_name(os_release: &str) -> Option<String> {
    let v = os_release
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))?;
    Some(v.trim().trim_matches('"').to_string())
}

/// Kubernetes' name for the machine architecture.
pub fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The host's capacity: CPUs, MemTotal, 110 pods, and the disk holding `root`.
pub fn capacity(root: &Path) -> Value {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| mem_total(&m))
        .unwrap_or(0);
    let disk = rustix::fs::statvfs(root)
        .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
        .unwrap_or(0);
    json!({
        "cpu": cpus.to_string(),
        "memory": format!("{}Ki", memory / 1024),
        "pods": "110",
        "ephemeral-storage": format!("{}Ki", disk / 1024),
    })
}

/// The Node's `status.nodeInfo` for this host.
pub fn node_info() -> Value {
    let arch = go_arch(std::env::consts::ARCH);
    json!({
        "machineID": read_trimmed("/etc/machine-id"),
        "systemUUID": read_trimmed("/sys/class/dmi/id/product_uuid"),
        "bootID": read_trimmed("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": read_trimmed("/proc/sys/kernel/osrelease"),
        "osImage": std::fs::read_to_string("/etc/os-release").ok().and_then(|s| pretty_name(&s)).unwrap_or_else(|| "Linux".into()),
        "containerRuntimeVersion": concat!("process://", env!("CARGO_PKG_VERSION")),
        "kubeletVersion": crate::KUBELET_VERSION,
        "kubeProxyVersion": crate::KUBELET_VERSION,
        "operatingSystem": "linux",
        "architecture": arch,
    })
}

/// Where resource limits can go: a writable cgroup v2 directory with the `cpu` and
/// `memory` controllers enabled for its children, or the reason there is none.
pub fn cgroup_v2_parent() -> Result<PathBuf, String> {
    // Unified mode mounts cgroup2 at /sys/fs/cgroup; hybrid mode at .../unified.
    let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("cgroup.controllers").exists())
        .ok_or("no cgroup v2 hierarchy is mounted (cgroup v1 only)")?;
    // Our own cgroup within it: the `0::/path` line of /proc/self/cgroup.
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        })
        .unwrap_or_else(|| "/".into());
    let dir = mount.join(own.trim_start_matches('/'));
    let controllers = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    if !(has("cpu") && has("memory")) {
        return Err(format!(
            "the cgroup v2 hierarchy at {} has no cpu and memory controllers (controllers: {:?})",
            dir.display(),
            controllers.trim()
        ));
    }
    let probe = dir.join(format!("everynode-probe-{}", std::process::id()));
    std::fs::create_dir(&probe)
        .map_err(|e| format!("cgroup v2 at {} is not writable: {e}", dir.display()))?;
    let _ = std::fs::remove_dir(&probe);
    Ok(dir)
}

/// `cpu.max` for a CPU limit in millicores: quota and period in microseconds.
pub fn cpu_max(milli: i128) -> String {
    let period = 100_000i128;
    let quota = (milli * period / 1000).max(1000);
    format!("{quota} {period}")
}

/// Applies a container's limits to a fresh cgroup under `parent` and moves `pid` in.
/// Returns the cgroup directory (removed when the container ends).
pub fn apply_limits(
    parent: &Path,
    name: &str,
    pid: u32,
    cpu_milli: Option<i128>,
    memory: Option<i128>,
) -> std::io::Result<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir)?;
    if let Some(m) = cpu_milli {
        std::fs::write(dir.join("cpu.max"), cpu_max(m))?;
    }
    if let Some(b) = memory {
        std::fs::write(dir.join("memory.max"), b.to_string())?;
    }
    std::fs::write(dir.join("cgroup.procs"), pid.to_string())?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_files() {
        assert_eq!(
            mem_total("MemTotal:       24684084 kB\nMemFree: 1 kB\n"),
            Some(24684084 * 1024)
        );
        assert_eq!(mem_total("nothing"), None);
        assert_eq!(
            pretty_name("NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n").as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(cpu_max(500), "50000 100000");
        assert_eq!(cpu_max(2000), "200000 100000");
        assert_eq!(cpu_max(1), "1000 100000");
    }

    #[test]
    fn capacity_reports_the_host() {
        let c = capacity(Path::new("/"));
        let cpus: usize = c["cpu"].as_str().expect("cpu").parse().expect("number");
        assert!(cpus >= 1);
        assert!(c["memory"].as_str().expect("memory").ends_with("Ki"));
        assert_eq!(c["pods"], "110");
    }
}
