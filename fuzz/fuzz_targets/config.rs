//! Arbitrary bytes as a `ward.toml` (read lossily as UTF-8), through
//! `ward_config::parse`. Checks that it never panics, that every diagnostic
//! points inside the text it is about, that a valid file yields a program
//! set that passes its own validation, and that the engine runs that set
//! without breaking an invariant.
#![no_main]

use std::fs;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use toml::de::{DeTable, DeValue};
use ward_config::{parse, Config, Diagnostic};
use ward_core::invariants::{check_diff, CheckedShell, Op, Pick};
use ward_core::{deps, Restore, SpecSet, Supervisor};

/// The env files a fuzzed config may name (`env_file = ".env"`): one that
/// reads well, one full of mistakes.
const ENV_FILES: [(&str, &str); 2] = [
    (
        ".env",
        "# settings\nPORT=8080\nexport MODE=prod\nQUOTED=\"a\\tb\"\nLIT='$x'\n\nEMPTY=\n",
    ),
    (
        "bad.env",
        "no equals here\n  =value\nKEY='unclosed\nÉTÉ=1 # fine\nA B=1\r\nexport\nX=\"\\q\"\n",
    ),
];

/// Programs whose instances add up to more than this are not run through
/// the engine: a thousand-instance file is valid, but too slow to fuzz.
const MAX_INSTANCES_RUN: u32 = 32;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if !reads_only_workdir(&text) {
        return;
    }
    let path = workdir().join("ward.toml");
    let result = parse(&path, &text);
    // The same text gives the same answer.
    assert_eq!(result, parse(&path, &text), "parse is not deterministic");
    match result {
        Err(diags) => {
            assert!(!diags.items.is_empty(), "an error without a diagnostic");
            let main = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let mut last: Option<(bool, &Path, usize, usize)> = None;
            for d in &diags.items {
                check_place(d, &path, main);
                // File order: the config first, then the files it names.
                let key = (d.file != path, d.file.as_path(), d.line, d.col);
                assert!(last.is_none_or(|l| l <= key), "diagnostics out of order");
                last = Some(key);
                // Rendering never panics either.
                let _ = (d.to_string(), d.one_line());
            }
            let _ = diags.to_string();
        }
        Ok(config) => check_config(&config, &path),
    }
});

/// A diagnostic's line and column lie inside the text it is about, and
/// its snippet is that line.
fn check_place(d: &Diagnostic, config_path: &Path, config_text: &str) {
    // About a whole file (one that cannot be read, or a default the file
    // implies): no place, no snippet.
    if d.line == 0 {
        assert!(
            d.col == 0 && d.snippet.is_empty() && d.span_len == 0,
            "{d:?}: a whole-file diagnostic with a place"
        );
        return;
    }
    assert!(d.col >= 1, "{d:?}: lines and columns start at 1");
    let other_text;
    let text = if d.file == config_path {
        config_text
    } else if let Ok(contents) = fs::read_to_string(&d.file) {
        // An env file: `reads_only_workdir` let through only names inside
        // the work directory, so reading it is safe.
        other_text = contents;
        &other_text
    } else {
        panic!("{d:?}: a place in a file that cannot be read");
    };
    // Lines as the diagnostic counts them: a text with n line breaks has
    // n + 1 lines (the last one perhaps empty).
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(
        d.line <= lines.len(),
        "{d:?}: line past the end ({} lines)",
        lines.len()
    );
    let line = lines[d.line - 1].trim_end_matches('\r');
    let width = line.chars().count();
    assert!(
        d.col <= width + 1,
        "{d:?}: column past the end of the line ({width} characters)"
    );
    assert_eq!(d.snippet, line, "{d:?}: snippet is not the line");
    assert!(d.span_len >= 1, "{d:?}: marks nothing");
    assert!(
        d.col - 1 + d.span_len <= width + 1,
        "{d:?}: marks past the end of the line"
    );
}

