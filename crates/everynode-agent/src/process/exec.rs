//! `kubectl exec` on a process node: a command run on the host in a running container's
//! context (its environment, working directory and user, as its process and exec
//! probes run), its streams carried over the WebSocket channel protocol
//! ([`super::remotecommand`]).
//!
//! The command is its own session (started by the node's [`Spawner`], so it has the
//! parent-death signal and is in the node's ledger while it runs). It is killed, with
//! whatever it started, when it exits (as a container's processes are when its main
//! process exits), when the client goes away, and when the container stops. With `tty`
//! it gets a pseudo-terminal as its controlling terminal, sized by the client's resize
//! messages.

use std::os::fd::OwnedFd;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use rustix::process::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::ContainerExec;
use super::procs::{self, Ledger, Record, Spawner};
use super::remotecommand::{self as rc, Incoming, Options, Outcome};

/// How long output may still drain after the command exited and its group was killed.
const DRAIN: Duration = Duration::from_secs(2);
/// How long to wait for the client's reply to the closing handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Where the session runs and what it may check on.
pub struct Session {
    pub opts: Options,
    pub target: ContainerExec,
    pub spawner: Spawner,
    pub ledger: Ledger,
    /// Who the process is in the ledger: `ns/pod/container exec`.
    pub owner: String,
    /// Whether the container still runs (checked every second).
    pub container_running: Box<dyn Fn() -> bool + Send + Sync>,
}

/// The command's ends of its streams.
struct Started {
    child: tokio::process::Child,
    pid: i32,
    input: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)>,
    /// The terminal's master side, for resizes.
    terminal: Option<OwnedFd>,
}

/// A pseudo-terminal: (master, slave).
fn open_pty() -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::OpenptFlags;
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok((master, slave))
}

async fn start(s: &Session) -> Result<Started, String> {
    let t = &s.target;
    let mut env = t.env.clone();
    if s.opts.tty && !env.iter().any(|(k, _)| k == "TERM") {
        // As containerd sets it for a terminal.
        env.push(("TERM".into(), "xterm".into()));
    }
    let program = super::env::resolve_program(&s.opts.command[0], &env)?;
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg0(&s.opts.command[0])
        .args(&s.opts.command[1..])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(&t.working_dir);
    if let Some(id) = &t.identity {
        procs::run_as(&mut cmd, id);
    }
    let io_err = |e: std::io::Error| format!("opening a terminal: {e}");
    let spawned = if s.opts.tty {
        let (master, slave) = open_pty().map_err(io_err)?;
        let out = slave.try_clone().map_err(io_err)?;
        let err = slave.try_clone().map_err(io_err)?;
        cmd.stdin(slave).stdout(out).stderr(err);
        let child = s.spawner.spawn_with_terminal(cmd).await;
        child.map(|c| (c, Some(master)))
    } else {
        let piped = |on: bool| {
            if on {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            }
        };
        cmd.stdin(piped(s.opts.stdin))
            .stdout(piped(s.opts.stdout))
            .stderr(piped(s.opts.stderr));
        s.spawner.spawn(cmd).await.map(|c| (c, None))
    };
    let (mut child, master) =
        spawned.map_err(|e| format!("exec {program:?} in {:?}: {e}", t.working_dir))?;
    let pid = child.id().map_or(0, |p| p as i32);
    let mut input: Option<Box<dyn AsyncWrite + Send + Unpin>> = None;
    let mut outputs: Vec<(u8, Box<dyn AsyncRead + Send + Unpin>)> = Vec::new();
    let mut terminal = None;
    if let Some(master) = master {
        // Blocking reads and writes on the master side go to tokio's blocking pool.
        let reader = std::fs::File::from(master.try_clone().map_err(io_err)?);
        let writer = std::fs::File::from(master.try_clone().map_err(io_err)?);
        outputs.push((rc::STDOUT, Box::new(tokio::fs::File::from_std(reader))));
        if s.opts.stdin {
            input = Some(Box::new(tokio::fs::File::from_std(writer)));
        }
        terminal = Some(master);
    } else {
        if let Some(i) = child.stdin.take() {
            input = Some(Box::new(i));
        }
        if let Some(o) = child.stdout.take() {
            outputs.push((rc::STDOUT, Box::new(o)));
        }
        if let Some(e) = child.stderr.take() {
            outputs.push((rc::STDERR, Box::new(e)));
        }
    }
    Ok(Started {
        child,
        pid,
        input,
        outputs,
        terminal,
    })
}

