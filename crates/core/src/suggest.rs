//! "Did you mean …?": the one rule ward uses for every name it may
//! suggest (program names, config keys, commands on PATH, signal names).

/// The closest of `names` to `wanted`, ignoring case: an exact match first;
/// else the nearest (fewest edits, then most alike, then first in `names`'
/// order) among those close enough to be a typo: at most two edits when
/// that leaves at least half of the longer name alike, or any number of
/// edits that leave 70 % alike (`depends` → `depends_on`). So short names
/// do not suggest unrelated ones (`x` never suggests `y`).
pub fn closest<'a, I>(wanted: &str, names: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let wanted = wanted.to_lowercase();
    let mut best: Option<(usize, f64, &str)> = None;
    for name in names {
        let candidate = name.to_lowercase();
        if candidate == wanted {
            return Some(name);
        }
        let d = levenshtein(&wanted, &candidate);
        let longer = wanted.chars().count().max(candidate.chars().count()).max(1);
        let alike = 1.0 - d as f64 / longer as f64;
        let close = (d <= 2 && alike >= 0.5) || alike >= 0.7;
        let better = best.is_none_or(|(bd, ba, _)| d < bd || (d == bd && alike > ba));
        if close && better {
            best = Some((d, alike, name));
        }
    }
    best.map(|(_, _, name)| name)
}

/// Edit distance over chars: insertions, deletions, substitutions, and
/// swaps of two neighbours (the commonest typo: "wbe" for "web") count one
/// each (optimal string alignment).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the DP table: d[i][j] = distance(a[..i], b[..j]).
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
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
        assert_eq!(levenshtein("web", "ewb"), 1);
        assert_eq!(levenshtein("web", "bwe"), 2);
        assert_eq!(levenshtein("web", "wbe"), 1);
        assert_eq!(levenshtein("ab", "ba"), 1);
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
        assert_eq!(closest("wbe", ["web", "db"]), Some("web"));
        assert_eq!(closest("x", ["y"]), None);
        assert_eq!(
            closest("depends", ["depends_on", "env"]),
            Some("depends_on")
        );
        assert_eq!(closest("Restrat", ["restart"]), Some("restart"));
    }

    #[test]
    fn nearest_wins_then_order() {
        assert_eq!(closest("ab", ["xy", "abc", "abd"]), Some("abc"));
        assert_eq!(closest("abcd", ["abxx", "abcx"]), Some("abcx"));
    }
}
