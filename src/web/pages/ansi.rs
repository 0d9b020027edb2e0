//! ANSI terminal output to HTML for the run log page: SGR colour and style codes
//! become `<span>`s with classes (16 colours) or an inline colour (256 colours and
//! true colour, computed here from numbers); every other escape sequence and control
//! character is dropped, and all text is HTML-escaped. Pure.

/// A colour of the 16-colour palette or an RGB value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Color {
    Basic(u8),
    Rgb(u8, u8, u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Style {
    fg: Option<Color>,
    bg: Option<Color>,
    bold: bool,
    dim: bool,
    italic: bool,
    underline: bool,
}

/// Converts a byte stream to HTML, keeping the SGR state between calls. Each call's
/// output is well-formed on its own (spans are closed at its end and reopened at the
/// start of the next), so pieces can be appended to a page one by one. Feed it whole
/// lines: an escape sequence cut at the end of a call is dropped.
#[derive(Debug, Clone, Default)]
pub struct AnsiHtml {
    style: Style,
}

impl AnsiHtml {
    /// A converter in the default style.
    pub fn new() -> Self {
        Self::default()
    }

    /// Converts `bytes` and returns the HTML.
    pub fn convert(&mut self, bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
        let mut open = self.open_span(&mut out);
        let mut text_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            let is_control = b < 0x20 && b != b'\n' && b != b'\t' || b == 0x7f;
            if !is_control {
                i += 1;
                continue;
            }
            escape_into(&mut out, &bytes[text_start..i]);
            if b == 0x1b {
                let (len, sgr) = parse_escape(&bytes[i..]);
                if let Some(params) = sgr {
                    let before = self.style;
                    self.apply_sgr(params);
                    if self.style != before {
                        if open {
                            out.push_str("</span>");
                        }
                        open = self.open_span(&mut out);
                    }
                }
                i += len;
            } else {
                i += 1;
            }
            text_start = i;
        }
        escape_into(&mut out, &bytes[text_start..]);
        if open {
            out.push_str("</span>");
        }
        out
    }

    /// Opens a span for the current style unless it is the default; whether it did.
    fn open_span(&self, out: &mut String) -> bool {
        let s = self.style;
        if s == Style::default() {
            return false;
        }
        let mut classes: Vec<String> = Vec::new();
        let mut css = String::new();
        for (on, class) in [
            (s.bold, "ab"),
            (s.dim, "ad"),
            (s.italic, "ai"),
            (s.underline, "au"),
        ] {
            if on {
                classes.push(class.to_string());
            }
        }
        match s.fg {
            Some(Color::Basic(n)) => classes.push(format!("f{n}")),
            Some(Color::Rgb(r, g, b)) => css.push_str(&format!("color:#{r:02x}{g:02x}{b:02x};")),
            None => {}
        }
        match s.bg {
            Some(Color::Basic(n)) => classes.push(format!("b{n}")),
            Some(Color::Rgb(r, g, b)) => {
                css.push_str(&format!("background-color:#{r:02x}{g:02x}{b:02x};"))
            }
            None => {}
        }
        out.push_str("<span");
        if !classes.is_empty() {
            out.push_str(" class=\"");
            out.push_str(&classes.join(" "));
            out.push('"');
        }
        if !css.is_empty() {
            out.push_str(" style=\"");
            out.push_str(&css);
            out.push('"');
        }
        out.push('>');
        true
    }

    fn apply_sgr(&mut self, params: &[u8]) {
        let nums: Vec<u16> = params
            .split(|&b| b == b';' || b == b':')
            .map(|p| {
                std::str::from_utf8(p)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0)
            })
            .collect();
        let mut i = 0;
        while i < nums.len() {
            let n = nums[i];
            let s = &mut self.style;
            match n {
                0 => *s = Style::default(),
                1 => s.bold = true,
                2 => s.dim = true,
                3 => s.italic = true,
                4 => s.underline = true,
                22 => {
                    s.bold = false;
                    s.dim = false;
                }
                23 => s.italic = false,
                24 => s.underline = false,
                30..=37 => s.fg = Some(Color::Basic((n - 30) as u8)),
                90..=97 => s.fg = Some(Color::Basic((n - 90 + 8) as u8)),
                39 => s.fg = None,
                40..=47 => s.bg = Some(Color::Basic((n - 40) as u8)),
                100..=107 => s.bg = Some(Color::Basic((n - 100 + 8) as u8)),
                49 => s.bg = None,
                38 | 48 => {
                    let (color, used) = extended_color(&nums[i + 1..]);
                    if n == 38 {
                        s.fg = color;
                    } else {
                        s.bg = color;
                    }
                    i += used;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

/// `5;n` or `2;r;g;b` after a 38 or 48; the colour and how many numbers it used.
fn extended_color(rest: &[u16]) -> (Option<Color>, usize) {
    let byte = |v: u16| u8::try_from(v.min(255)).unwrap_or(255);
    match rest {
        [5, n, ..] => (Some(color_256(byte(*n))), 2),
        [2, r, g, b, ..] => (Some(Color::Rgb(byte(*r), byte(*g), byte(*b))), 4),
        _ => (None, rest.len()),
    }
}

/// The xterm 256-colour palette.
fn color_256(n: u8) -> Color {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match n {
        0..=15 => Color::Basic(n),
        16..=231 => {
            let i = n - 16;
            Color::Rgb(
                LEVELS[usize::from(i / 36)],
                LEVELS[usize::from(i % 36 / 6)],
                LEVELS[usize::from(i % 6)],
            )
        }
        _ => {
            let v = 8 + (n - 232) * 10;
            Color::Rgb(v, v, v)
        }
    }
}

/// The length of the escape sequence at the start of `bytes` (which starts with ESC)
/// and, for an SGR sequence (`ESC [ ... m`), its parameters.
fn parse_escape(bytes: &[u8]) -> (usize, Option<&[u8]>) {
    match bytes.get(1) {
        Some(b'[') => {
            // CSI: parameter and intermediate bytes, then a final byte 0x40..=0x7e.
            let mut j = 2;
            while let Some(&b) = bytes.get(j) {
                if (0x40..=0x7e).contains(&b) {
                    let sgr = (b == b'm').then(|| &bytes[2..j]);
                    return (j + 1, sgr);
                }
                if !(0x20..=0x3f).contains(&b) {
                    return (j, None);
                }
                j += 1;
            }
            (bytes.len(), None)
        }
        Some(b']') => {
            // OSC: up to BEL or ESC \.
            let mut j = 2;
            while let Some(&b) = bytes.get(j) {
                if b == 0x07 {
                    return (j + 1, None);
                }
                if b == 0x1b {
                    return (
                        if bytes.get(j + 1) == Some(&b'\\') {
                            j + 2
                        } else {
                            j
                        },
                        None,
                    );
                }
                j += 1;
            }
            (bytes.len(), None)
        }
        Some(_) => {
            // ESC, intermediate bytes (`(` in `ESC ( B`), then one final byte.
            let mut j = 1;
            while bytes.get(j).is_some_and(|b| (0x20..=0x2f).contains(b)) {
                j += 1;
            }
            ((j + 1).min(bytes.len()), None)
        }
        None => (1, None),
    }
}

/// Appends `bytes` as HTML text (invalid UTF-8 replaced).
fn escape_into(out: &mut String, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(bytes: &[u8]) -> String {
        AnsiHtml::new().convert(bytes)
    }

    #[test]
    fn text_is_escaped_and_controls_dropped() {
        assert_eq!(
            html(b"<script>&'\"\r\n\x07tab\there\n"),
            "&lt;script&gt;&amp;&#39;&quot;\ntab\there\n"
        );
        assert_eq!(html(b"caf\xc3\xa9 \xff"), "café \u{fffd}");
    }

    #[test]
    fn sgr_colours_become_spans() {
        assert_eq!(
            html(b"\x1b[31mred\x1b[0m plain"),
            "<span class=\"f1\">red</span> plain"
        );
        assert_eq!(
            html(b"\x1b[1;92;44mx\x1b[22mY\x1b[m"),
            "<span class=\"ab f10 b4\">x</span><span class=\"f10 b4\">Y</span>"
        );
        assert_eq!(
            html(b"\x1b[38;5;196ma\x1b[48;2;1;2;3mb"),
            "<span style=\"color:#ff0000;\">a</span><span style=\"color:#ff0000;background-color:#010203;\">b</span>"
        );
    }

    #[test]
    fn other_sequences_are_dropped_and_state_carries_over() {
        assert_eq!(html(b"a\x1b[2Kb\x1b]0;title\x07c\x1b(Bd"), "abcd");
        let mut c = AnsiHtml::new();
        assert_eq!(
            c.convert(b"\x1b[33mone\n"),
            "<span class=\"f3\">one\n</span>"
        );
        assert_eq!(
            c.convert(b"two\x1b[0m\n"),
            "<span class=\"f3\">two</span>\n"
        );
        assert_eq!(c.convert(b"three"), "three");
        // A cut sequence is dropped, not shown.
        assert_eq!(html(b"x\x1b[3"), "x");
    }
}
