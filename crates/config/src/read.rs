//! Typed reading of the parsed TOML tree: each reader either returns the value
//! or records a diagnostic at the offending text and returns `None`, so that
//! one pass over the file finds every mistake.

use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::diag::Diagnostic;
use crate::host::Host;
use crate::units::{parse_duration, parse_size};

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// The file being read and what is wrong with it so far.
pub(crate) struct Ctx<'s> {
    pub file: &'s Path,
    pub text: &'s str,
    /// Answers what the file alone cannot (do its users exist?).
    pub host: &'s dyn Host,
    pub diags: Vec<Diagnostic>,
}

impl<'s> Ctx<'s> {
    pub fn new(file: &'s Path, text: &'s str, host: &'s dyn Host) -> Self {
        Ctx {
            file,
            text,
            host,
            diags: Vec::new(),
        }
    }

    pub fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        self.diags
            .push(Diagnostic::at(self.file, self.text, span, message, help));
    }

    /// An error about the file as a whole: what it is about comes from no
    /// key of it (a default derived from where the file is).
    pub fn error_whole_file(&mut self, message: String, help: Option<String>) {
        self.diags
            .push(Diagnostic::whole_file(self.file, message, help));
    }

    /// The source text of a span, for quoting it back in messages.
    pub fn source(&self, span: Range<usize>) -> &'s str {
        self.text.get(span).unwrap_or("")
    }

    fn type_error(&mut self, field: &Field<'_, '_>, expected: &str, help: Option<String>) {
        self.error(
            field.value.span(),
            format!(
                "wrong type for {}: expected {expected}, found {}",
                field.place(),
                found(field.value.get_ref())
            ),
            help,
        );
    }

    fn range_error(&mut self, field: &Field<'_, '_>, rule: String) {
        self.error(
            field.value.span(),
            format!("{} {rule}", field.place()),
            None,
        );
    }

    pub fn string<'a>(&mut self, field: &Field<'a, '_>) -> Option<&'a str> {
        match field.value.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.type_error(field, "a string", None);
                None
            }
        }
    }

    /// A string that may not be empty nor hold NUL (it reaches `exec` or the
    /// filesystem).
    pub fn text_value<'a>(&mut self, field: &Field<'a, '_>) -> Option<&'a str> {
        let s = self.string(field)?;
        if s.is_empty() {
            self.range_error(field, "must not be empty".into());
            return None;
        }
        if s.contains('\0') {
            self.range_error(field, "must not contain a NUL character".into());
            return None;
        }
        Some(s)
    }

    pub fn bool(&mut self, field: &Field<'_, '_>) -> Option<bool> {
        match field.value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            DeValue::String(s) if s == "true" || s == "false" => {
                self.type_error(
                    field,
                    "a boolean",
                    Some(format!("drop the quotes: {} = {s}", field.key)),
                );
                None
            }
            _ => {
                self.type_error(field, "a boolean (true or false)", None);
                None
            }
        }
    }

    /// An integer within `min..=max`.
    pub fn integer(&mut self, field: &Field<'_, '_>, min: i64, max: i64) -> Option<i64> {
        let n = match field.value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
            DeValue::String(s) if s.trim().parse::<i64>().is_ok() => {
                self.type_error(
                    field,
                    "an integer",
                    Some(format!("drop the quotes: {} = {}", field.key, s.trim())),
                );
                return None;
            }
            _ => {
                self.type_error(field, "an integer", None);
                return None;
            }
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let shown = self.source(field.value.span());
                self.range_error(
                    field,
                    format!("must be between {min} and {max}, found {shown}"),
                );
                None
            }
        }
    }

    /// A number (integer or float) within `min..=max`.
    pub fn number(&mut self, field: &Field<'_, '_>, min: f64, max: f64) -> Option<f64> {
        let n = match field.value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(f) => f.as_str().parse::<f64>().ok(),
            _ => {
                self.type_error(field, "a number", None);
                return None;
            }
        };
        match n {
            Some(n) if n.is_finite() && n >= min && n <= max => Some(n),
            _ => {
                let shown = self.source(field.value.span());
                let bound = if max == f64::INFINITY {
                    format!("must be at least {min}")
                } else {
                    format!("must be between {min} and {max}")
                };
                self.range_error(field, format!("{bound}, found {shown}"));
                None
            }
        }
    }

    pub fn duration(&mut self, field: &Field<'_, '_>) -> Option<Duration> {
        match field.value.get_ref() {
            DeValue::String(s) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(why) => {
                    // Past the cap, the syntax was fine: no how-to-write help.
                    let help = (!why.starts_with("too long")).then(|| DURATION_HELP.into());
                    self.error(
                        field.value.span(),
                        format!("invalid duration for {}: {why}", field.place()),
                        help,
                    );
                    None
                }
            },
            DeValue::Integer(_) | DeValue::Float(_) => {
                let n = self.source(field.value.span()).to_string();
                self.type_error(
                    field,
                    "a string like \"10s\"",
                    Some(format!("write it with a unit, e.g. \"{n}s\"")),
                );
                None
            }
            _ => {
                self.type_error(field, "a string like \"10s\"", Some(DURATION_HELP.into()));
                None
            }
        }
    }

    /// A size in bytes of at least `min` and, when given, at most `max`
    /// (each with the text a user would write, for the message).
    pub fn size(
        &mut self,
        field: &Field<'_, '_>,
        (min, min_text): (u64, &str),
        max: Option<(u64, &str)>,
    ) -> Option<u64> {
        let bytes = match field.value.get_ref() {
            DeValue::String(s) => match parse_size(s) {
                Ok(b) => b,
                Err(why) => {
                    self.error(
                        field.value.span(),
                        format!("invalid size for {}: {why}", field.place()),
                        Some(SIZE_HELP.into()),
                    );
                    return None;
                }
            },
            DeValue::Integer(i) => match u64::from_str_radix(i.as_str(), i.radix()) {
                Ok(b) => b,
                Err(_) => {
                    self.range_error(field, "must be a size of zero bytes or more".into());
                    return None;
                }
            },
            _ => {
                self.type_error(
                    field,
                    "a string like \"50MB\" or a number of bytes",
                    Some(SIZE_HELP.into()),
                );
                return None;
            }
        };
        let too_big = max.is_some_and(|(max, _)| bytes > max);
        if bytes < min || too_big {
            let shown = self.source(field.value.span());
            let bounds = match max {
                Some((_, max_text)) => format!("between {min_text} and {max_text}"),
                None => format!("at least {min_text}"),
            };
            self.range_error(field, format!("must be {bounds}, found {shown}"));
            return None;
        }
        Some(bytes)
    }

    /// One of a fixed set of words.
    pub fn choice<T: Copy>(&mut self, field: &Field<'_, '_>, options: &[(&str, T)]) -> Option<T> {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let listed = quoted_list(&names);
        let DeValue::String(s) = field.value.get_ref() else {
            self.type_error(field, &format!("one of {listed}"), None);
            return None;
        };
        let s: &str = s;
        if let Some((_, v)) = options.iter().find(|(n, _)| *n == s) {
            return Some(*v);
        }
        let help = match did_you_mean(s, names.iter().copied()) {
            Some(best) => format!("did you mean \"{best}\"? (expected one of {listed})"),
            None => format!("expected one of {listed}"),
        };
        self.error(
            field.value.span(),
            format!("invalid value \"{s}\" for {}", field.place()),
            Some(help),
        );
        None
    }

    /// A path, made absolute against `base`.
    pub fn path(&mut self, field: &Field<'_, '_>, base: &Path) -> Option<PathBuf> {
        self.text_value(field).map(|p| resolve(base, Path::new(p)))
    }
}

