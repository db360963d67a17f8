//! A set of a machine's seqs, written as ranges ("1-120,125,130-131"): how a statement names the
//! records it billed, so a later statement can tell which records of a closed period are new.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seqs, kept sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    seqs: BTreeSet<u64>,
}

impl SeqSet {
    /// No seqs.
    pub fn new() -> SeqSet {
        SeqSet::default()
    }

    /// Adds `seq`.
    pub fn insert(&mut self, seq: u64) {
        self.seqs.insert(seq);
    }

    /// Adds every seq of `other`.
    pub fn extend(&mut self, other: &SeqSet) {
        self.seqs.extend(&other.seqs);
    }

    /// Whether `seq` is in it.
    pub fn contains(&self, seq: u64) -> bool {
        self.seqs.contains(&seq)
    }

    /// The seqs, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.seqs.iter().copied()
    }

    /// How many seqs.
    pub fn len(&self) -> u64 {
        self.seqs.len() as u64
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    /// The seqs between the lowest and the highest that are missing.
    pub fn gaps(&self) -> u64 {
        match (self.seqs.first(), self.seqs.last()) {
            (Some(first), Some(last)) => last - first + 1 - self.len(),
            _ => 0,
        }
    }

    /// Parses the range form.
    pub fn parse(text: &str) -> Result<SeqSet, String> {
        let mut set = SeqSet::new();
        if text.is_empty() {
            return Ok(set);
        }
        for part in text.split(',') {
            let bad = || format!("seqs {text:?}: {part:?} is not a seq or a range low-high");
            let (low, high) = match part.split_once('-') {
                Some((low, high)) => (low.parse::<u64>().map_err(|_| bad())?, high.parse::<u64>().map_err(|_| bad())?),
                None => {
                    let seq = part.parse::<u64>().map_err(|_| bad())?;
                    (seq, seq)
                }
            };
            if high < low || high - low > 100_000_000 {
                return Err(bad());
            }
            set.seqs.extend(low..=high);
        }
        Ok(set)
    }
}

impl FromIterator<u64> for SeqSet {
    fn from_iter<I: IntoIterator<Item = u64>>(seqs: I) -> SeqSet {
        SeqSet { seqs: seqs.into_iter().collect() }
    }
}

impl fmt::Display for SeqSet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut seqs = self.seqs.iter().copied().peekable();
        let mut first = true;
        while let Some(low) = seqs.next() {
            let mut high = low;
            while seqs.peek() == Some(&(high + 1)) {
                high = seqs.next().unwrap_or(high);
            }
            if !first {
                formatter.write_str(",")?;
            }
            first = false;
            if high == low { write!(formatter, "{low}")? } else { write!(formatter, "{low}-{high}")? }
        }
        Ok(())
    }
}

impl Serialize for SeqSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SeqSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<SeqSet, D::Error> {
        SeqSet::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_are_written_as_ranges_and_read_back() {
        let set: SeqSet = [1, 2, 3, 5, 7, 8, 10].into_iter().collect();
        assert_eq!(set.to_string(), "1-3,5,7-8,10");
        assert_eq!(SeqSet::parse("1-3,5,7-8,10").unwrap(), set);
        assert_eq!(set.gaps(), 3);
        assert_eq!(SeqSet::parse("").unwrap().to_string(), "");
        assert!(SeqSet::parse("5-2").unwrap_err().contains("\"5-2\""));
        assert!(SeqSet::parse("a").is_err());
    }
}
