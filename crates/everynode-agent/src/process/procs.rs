//! Host processes: starting a container's process in its own session (so its process
//! group can be signalled as a whole) with a parent-death signal, signalling groups,
//! reading `/proc/PID/stat`, and the ledger of what a node started, so that a restarted
//! agent finds and kills what an earlier one left behind.
//!
//! Every process is started from one long-lived thread per node ("the spawner"): the
//! parent-death signal (`PR_SET_PDEATHSIG`) fires when the *thread* that forked the child
//! ends, so forking from short-lived runtime threads would kill processes at random.
//! When the agent dies, the kernel sends SIGKILL to each process it started; the
//! process's own children are caught by the ledger at the next start.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustix::process::{Pid, Signal};

/// The fields of `/proc/PID/stat` the agent needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Start time in clock ticks after boot: with the pid, a process's identity.
    pub start_ticks: u64,
}

/// Parses a `/proc/PID/stat` line (the command name may hold spaces and parentheses).
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // rest[0] is field 3 (state); field N is rest[N - 3].
    Some(Stat {
        pid,
        ppid: rest.get(1)?.parse().ok()?,
        pgrp: rest.get(2)?.parse().ok()?,
        session: rest.get(3)?.parse().ok()?,
        start_ticks: rest.get(19)?.parse().ok()?,
    })
}

pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process on the host, as far as /proc shows them.
pub fn all_processes() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// Sends `sig` to the process group `pgid`; a group already gone is not an error.
pub fn signal_group(pgid: i32, sig: Signal) {
    // Group 1 would be kill(-1): every process on the machine. No group the node made
    // has that id, but a corrupt ledger line must not be able to ask for it.
    if pgid <= 1 {
        return;
    }
    if let Some(pid) = Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, sig);
    }
}

/// Whether any process of group `pgid` is still alive.
pub fn group_alive(pgid: i32) -> bool {
    Pid::from_raw(pgid).is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok())
}

/// A process the node started: its session leader's pid and start time, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub pid: i32,
    pub start_ticks: u64,
    pub owner: String,
}

/// Which processes belong to the recorded sessions: members of a recorded session that
/// started no earlier than its leader (a pid is not reused while a session or group
/// still names it, so such members are the leader's descendants).
pub fn leftovers(records: &[Record], procs: &[Stat]) -> Vec<i32> {
    procs
        .iter()
        .filter(|p| {
            records
                .iter()
                .any(|r| p.session == r.pid && p.start_ticks >= r.start_ticks)
        })
        .map(|p| p.pid)
        .collect()
}

/// The ledger: `ROOT/processes` holds one `pid start_ticks owner` line per live
/// container process, rewritten on every change.
#[derive(Clone)]
pub struct Ledger {
    path: PathBuf,
    records: Arc<Mutex<BTreeMap<i32, Record>>>,
}

impl Ledger {
    pub fn open(root: &Path) -> Ledger {
        Ledger {
            path: root.join("processes"),
            records: Arc::default(),
        }
    }

    /// What an earlier agent recorded.
    pub fn read_previous(&self) -> Vec<Record> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut it = l.splitn(3, ' ');
                Some(Record {
                    pid: it.next()?.parse().ok()?,
                    start_ticks: it.next()?.parse().ok()?,
                    owner: it.next().unwrap_or("").to_string(),
                })
            })
            .collect()
    }

    /// Kills what an earlier agent left running (whole sessions, SIGKILL) and starts a
    /// fresh ledger. Returns how many processes were killed.
    pub fn kill_leftovers(&self) -> usize {
        let previous = self.read_previous();
        let mut killed = 0;
        if !previous.is_empty() {
            for pid in leftovers(&previous, &all_processes()) {
                if let Some(p) = Pid::from_raw(pid)
                    && rustix::process::kill_process(p, Signal::KILL).is_ok()
                {
                    killed += 1;
                }
            }
        }
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.flush();
        killed
    }

    pub fn add(&self, r: Record) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(r.pid, r);
        self.flush();
    }

    pub fn remove(&self, pid: i32) {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pid);
        self.flush();
    }

    pub fn pids(&self) -> Vec<i32> {
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn flush(&self) {
        let text: String = self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|r| format!("{} {} {}\n", r.pid, r.start_ticks, r.owner))
            .collect();
        let tmp = self.path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &self.path))
        {
            tracing::warn!(error = %e, path = %self.path.display(), "process ledger");
        }
    }
}

/// Makes `cmd` run as `id`: supplemental groups, then group, then user (real, effective
/// and saved), in the child before exec. Needs root; std's `uid`/`gid` cannot set
/// supplemental groups (its own `setgroups` runs before, and `pre_exec` hooks after, the
/// switch of user), so all three are done here. Registered before [`Spawner::spawn`]'s
/// hook, so the parent-death signal is armed after the switch, which would clear it.
pub fn run_as(cmd: &mut tokio::process::Command, id: &super::identity::Identity) {
    use rustix::process::{Gid, Uid};
    let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let gid = Gid::from_raw(id.gid);
    let uid = Uid::from_raw(id.uid);
    // SAFETY: the closure runs between fork and exec in the single-threaded child and
    // only makes system calls (setgroups, setresgid, setresuid) on data prepared before
    // the fork; the thread-level calls are what a single-threaded process needs.
    unsafe {
        cmd.pre_exec(move || {
            rustix::thread::set_thread_groups(&groups)?;
            rustix::thread::set_thread_res_gid(gid, gid, gid)?;
            rustix::thread::set_thread_res_uid(uid, uid, uid)?;
            Ok(())
        });
    }
}