const DURATION_HELP: &str =
    "write a number and a unit (ms, s, m, h, d), e.g. \"500ms\", \"10s\", \"1m30s\"";
const SIZE_HELP: &str =
    "write a number and a unit (B, KB, KiB, MB, MiB, GB, GiB), e.g. \"50MB\", \"16KiB\"";

/// `base/p` without `.` components; `..` is kept, since resolving it without
/// the filesystem would be wrong across symlinks.
pub(crate) fn resolve(base: &Path, p: &Path) -> PathBuf {
    base.join(p)
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}

/// A table of the file, with the dotted path that names it in messages.
pub(crate) struct Section<'a, 'i> {
    pub path: String,
    pub table: &'a DeTable<'i>,
    /// The header (or key) that opened the table: where "missing key" goes.
    pub span: Range<usize>,
}

impl<'a, 'i> Section<'a, 'i> {
    pub fn root(table: &'a DeTable<'i>) -> Self {
        Section {
            path: String::new(),
            table,
            span: 0..0,
        }
    }

    /// The field as a table, or a type error.
    pub fn of(ctx: &mut Ctx<'_>, field: &Field<'a, 'i>) -> Option<Self> {
        match field.value.get_ref() {
            DeValue::Table(table) => Some(Section {
                path: field.path(),
                table,
                span: field.value.span(),
            }),
            _ => {
                ctx.type_error(field, "a table", None);
                None
            }
        }
    }

