//! Final statements kept in a ledger-schema file: the store of embedded mode, where there is no
//! broker to keep them on. Numbers are the table's primary key, so two closers racing on one file
//! cannot both issue a number: the second commit fails and leaves nothing.

use rusqlite::{OptionalExtension, params};

use super::Statement;
use super::close::{Issued, StatementStore};
use super::period::Period;
use crate::billing::ledger::Ledger;

/// The statements of one ledger.
pub struct LedgerStatements<'a> {
    ledger: &'a Ledger,
}

impl<'a> LedgerStatements<'a> {
    /// The statements kept in `ledger`.
    pub fn new(ledger: &'a Ledger) -> LedgerStatements<'a> {
        LedgerStatements { ledger }
    }

    /// The stored bytes of statement `number`.
    pub fn bytes(&self, number: u64) -> anyhow::Result<Option<Vec<u8>>> {
        let connection = self.ledger.connection();
        Ok(connection.query_row("SELECT bytes FROM statements WHERE number = ?1", [number as i64], |row| row.get(0)).optional()?)
    }

    /// Every statement and closed period kept, and the statements whose bytes failed their checks
    /// (each named; a reader shows the rest).
    pub fn read(&self) -> anyhow::Result<(Issued, Vec<String>)> {
        let connection = self.ledger.connection();
        let (mut issued, mut skipped) = (Issued::new(), Vec::new());
        let mut rows = connection.prepare("SELECT number, bytes FROM statements ORDER BY number")?;
        for row in rows.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)))? {
            let (number, bytes) = row?;
            match Statement::parse(&bytes) {
                Ok(statement) => issued.add(statement),
                Err(error) => skipped.push(format!("statement {number} in {}: {error}", self.ledger.path().display())),
            }
        }
        let mut periods = connection.prepare("SELECT period FROM closed_periods")?;
        for period in periods.query_map([], |row| row.get::<_, String>(0))? {
            issued.mark_closed(Period::parse(&period?)?);
        }
        Ok((issued, skipped))
    }
}

impl StatementStore for LedgerStatements<'_> {
    fn begin(&mut self) -> anyhow::Result<Issued> {
        let (issued, skipped) = self.read()?;
        // Numbering past a statement that cannot be read could reuse or skip its number.
        anyhow::ensure!(skipped.is_empty(), "cannot close: {}", skipped.join("; "));
        Ok(issued)
    }

    fn commit(&mut self, period: Period, statements: &[Statement]) -> anyhow::Result<()> {
        let transaction = self.ledger.connection().unchecked_transaction()?;
        for statement in statements {
            let number = statement.number.ok_or_else(|| anyhow::anyhow!("statement {} has no number", statement.key()))?;
            transaction
                .execute(
                    "INSERT INTO statements (number, account, period, bytes) VALUES (?1, ?2, ?3, ?4)",
                    params![number as i64, statement.account.id, statement.period.to_string(), statement.canonical_bytes()],
                )
                .map_err(|error| anyhow::anyhow!("statement {number} ({}): another closer issued it first ({error})", statement.key()))?;
        }
        transaction.execute("INSERT OR IGNORE INTO closed_periods (period) VALUES (?1)", [period.to_string()])?;
        transaction.commit()?;
        Ok(())
    }
}
