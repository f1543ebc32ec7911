//! Diagnostics: what is wrong with a configuration, where, and what to do.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Everything wrong with one configuration, in file order. Never empty: a
/// configuration either loads whole or yields at least one of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", render_all(.items))]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// A single diagnostic that has no place in the text (an unreadable file).
    pub(crate) fn whole_file(file: &Path, message: String, help: Option<String>) -> Diagnostics {
        Diagnostics {
            items: vec![Diagnostic::whole_file(file, message, help)],
        }
    }
}

fn render_all(items: &[Diagnostic]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// One thing wrong, at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line of the offending text; 0 when the mistake is about the
    /// whole file (it cannot be read, or a default it implies is wrong).
    pub line: usize,
    /// 1-based column, counted in characters.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// The source line holding the offending text (without its line break).
    pub snippet: String,
    /// How many characters of `snippet` to mark, from `col`.
    pub span_len: usize,
    /// What was expected, or a likely fix.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at the byte range `span` of `text`, the contents of `file`.
    pub(crate) fn at(
        file: &Path,
        text: &str,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let end = floor_char_boundary(text, span.end.clamp(start, text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let snippet = text[line_start..line_end].trim_end_matches('\r');
        // A span on the "\r" of a CRLF line break is at the end of the line
        // as shown: the column must not point past it.
        let start = start.min(line_start + snippet.len());
        let line = text[..start].matches('\n').count() + 1;
        let col = text[line_start..start].chars().count() + 1;
        // A span that runs past its first line (a multi-line array) is
        // marked up to the end of that line only.
        let marked = &text[start..end.min(line_start + snippet.len()).max(start)];
        Diagnostic {
            file: file.to_path_buf(),
            line,
            col,
            message,
            snippet: snippet.to_string(),
            span_len: marked.chars().count().max(1),
            help,
        }
    }

    /// A diagnostic about `file` as a whole, with no place in its text
    /// (shown at 1:1, with no source line).
    pub(crate) fn whole_file(file: &Path, message: String, help: Option<String>) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            col: 0,
            message,
            snippet: String::new(),
            span_len: 0,
            help,
        }
    }

    /// `ward.toml:3:1: unknown key "restrat" in [program.api] (did you mean "restart"?)`
    pub fn one_line(&self) -> String {
        let mut out = format!("{}: {}", self.place(), self.message);
        if let Some(help) = &self.help {
            out.push_str(&format!(" ({help})"));
        }
        out
    }
}

impl Diagnostic {
    /// `ward.toml:3:1`, or `ward.toml` for the whole file.
    fn place(&self) -> String {
        if self.line == 0 {
            self.file.display().to_string()
        } else {
            format!("{}:{}:{}", self.file.display(), self.line, self.col)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}: {}", self.place(), self.message)?;
        let width = self.line.to_string().len();
        if !(self.snippet.is_empty() && self.span_len == 0) {
            // Tabs are widened so that the marker lines up under them.
            let snippet = self.snippet.replace('\t', "    ");
            let lead: usize = self
                .snippet
                .chars()
                .take(self.col.saturating_sub(1))
                .map(|c| if c == '\t' { 4 } else { 1 })
                .sum();
            writeln!(f, "{:width$} |", "")?;
            writeln!(f, "{:>width$} | {}", self.line, snippet.trim_end())?;
            writeln!(
                f,
                "{:width$} | {}{}",
                "",
                " ".repeat(lead),
                "^".repeat(self.span_len.max(1))
            )?;
        }
        if let Some(help) = &self.help {
            writeln!(f, "{:width$} = help: {}", "", help)?;
        }
        Ok(())
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Orders diagnostics as a reader meets them: the configuration file first,
/// top to bottom, then any file it names (env files).
pub(crate) fn sort(items: &mut [Diagnostic], main: &Path) {
    items.sort_by(|a, b| {
        (a.file != main, &a.file, a.line, a.col).cmp(&(b.file != main, &b.file, b.line, b.col))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(text: &str, span: Range<usize>) -> Diagnostic {
        Diagnostic::at(
            Path::new("ward.toml"),
            text,
            span,
            "unknown key \"restrat\" in [program.api]".into(),
            Some("did you mean \"restart\"?".into()),
        )
    }

    #[test]
    fn position_is_line_and_char_column() {
        let text = "[program.api]\nenv = { A = \"é\" }\nrestrat = \"always\"\n";
        let start = text.find("restrat").unwrap();
        let d = diag(text, start..start + 7);
        assert_eq!((d.line, d.col, d.span_len), (3, 1, 7));
        assert_eq!(d.snippet, "restrat = \"always\"");

        let start = text.find('"').unwrap();
        let d = diag(text, start..start + 4);
        assert_eq!((d.line, d.col, d.span_len), (2, 13, 3));
    }

    #[test]
    fn renders_like_rustc() {
        let text = "[program.api]\ncommand = \"x\"\nrestrat = \"always\"\n";
        let start = text.find("restrat").unwrap();
        let d = diag(text, start..start + 7);
        assert_eq!(
            d.to_string(),
            "error: ward.toml:3:1: unknown key \"restrat\" in [program.api]\n  |\n3 | restrat = \"always\"\n  | ^^^^^^^\n  = help: did you mean \"restart\"?\n"
        );
        assert_eq!(
            d.one_line(),
            "ward.toml:3:1: unknown key \"restrat\" in [program.api] (did you mean \"restart\"?)"
        );
    }

    #[test]
    fn gutter_widens_with_the_line_number() {
        let text = format!("{}x = 1\n", "\n".repeat(11));
        let d = diag(&text, 11..12);
        assert_eq!(d.line, 12);
        assert!(d.to_string().contains("\n   |\n12 | x = 1\n   | ^\n"));
    }

    #[test]
    fn empty_span_at_end_of_input_still_marks_one_char() {
        let text = "a = ";
        let d = diag(text, 4..4);
        assert_eq!((d.line, d.col, d.span_len), (1, 5, 1));
    }

    #[test]
    fn span_on_a_crlf_line_break_is_at_the_end_of_the_line() {
        // Found by the config fuzz target: an unclosed string in a CRLF
        // file, reported at the "\n", gave a column two past the line.
        let text = "a = \"x\r\nb = 1\r\n";
        for at in [6, 7] {
            let d = diag(text, at..at);
            assert_eq!((d.line, d.col, d.span_len), (1, 7, 1), "span at {at}");
            assert_eq!(d.snippet, "a = \"x");
        }
    }

    #[test]
    fn multi_line_span_is_cut_at_the_line_end() {
        let text = "a = [\n 1,\n]\n";
        let d = diag(text, 4..text.len() - 1);
        assert_eq!((d.line, d.col, d.span_len), (1, 5, 1));
    }

    #[test]
    fn tabs_keep_the_marker_aligned() {
        let text = "\tkey = 1\n";
        let d = diag(text, 1..4);
        assert!(d.to_string().contains("1 |     key = 1\n  |     ^^^\n"));
    }

    #[test]
    fn whole_file_diagnostic_has_no_source_block() {
        let ds = Diagnostics::whole_file(
            Path::new("ward.toml"),
            "cannot read ward.toml: gone".into(),
            None,
        );
        assert_eq!(
            ds.to_string(),
            "error: ward.toml: cannot read ward.toml: gone\n"
        );
    }
}
