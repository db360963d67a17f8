//! Start at login: the XDG autostart entry (`$XDG_CONFIG_HOME/autostart/usagebill.desktop`) that
//! desktop sessions read when someone logs in. It is the shipped desktop entry with `Exec` set to
//! this binary's path, so it passes the same validation. Written on the supervisor thread, never
//! on the UI's.
//!
//! A writer of our own rather than the auto-launch crate: that one ignores `XDG_CONFIG_HOME` and
//! does not quote the command line, and a path with a space would then not start.

use std::path::{Path, PathBuf};

/// The shipped desktop entry the autostart entry is made from.
const SHIPPED_ENTRY: &str = include_str!("../../assets/usagebill.desktop");

/// Where the entry goes and what it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Autostart {
    /// The entry file.
    pub entry: PathBuf,
    /// The program it starts.
    pub program: PathBuf,
}

impl Autostart {
    /// This user's entry for this binary: under `$XDG_CONFIG_HOME` (an absolute path), else
    /// `~/.config`, as the XDG base directory rules say; `None` when neither can be found.
    pub fn for_user() -> Option<Autostart> {
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))?;
        let program = std::env::current_exe().ok()?;
        Some(Autostart { entry: config_home.join("autostart").join("usagebill.desktop"), program })
    }

    /// Whether the entry is there (someone may have removed it by hand: the file decides).
    pub fn enabled(&self) -> bool {
        self.entry.is_file()
    }

    /// Writes the entry (atomically: a half-written entry would not start, or start wrongly) or
    /// removes it. The error names the file and says what went wrong, in plain words.
    pub fn set(&self, enabled: bool) -> Result<(), String> {
        let failed = |doing: &str, error: std::io::Error| format!("cannot {doing} {}: {error}", self.entry.display());
        if !enabled {
            return match std::fs::remove_file(&self.entry) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(failed("remove", error)),
                _ => Ok(()),
            };
        }
        let text = entry_text(&self.program).map_err(|reason| format!("cannot start {} at login: {reason}", self.program.display()))?;
        let directory = self.entry.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(directory).map_err(|error| failed("create the folder of", error))?;
        crate::files::replace(&self.entry, text.as_bytes()).map_err(|error| failed("write", error))
    }
}

/// The shipped entry with `Exec` starting `program`.
pub fn entry_text(program: &Path) -> Result<String, String> {
    let exec = exec_value(program)?;
    let mut text = String::with_capacity(SHIPPED_ENTRY.len() + exec.len());
    for line in SHIPPED_ENTRY.lines() {
        if line.starts_with("Exec=") {
            text.push_str("Exec=");
            text.push_str(&exec);
        } else {
            text.push_str(line);
        }
        text.push('\n');
    }
    text.push_str("X-GNOME-Autostart-enabled=true\n");
    Ok(text)
}

/// `program` as the Desktop Entry spec's `Exec` key wants it: in double quotes when it holds a
/// character the spec reserves, with `"`, `` ` ``, `$` and `\` escaped inside them; `%` doubled
/// (a field code otherwise); then every `\` doubled again, as in any string value of the file.
fn exec_value(program: &Path) -> Result<String, String> {
    let text = program.to_str().ok_or("its path is not UTF-8, which a desktop entry cannot hold")?;
    if text.chars().any(|c| c.is_control()) {
        return Err("its path holds a control character, which a desktop entry cannot hold".into());
    }
    const RESERVED: &[char] = &[' ', '\t', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`'];
    let mut argument = String::with_capacity(text.len() + 2);
    if text.contains(RESERVED) {
        argument.push('"');
        for c in text.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                argument.push('\\');
            }
            argument.push(c);
        }
        argument.push('"');
    } else {
        argument.push_str(text);
    }
    Ok(argument.replace('%', "%%").replace('\\', "\\\\"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_path_goes_in_as_it_is_and_a_path_with_spaces_is_quoted_and_escaped() {
        assert_eq!(exec_value(Path::new("/usr/bin/usagebill")).unwrap(), "/usr/bin/usagebill");
        assert_eq!(exec_value(Path::new("/opt/My Apps/usagebill")).unwrap(), "\"/opt/My Apps/usagebill\"");
        // `$` escaped inside the quotes, then that backslash doubled as a string value's.
        assert_eq!(exec_value(Path::new("/opt/a$b/usagebill")).unwrap(), "\"/opt/a\\\\$b/usagebill\"");
        assert_eq!(exec_value(Path::new("/opt/100%/usagebill")).unwrap(), "/opt/100%%/usagebill");
        assert!(exec_value(Path::new("/opt/a\nb")).unwrap_err().contains("control character"));
    }

    #[test]
    fn the_entry_is_the_shipped_one_starting_this_program() {
        let text = entry_text(Path::new("/home/ann/.local/bin/usagebill")).unwrap();
        assert!(text.lines().any(|line| line == "Exec=/home/ann/.local/bin/usagebill"), "{text}");
        assert_eq!(text.lines().filter(|line| line.starts_with("Exec=")).count(), 1);
        assert!(text.starts_with("[Desktop Entry]\n") && text.contains("Icon=usagebill\n"), "{text}");
    }

    #[test]
    fn setting_writes_and_removes_the_entry_and_a_blocked_folder_is_named() {
        let home = tempfile::tempdir().unwrap();
        let autostart = Autostart { entry: home.path().join("autostart/usagebill.desktop"), program: "/usr/bin/usagebill".into() };
        assert!(!autostart.enabled());
        autostart.set(true).unwrap();
        assert!(autostart.enabled());
        assert_eq!(std::fs::read_to_string(&autostart.entry).unwrap(), entry_text(&autostart.program).unwrap());
        autostart.set(false).unwrap();
        autostart.set(false).unwrap();
        assert!(!autostart.enabled());
        // A file where the folder should be: the message names the entry and the folder's trouble.
        std::fs::write(home.path().join("blocked"), "").unwrap();
        let blocked = Autostart { entry: home.path().join("blocked/usagebill.desktop"), ..autostart };
        let error = blocked.set(true).unwrap_err();
        assert!(error.contains("cannot create the folder of") && error.contains("blocked/usagebill.desktop"), "{error}");
    }
}
