//! Container logs on disk, the way the kubelet and CRI runtimes keep them.
//!
//! Each container instance writes `ROOT/pods/NS_POD_UID/CONTAINER/N.log`, N being the
//! container's restart count when it started, one line per output line in the CRI
//! format: `2026-01-02T03:04:05.123456789Z stdout F text` (`P` marks a line cut at
//! [`MAX_LINE`] bytes that continues in the next record). A file that grows past its
//! limit is renamed `N.log.1` (replacing an older one) and a new `N.log` begins, so an
//! instance keeps at most twice the limit. Only the current and the previous instance
//! are kept (`kubectl logs --previous`). `N.done` marks an instance that has ended, so
//! a follower knows no more output is coming.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Default size limit of one log file (and the rotated one beside it).
pub const DEFAULT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Longest record; longer output lines are split into partial records.
pub const MAX_LINE: usize = 16 * 1024;

/// The directory of a pod's logs under the node root.
pub fn pod_dir(root: &Path, ns: &str, name: &str, uid: &str) -> PathBuf {
    root.join("pods").join(format!("{ns}_{name}_{uid}"))
}

/// The RFC 3339 timestamp with nanoseconds that starts each record.
pub fn timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string()
}

/// Writes one container instance's output.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max: u64,
}

impl LogWriter {
    /// Opens `N.log` for instance `n` in `dir` (appending: an agent restart keeps what
    /// was written) and removes instances older than `n - 1`.
    pub fn open(dir: &Path, n: i32, max: u64) -> io::Result<LogWriter> {
        std::fs::create_dir_all(dir)?;
        for (k, files) in instances(dir) {
            if k < n - 1 {
                for f in files {
                    let _ = std::fs::remove_file(f);
                }
                let _ = std::fs::remove_file(dir.join(format!("{k}.done")));
            }
        }
        let _ = std::fs::remove_file(dir.join(format!("{n}.done")));
        let path = dir.join(format!("{n}.log"));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            path,
            file,
            size,
            max: max.max(1024),
        })
    }

    /// Appends one record per `MAX_LINE` chunk of `line` (without its newline).
    pub fn write_line(&mut self, stream: &str, line: &[u8], complete: bool, at: jiff::Timestamp) {
        let ts = timestamp(at);
        let chunks: Vec<&[u8]> = if line.is_empty() {
            vec![line]
        } else {
            line.chunks(MAX_LINE).collect()
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let tag = if i == last && complete { "F" } else { "P" };
            let mut rec = Vec::with_capacity(chunk.len() + ts.len() + 12);
            rec.extend_from_slice(format!("{ts} {stream} {tag} ").as_bytes());
            rec.extend_from_slice(chunk);
            rec.push(b'\n');
            if self.size > 0 && self.size + rec.len() as u64 > self.max {
                self.rotate();
            }
            match self.file.write_all(&rec) {
                Ok(()) => self.size += rec.len() as u64,
                Err(e) => tracing::debug!(error = %e, path = %self.path.display(), "log write"),
            }
        }
    }

    fn rotate(&mut self) {
        let rotated = self.path.with_extension("log.1");
        let reopened = std::fs::rename(&self.path, &rotated).and_then(|()| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
        });
        match reopened {
            Ok(f) => {
                self.file = f;
                self.size = 0;
            }
            Err(e) => tracing::warn!(error = %e, path = %self.path.display(), "log rotation"),
        }
    }

    /// Marks the instance as ended.
    pub fn finish(&self) {
        let done = self.path.with_extension("done");
        let _ = File::create(done);
    }
}

/// The instances in a container's log directory, oldest first, each with its files in
/// reading order (`N.log.1`, then `N.log`).
pub fn instances(dir: &Path) -> Vec<(i32, Vec<PathBuf>)> {
    let mut found: std::collections::BTreeMap<i32, Vec<PathBuf>> = Default::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let (n, rotated) = if let Some(n) = name.strip_suffix(".log.1") {
            (n.to_string(), true)
        } else if let Some(n) = name.strip_suffix(".log") {
            (n.to_string(), false)
        } else {
            continue;
        };
        if let Ok(n) = n.parse::<i32>() {
            let files = found.entry(n).or_default();
            if rotated {
                files.insert(0, e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    found.into_iter().collect()
}

/// One parsed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: &'a str,
    pub stream: &'a str,
    pub complete: bool,
    pub content: &'a [u8],
}

/// Parses a CRI record (without its newline).
pub fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or(b"");
    Some(Record {
        time,
        stream,
        complete: tag != b"P",
        content,
    })
}

/// What a reader wants (the kubelet's `PodLogOptions`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub tail_lines: Option<usize>,
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<usize>,
}

