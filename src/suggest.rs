//! "Did you mean ...?": a tiny Levenshtein distance and the one known word closest to
//! a misspelt one. Pure and dependency-free; the `config` and `schedule` rooms use it
//! to name the section, key or schedule kind a user most likely meant, and the API to
//! name the job id a client most likely meant.

/// The largest edit distance at which a known word is still offered.
const MAX_DISTANCE: usize = 2;

/// The number of single-character insertions, deletions and substitutions that turn
/// `a` into `b` (case-sensitive, by `char`).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `word` (compared case-insensitively) when it is at most
/// two edits away and no other candidate is as close; `None` for an exact match, for
/// nothing close, or for a tie.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    // Very short words are two edits from almost anything.
    let limit = MAX_DISTANCE.min(word.chars().count().saturating_sub(1));
    let mut best: Option<(usize, &'a str)> = None;
    let mut tied = false;
    for &candidate in candidates {
        let distance = levenshtein(&word, &candidate.to_ascii_lowercase());
        match best {
            _ if distance == 0 || distance > limit => {}
            Some((d, _)) if distance > d => {}
            Some((d, _)) if distance == d => tied = true,
            _ => {
                best = Some((distance, candidate));
                tied = false;
            }
        }
    }
    best.filter(|_| !tied).map(|(_, candidate)| candidate)
}

/// `; did you mean "x"?` after a message about `word`, or nothing when no candidate
/// is close.
pub fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        let cases = [
            ("", "", 0),
            ("", "abc", 3),
            ("abc", "", 3),
            ("schedule", "schedule", 0),
            ("schedul", "schedule", 1),
            ("shcedule", "schedule", 2),
            ("jobs", "job", 1),
            ("job-http", "job.http", 1),
            ("kitten", "sitting", 3),
            ("dayly", "daily", 1),
            ("ü", "u", 1),
        ];
        for (a, b, want) in cases {
            assert_eq!(levenshtein(a, b), want, "{a} -> {b}");
            assert_eq!(levenshtein(b, a), want, "{b} -> {a}");
        }
    }

    #[test]
    fn closest_offers_one_near_word() {
        let keys = ["schedule", "interval", "command", "timeout", "timezone"];
        assert_eq!(closest("schedul", &keys), Some("schedule"));
        assert_eq!(closest("Comand", &keys), Some("command"));
        assert_eq!(closest("intervall", &keys), Some("interval"));
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(closest("command", &keys), None);
        assert_eq!(closest("timezon", &keys), Some("timezone"));
        // "timeoze" is two edits from both timeout and timezone: no guess.
        assert_eq!(closest("timeoze", &keys), None);
        // A one-letter word is not "close" to anything.
        assert_eq!(closest("x", &["a", "xy"]), None);
        assert_eq!(
            did_you_mean("helo", &["hello", "ping_hello"]),
            "; did you mean \"hello\"?"
        );
        assert_eq!(did_you_mean("zzz", &["hello"]), "");
    }

    proptest::proptest! {
        #[test]
        fn distance_is_a_metric(a in "[a-z.]{0,8}", b in "[a-z.]{0,8}", c in "[a-z.]{0,8}") {
            let ab = levenshtein(&a, &b);
            proptest::prop_assert_eq!(ab, levenshtein(&b, &a));
            proptest::prop_assert_eq!(ab == 0, a == b);
            proptest::prop_assert!(ab <= a.len().max(b.len()));
            proptest::prop_assert!(levenshtein(&a, &c) <= ab + levenshtein(&b, &c));
        }
    }
}