    /// `in [program.api]`, or `at the top level`.
    pub fn location(&self) -> String {
        if self.path.is_empty() {
            "at the top level".into()
        } else {
            format!("in [{}]", self.path)
        }
    }

    pub fn get(&self, key: &str) -> Option<Field<'a, 'i>> {
        self.table
            .get_key_value(key)
            .map(|(k, value)| self.field(k, value))
    }

    /// Every entry, in the order of the file.
    pub fn entries(&self) -> Vec<Field<'a, 'i>> {
        let mut all: Vec<Field<'a, 'i>> =
            self.table.iter().map(|(k, v)| self.field(k, v)).collect();
        all.sort_by_key(|f| f.key_span.start);
        all
    }

    fn field(
        &self,
        key: &'a Spanned<std::borrow::Cow<'i, str>>,
        value: &'a Value<'i>,
    ) -> Field<'a, 'i> {
        Field {
            key: key.get_ref().as_ref(),
            key_span: key.span(),
            value,
            parent: self.path.clone(),
        }
    }

    /// Reports every key not in `known`, with a suggestion when one is
    /// close, or when it is what another supervisor calls a known key
    /// (`aliases`: their name → ours).
    pub fn check_keys(&self, ctx: &mut Ctx<'_>, known: &[&str], aliases: &[(&str, &str)]) {
        for field in self.entries() {
            if known.contains(&field.key) {
                continue;
            }
            let alias = aliases
                .iter()
                .find(|(theirs, _)| theirs.eq_ignore_ascii_case(field.key));
            let help = match (alias, did_you_mean(field.key, known.iter().copied())) {
                (Some(&(_, ours)), _) | (None, Some(ours)) => format!("did you mean \"{ours}\"?"),
                (None, None) => format!("known keys here: {}", known.join(", ")),
            };
            ctx.error(
                field.key_span.clone(),
                format!("unknown key {} {}", quote_key(field.key), self.location()),
                Some(help),
            );
        }
    }
}

/// One `key = value` of a section.
pub(crate) struct Field<'a, 'i> {
    pub key: &'a str,
    pub key_span: Range<usize>,
    pub value: &'a Value<'i>,
    /// Dotted path of the table holding it.
    pub parent: String,
}

impl Field<'_, '_> {
    /// `"stop_timeout" in [program.api]`
    pub fn place(&self) -> String {
        if self.parent.is_empty() {
            quote_key(self.key)
        } else {
            format!("{} in [{}]", quote_key(self.key), self.parent)
        }
    }

    /// Dotted path of the field itself: `program.api.backoff`.
    pub fn path(&self) -> String {
        let key = bare_or_quoted(self.key);
        if self.parent.is_empty() {
            key
        } else {
            format!("{}.{key}", self.parent)
        }
    }
}

fn quote_key(key: &str) -> String {
    format!("{key:?}")
}

/// A key as TOML would need it written inside a dotted path.
fn bare_or_quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// `a value of this kind`, for "found …".
pub(crate) fn found(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(crate) fn quoted_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{}, or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    }
}

/// The candidate closest to `word`, when it is close enough to be a typo
/// (ward's one rule: [`ward_core::suggest::closest`]).
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    ward_core::suggest::closest(word, candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_not_strangers() {
        let keys = [
            "command",
            "restart",
            "stop_timeout",
            "depends_on",
            "env",
            "cwd",
            "user",
        ];
        let cases = [
            ("restrat", Some("restart")),
            ("Restart", Some("restart")),
            ("stop_timout", Some("stop_timeout")),
            ("depends", Some("depends_on")),
            ("usr", Some("user")),
            ("comand", Some("command")),
            ("xyz", None),
            ("foo", None),
            ("banana", None),
        ];
        for (word, want) in cases {
            assert_eq!(did_you_mean(word, keys), want, "{word}");
        }
    }

    #[test]
    fn lists_read_naturally() {
        assert_eq!(quoted_list(&["a"]), "\"a\"");
        assert_eq!(quoted_list(&["a", "b", "c"]), "\"a\", \"b\", or \"c\"");
    }

    #[test]
    fn resolve_drops_dot_components() {
        assert_eq!(
            resolve(Path::new("/srv/app"), Path::new(".")),
            PathBuf::from("/srv/app")
        );
        assert_eq!(
            resolve(Path::new("/srv/app"), Path::new("./logs/./x")),
            PathBuf::from("/srv/app/logs/x")
        );
        assert_eq!(
            resolve(Path::new("/srv/app"), Path::new("/var/log")),
            PathBuf::from("/var/log")
        );
        assert_eq!(
            resolve(Path::new("/srv/app"), Path::new("../x")),
            PathBuf::from("/srv/app/../x")
        );
    }
}