/// Copies one output of the command into messages on `stream`.
async fn pump(stream: u8, mut from: Box<dyn AsyncRead + Send + Unpin>, to: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // A terminal's master side reads EIO once the last slave is closed: its end.
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.send(rc::frame(stream, &buf[..n])).await.is_err() {
            return;
        }
    }
}

/// Feeds what the client sends into the command's stdin; ends (closing it) when the
/// channel does.
async fn feed(mut to: Box<dyn AsyncWrite + Send + Unpin>, mut from: mpsc::Receiver<Vec<u8>>) {
    while let Some(chunk) = from.recv().await {
        if to.write_all(&chunk).await.is_err() || to.flush().await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

fn exit_code(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => s
            .code()
            .or_else(|| s.signal().map(|n| 128 + n))
            .unwrap_or(255),
        Err(_) => 255,
    }
}

/// Runs one exec over an upgraded connection, to the end: the status message, then the
/// closing handshake.
pub async fn run(socket: WebSocket, s: Session) {
    let (mut sink, mut incoming) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
    // One writer: output messages in order, then the status, then the close.
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(Message::Binary(m.into())).await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "".into(),
            })))
            .await;
    });
    let outcome = match start(&s).await {
        Err(msg) => Outcome::Failed(msg),
        Ok(started) => Outcome::Exited(supervise(started, &s, &out_tx, &mut incoming).await),
    };
    let status = serde_json::to_vec(&rc::status(&outcome, &s.opts.command)).unwrap_or_default();
    let _ = out_tx.send(rc::frame(rc::ERROR, &status)).await;
    drop(out_tx);
    let _ = writer.await;
    // The client answers the close; wait for it (briefly) so nothing it still sends
    // resets the connection before it has read everything.
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(m)) = incoming.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Runs the started command until it exits; returns its exit code.
async fn supervise(
    started: Started,
    s: &Session,
    out: &mpsc::Sender<Vec<u8>>,
    incoming: &mut futures::stream::SplitStream<WebSocket>,
) -> i32 {
    let Started {
        mut child,
        pid,
        input,
        outputs,
        terminal,
    } = started;
    let start_ticks = procs::stat(pid).map_or(0, |st| st.start_ticks);
    s.ledger.add(Record {
        pid,
        start_ticks,
        owner: s.owner.clone(),
    });
    let pumps: Vec<_> = outputs
        .into_iter()
        .map(|(id, r)| tokio::spawn(pump(id, r, out.clone())))
        .collect();
    let mut stdin = input.map(|w| {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(16);
        tokio::spawn(feed(w, rx));
        tx
    });
    let mut check = tokio::time::interval(Duration::from_secs(1));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut client_open = true;
    let code = loop {
        tokio::select! {
            status = child.wait() => break exit_code(status),
            msg = incoming.next(), if client_open => match msg {
                Some(Ok(Message::Binary(bytes))) => match rc::parse_incoming(&bytes) {
                    Ok(Incoming::Stdin(data)) => {
                        if let Some(tx) = &stdin
                            && tx.send(data.to_vec()).await.is_err()
                        {
                            stdin = None;
                        }
                    }
                    Ok(Incoming::Close(rc::STDIN)) => stdin = None,
                    Ok(Incoming::Resize { width, height }) => {
                        if let Some(master) = &terminal {
                            let size = rustix::termios::Winsize {
                                ws_row: height,
                                ws_col: width,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            };
                            let _ = rustix::termios::tcsetwinsize(master, size);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "exec: a client message"),
                },
                // Text, ping and pong messages: nothing to do (pongs are automatic).
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
                // The client went away: so does the command.
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    client_open = false;
                    stdin = None;
                    procs::signal_group(pid, Signal::KILL);
                }
            },
            _ = check.tick() => {
                if !(s.container_running)() {
                    procs::signal_group(pid, Signal::KILL);
                }
            }
        }
    };
    drop(stdin);
    // What the command left running goes with it; then its outputs close.
    procs::signal_group(pid, Signal::KILL);
    s.ledger.remove(pid);
    drop(terminal);
    for p in pumps {
        let _ = tokio::time::timeout(DRAIN, p).await;
    }
    code
}
