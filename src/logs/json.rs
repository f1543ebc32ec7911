//! The two JSON pieces the pump needs on its hot path, without building values:
//! writing a byte string as a JSON string, and telling whether a line is one
//! JSON object (so it can be embedded as it is).
//!
//! serde_json could do both, but only by building a `String`/`Value` per line;
//! a program that logs JSON would pay several allocations per line for nothing.

/// For each byte: 0 if it goes out as it is, else the letter after the `\`
/// (`u` meaning `\u00XX`).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Appends `s` as a quoted JSON string. Invalid UTF-8 becomes U+FFFD, one per
/// maximal invalid sequence (the same as `String::from_utf8_lossy`).
pub(crate) fn push_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let (ascii, plain) = survey(s);
    if ascii || std::str::from_utf8(s).is_ok() {
        if plain {
            out.extend_from_slice(s);
        } else {
            push_escaped(out, s);
        }
    } else {
        for chunk in s.utf8_chunks() {
            push_escaped(out, chunk.valid().as_bytes());
            if !chunk.invalid().is_empty() {
                out.extend_from_slice(REPLACEMENT);
            }
        }
    }
    out.push(b'"');
}

/// (all ASCII, nothing to escape), in one pass over the line without early
/// exits or table lookups, which the compiler turns into vector code: most
/// log lines are plain ASCII and go out with a single copy.
fn survey(s: &[u8]) -> (bool, bool) {
    let mut high = 0u8;
    let mut special = 0u8;
    for &b in s {
        high |= b;
        special |= u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\');
    }
    (high < 0x80, special == 0)
}

/// Escapes valid UTF-8: bytes ≥ 0x80 never need escaping, so the multi-byte
/// characters are copied in the runs between escapes.
fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut rest = s;
    while let Some(i) = find_escape(rest) {
        out.extend_from_slice(&rest[..i]);
        let b = rest[i];
        let esc = ESCAPE[b as usize];
        if esc == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
}

/// The first byte of `s` that needs escaping, eight bytes at a time.
fn find_escape(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any byte of `v` is below `n` (n ≤ 0x80); exact as a whole,
    // see "Bit Twiddling Hacks", hasless.
    let any_below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGH != 0;
    let any_equal = |v: u64, b: u8| any_below(v ^ (ONES * u64::from(b)), 1);
    let needs = |b: &u8| ESCAPE[*b as usize] != 0;
    let mut words = s.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let v = u64::from_le_bytes(bytes);
        if any_below(v, 0x20) || any_equal(v, b'"') || any_equal(v, b'\\') {
            if let Some(i) = word.iter().position(needs) {
                return Some(base + i);
            }
        }
        base += 8;
    }
    words.remainder().iter().position(needs).map(|i| base + i)
}

/// serde_json refuses nesting this deep; so do we, so that "embedded" means
/// "any JSON reader will take it".
const MAX_DEPTH: usize = 127;

