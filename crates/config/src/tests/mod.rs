//! Whole-file tests: text in, `Config` or `Diagnostics` out.

mod errors;
mod limits;
mod valid;

use std::path::Path;

use ward_core::ProgramSpec;

use crate::{parse, Config, Diagnostic};

const FILE: &str = "/srv/app/ward.toml";

fn ok(text: &str) -> Config {
    parse(Path::new(FILE), text).unwrap_or_else(|d| panic!("expected a valid config:\n{d}"))
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match parse(Path::new(FILE), text) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(d) => {
            assert!(!d.items.is_empty());
            d.items
        }
    }
}

/// The diagnostics of `text` read on `host`.
fn errors_on(text: &str, host: &dyn crate::Host) -> Vec<Diagnostic> {
    crate::parse_with(Path::new(FILE), text, host)
        .expect_err("expected errors")
        .items
}

/// `(line, col, message, help)` of each diagnostic.
fn explained(all: &[Diagnostic]) -> Vec<(usize, usize, &str, Option<&str>)> {
    all.iter()
        .map(|d| (d.line, d.col, d.message.as_str(), d.help.as_deref()))
        .collect()
}

/// The only diagnostic of `text`.
fn error(text: &str) -> Diagnostic {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one diagnostic, got {all:#?}");
    all.remove(0)
}

/// `(line, col, message)` of each diagnostic.
fn places(text: &str) -> Vec<(usize, usize, String)> {
    errors(text)
        .into_iter()
        .map(|d| (d.line, d.col, d.message))
        .collect()
}

fn program<'c>(config: &'c Config, name: &str) -> &'c ProgramSpec {
    config
        .specs
        .get(name)
        .unwrap_or_else(|| panic!("no program {name}"))
}
