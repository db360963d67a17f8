//! One way to open the SQLite files usagebill writes (the outbox, the ledger, the feed views): the
//! directory made, WAL set outside any transaction and checked, `synchronous = NORMAL`, a busy
//! timeout, then the schema brought up to date from `PRAGMA user_version` in one transaction. A file
//! newer than this code, or one that is not a database, is refused and left as it is.

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

/// Why a file could not be opened; the caller wraps it in its own error, which names the file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The directory for the file cannot be created.
    #[error("cannot create its directory")]
    CreateDir(#[source] std::io::Error),
    /// The file was written by a newer usagebill.
    #[error("schema version {found}; this usagebill understands up to {supported}")]
    TooNew {
        /// Its `user_version`.
        found: i64,
        /// The newest version this code knows.
        supported: i64,
    },
    /// Not a SQLite database, corrupt, or not in WAL mode.
    #[error("{0}")]
    Damaged(String),
    /// SQLite refused (a full disk, an I/O error, a lock).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// Opens (creating if needed) `path` for writing, with `migrations[n]` moving the schema from
/// version `n` to `n + 1`. `before_migrating` runs on the connection first (registering functions
/// a migration uses, or pragmas of the caller's own).
pub fn open_for_writing(
    path: &Path,
    migrations: &[&str],
    before_migrating: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> Result<Connection, OpenError> {
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(OpenError::CreateDir)?;
    }
    let mut connection = Connection::open(path).map_err(damaged_or)?;
    // Set outside any transaction: inside one SQLite silently ignores it.
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(damaged_or)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(OpenError::Damaged(format!("journal mode is {mode}, not WAL")));
    }
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.busy_timeout(Duration::from_secs(5))?;
    before_migrating(&connection)?;
    migrate(&mut connection, migrations)?;
    Ok(connection)
}

/// Brings the schema of `connection` up to `migrations.len()` in one transaction.
fn migrate(connection: &mut Connection, migrations: &[&str]) -> Result<(), OpenError> {
    let supported = migrations.len() as i64;
    let found: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).map_err(damaged_or)?;
    if found > supported {
        return Err(OpenError::TooNew { found, supported });
    }
    if found == supported {
        return Ok(());
    }
    let transaction = connection.transaction()?;
    for migration in &migrations[found.max(0) as usize..] {
        transaction.execute_batch(migration).map_err(damaged_or)?;
    }
    transaction.pragma_update(None, "user_version", supported)?;
    transaction.commit()?;
    Ok(())
}

/// SQLite's "not a database" and "corrupt" as [`OpenError::Damaged`]; anything else as it is.
fn damaged_or(error: rusqlite::Error) -> OpenError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, message)
            if matches!(failure.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt) =>
        {
            OpenError::Damaged(message.clone().unwrap_or_else(|| failure.to_string()))
        }
        _ => OpenError::Sqlite(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[&str] = &["CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;", "CREATE TABLE b (z INTEGER);"];

    #[test]
    fn a_file_of_every_older_version_is_brought_up_to_date_keeping_its_rows() {
        for version in 0..MIGRATIONS.len() {
            let directory = tempfile::tempdir().unwrap();
            let path = directory.path().join("nested/file.db");
            let older = open_for_writing(&path, &MIGRATIONS[..version], |_| Ok(())).unwrap();
            if version >= 1 {
                older.execute("INSERT INTO a (x) VALUES (7)", []).unwrap();
            }
            drop(older);
            let connection = open_for_writing(&path, MIGRATIONS, |_| Ok(())).unwrap();
            let found: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
            assert_eq!(found, 3, "from version {version}");
            connection.execute("INSERT INTO b (z) VALUES (1)", []).unwrap();
            let kept: i64 = connection.query_row("SELECT count(*) FROM a", [], |row| row.get(0)).unwrap();
            assert_eq!(kept, i64::from(version >= 1), "rows written at version {version} are kept");
        }
    }

    #[test]
    fn a_newer_or_damaged_file_is_refused_and_left_alone() {
        let directory = tempfile::tempdir().unwrap();
        let newer = directory.path().join("newer.db");
        drop(open_for_writing(&newer, MIGRATIONS, |_| Ok(())).unwrap());
        let refused = open_for_writing(&newer, &MIGRATIONS[..2], |_| Ok(())).unwrap_err();
        assert!(matches!(refused, OpenError::TooNew { found: 3, supported: 2 }), "{refused:?}");
        let junk = directory.path().join("junk.db");
        std::fs::write(&junk, b"this is not a database, and it is long enough to have a header").unwrap();
        let before = std::fs::read(&junk).unwrap();
        assert!(matches!(open_for_writing(&junk, MIGRATIONS, |_| Ok(())).unwrap_err(), OpenError::Damaged(_)));
        assert_eq!(std::fs::read(&junk).unwrap(), before, "left untouched");
    }
}