/// Whether `s` is exactly one JSON object (RFC 8259), with optional
/// whitespace around it.
pub(crate) fn is_object(s: &[u8]) -> bool {
    // Outside strings JSON is ASCII, so checking the whole line at once also
    // covers every string's contents.
    if std::str::from_utf8(s).is_err() {
        return false;
    }
    let mut p = Parser { s, i: 0 };
    p.skip_ws();
    if p.peek() != Some(b'{') || !p.value(0) {
        return false;
    }
    p.skip_ws();
    p.i == s.len()
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => depth < MAX_DEPTH && self.object(depth + 1),
            Some(b'[') => depth < MAX_DEPTH && self.array(depth + 1),
            Some(b'"') => self.string(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.i += 1;
        self.skip_ws();
        if self.eat(b'}') {
            return true;
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') || !self.string() {
                return false;
            }
            self.skip_ws();
            if !self.eat(b':') {
                return false;
            }
            self.skip_ws();
            if !self.value(depth) {
                return false;
            }
            self.skip_ws();
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.i += 1;
        self.skip_ws();
        if self.eat(b']') {
            return true;
        }
        loop {
            self.skip_ws();
            if !self.value(depth) {
                return false;
            }
            self.skip_ws();
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        if !self.eat(b'0') && self.digits() == 0 {
            return false;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        if self.eat(b'e') || self.eat(b'E') {
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.s.get(self.i..self.i + 4)?;
        let mut n = 0u16;
        for &d in digits {
            let v = (d as char).to_digit(16)?;
            n = n << 4 | v as u16;
        }
        self.i += 4;
        Some(n)
    }

    fn string(&mut self) -> bool {
        self.i += 1;
        loop {
            let Some(b) = self.peek() else {
                return false;
            };
            self.i += 1;
            match b {
                b'"' => return true,
                0x00..=0x1f => return false,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return false;
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            if !self.unicode_escape() {
                                return false;
                            }
                        }
                        _ => return false,
                    }
                }
                _ => {}
            }
        }
    }

    /// After `\u`: a BMP character, or a surrogate pair (lone surrogates are
    /// not characters, and strict readers refuse them).
    fn unicode_escape(&mut self) -> bool {
        match self.hex4() {
            Some(0xD800..=0xDBFF) => {
                self.eat(b'\\') && self.eat(b'u') && matches!(self.hex4(), Some(0xDC00..=0xDFFF))
            }
            Some(0xDC00..=0xDFFF) | None => false,
            Some(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &[u8]) -> String {
        let mut out = Vec::new();
        push_string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_what_json_requires() {
        assert_eq!(string(b"plain"), r#""plain""#);
        assert_eq!(string(b"a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(string(b"\t\r\x08\x0c\n"), r#""\t\r\b\f\n""#);
        assert_eq!(string(b"\x00\x1b[1m\x1f"), r#""\u0000\u001b[1m\u001f""#);
        assert_eq!(string("héllo ✓ 😀".as_bytes()), "\"héllo ✓ 😀\"");
        assert_eq!(string(b"\x7f/"), "\"\x7f/\"");
        assert_eq!(string(b""), r#""""#);
    }

    #[test]
    fn finds_every_byte_that_needs_escaping() {
        for len in 0..40 {
            for at in 0..len {
                for b in (0u8..=0x20).chain([b'"', b'\\', b'!', 0x7f, 0x80, 0xff]) {
                    let mut s = vec![b'a'; len];
                    s[at] = b;
                    let expected = (ESCAPE[b as usize] != 0).then_some(at);
                    assert_eq!(find_escape(&s), expected, "byte {b:#x} at {at} of {len}");
                }
            }
        }
        assert_eq!(find_escape("ééé\"ééé".as_bytes()), Some(6));
    }

    #[test]
    fn surveys_lines() {
        assert_eq!(survey(b""), (true, true));
        assert_eq!(survey(b"plain ascii line ~"), (true, true));
        assert_eq!(survey("caf\u{e9}".as_bytes()), (false, true));
        assert_eq!(survey(b"\xff"), (false, true));
        for b in (0u8..0x20).chain([b'"', b'\\']) {
            let mut line = vec![b'a'; 70];
            line[37] = b;
            assert_eq!(survey(&line), (true, false), "{b:#x}");
        }
        assert_eq!(survey(b"\x7f"), (true, true));
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        assert_eq!(string(b"a\xffb"), "\"a\u{FFFD}b\"");
        assert_eq!(string(b"\xe2\x82"), "\"\u{FFFD}\"");
        assert_eq!(string(b"\xc3\x28\"\xff"), "\"\u{FFFD}(\\\"\u{FFFD}\"");
        let lossy = String::from_utf8_lossy(b"\xf0\x9f\x98 ok \xed\xa0\x80");
        assert_eq!(
            string(b"\xf0\x9f\x98 ok \xed\xa0\x80"),
            format!("\"{lossy}\"")
        );
    }

    #[test]
    fn escaped_strings_parse_back() {
        let samples: [&[u8]; 5] = [
            b"x",
            b"\x00\x01\x02\x1f \"\\ \xff",
            "é\u{2028}".as_bytes(),
            b"{\"a\":1}",
            b"\x80\x80",
        ];
        for s in samples {
            let back: String = serde_json::from_str(&string(s)).unwrap();
            assert_eq!(back, String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn recognises_objects() {
        for yes in [
            r#"{}"#,
            r#"  {"a":1}  "#,
            "\t{\"a\" : [1, -2.5e+3, 0.0, true, false, null, {\"b\":{}}], \"c\":\"\\u00e9\\n\"}\r",
            r#"{"emoji":"\ud83d\ude00","slash":"\/"}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"n":-0,"m":1E9,"k":12e-3}"#,
        ] {
            assert!(is_object(yes.as_bytes()), "{yes}");
        }
        for no in [
            "",
            "{",
            "}",
            "[]",
            r#""{}""#,
            r#"{} {}"#,
            r#"{"a":1,}"#,
            r#"{"a"}"#,
            r#"{a:1}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":tru}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ude00"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":[1,2}"#,
            r#"{"a":1} x"#,
        ] {
            assert!(!is_object(no.as_bytes()), "{no}");
        }
        assert!(!is_object(b"{\"a\":\"\xff\"}"));
    }

    #[test]
    fn nesting_limit_matches_serde_json() {
        for depth in [1, 126, 127, 128, 200] {
            let s = format!("{}{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            let s = s.replacen("{\"a\":}", "{}", 1);
            let ours = is_object(s.as_bytes());
            let theirs = serde_json::from_str::<serde_json::Value>(&s).is_ok();
            assert_eq!(ours, theirs, "depth {depth}");
        }
    }

    /// Differential check against serde_json on many small mutations of
    /// valid documents: every accepted line must be valid JSON, and the other
    /// way round (numbers out of f64 range aside, which we do not generate).
    #[test]
    fn agrees_with_serde_json() {
        let seeds = [
            r#"{"level":"info","msg":"started","port":8080,"tags":["a","b"],"ok":true}"#,
            r#"{"a":{"b":[1,2.5,-3e2,{"c":null}]},"d":"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}"#,
        ];
        let alphabet = b"{}[]\":,.-+eE0123456789 \\utrfalsn\x01\xc3\xa9\xff";
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut checked = 0;
        for seed in seeds {
            for _ in 0..20_000 {
                let mut doc = seed.as_bytes().to_vec();
                for _ in 0..1 + next() % 3 {
                    let at = (next() as usize) % doc.len();
                    match next() % 3 {
                        0 => {
                            doc.remove(at);
                        }
                        1 => doc.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                        _ => doc[at] = alphabet[(next() as usize) % alphabet.len()],
                    }
                    if doc.is_empty() {
                        break;
                    }
                }
                let theirs =
                    serde_json::from_slice::<serde_json::Value>(&doc).is_ok_and(|v| v.is_object());
                assert_eq!(is_object(&doc), theirs, "{}", String::from_utf8_lossy(&doc));
                checked += 1;
            }
        }
        assert_eq!(checked, 40_000);
    }
}
