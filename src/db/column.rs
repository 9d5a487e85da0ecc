//! Text that a column can hold. BILLmanager databases created years ago have columns in
//! narrower character sets than the UTF-8 mgrnotify writes (utf8mb3, latin1) and short
//! lengths; in strict mode a value that does not fit makes the whole statement fail.
//! [`TextColumn::fit`] makes a value fit instead.

/// A column's character set, as far as writing text into it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Every character, 1 to 4 bytes.
    Utf8Mb4,
    /// `utf8mb3` (`utf8` before MySQL 8 / MariaDB 10.6): the Basic Multilingual Plane,
    /// 1 to 3 bytes.
    Utf8Mb3,
    /// `utf16`, `utf16le`: every character, 2 or 4 bytes.
    Utf16,
    /// Every character, 4 bytes.
    Utf32,
    /// The Basic Multilingual Plane, 2 bytes.
    Ucs2,
    /// MySQL's `latin1`, which is Windows-1252: one byte.
    Latin1,
    /// Any other set: all of them hold ASCII, one byte a character; nothing more is
    /// assumed.
    Ascii,
}

/// The characters Windows-1252 has at 0x80..0x9F; MySQL's latin1 maps the five bytes
/// Windows-1252 leaves free there to U+0081, U+008D, U+008F, U+0090, U+009D.
const CP1252_EXTRA: &str = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ";

impl Charset {
    /// By `CHARACTER_SET_NAME` from information_schema.
    pub fn from_name(name: &str) -> Self {
        match name.to_ascii_lowercase().as_str() {
            "utf8mb4" => Self::Utf8Mb4,
            "utf8" | "utf8mb3" => Self::Utf8Mb3,
            "utf16" | "utf16le" => Self::Utf16,
            "utf32" => Self::Utf32,
            "ucs2" => Self::Ucs2,
            "latin1" => Self::Latin1,
            _ => Self::Ascii,
        }
    }

    fn stores(self, c: char) -> bool {
        match self {
            Self::Utf8Mb4 | Self::Utf16 | Self::Utf32 => true,
            Self::Utf8Mb3 | Self::Ucs2 => u32::from(c) <= 0xFFFF,
            Self::Latin1 => {
                matches!(u32::from(c), 0..=0x7F | 0xA0..=0xFF | 0x81 | 0x8D | 0x8F | 0x90 | 0x9D)
                    || CP1252_EXTRA.contains(c)
            }
            Self::Ascii => c.is_ascii(),
        }
    }

    /// Bytes `c` takes in this set (`c` is one it stores).
    fn width(self, c: char) -> usize {
        match self {
            Self::Utf8Mb4 | Self::Utf8Mb3 => c.len_utf8(),
            Self::Utf16 | Self::Ucs2 => 2 * c.len_utf16(),
            Self::Utf32 => 4,
            Self::Latin1 | Self::Ascii => 1,
        }
    }

    /// What stands for a character the set lacks.
    fn replacement(self) -> char {
        if self.stores('\u{FFFD}') {
            '\u{FFFD}'
        } else {
            '?'
        }
    }
}

/// A text column: its character set and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextColumn {
    pub charset: Charset,
    /// Most characters.
    pub chars: usize,
    /// Most bytes (`CHARACTER_OCTET_LENGTH`; a TINYTEXT holds 255 bytes, not characters).
    pub bytes: usize,
}

impl TextColumn {
    /// `text` then `tail`, with every character the column's set lacks replaced, and
    /// `text` shortened (on a character boundary, with an ellipsis) so that the whole
    /// fits and `tail` stays intact. Only when `tail` alone does not fit is it cut too.
    pub fn fit(&self, text: &str, tail: &str) -> String {
        let text: Vec<char> = self.storable(text).collect();
        let tail: Vec<char> = self.storable(tail).collect();
        let bytes = |s: &[char]| s.iter().map(|c| self.charset.width(*c)).sum::<usize>();
        if text.len() + tail.len() <= self.chars && bytes(&text) + bytes(&tail) <= self.bytes {
            return text.iter().chain(&tail).collect();
        }
        let ellipsis: Vec<char> = if self.charset.stores('…') {
            vec!['…']
        } else {
            vec!['.'; 3]
        };
        let reserved = [&ellipsis[..], &tail[..]].concat();
        let mut out = self.prefix(&text, &reserved);
        out.extend(&reserved);
        if out.len() > self.chars || bytes(&out) > self.bytes {
            // A column too small for the tail: the tail is cut like any text.
            out = self.prefix(&[&text[..], &tail[..]].concat(), &[]);
        }
        out.into_iter().collect()
    }

    fn storable<'t>(&self, text: &'t str) -> impl Iterator<Item = char> + 't {
        let charset = self.charset;
        text.chars().map(move |c| {
            if charset.stores(c) {
                c
            } else {
                charset.replacement()
            }
        })
    }

    /// The longest start of `text` that leaves room for `reserved`.
    fn prefix(&self, text: &[char], reserved: &[char]) -> Vec<char> {
        let mut chars = reserved.len();
        let mut bytes: usize = reserved.iter().map(|c| self.charset.width(*c)).sum();
        let mut out = Vec::new();
        for c in text {
            chars += 1;
            bytes += self.charset.width(*c);
            if chars > self.chars || bytes > self.bytes {
                break;
            }
            out.push(*c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(charset: &str, chars: usize, bytes: usize) -> TextColumn {
        TextColumn {
            charset: Charset::from_name(charset),
            chars,
            bytes,
        }
    }

    #[test]
    fn characters_the_set_lacks_are_replaced() {
        let text = "ok 😀 Ж é €";
        assert_eq!(
            column("utf8mb4", 100, 400).fit(text, " [t]"),
            "ok 😀 Ж é € [t]"
        );
        assert_eq!(
            column("utf8mb3", 100, 300).fit(text, " [t]"),
            "ok \u{FFFD} Ж é € [t]"
        );
        assert_eq!(column("utf8", 100, 300).fit(text, ""), "ok \u{FFFD} Ж é €");
        assert_eq!(column("latin1", 100, 100).fit(text, ""), "ok ? ? é €");
        assert_eq!(column("cp1251", 100, 100).fit(text, ""), "ok ? ? ? ?");
    }

    #[test]
    fn text_is_cut_on_a_character_boundary_and_the_tail_kept() {
        let tail = " [attempt 1/10]";
        let fitted = column("utf8mb4", 40, 160).fit(&"ж".repeat(100), tail);
        assert_eq!(fitted.chars().count(), 40);
        assert!(fitted.ends_with(&format!("…{tail}")), "{fitted}");
        // A TINYTEXT: 255 bytes, whatever the characters.
        let fitted = column("utf8mb4", 255, 255).fit(&"😀".repeat(100), tail);
        assert!(fitted.len() <= 255 && fitted.ends_with(tail), "{fitted}");
        assert_eq!(
            fitted.chars().filter(|c| *c == '😀').count(),
            (255 - 3 - 15) / 4
        );
        // latin1 has the ellipsis; plain ASCII sets get three dots.
        assert!(column("latin1", 20, 20)
            .fit(&"a".repeat(30), "")
            .ends_with('…'));
        let fitted = column("ascii", 20, 20).fit(&"a".repeat(30), "");
        assert_eq!(fitted, format!("{}...", "a".repeat(17)));
        // A column smaller than the tail: cut, never over.
        assert_eq!(column("utf8mb4", 5, 20).fit("abc", tail), "abc [");
        assert_eq!(column("utf8mb4", 5, 20).fit("ab", ""), "ab");
    }
}
