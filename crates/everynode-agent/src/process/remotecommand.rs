//! Kubernetes' remote command protocol over WebSocket (`v5.channel.k8s.io`, and
//! `v4.channel.k8s.io` without the close signal), as `kubectl exec` speaks it, pure.
//!
//! Every binary message starts with a stream byte: 0 stdin (client to server), 1 stdout,
//! 2 stderr, 3 error (the final `metav1.Status`), 4 resize (`{"Width":W,"Height":H}`);
//! v5 adds 255, "close", whose next byte names the stream the sender is done with
//! (kubectl sends `[255, 0]` at the end of its stdin). After the status the server
//! closes the connection (code 1000), which is how the client learns that stdout and
//! stderr are complete.
//!
//! See `k8s.io/client-go/tools/remotecommand` (the client) and
//! `k8s.io/kubelet/pkg/cri/streaming/remotecommand` (the kubelet's server).

use serde_json::{Value, json};

/// The WebSocket subprotocols served, most preferred first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// What `kubectl exec` asks for, from the query string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it; absent is false.
fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v {
        _ if everynode_api::query_bool(v) => Ok(true),
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!(
            "invalid value {v:?} for {name}: want true or false"
        )),
    }
}

/// The options of an exec request, from its raw query string (`command` repeats, one
/// parameter per argument). Errors read as the kubelet's.
pub fn parse_options(query: &str) -> Result<Options, String> {
    let mut o = Options {
        command: Vec::new(),
        stdin: false,
        stdout: false,
        stderr: false,
        tty: false,
    };
    for (k, v) in form_pairs(query) {
        match k.as_str() {
            "command" => o.command.push(v),
            "stdin" | "input" => o.stdin = parse_bool(&k, &v)?,
            "stdout" | "output" => o.stdout = parse_bool(&k, &v)?,
            "stderr" | "error" => o.stderr = parse_bool(&k, &v)?,
            "tty" => o.tty = parse_bool(&k, &v)?,
            _ => {}
        }
    }
    if o.command.is_empty() {
        return Err("you must specify at least one command for the container".into());
    }
    if !o.stdin && !o.stdout && !o.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    // With a terminal, stderr is stdout (the kubelet drops it too).
    if o.tty {
        o.stderr = false;
    }
    Ok(o)
}

/// `application/x-www-form-urlencoded` pairs, in order, repeats kept.
pub fn form_pairs(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    Stdin(&'a [u8]),
    /// The client is done with this stream (v5).
    Close(u8),
    Resize {
        width: u16,
        height: u16,
    },
    /// Nothing to act on: an empty message, or a stream the server only writes.
    Ignored,
}

/// Reads one binary message from the client; an error says what was wrong with it.
pub fn parse_incoming(msg: &[u8]) -> Result<Incoming<'_>, String> {
    let Some((&stream, rest)) = msg.split_first() else {
        return Ok(Incoming::Ignored);
    };
    match stream {
        STDIN => Ok(Incoming::Stdin(rest)),
        CLOSE => match rest.first() {
            Some(id) => Ok(Incoming::Close(*id)),
            None => Err("close message without a stream id".into()),
        },
        RESIZE => {
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "PascalCase")]
            struct Size {
                width: u16,
                height: u16,
            }
            let s: Size =
                serde_json::from_slice(rest).map_err(|e| format!("invalid resize message: {e}"))?;
            Ok(Incoming::Resize {
                width: s.width,
                height: s.height,
            })
        }
        _ => Ok(Incoming::Ignored),
    }
}

/// A message on `stream` carrying `data`.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(stream);
    out.extend_from_slice(data);
    out
}

/// How an exec ended, as the status stream reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with this code (0: success).
    Exited(i32),
    /// Could not run: the message (an internal error, as the kubelet reports it).
    Failed(String),
}