/// Renders one record as kubectl shows it.
pub fn render(r: &Record<'_>, timestamps: bool, out: &mut Vec<u8>) {
    if timestamps {
        out.extend_from_slice(r.time.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(r.content);
    if r.complete {
        out.push(b'\n');
    }
}

fn keep(r: &Record<'_>, q: &Query) -> bool {
    match q.since {
        Some(since) => r
            .time
            .parse::<jiff::Timestamp>()
            .map_or(true, |t| t >= since),
        None => true,
    }
}

/// Renders the records of `text` (whole CRI lines) for `q`: since-filter, then the last
/// `tail_lines`, then the byte limit.
pub fn render_all(text: &[u8], q: &Query) -> Vec<u8> {
    let records: Vec<Record<'_>> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(parse_record)
        .filter(|r| keep(r, q))
        .collect();
    let start = match q.tail_lines {
        Some(n) => {
            // Count complete lines from the end; partial records belong to the line
            // their final record ends.
            let mut lines = 0;
            let mut start = records.len();
            for (i, r) in records.iter().enumerate().rev() {
                if r.complete {
                    if lines == n {
                        break;
                    }
                    lines += 1;
                }
                start = i;
            }
            start
        }
        None => 0,
    };
    let mut out = Vec::new();
    for r in &records[start..] {
        render(r, q.timestamps, &mut out);
    }
    if let Some(limit) = q.limit_bytes {
        out.truncate(limit);
    }
    out
}

/// Reads the whole content of an instance's files (at most twice the file limit).
pub fn read_files(files: &[PathBuf]) -> Vec<u8> {
    let mut all = Vec::new();
    for f in files {
        if let Ok(mut file) = File::open(f) {
            let _ = file.read_to_end(&mut all);
        }
    }
    all
}

/// Reads the complete lines appended to `path` after `offset`; returns them and the
/// new offset. A file shorter than `offset` was rotated: read it from the start.
pub fn read_new(path: &Path, offset: u64) -> (Vec<u8>, u64) {
    let Ok(mut f) = File::open(path) else {
        return (Vec::new(), offset);
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = if len < offset { 0 } else { offset };
    if f.seek(SeekFrom::Start(from)).is_err() {
        return (Vec::new(), offset);
    }
    let mut reader = io::BufReader::new(f);
    let mut out = Vec::new();
    let mut pos = from;
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(n) if line.ends_with(b"\n") => {
                pos += n as u64;
                out.extend_from_slice(&line);
            }
            // A line still being written: leave it for the next read.
            _ => break,
        }
    }
    (out, pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().expect("timestamp")
    }

    #[test]
    fn records_parse_and_render() {
        let r = parse_record(b"2026-01-02T03:04:05.000000001Z stdout F hello world").expect("ok");
        assert_eq!(r.stream, "stdout");
        assert!(r.complete);
        assert_eq!(r.content, b"hello world");
        let mut out = Vec::new();
        render(&r, true, &mut out);
        assert_eq!(out, b"2026-01-02T03:04:05.000000001Z hello world\n");
        let p = parse_record(b"2026-01-02T03:04:05Z stderr P ").expect("ok");
        assert!(!p.complete);
        assert_eq!(p.content, b"");
    }

    #[test]
    fn queries_table() {
        let text = b"2026-01-01T00:00:01.000000000Z stdout F one\n\
2026-01-01T00:00:02.000000000Z stderr F two\n\
2026-01-01T00:00:03.000000000Z stdout P thr\n\
2026-01-01T00:00:03.000000000Z stdout F ee\n\
2026-01-01T00:00:04.000000000Z stdout F four\n";
        let cases: Vec<(Query, &str)> = vec![
            (Query::default(), "one\ntwo\nthree\nfour\n"),
            (
                Query {
                    tail_lines: Some(2),
                    ..Query::default()
                },
                "three\nfour\n",
            ),
            (
                Query {
                    tail_lines: Some(0),
                    ..Query::default()
                },
                "",
            ),
            (
                Query {
                    tail_lines: Some(10),
                    ..Query::default()
                },
                "one\ntwo\nthree\nfour\n",
            ),
            (
                Query {
                    since: Some(at("2026-01-01T00:00:02Z")),
                    ..Query::default()
                },
                "two\nthree\nfour\n",
            ),
            (
                Query {
                    limit_bytes: Some(6),
                    ..Query::default()
                },
                "one\ntw",
            ),
            (
                Query {
                    tail_lines: Some(1),
                    timestamps: true,
                    ..Query::default()
                },
                "2026-01-01T00:00:04.000000000Z four\n",
            ),
        ];
        for (q, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&render_all(text, &q)),
                want,
                "{q:?}"
            );
        }
    }

    #[test]
    fn writer_rotates_and_keeps_two_instances() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = at("2026-01-01T00:00:00Z");
        for n in 0..3 {
            let mut w = LogWriter::open(dir.path(), n, 1024).expect("open");
            for i in 0..40 {
                w.write_line(
                    "stdout",
                    format!("instance {n} line {i}").as_bytes(),
                    true,
                    t,
                );
            }
            w.finish();
        }
        let inst = instances(dir.path());
        let numbers: Vec<i32> = inst.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [1, 2], "only the current and previous instance");
        let files = &inst[1].1;
        assert_eq!(files.len(), 2, "rotated once at least: {files:?}");
        assert!(files[0].to_string_lossy().ends_with("2.log.1"));
        for f in files {
            assert!(std::fs::metadata(f).expect("meta").len() <= 1024);
        }
        let all = render_all(&read_files(files), &Query::default());
        let text = String::from_utf8_lossy(&all);
        assert!(text.ends_with("instance 2 line 39\n"), "{text}");
        assert!(dir.path().join("2.done").exists());
        // A long line is split into partial records and joined again when read.
        let mut w = LogWriter::open(dir.path(), 3, DEFAULT_MAX_BYTES).expect("open");
        let long = vec![b'x'; MAX_LINE + 10];
        w.write_line("stdout", &long, true, t);
        let got = render_all(&read_files(&[dir.path().join("3.log")]), &Query::default());
        assert_eq!(got.len(), MAX_LINE + 11);
        let (new, off) = read_new(&dir.path().join("3.log"), 0);
        assert_eq!(new.iter().filter(|b| **b == b'\n').count(), 2);
        let (none, off2) = read_new(&dir.path().join("3.log"), off);
        assert!(none.is_empty());
        assert_eq!(off, off2);
    }
}