/// A valid config passes its own validation: names, dependencies, values
/// in range; and the engine can run it.
fn check_config(config: &Config, path: &Path) {
    let specs = &config.specs;
    assert!(config.path.is_absolute() && config.path == path);
    assert!(config.ward.state_dir.is_absolute());
    assert!(config.ward.socket.is_absolute());
    assert!(config.ward.logs.dir.is_absolute());
    assert_eq!(config.ward.socket_mode & 0o600, 0o600);
    assert!(config.ward.socket_mode <= 0o777);
    for (name, spec) in &specs.programs {
        assert_eq!(&spec.name, name);
        assert!(
            !name.is_empty()
                && name.len() <= ward_config::MAX_NAME_LEN
                && !name.starts_with('-')
                && name != "."
                && name != ".."
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')),
            "invalid program name {name:?} accepted"
        );
        let launch = &spec.launch;
        assert!(!launch.argv.is_empty(), "{name}: empty argv accepted");
        assert!(
            !launch.argv[0].is_empty(),
            "{name}: empty program to run accepted: {:?}",
            launch.argv
        );
        assert!(
            launch.argv.iter().all(|a| !a.contains('\0')),
            "{name}: NUL in argv accepted"
        );
        if launch.shell {
            assert_eq!(launch.argv.len(), 3);
            assert_eq!(&launch.argv[..2], ["sh", "-c"]);
        }
        assert!(launch.cwd.is_absolute(), "{name}: relative cwd");
        for (key, value) in &launch.env {
            assert!(
                !key.is_empty() && !key.contains(['=', '\0']),
                "{name}: invalid env name {key:?} accepted"
            );
            assert!(!value.contains('\0'), "{name}: NUL in env value accepted");
        }
        let mut names: Vec<&String> = launch.env.iter().map(|(k, _)| k).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), launch.env.len(), "{name}: env name twice");
        assert!(spec.logs.dir.is_absolute(), "{name}: relative log dir");
        assert!(spec.logs.max_size >= 4096);
        assert!((1024..=1024 * 1024).contains(&spec.logs.max_line));
        assert!((1..=10_000).contains(&spec.instances));
        assert!(spec
            .success_exit_codes
            .iter()
            .all(|c| (0..=255).contains(c)));
        let b = &spec.backoff;
        assert!(b.initial <= b.max, "{name}: backoff initial above max");
        assert!(b.factor.is_finite() && b.factor >= 1.0);
        assert!((0.0..=1.0).contains(&b.jitter));
        assert!(spec.start_limit.burst >= 1);
        let durations = [
            spec.min_uptime,
            spec.stop_timeout,
            b.initial,
            b.max,
            b.reset_after,
            spec.start_limit.interval,
            spec.start_limit.cooldown.unwrap_or_default(),
        ];
        assert!(
            durations.iter().all(|d| *d <= ward_config::MAX_DURATION),
            "{name}: a duration past the cap accepted: {durations:?}"
        );
        for dep in spec.depends_on.keys() {
            assert!(
                specs.programs.contains_key(dep),
                "{name} depends on {dep:?}, which is not in the set"
            );
        }
    }
    let cycle = deps::find_cycle(
        specs
            .programs
            .iter()
            .map(|(name, spec)| (name.as_str(), spec.depends_on.keys().map(String::as_str))),
    );
    assert_eq!(cycle, None, "a dependency cycle accepted");

    // Against nothing, a set is all new.
    let none = SpecSet::default();
    let diff = Supervisor::new(none.clone(), Restore::default(), 0, Duration::ZERO).diff(specs);
    check_diff(&none, specs, &diff).unwrap_or_else(|v| panic!("{v}"));
    let total: u32 = specs.programs.values().map(|p| p.instances).sum();
    if total > MAX_INSTANCES_RUN {
        return;
    }
    run_engine(specs);
}

/// Every program started, spawns answered (some failing), time moved from
/// deadline to deadline, a reload of the set onto itself (which must change
/// nothing), a restart, a dry-run reload of nothing, and a shutdown: the
/// invariants hold throughout.
fn run_engine(specs: &SpecSet) {
    let reloads = [specs.clone(), SpecSet::default()];
    let mut ops = vec![Op::Start(Pick::All)];
    for _ in 0..4 {
        ops.extend([
            Op::AnswerSpawn(0, true),
            Op::AnswerSpawn(1, false),
            Op::AdvanceToDeadline,
        ]);
    }
    ops.extend([
        Op::Reload(0, false),
        Op::Restart(Pick::All),
        Op::AdvanceToDeadline,
        Op::Reload(1, true),
        Op::Shutdown,
    ]);
    let result = CheckedShell::new(specs.clone(), Restore::default(), 1).and_then(|mut shell| {
        for op in &ops {
            shell.apply(op, &reloads)?;
        }
        shell.finish()
    });
    if let Err(v) = result {
        panic!("{v}");
    }
}

/// Whether every `env_file` the text names resolves inside the work
/// directory: the fuzzer must not make ward read `/dev/zero` or a FIFO.
/// Text that does not parse as TOML reads no file at all.
fn reads_only_workdir(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Ok(root) = DeTable::parse(text) else {
        return true;
    };
    let Some(programs) = root.get_ref().get("program") else {
        return true;
    };
    let DeValue::Table(programs) = programs.get_ref() else {
        return true;
    };
    programs.values().all(|program| {
        let DeValue::Table(program) = program.get_ref() else {
            return true;
        };
        let Some(files) = program.get("env_file") else {
            return true;
        };
        let inside = |s: &str| {
            let p = Path::new(s);
            p.is_relative()
                && p.components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        };
        match files.get_ref() {
            DeValue::String(s) => inside(s),
            DeValue::Array(items) => items.iter().all(|item| match item.get_ref() {
                DeValue::String(s) => inside(s),
                _ => true,
            }),
            _ => true,
        }
    })
}

/// A directory of our own holding [`ENV_FILES`], made once per process.
/// Written through a rename so that parallel fuzz jobs never see half a
/// file.
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join("ward-fuzz-config");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
        for (name, contents) in ENV_FILES {
            let tmp = dir.join(format!("{name}.{}", std::process::id()));
            fs::write(&tmp, contents).unwrap_or_else(|e| panic!("cannot write {tmp:?}: {e}"));
            fs::rename(&tmp, dir.join(name))
                .unwrap_or_else(|e| panic!("cannot rename {tmp:?}: {e}"));
        }
        dir
    })
}
