//! `decimal_sum(text)`: an SQLite aggregate summing decimal strings exactly, so reports never pass
//! money through SQLite's floating-point `sum()`.

use std::str::FromStr;

use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rust_decimal::Decimal;

struct DecimalSum;

impl Aggregate<Decimal, String> for DecimalSum {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<Decimal> {
        Ok(Decimal::ZERO)
    }

    fn step(&self, context: &mut Context<'_>, sum: &mut Decimal) -> rusqlite::Result<()> {
        let text: String = context.get(0)?;
        let amount = Decimal::from_str(&text).map_err(|error| rusqlite::Error::UserFunctionError(Box::new(error)))?;
        *sum = sum.checked_add(amount).ok_or_else(|| rusqlite::Error::UserFunctionError("decimal_sum overflowed".into()))?;
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, sum: Option<Decimal>) -> rusqlite::Result<String> {
        Ok(sum.unwrap_or(Decimal::ZERO).normalize().to_string())
    }
}

/// Registers `decimal_sum` on `connection`.
pub fn register(connection: &Connection) -> rusqlite::Result<()> {
    connection.create_aggregate_function("decimal_sum", 1, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, DecimalSum)
}
