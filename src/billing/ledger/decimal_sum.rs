//! `decimal_sum(text)`: an SQLite aggregate summing decimal strings exactly, so reports never pass
//! money through SQLite's floating-point `sum()`; and `decimal_add(text, text)`, its two-operand
//! form, so a rollup row is updated in place instead of read, merged and written back.

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
        let amount = parse_operand(context, 0)?;
        *sum = sum.checked_add(amount).ok_or_else(|| rusqlite::Error::UserFunctionError("decimal_sum overflowed".into()))?;
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, sum: Option<Decimal>) -> rusqlite::Result<String> {
        Ok(sum.unwrap_or(Decimal::ZERO).normalize().to_string())
    }
}

/// The amount stored (or summed) in column `index` of `row`. Every reader of money goes through
/// here, so a corrupt amount is an error that names it, never a silent zero.
pub fn read_amount(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Decimal> {
    let text: String = row.get(index)?;
    Decimal::from_str(&text)
        .map_err(|_| rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, not_a_decimal(&text).into()))
}

fn not_a_decimal(text: &str) -> String {
    format!("stored amount {text:?} is not a decimal")
}

fn parse_operand(context: &Context<'_>, index: usize) -> rusqlite::Result<Decimal> {
    let text: String = context.get(index)?;
    Decimal::from_str(&text).map_err(|_| rusqlite::Error::UserFunctionError(not_a_decimal(&text).into()))
}

/// Registers `decimal_sum` and `decimal_add` on `connection`.
pub fn register(connection: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    connection.create_aggregate_function("decimal_sum", 1, flags, DecimalSum)?;
    connection.create_scalar_function("decimal_add", 2, flags, |context| {
        let sum = parse_operand(context, 0)?
            .checked_add(parse_operand(context, 1)?)
            .ok_or_else(|| rusqlite::Error::UserFunctionError("decimal_add overflowed".into()))?;
        Ok(sum.normalize().to_string())
    })
}
