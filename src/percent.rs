//! Percent-decoding, pure: the one `%XX` decoder behind the two places that need one.
//! [`decode_form`] reads one key or value of an `application/x-www-form-urlencoded`
//! body or query string (`+` is a space, a malformed escape is kept as written), as the
//! replay rules read `_karajo_epoch`; [`decode_path`] reads a URL path for the public
//! directory (`+` is itself, a malformed escape refuses the whole path).

/// `application/x-www-form-urlencoded` decoding of one key or value: `+` is a space,
/// `%XX` a byte; a malformed escape is kept as written.
pub fn decode_form(input: &[u8]) -> Vec<u8> {
    decode(input, true, true).unwrap_or_default()
}

/// Percent-decoding of a URL path: `%XX` is a byte, everything else is itself; `None`
/// when a `%` is not followed by two hex digits.
pub fn decode_path(input: &str) -> Option<Vec<u8>> {
    decode(input.as_bytes(), false, false)
}

/// The shared loop: `plus_is_space` for forms, `keep_malformed` to copy a bad escape
/// instead of failing.
fn decode(input: &[u8], plus_is_space: bool, keep_malformed: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        match b {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match hex_pair(input.get(i + 1..i + 3)) {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None if keep_malformed => out.push(b'%'),
                None => return None,
            },
            _ => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// The byte two hex digits spell.
fn hex_pair(pair: Option<&[u8]>) -> Option<u8> {
    let &[hi, lo] = pair? else {
        return None;
    };
    let digit = |b: u8| char::from(b).to_digit(16);
    u8::try_from(digit(hi)? * 16 + digit(lo)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_keeps_malformed_escapes_and_reads_plus_as_space() {
        assert_eq!(decode_form(b"a+b%20c%2x%"), b"a b c%2x%");
        assert_eq!(decode_form(b"%25%21s%28int64%3D1%29"), b"%!s(int64=1)");
        assert_eq!(decode_form(b"%e2%82%AC"), "€".as_bytes());
        assert_eq!(decode_form(b""), b"");
    }

    #[test]
    fn path_refuses_malformed_escapes_and_keeps_plus() {
        assert_eq!(decode_path("/a+b%20c").as_deref(), Some(&b"/a+b c"[..]));
        assert_eq!(decode_path("%e2%82%AC").as_deref(), Some("€".as_bytes()));
        assert_eq!(decode_path("%2x"), None);
        assert_eq!(decode_path("%2"), None);
        assert_eq!(decode_path("%"), None);
        assert_eq!(decode_path("%\u{e9}"), None);
    }
}
