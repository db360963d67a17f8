//! "Did you mean …?" for misspelt config keys: the nearest valid key by edit distance.

/// Adds a suggestion to a serde "unknown field `x`, expected one of `a`, `b`" message.
pub fn with_suggestion(message: &str) -> String {
    let Some(unknown) = between(message, "unknown field `", "`") else { return message.to_owned() };
    let Some(expected) =
        message.split_once("expected one of ").map(|(_, rest)| rest).or_else(|| message.split_once("expected ").map(|(_, rest)| rest))
    else {
        return message.to_owned();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let nearest = candidates.iter().map(|candidate| (edit_distance(unknown, candidate), *candidate)).min();
    match nearest {
        Some((distance, candidate)) if distance <= unknown.len().max(3) / 2 + 1 => format!("{message}\ndid you mean `{candidate}`?"),
        _ => message.to_owned(),
    }
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let length = text[start..].find(close)?;
    Some(&text[start..start + length])
}

/// Levenshtein distance over bytes (config keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &left) in a.as_bytes().iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &right) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(left != right);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_key() {
        let message = "unknown field `broker`, expected one of `brokers`, `topic`, `cost_topic`";
        assert!(with_suggestion(message).ends_with("did you mean `brokers`?"));
        let message = "unknown field `sample_intervall`, expected one of `machine_id`, `sample_interval`";
        assert!(with_suggestion(message).ends_with("did you mean `sample_interval`?"));
    }

    #[test]
    fn says_nothing_when_nothing_is_close() {
        let message = "unknown field `zzzzzzzz`, expected one of `brokers`, `topic`";
        assert_eq!(with_suggestion(message), message);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
