//! A final statement written out for a person: its PDF (then opened with the desktop's opener) or
//! its CSV, in `statements/` in the data dir. Run on the statement reader's thread, never a view's.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::billing::statement::Statement;
use crate::billing::statement::render::{statement_csv, statement_pdf};

/// The program that opens a file with the person's chosen application.
pub const OPENER: &str = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };

/// How long the opener is given to say it failed. `xdg-open` returns once the viewer started (or
/// at once, when nothing opens PDFs); a few openers keep running with the viewer, so it is not
/// waited for longer than this, and is reaped on a thread of its own.
const OPENER_WAIT: Duration = Duration::from_secs(3);

/// Which form of a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// PDF, opened once written.
    Pdf,
    /// CSV, only written.
    Csv,
}

impl FileKind {
    fn extension(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Csv => "csv",
        }
    }
}

/// What became of a file once written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// Written (CSV).
    Saved,
    /// Written and handed to the opener.
    Opened,
    /// Written, but there is no opener on this system (named).
    NoOpener(&'static str),
    /// Written, but the opener failed; why, in words.
    NotOpened(String),
}

/// The outcome of writing one statement's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementFile {
    /// The statement.
    pub number: u64,
    /// Which form.
    pub kind: FileKind,
    /// Where it was written and what became of it, or why it was not written.
    pub outcome: Result<(PathBuf, Written), String>,
}

/// `statement-12.pdf`.
pub fn file_name(number: u64, kind: FileKind) -> String {
    format!("statement-{number}.{}", kind.extension())
}

/// Writes `statement` into `dir` as `kind` (a PDF is opened then); an error in plain words.
pub fn write(dir: &Path, statement: &Statement, kind: FileKind) -> Result<(PathBuf, Written), String> {
    let number = statement.number.ok_or("a draft has no file: only final statements are written out")?;
    let bytes = match kind {
        FileKind::Pdf => statement_pdf(statement),
        FileKind::Csv => statement_csv(statement).into_bytes(),
    };
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot make the folder {}: {error}", dir.display()))?;
    let path = dir.join(file_name(number, kind));
    // Replaced whole: a viewer still showing the last copy never reads half a file.
    crate::files::replace(&path, &bytes).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    let written = match kind {
        FileKind::Pdf => open(&path),
        FileKind::Csv => Written::Saved,
    };
    Ok((path, written))
}

/// Hands `path` to the desktop's opener.
fn open(path: &Path) -> Written {
    let started = Command::new(OPENER).arg(path).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
    match started {
        Ok(child) => wait_briefly(child),
        Err(error) if error.kind() == ErrorKind::NotFound => Written::NoOpener(OPENER),
        Err(error) => Written::NotOpened(format!("{OPENER} did not start: {error}")),
    }
}

fn wait_briefly(mut child: Child) -> Written {
    let deadline = Instant::now() + OPENER_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Written::Opened,
            // xdg-open's 3 and 4: no tool, or no application, for the file.
            Ok(Some(status)) => return Written::NotOpened(format!("{OPENER} could not open it ({status})")),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) | Err(_) => break,
        }
    }
    let reaper = std::thread::Builder::new().name("statement-opener".into()).spawn(move || child.wait());
    if let Err(error) = reaper {
        tracing::warn!("cannot wait for {OPENER} on a thread of its own: {error}");
    }
    Written::Opened
}
