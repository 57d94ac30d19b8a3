//! The CDR writer's local spool: batches it could not commit because PostgreSQL was
//! unreachable, kept on this node's disk until they commit.
//!
//! # Format
//! One file per spooled part of a batch, `spool-<microseconds>-<seq>.jsonl`, one JSON
//! object a line: `{"record":{"cdr":…,"alert":…}}` or
//! `{"answered":{"call_id":…,"at":…}}`. A file is written whole and fsynced, and so is
//! the directory (its new entry), before anyone is told its records are durable; it is
//! never appended to afterwards. Names sort in the order written.
//!
//! # Replay
//! Replaying a record commits its CDR statement again, which is idempotent on the call
//! id: a CDR already stored (the batch did commit, but the file was not yet removed)
//! is found by its insert and charges nothing. So a file may be replayed any number of
//! times, and is removed only after its records committed. A file with a line that
//! cannot be parsed is never deleted: its good lines are replayed like any other, and
//! the file is then renamed `*.corrupt` for a person to look at.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::cdr::Op;
use crate::{Cdr, NewAlert, StoreError};

/// The extension of a spool file waiting for replay.
const EXTENSION: &str = "jsonl";
/// Appended to the name of a file with lines that could not be parsed.
const CORRUPT: &str = "corrupt";

/// One line of a spool file, as read.
// Each line becomes an `Op` at once (the same layout): boxing would only add an
// allocation per CDR.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Record { cdr: Cdr, alert: Option<NewAlert> },
    Answered { call_id: String, at: Timestamp },
}

/// One line of a spool file, as written (borrowing the queued op: no copy of the CDR).
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum LineRef<'a> {
    Record {
        cdr: &'a Cdr,
        alert: Option<&'a NewAlert>,
    },
    Answered {
        call_id: &'a str,
        at: Timestamp,
    },
}

/// `ops` as the text of a spool file.
pub(super) fn encode(ops: &[Op]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for op in ops {
        let line = match op {
            Op::Record { cdr, alert } => LineRef::Record {
                cdr,
                alert: alert.as_ref(),
            },
            Op::Answered(call_id, at) => LineRef::Answered { call_id, at: *at },
        };
        serde_json::to_writer(&mut out, &line)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes `text` as a new spool file in `dir` (created if missing), durably: the file
/// is fsynced, then the directory, so that after a crash the file is there, whole.
/// `seq` numbers this run's files; bumped past a name already taken.
pub(super) fn write(
    path: &Path,
    dir: &Path,
    seq: &mut u64,
    text: &[u8],
) -> Result<PathBuf, StoreError> {
    let err = |file: &Path, context: &'static str| {
        let file = file.to_path_buf();
        move |source| StoreError::Spool {
            path: path.to_path_buf(),
            file,
            context,
            source,
        }
    };
    fs::create_dir_all(dir).map_err(err(dir, "creating the spool directory"))?;
    let micros = Timestamp::now().as_microsecond();
    let (file, mut out) = loop {
        *seq += 1;
        let file = dir.join(format!("spool-{micros:020}-{seq:06}.{EXTENSION}"));
        // `create_new`: never overwrite another file's records.
        match OpenOptions::new().write(true).create_new(true).open(&file) {
            Ok(out) => break (file, out),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(err(&file, "creating the spool file")(e)),
        }
    };
    let written = out
        .write_all(text)
        .and_then(|()| out.sync_all())
        .map_err(err(&file, "writing the spool file"));
    if let Err(e) = written {
        // A partial file would be replayed as far as it goes and then kept as corrupt;
        // its records are still queued in memory, so remove it and let the caller retry.
        drop(out);
        let _ = fs::remove_file(&file);
        return Err(e);
    }
    sync_dir(dir).map_err(err(dir, "syncing the spool directory"))?;
    Ok(file)
}

/// The lock file in the spool directory.
const LOCK: &str = ".lock";

/// Creates the spool directory if missing and takes its lock (an advisory `flock` on
/// `.lock`, held while the returned file is open). `None` when another process holds
/// it: the node's daemon, while a CLI command opens the same store. That process owns
/// the files; this one must neither replay them (their batch may still be in the
/// daemon's memory, and a file may be half written) nor add to them.
pub(super) fn lock(path: &Path, dir: &Path) -> Result<Option<File>, StoreError> {
    let err = |file: &Path, context: &'static str| {
        let file = file.to_path_buf();
        move |source| StoreError::Spool {
            path: path.to_path_buf(),
            file,
            context,
            source,
        }
    };
    fs::create_dir_all(dir).map_err(err(dir, "creating the spool directory"))?;
    let file = dir.join(LOCK);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&file)
        .map_err(err(&file, "opening the spool's lock file"))?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(spool = %dir.display(),
                "the spool directory is in use by another process (this node's daemon?); \
                 this store runs without a spool and leaves its files alone");
            Ok(None)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(err(&file, "locking the spool directory")(e)),
    }
}

/// Makes the directory's entries (a file created, renamed) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What a previous run left in the spool.
#[derive(Default)]
pub(super) struct Leftover {
    /// Every parsed line of every file, in the order written.
    pub(super) ops: Vec<Op>,
    /// The files whose every line parsed: removed once `ops` committed.
    pub(super) files: Vec<PathBuf>,
    /// The files with a line that did not parse, and the first such line's problem:
    /// renamed `*.corrupt` once `ops` committed.
    pub(super) corrupt: Vec<(PathBuf, String)>,
}