/// The `metav1.Status` for the error stream, as the kubelet writes it.
pub fn status(outcome: &Outcome, command: &[String]) -> Value {
    match outcome {
        Outcome::Exited(0) => json!({ "metadata": {}, "status": "Success" }),
        Outcome::Exited(code) => json!({
            "metadata": {},
            "status": "Failure",
            "message": format!(
                "command terminated with non-zero exit code: error executing command {}, exit code {code}",
                go_slice(command)
            ),
            "reason": "NonZeroExitCode",
            "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] },
        }),
        Outcome::Failed(msg) => {
            let msg = format!("error executing command in container: {msg}");
            json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {msg}"),
                "reason": "InternalError",
                "details": { "causes": [{ "message": msg }] },
                "code": 500,
            })
        }
    }
}

/// A string slice as Go's `%v` prints it: `[sh -c exit 3]`.
fn go_slice(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_come_from_repeated_command_parameters() {
        let o = parse_options(
            "command=sh&command=-c&command=echo+hi%3B+exit%203&container=c&stdin=true&stdout=true&stderr=true&tty=false",
        )
        .expect("ok");
        assert_eq!(o.command, ["sh", "-c", "echo hi; exit 3"]);
        assert!(o.stdin && o.stdout && o.stderr && !o.tty);
        // The kubelet's own names, and a terminal folding stderr into stdout.
        let o = parse_options("command=ls&input=1&output=1&error=1&tty=1").expect("ok");
        assert!(o.stdin && o.stdout && !o.stderr && o.tty);
        assert_eq!(
            parse_options("stdout=true").expect_err("no command"),
            "you must specify at least one command for the container"
        );
        assert_eq!(
            parse_options("command=ls").expect_err("no stream"),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        assert!(
            parse_options("command=ls&stdout=maybe")
                .expect_err("bad bool")
                .contains("stdout")
        );
        // Odd escapes are kept, never a panic.
        assert_eq!(
            form_pairs("a=%&b=%4&c=%zz&d=%41"),
            [
                ("a".into(), "%".into()),
                ("b".into(), "%4".into()),
                ("c".into(), "%zz".into()),
                ("d".into(), "A".into())
            ]
        );
    }

    #[test]
    fn incoming_messages() {
        assert_eq!(parse_incoming(&[0, b'h', b'i']), Ok(Incoming::Stdin(b"hi")));
        assert_eq!(parse_incoming(&[255, 0]), Ok(Incoming::Close(0)));
        assert!(parse_incoming(&[255]).is_err());
        assert_eq!(
            parse_incoming(b"\x04{\"Width\":80,\"Height\":24}"),
            Ok(Incoming::Resize {
                width: 80,
                height: 24
            })
        );
        assert!(parse_incoming(b"\x04{\"Width\":-1}").is_err());
        assert_eq!(parse_incoming(&[]), Ok(Incoming::Ignored));
        assert_eq!(parse_incoming(&[1, 2]), Ok(Incoming::Ignored));
        assert_eq!(frame(STDERR, b"x"), [2, b'x']);
        assert_eq!(frame(STDOUT, b""), [1]);
    }

    #[test]
    fn statuses_read_as_the_kubelets() {
        let cmd = ["sh".to_string(), "-c".into(), "exit 3".into()];
        assert_eq!(
            status(&Outcome::Exited(0), &cmd),
            json!({ "metadata": {}, "status": "Success" })
        );
        let failed = status(&Outcome::Exited(3), &cmd);
        assert_eq!(failed["reason"], "NonZeroExitCode");
        assert_eq!(
            failed["details"]["causes"],
            json!([{ "reason": "ExitCode", "message": "3" }])
        );
        assert_eq!(
            failed["message"],
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
        let internal = status(&Outcome::Failed("exec: \"nope\": not found".into()), &cmd);
        assert_eq!(internal["reason"], "InternalError");
        assert_eq!(
            internal["message"],
            "Internal error occurred: error executing command in container: exec: \"nope\": not found"
        );
    }
}