type SpawnReply = tokio::sync::oneshot::Sender<io::Result<tokio::process::Child>>;

/// Starts processes from one dedicated thread (see the module docs). Cheap to clone;
/// the thread ends when the last clone is dropped.
#[derive(Clone)]
pub struct Spawner {
    tx: std::sync::mpsc::Sender<(tokio::process::Command, SpawnReply)>,
}

impl Spawner {
    /// Must be called within a Tokio runtime (the children are reaped by it).
    pub fn new(name: &str) -> io::Result<Spawner> {
        let (tx, rx) = std::sync::mpsc::channel::<(tokio::process::Command, SpawnReply)>();
        let handle = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name(format!("spawn-{name}"))
            .spawn(move || {
                let _guard = handle.enter();
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })?;
        Ok(Spawner { tx })
    }

    /// Starts `cmd` in a new session (its own process group), with SIGKILL as its
    /// parent-death signal.
    pub async fn spawn(&self, cmd: tokio::process::Command) -> io::Result<tokio::process::Child> {
        self.spawn_in_session(cmd, false).await
    }

    /// As [`Spawner::spawn`], and the terminal that is `cmd`'s stdin becomes the new
    /// session's controlling terminal (`kubectl exec -t`).
    pub async fn spawn_with_terminal(
        &self,
        cmd: tokio::process::Command,
    ) -> io::Result<tokio::process::Child> {
        self.spawn_in_session(cmd, true).await
    }

    async fn spawn_in_session(
        &self,
        mut cmd: tokio::process::Command,
        terminal: bool,
    ) -> io::Result<tokio::process::Child> {
        let parent = rustix::process::getpid();
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls (setsid, ioctl, prctl, getppid); fd 0 is the
        // child's stdin, set up before the hooks run.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::setsid()?;
                if terminal {
                    rustix::process::ioctl_tiocsctty(std::os::fd::BorrowedFd::borrow_raw(0))?;
                }
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The agent may have died before the signal was armed.
                if rustix::process::getppid() != Some(parent) {
                    return Err(io::Error::other("the agent exited"));
                }
                Ok(())
            });
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send((cmd, reply))
            .map_err(|_| io::Error::other("the spawner thread is gone"))?;
        rx.await
            .map_err(|_| io::Error::other("the spawner thread is gone"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_despite_odd_names() {
        let line = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";
        let s = parse_stat(line).expect("parses");
        assert_eq!(
            s,
            Stat {
                pid: 4242,
                ppid: 1,
                pgrp: 4242,
                session: 4242,
                start_ticks: 987654
            }
        );
        assert_eq!(parse_stat("garbage"), None);
        let me = stat(std::process::id() as i32).expect("own stat");
        assert_eq!(me.pid, std::process::id() as i32);
    }

    #[test]
    fn leftovers_are_the_recorded_sessions_members() {
        let rec = |pid, start_ticks| Record {
            pid,
            start_ticks,
            owner: "x".into(),
        };
        let p = |pid, session, start_ticks| Stat {
            pid,
            ppid: 1,
            pgrp: session,
            session,
            start_ticks,
        };
        let procs = [
            p(100, 100, 500), // the recorded leader itself
            p(101, 100, 600), // its child, same session
            p(200, 200, 50),  // unrelated
            p(300, 300, 10), // pid 300 reused by an older... impossible, but started before the record
            p(301, 300, 9),
        ];
        let mut got = leftovers(&[rec(100, 500), rec(300, 20)], &procs);
        got.sort();
        assert_eq!(got, [100, 101]);
        assert!(leftovers(&[], &procs).is_empty());
    }

    #[tokio::test]
    async fn spawned_processes_lead_their_own_session_and_the_ledger_kills_them() {
        let root = tempfile::tempdir().expect("tempdir");
        let spawner = Spawner::new("test").expect("spawner");
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "sleep 300 & sleep 300"]);
        let child = spawner.spawn(cmd).await.expect("spawn");
        let pid = child.id().expect("pid") as i32;
        let st = stat(pid).expect("stat");
        assert_eq!((st.session, st.pgrp), (pid, pid));
        let ledger = Ledger::open(root.path());
        ledger.add(Record {
            pid,
            start_ticks: st.start_ticks,
            owner: "ns/p/c".into(),
        });
        // The background sleep joins the session.
        let members = || {
            all_processes()
                .into_iter()
                .filter(|p| p.session == pid)
                .count()
        };
        for _ in 0..100 {
            if members() >= 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(members() >= 2);
        // A new agent on the same root kills the whole session.
        let again = Ledger::open(root.path());
        assert_eq!(again.read_previous().len(), 1);
        assert!(again.kill_leftovers() >= 2);
        drop(child);
        // Killed processes may linger as zombies until reaped; none may still run.
        let running = || {
            all_processes()
                .iter()
                .filter(|p| p.session == pid)
                .filter(|p| {
                    std::fs::read_to_string(format!("/proc/{}/stat", p.pid))
                        .ok()
                        .and_then(|t| {
                            t.rfind(')')
                                .map(|i| t[i + 1..].trim_start().starts_with('Z'))
                        })
                        == Some(false)
                })
                .count()
        };
        for _ in 0..100 {
            if running() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(running(), 0, "the whole session is killed");
        assert!(again.read_previous().is_empty());
    }
}
