//! "Did you mean": the closest of some known words to a word that matched none of them,
//! for messages about unknown job ids, configuration keys and section names. Pure.

/// The known word closest to `word` (case-insensitive edit distance), when it is close
/// enough to be a likely typo: at most 2 edits, and fewer than half of `word`'s length.
pub fn closest<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = 2.min(word.chars().count().saturating_sub(1) / 2 + 1);
    known
        .into_iter()
        .map(|k| (edit_distance(&word, &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `"; did you mean \"x\"?"`, or nothing when no known word is close.
pub fn did_you_mean<'a>(word: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, known)
        .map(|k| format!("; did you mean \"{k}\"?"))
        .unwrap_or_default()
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
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
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ping", "ping"), 0);
        assert_eq!(edit_distance("shedule", "schedule"), 1);
    }

    #[test]
    fn only_close_words_are_suggested() {
        let ids = ["hello", "ping_hello", "nightly_cleanup"];
        assert_eq!(closest("helo", ids), Some("hello"));
        assert_eq!(closest("HELLO", ids), Some("hello"));
        assert_eq!(closest("ping-hello", ids), Some("ping_hello"));
        assert_eq!(closest("ping", ids), None);
        assert_eq!(closest("x", ids), None);
        assert_eq!(closest("ab", ["xy"]), None);
        assert_eq!(did_you_mean("helo", ids), "; did you mean \"hello\"?");
        assert_eq!(did_you_mean("zzz", ids), "");
    }
}