/// Reads the spool directory `dir` (nothing if it does not exist).
pub(super) fn read(path: &Path, dir: &Path) -> Result<Leftover, StoreError> {
    let err = |file: &Path, context: &'static str| {
        let file = file.to_path_buf();
        move |source| StoreError::Spool {
            path: path.to_path_buf(),
            file,
            context,
            source,
        }
    };
    let mut leftover = Leftover::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(leftover),
        Err(e) => return Err(err(dir, "reading the spool directory")(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(err(dir, "reading the spool directory"))?;
        let file = entry.path();
        if file.extension().is_some_and(|e| e == EXTENSION) {
            names.push(file);
        }
    }
    // The names sort in the order the files were written.
    names.sort();
    for file in names {
        let bytes = fs::read(&file).map_err(err(&file, "reading the spool file"))?;
        let mut problem = None;
        match std::str::from_utf8(&bytes) {
            Err(e) => problem = Some(format!("not UTF-8: {e}")),
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    match serde_json::from_str::<Line>(line) {
                        Ok(Line::Record { cdr, alert }) => {
                            leftover.ops.push(Op::Record { cdr, alert })
                        }
                        Ok(Line::Answered { call_id, at }) => {
                            leftover.ops.push(Op::Answered(call_id, at))
                        }
                        Err(e) => {
                            problem.get_or_insert_with(|| format!("line {}: {e}", n + 1));
                        }
                    }
                }
            }
        }
        match problem {
            None => leftover.files.push(file),
            Some(problem) => leftover.corrupt.push((file, problem)),
        }
    }
    Ok(leftover)
}

/// Removes spool files whose records have committed. A file that cannot be removed is
/// only logged: replaying it again later charges nothing (see the module's docs).
pub(super) fn remove(files: &[PathBuf]) {
    for file in files {
        if let Err(e) = fs::remove_file(file) {
            tracing::warn!(file = %file.display(), error = %e,
                "cannot remove a replayed spool file (replaying it again is harmless)");
        }
    }
}

/// Renames a file with unparsable lines to `*.corrupt` (kept, never replayed again).
pub(super) fn set_aside(file: &Path, problem: &str) {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(CORRUPT);
    let target = PathBuf::from(name);
    match fs::rename(file, &target) {
        Ok(()) => {
            tracing::error!(file = %target.display(), %problem,
                "spool file has lines that cannot be read; its readable records were replayed, \
                 the file is kept as {} for inspection", target.display())
        }
        Err(e) => {
            tracing::error!(file = %file.display(), %problem, error = %e,
                "spool file has lines that cannot be read, and cannot be renamed to *.corrupt; \
                 its readable records were replayed (it will be replayed again at the next start)")
        }
    }
    if let Some(dir) = file.parent() {
        let _ = sync_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spool_file_reads_back_as_written_and_a_bad_line_marks_it_corrupt() {
        let dir = std::env::temp_dir().join(format!("sihai-spool-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let at = Timestamp::from_second(1_700_000_000).expect("a valid instant");
        let alert = NewAlert {
            enterprise: "acme".into(),
            url: "https://example.com/hook".into(),
            payload: "{}".into(),
        };
        let cdr = Cdr {
            call_id: "c1".into(),
            number: "4001234567".into(),
            enterprise: "acme".into(),
            caller: "13812345678".into(),
            caller_province: Some("广东".into()),
            caller_city: None,
            answered_by: None,
            attempts: Vec::new(),
            setup_at: at,
            ring_at: None,
            answer_at: None,
            end_at: at,
            talk_seconds: 0,
            outcome: crate::Outcome::NoAnswer,
            hangup_side: None,
            hangup_cause: None,
            recording: None,
            menu_path: None,
            announcement: None,
            billed_seconds: 0,
            cost: Some(crate::Money::from_units(1234)),
            tariff: None,
            customer_id: None,
        };
        let ops = vec![
            Op::Record {
                cdr: cdr.clone(),
                alert: Some(alert.clone()),
            },
            Op::Answered("c2".into(), at),
        ];
        let text = encode(&ops).expect("encode");
        let path = Path::new("postgres://test");
        let mut seq = 0;
        let first = write(path, &dir, &mut seq, &text).expect("write");
        let mut bad = text.clone();
        bad.extend_from_slice(b"{\"record\":{\"cdr\":\n");
        let second = write(path, &dir, &mut seq, &bad).expect("write");
        assert!(first < second, "names sort in the order written");

        let leftover = read(path, &dir).expect("read");
        assert_eq!(leftover.files, vec![first]);
        assert_eq!(leftover.corrupt.len(), 1);
        assert_eq!(leftover.corrupt[0].0, second);
        assert!(leftover.corrupt[0].1.starts_with("line 3"));
        assert_eq!(leftover.ops.len(), 4);
        match &leftover.ops[0] {
            Op::Record { cdr: c, alert: a } => {
                assert_eq!(c, &cdr);
                assert_eq!(a.as_ref(), Some(&alert));
            }
            Op::Answered(..) => panic!("a record first"),
        }
        assert!(matches!(&leftover.ops[1], Op::Answered(id, t) if id == "c2" && *t == at));

        set_aside(&second, "test");
        remove(&leftover.files);
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        assert_eq!(names.len(), 1);
        assert!(names[0].ends_with(".jsonl.corrupt"), "{names:?}");
        assert!(read(path, &dir).expect("read").ops.is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
