//! Exact amounts as text, digit for digit what `Decimal`'s `Display` writes (the whole scale kept,
//! trailing zeros too), without its division of the 96-bit mantissa by ten for every digit. The
//! ledger and the cost feed write seven amounts a record, and `Decimal::to_string` was the largest
//! single cost of the worker's ledger thread.

use rust_decimal::Decimal;

use super::price::PricedLine;

/// A line's seven amounts as text, in one buffer that is reused line after line.
#[derive(Debug, Default)]
pub struct LineTexts {
    text: String,
    /// Where each amount ends in `text`, in the order of [`PricedLine::amounts`].
    ends: [usize; 7],
}

impl LineTexts {
    /// Replaces the texts with those of `line`'s amounts.
    pub fn write(&mut self, line: &PricedLine) {
        self.text.clear();
        for (end, amount) in self.ends.iter_mut().zip(line.amounts()) {
            write_amount(&mut self.text, amount);
            *end = self.text.len();
        }
    }

    /// The text of amount `index`, in the order of [`PricedLine::amounts`].
    pub fn get(&self, index: usize) -> &str {
        let start = if index == 0 { 0 } else { self.ends[index - 1] };
        &self.text[start..self.ends[index]]
    }
}

/// Appends `amount` to `out` as `Decimal::to_string` would.
fn write_amount(out: &mut String, amount: Decimal) {
    // The sign comes from the sign bit, as in `Display`: a negative zero is written "-0".
    if amount.is_sign_negative() {
        out.push('-');
    }
    let mut buffer = [0u8; MAX_DIGITS];
    let digits = mantissa_digits(amount.mantissa().unsigned_abs(), &mut buffer);
    let scale = amount.scale() as usize;
    if scale == 0 {
        out.push_str(digits);
    } else if digits.len() > scale {
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', scale - digits.len()));
        out.push_str(digits);
    }
}

/// Digits of the largest mantissa, 2^96 - 1.
const MAX_DIGITS: usize = 29;
/// Ten to the nineteenth: the largest power of ten a u64 holds.
const CHUNK: u128 = 10_000_000_000_000_000_000;

/// The decimal digits of `mantissa` (below 2^96), written right-aligned into `buffer`.
fn mantissa_digits(mantissa: u128, buffer: &mut [u8; MAX_DIGITS]) -> &str {
    // Two u64 halves: digit extraction on u64 is a multiplication, on u128 a library division.
    let high = mantissa / CHUNK;
    let (high, low) = (high as u64, (mantissa - high * CHUNK) as u64);
    let mut start = MAX_DIGITS;
    let mut push_digits = |mut value: u64, at_least: usize| {
        let end = start;
        while value > 0 || end - start < at_least {
            start -= 1;
            buffer[start] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    if high > 0 {
        push_digits(low, 19);
        push_digits(high, 1);
    } else {
        push_digits(low, 1);
    }
    std::str::from_utf8(&buffer[start..]).expect("ASCII digits")
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn written(amount: Decimal) -> String {
        let mut out = String::from("prefix:");
        write_amount(&mut out, amount);
        out.strip_prefix("prefix:").unwrap().to_owned()
    }

    #[test]
    fn every_amount_is_written_as_display_writes_it() {
        let texts = [
            "0",
            "0.00",
            "1",
            "-1",
            "1.50",
            "-0.000001",
            "0.0000000000000000000000000001",
            "123456789.123456789",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "7.9228162514264337593543950335",
            "0.7922816251426433759354395033",
            "10",
            "100.0",
            "0.1",
            "-0.1",
        ];
        for text in texts {
            let amount = Decimal::from_str(text).unwrap();
            assert_eq!(written(amount), amount.to_string(), "{text}");
        }
        let negative_zero = Decimal::from_str("-0.00").unwrap();
        assert_eq!(written(negative_zero), negative_zero.to_string());
    }

    #[test]
    fn a_lines_texts_are_its_amounts_in_order_and_a_reused_buffer_keeps_no_trace_of_the_last_line() {
        let line = |first: &str| PricedLine {
            card_version: "v1".into(),
            currency: "USD".into(),
            cpu: Decimal::from_str(first).unwrap(),
            memory: Decimal::from_str("0.25").unwrap(),
            net_rx: Decimal::ZERO,
            net_tx: Decimal::from_str("0.000001").unwrap(),
            disk_read: Decimal::from(3),
            disk_write: Decimal::from_str("-0.5").unwrap(),
            total: Decimal::from_str("12.345").unwrap(),
        };
        let mut texts = LineTexts::default();
        texts.write(&line("123456.789"));
        texts.write(&line("1.5"));
        let written: Vec<&str> = (0..7).map(|index| texts.get(index)).collect();
        assert_eq!(written, line("1.5").amounts().map(|amount| amount.to_string()));
    }

    #[test]
    fn amounts_of_every_scale_and_size_are_written_as_display_writes_them() {
        // A simple generator (no dependency): mantissas of every length, every scale, both signs.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let bits = (next() % 96) as u32;
            let mantissa = ((u128::from(next()) << 64 | u128::from(next())) >> (128 - bits.max(1))) as i128;
            let scale = (next() % 29) as u32;
            let mut amount = Decimal::from_i128_with_scale(mantissa, scale);
            amount.set_sign_negative(next() % 2 == 0);
            assert_eq!(written(amount), amount.to_string(), "mantissa {mantissa} scale {scale}");
        }
    }
}
