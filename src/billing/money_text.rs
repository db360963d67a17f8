//! Money as people read it, for the views and the notifications alike: the currency's symbol or
//! code, thousands apart, rounded once to the minor unit. Exports, the API and statements keep
//! the exact amounts; this is display only.

use rust_decimal::Decimal;

use super::price::round_for_display;

/// An amount as people read money: the currency's symbol (or code), thousands separated, rounded
/// to the currency's minor unit (`$6,134.75`, `¥1,200`, `CHF 0.07`); a non-zero amount that would
/// round to nothing reads `< $0.01`. The exact figure is [`exact_money`], for hover texts and every
/// export.
pub fn money(amount: Decimal, currency: &str) -> String {
    money_to(amount, currency, minor_unit_digits(currency))
}

/// The exact amount with its code, unrounded: `0.000067 USD`.
pub fn exact_money(amount: Decimal, currency: &str) -> String {
    format!("{} {currency}", amount.normalize())
}

/// [`money`] to `digits` places (fewer than the minor unit for rough figures).
pub fn money_to(amount: Decimal, currency: &str, digits: u32) -> String {
    let rounded = round_for_display(amount, digits);
    if rounded.is_zero() && !amount.is_zero() {
        let smallest = Decimal::new(1, digits);
        return if amount > Decimal::ZERO {
            format!("< {}", with_symbol(&grouped(smallest, digits), currency))
        } else {
            format!("> -{}", with_symbol(&grouped(smallest, digits), currency))
        };
    }
    let sign = if rounded < Decimal::ZERO { "-" } else { "" };
    format!("{sign}{}", with_symbol(&grouped(rounded.abs(), digits), currency))
}

/// `digits` places with a comma between each three whole digits: `6,134.75`.
fn grouped(amount: Decimal, digits: u32) -> String {
    let mut fixed = amount;
    fixed.rescale(digits);
    let text = fixed.to_string();
    let (whole, fraction) = text.split_once('.').map_or((text.as_str(), None), |(whole, fraction)| (whole, Some(fraction)));
    let mut out = String::with_capacity(text.len() + whole.len() / 3);
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

fn with_symbol(number: &str, currency: &str) -> String {
    match currency {
        "USD" => format!("${number}"),
        "EUR" => format!("€{number}"),
        "GBP" => format!("£{number}"),
        "JPY" => format!("¥{number}"),
        _ => format!("{currency} {number}"),
    }
}

/// The currency's minor unit in decimal places (ISO 4217): none for the yen and the won, three
/// for the dinars of Bahrain, Iraq, Jordan, Kuwait, Libya and Tunisia and the Omani rial, else two.
pub fn minor_unit_digits(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" | "UGX" | "PYG" | "XAF" | "XOF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn money_reads_in_the_currencys_symbol_and_minor_unit_with_thousands_apart() {
        let amount = |text: &str| Decimal::from_str(text).unwrap();
        assert_eq!(money(amount("6134.748365"), "USD"), "$6,134.75");
        assert_eq!(money(amount("4397819.195507"), "USD"), "$4,397,819.20");
        assert_eq!(money(amount("0.005"), "USD"), "$0.01", "half a cent rounds away from zero");
        assert_eq!(money(amount("0.000067"), "USD"), "< $0.01");
        assert_eq!(money(amount("-0.000067"), "USD"), "> -$0.01");
        assert_eq!(money(amount("-1234.5"), "EUR"), "-€1,234.50");
        assert_eq!(money(Decimal::ZERO, "GBP"), "£0.00");
        assert_eq!(money(amount("2"), "USD"), "$2.00");
        assert_eq!(money(amount("1200.4"), "JPY"), "¥1,200");
        assert_eq!(money(amount("0.0704"), "CHF"), "CHF 0.07");
        assert_eq!(money(amount("12.3456"), "KWD"), "KWD 12.346");
        assert_eq!(money(amount("999.999"), "USD"), "$1,000.00");
        assert_eq!(exact_money(amount("0.000067000"), "USD"), "0.000067 USD");
    }
}
