//! `env_file`: `KEY=VALUE` lines, as Docker and most dotenv loaders read them.
//!
//! `#` starts a comment line (and, after whitespace, a comment at the end of
//! an unquoted value); blank lines are skipped; a leading `export ` is
//! allowed; a value may be single-quoted (taken literally) or double-quoted
//! (`\n`, `\t`, `\r`, `\"`, `\\`, `\$` escapes). Values span one line.

use std::ops::Range;

/// A mistake in an env file, at a byte range of its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvFileError {
    pub span: Range<usize>,
    pub message: String,
    pub help: Option<String>,
}

/// Every entry in file order, and every mistake; a line with a mistake
/// yields no entry.
pub(crate) fn parse(text: &str) -> (Vec<(String, String)>, Vec<EnvFileError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let line_start = offset;
        offset += raw.len();
        let line = raw.trim_end_matches(['\n', '\r']);
        match parse_line(line) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => {}
            Err(mut e) => {
                e.span = line_start + e.span.start..line_start + e.span.end;
                errors.push(e);
            }
        }
    }
    (entries, errors)
}

fn parse_line(line: &str) -> Result<Option<(String, String)>, EnvFileError> {
    let body = line.trim_start();
    let indent = line.len() - body.len();
    if body.is_empty() || body.starts_with('#') {
        return Ok(None);
    }
    let (body, indent) = match body.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => {
            let trimmed = rest.trim_start();
            (trimmed, indent + body.len() - trimmed.len())
        }
        _ => (body, indent),
    };
    let Some(eq) = body.find('=') else {
        return Err(EnvFileError {
            span: indent..line.len(),
            message: "expected KEY=VALUE".into(),
            help: Some("each line is KEY=VALUE, a # comment, or blank".into()),
        });
    };
    let key = body[..eq].trim_end();
    if key.is_empty() || key.contains(char::is_whitespace) || key.contains('\0') {
        return Err(EnvFileError {
            span: indent..indent + eq.max(1),
            message: format!("invalid variable name \"{key}\""),
            help: Some("a name is one word before the =, e.g. PORT=8080".into()),
        });
    }
    let after_eq = &body[eq + 1..];
    let value_text = after_eq.trim_start();
    let value_at = indent + eq + 1 + (after_eq.len() - value_text.len());
    let value = parse_value(value_text).map_err(|(span, message, help)| EnvFileError {
        span: value_at + span.start..value_at + span.end,
        message,
        help,
    })?;
    if value.contains('\0') {
        return Err(EnvFileError {
            span: value_at..value_at + value_text.len().max(1),
            message: format!("the value of {key} contains a NUL character"),
            help: Some("environment values cannot hold NUL".into()),
        });
    }
    Ok(Some((key.to_string(), value)))
}

type ValueError = (Range<usize>, String, Option<String>);

fn parse_value(text: &str) -> Result<String, ValueError> {
    let (value, end) = match text.chars().next() {
        Some('\'') => match text[1..].find('\'') {
            Some(close) => (text[1..1 + close].to_string(), close + 2),
            None => return Err(unterminated(text)),
        },
        Some('"') => double_quoted(text)?,
        _ => {
            // An unquoted value ends where a comment starts.
            let end = text
                .char_indices()
                .find(|&(i, c)| c == '#' && text[..i].ends_with([' ', '\t']))
                .map_or(text.len(), |(i, _)| i);
            return Ok(text[..end].trim_end().to_string());
        }
    };
    let rest = text[end..].trim_start();
    if !(rest.is_empty() || rest.starts_with('#')) {
        let at = text.len() - rest.len();
        return Err((
            at..text.len(),
            "unexpected text after the closing quote".into(),
            Some("quote the whole value, or start a comment with #".into()),
        ));
    }
    Ok(value)
}

/// The value of a `"…"` string at the start of `text`, and the byte just past it.
fn double_quoted(text: &str) -> Result<(String, usize), ValueError> {
    let mut value = String::new();
    let mut chars = text.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, i + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 't')) => value.push('\t'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, e @ ('"' | '\\' | '$'))) => value.push(e),
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => break,
            },
            _ => value.push(c),
        }
    }
    Err(unterminated(text))
}

fn unterminated(text: &str) -> ValueError {
    (
        0..1,
        "unterminated quoted value".into(),
        Some(format!(
            "close it with {} on the same line",
            text.chars().next().unwrap_or('"')
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        let (entries, errors) = parse(text);
        assert_eq!(errors, vec![], "{text:?}");
        entries
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn reads_the_common_forms() {
        let text = "# comment\n\nA=1\nexport B = two words \nC='it s'\nD=\"x\\n\\\"y\\\"\" # note\nE=\nF=a#b\nG=a #c\n  H='#' \r\nI=\"\\q\"\n";
        assert_eq!(
            pairs(text),
            vec![
                kv("A", "1"),
                kv("B", "two words"),
                kv("C", "it s"),
                kv("D", "x\n\"y\""),
                kv("E", ""),
                kv("F", "a#b"),
                kv("G", "a"),
                kv("H", "#"),
                kv("I", "\\q"),
            ]
        );
    }

    #[test]
    fn text_after_a_closing_quote_is_an_error() {
        let (entries, errors) = parse("C='it''s'\n");
        assert!(entries.is_empty());
        assert_eq!(errors[0].message, "unexpected text after the closing quote");
        assert_eq!(errors[0].span, 6..9);
    }

    #[test]
    fn export_is_only_a_prefix_when_followed_by_space() {
        assert_eq!(pairs("exported=1\n"), vec![kv("exported", "1")]);
        assert_eq!(pairs("export\tX=1"), vec![kv("X", "1")]);
    }

    #[test]
    fn mistakes_have_byte_spans_and_other_lines_still_load() {
        let text = "A=1\nnot a pair\nB C=2\nD=\"open\nE='x\nF=2\n";
        let (entries, errors) = parse(text);
        assert_eq!(entries, vec![kv("A", "1"), kv("F", "2")]);
        let got: Vec<(Range<usize>, &str)> = errors
            .iter()
            .map(|e| (e.span.clone(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (4..14, "expected KEY=VALUE"),
                (15..18, "invalid variable name \"B C\""),
                (23..24, "unterminated quoted value"),
                (31..32, "unterminated quoted value"),
            ]
        );
    }
}
