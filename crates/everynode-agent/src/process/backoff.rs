//! When an exited container runs again: the pod's restartPolicy, then the kubelet's
//! crash-loop back-off. The first restart is immediate; each later one waits twice as
//! long as the one before (10 s, 20 s, 40 s, … up to 5 min); a container that ran for
//! 10 minutes before exiting starts over from an immediate restart.

use std::time::Duration;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);
/// A run at least this long forgets the back-off (twice the maximum, as the kubelet's
/// back-off garbage collection does).
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// Whether a container that exited with `exit_code` runs again under `policy`
/// (`Always`, `OnFailure`, `Never`; unknown values count as `Always`, the default).
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The same for an init container: it runs again only after a failure, and never
/// under `Never` (the pod fails instead).
pub fn should_restart_init(policy: &str, exit_code: i32) -> bool {
    exit_code != 0 && policy != "Never"
}

/// The back-off a container carries between runs: the wait the *next* restart gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    pub next: Option<Duration>,
}

impl Backoff {
    /// After a run of `ran_for` ended: how long to wait before starting again, and
    /// the back-off to keep for the exit after that.
    pub fn after_exit(self, ran_for: Duration) -> (Duration, Backoff) {
        let pending = if ran_for >= RESET_AFTER {
            None
        } else {
            self.next
        };
        match pending {
            None => (
                Duration::ZERO,
                Backoff {
                    next: Some(INITIAL),
                },
            ),
            Some(wait) => (
                wait,
                Backoff {
                    next: Some((wait * 2).min(MAX)),
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policy_table() {
        let cases = [
            ("Always", 0, true),
            ("Always", 1, true),
            ("OnFailure", 0, false),
            ("OnFailure", 137, true),
            ("Never", 0, false),
            ("Never", 2, false),
            ("", 0, true),
        ];
        for (policy, code, want) in cases {
            assert_eq!(should_restart(policy, code), want, "{policy} {code}");
        }
        let init = [
            ("Always", 0, false),
            ("Always", 1, true),
            ("OnFailure", 1, true),
            ("Never", 1, false),
        ];
        for (policy, code, want) in init {
            assert_eq!(
                should_restart_init(policy, code),
                want,
                "init {policy} {code}"
            );
        }
    }

    #[test]
    fn waits_double_up_to_five_minutes() {
        let quick = Duration::from_secs(1);
        let mut b = Backoff::default();
        let mut waits = Vec::new();
        for _ in 0..8 {
            let (wait, next) = b.after_exit(quick);
            waits.push(wait.as_secs());
            b = next;
        }
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn a_long_run_resets_the_back_off() {
        let b = Backoff {
            next: Some(Duration::from_secs(160)),
        };
        let cases = [
            (Duration::from_secs(599), 160, 300),
            (RESET_AFTER, 0, 10),
            (Duration::from_secs(3600), 0, 10),
        ];
        for (ran, wait, next) in cases {
            let (w, n) = b.after_exit(ran);
            assert_eq!(
                (w.as_secs(), n.next.map(|d| d.as_secs())),
                (wait, Some(next)),
                "ran {ran:?}"
            );
        }
    }
}
