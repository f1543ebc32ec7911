//! "Did you mean …?" for a mistyped program name.

/// The closest of `names` to `wanted`: a case-insensitive match first, else
/// the nearest within a third of the shorter name's length (at least one
/// edit, at most two), so short names do not suggest unrelated ones (ties go
/// to the first in `names`' order).
pub fn closest<'a, I>(wanted: &str, names: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted_lower = wanted.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for name in names {
        if name.to_lowercase() == wanted_lower {
            return Some(name);
        }
        let d = levenshtein(wanted, name);
        let shorter = wanted.chars().count().min(name.chars().count());
        let limit = (shorter / 3).clamp(1, 2);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, name));
        }
    }
    best.map(|(_, name)| name)
}

/// Edit distance (insertions, deletions, substitutions) over chars.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // One row of the DP table: row[j] = distance(a[..i], b[..j]).
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("", "ab"), 2);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("api", "apo"), 1);
        assert_eq!(levenshtein("web", "ewb"), 2);
        assert_eq!(levenshtein("größe", "grösse"), 2);
    }

    #[test]
    fn suggestions() {
        let names = ["api", "database", "worker"];
        assert_eq!(closest("apx", names), Some("api"));
        assert_eq!(closest("DATABASE", names), Some("database"));
        assert_eq!(closest("wrker", names), Some("worker"));
        assert_eq!(closest("zzzzzz", names), None);
        assert_eq!(closest("db", names), None);
        // Two edits turn any two-letter name into any one-letter one: no.
        assert_eq!(closest("zz", ["a", "b"]), None);
        assert_eq!(closest("wroker", names), Some("worker"));
    }

    #[test]
    fn nearest_wins_then_order() {
        assert_eq!(closest("ab", ["xy", "abc", "abd"]), Some("abc"));
        assert_eq!(closest("abcd", ["abxx", "abcx"]), Some("abcx"));
    }
}
