//! `[program.NAME]`: what to run and the policy around it.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::de::DeValue;
use ward_core::{
    BackoffSpec, Condition, LaunchSpec, LogSpec, ProgramSpec, RestartPolicy, Signal, StartLimit,
    StopMode,
};

use crate::host::is_numeric_id;
use crate::launch::{command, environment, words};
use crate::read::{did_you_mean, found, quoted_list, Ctx, Field, Section};
use crate::settings::read_logs;
use crate::units::format_duration;

const PROGRAM_KEYS: [&str; 20] = [
    "command",
    "shell",
    "cwd",
    "env",
    "env_file",
    "user",
    "group",
    "instances",
    "autostart",
    "restart",
    "success_exit_codes",
    "backoff",
    "start_limit",
    "min_uptime",
    "stop_signal",
    "stop_command",
    "stop_timeout",
    "stop_mode",
    "depends_on",
    "logs",
];

/// What supervisord, PM2, systemd or Compose call our keys.
const ALIASES: [(&str, &str); 22] = [
    ("autorestart", "restart"),
    ("cmd", "command"),
    ("args", "command"),
    ("exec", "command"),
    ("script", "command"),
    ("directory", "cwd"),
    ("working_dir", "cwd"),
    ("workdir", "cwd"),
    ("working_directory", "cwd"),
    ("environment", "env"),
    ("numprocs", "instances"),
    ("replicas", "instances"),
    ("stopsignal", "stop_signal"),
    ("kill_signal", "stop_signal"),
    ("stopwaitsecs", "stop_timeout"),
    ("kill_timeout", "stop_timeout"),
    ("killmode", "stop_mode"),
    ("kill_mode", "stop_mode"),
    ("startsecs", "min_uptime"),
    ("after", "depends_on"),
    ("requires", "depends_on"),
    ("log", "logs"),
];

const BACKOFF_KEYS: [&str; 5] = ["initial", "max", "factor", "jitter", "reset_after"];
const START_LIMIT_KEYS: [&str; 3] = ["burst", "interval", "cooldown"];

pub(crate) const DEFAULT_BACKOFF: BackoffSpec = BackoffSpec {
    initial: Duration::from_millis(200),
    max: Duration::from_secs(30),
    factor: 2.0,
    jitter: 0.1,
    reset_after: Duration::from_secs(30),
};

pub(crate) const DEFAULT_START_LIMIT: StartLimit = StartLimit {
    burst: 5,
    interval: Duration::from_secs(60),
    cooldown: Some(Duration::from_secs(60)),
};

/// One `depends_on` entry as written; names are checked once all are known.
pub(crate) struct Dep {
    pub name: String,
    pub span: Range<usize>,
}

pub(crate) struct Program {
    pub spec: ProgramSpec,
    pub deps: Vec<Dep>,
}

/// Reads one program. A mistake is recorded in `ctx` and the default stands
/// in for the value, so that the rest of the program is still checked.
pub(crate) fn read_program(
    ctx: &mut Ctx<'_>,
    name: &str,
    section: &Section<'_, '_>,
    dir: &Path,
    logs: &LogSpec,
) -> Program {
    section.check_keys(ctx, &PROGRAM_KEYS, &ALIASES);
    let get = |key: &str| section.get(key);

    let shell = get("shell").and_then(|f| ctx.bool(&f)).unwrap_or(false);
    let argv = command(ctx, section, shell).unwrap_or_default();
    let cwd = get("cwd")
        .and_then(|f| ctx.path(&f, dir))
        .unwrap_or_else(|| dir.to_path_buf());
    let env = environment(ctx, section, dir);
    if let (Some(program), Some(f)) = (argv.first(), get("command")) {
        let path = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        if let Err(why) = ctx.host.check_command(program, &cwd, path) {
            ctx.error(
                f.value.span(),
                format!("cannot run {program}: {why}"),
                Some(
                    "fix the command; if an earlier step creates it, pass --no-verify-commands"
                        .into(),
                ),
            );
        }
    }
    let user = get("user").and_then(|f| account(ctx, &f, Account::User));
    let group = get("group").and_then(|f| account(ctx, &f, Account::Group));
    let instances = get("instances")
        .and_then(|f| ctx.integer(&f, 1, 10_000))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1);
    let autostart = get("autostart").and_then(|f| ctx.bool(&f)).unwrap_or(true);
    let restart = get("restart")
        .and_then(|f| {
            ctx.choice(
                &f,
                &[
                    ("always", RestartPolicy::Always),
                    ("on-failure", RestartPolicy::OnFailure),
                    ("never", RestartPolicy::Never),
                ],
            )
        })
        .unwrap_or(RestartPolicy::Always);
    let success_exit_codes = get("success_exit_codes")
        .and_then(|f| exit_codes(ctx, &f))
        .unwrap_or_else(|| vec![0]);
    let backoff = get("backoff").map_or(DEFAULT_BACKOFF, |f| backoff(ctx, &f));
    let start_limit = get("start_limit").map_or(DEFAULT_START_LIMIT, |f| start_limit(ctx, &f));
    let min_uptime = get("min_uptime")
        .and_then(|f| ctx.duration(&f))
        .unwrap_or(Duration::from_secs(1));
    let stop_signal = get("stop_signal")
        .and_then(|f| signal(ctx, &f))
        .unwrap_or_else(|| ctx.host.default_stop_signal());
    let stop_command = get("stop_command").and_then(|f| {
        let argv = words(ctx, &f, &section.location(), false).filter(|a| !a.is_empty())?;
        if get("stop_signal").is_some() {
            ctx.error(
                f.value.span(),
                format!("both stop_signal and stop_command {}", section.location()),
                Some("a stop sends the signal or runs the command: keep one".into()),
            );
        }
        let path = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        if let Err(why) = ctx.host.check_command(&argv[0], &cwd, path) {
            ctx.error(
                f.value.span(),
                format!("cannot run {}: {why}", argv[0]),
                Some("fix the stop command, or leave it out to stop with stop_signal".into()),
            );
        }
        Some(argv)
    });
    if let (Some(program), None) = (argv.first(), &stop_command) {
        let path = env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str());
        if let Err(why) = ctx.host.check_stop_signal(program, &cwd, path, stop_signal) {
            let span = get("stop_signal")
                .or_else(|| get("command"))
                .map_or_else(|| section.span.clone(), |f| f.value.span());
            ctx.error(
                span,
                format!(
                    "{program} cannot be stopped with {stop_signal} {}",
                    section.location()
                ),
                Some(why),
            );
        }
    }
    let stop_timeout = get("stop_timeout")
        .and_then(|f| ctx.duration(&f))
        .unwrap_or(Duration::from_secs(10));
    let stop_mode = get("stop_mode")
        .and_then(|f| ctx.choice(&f, &[("tree", StopMode::Tree), ("main", StopMode::Main)]))
        .unwrap_or_default();
    let deps = get("depends_on")
        .map(|f| depends_on(ctx, &f))
        .unwrap_or_default();
    let logs = match get("logs") {
        Some(f) => read_logs(ctx, &f, logs, dir),
        None => logs.clone(),
    };

    let spec = ProgramSpec {
        name: name.to_string(),
        launch: Arc::new(LaunchSpec {
            argv,
            shell,
            cwd,
            env,
            user,
            group,
        }),
        logs: Arc::new(logs),
        instances,
        autostart,
        restart,
        success_exit_codes,
        backoff,
        start_limit,
        min_uptime,
        stop_signal,
        stop_command,
        stop_timeout,
        stop_mode,
        depends_on: deps
            .iter()
            .map(|(dep, condition)| (dep.name.clone(), *condition))
            .collect::<BTreeMap<_, _>>(),
    };
    Program {
        spec,
        deps: deps.into_iter().map(|(dep, _)| dep).collect(),
    }
}

#[derive(Clone, Copy)]
enum Account {
    User,
    Group,
}

/// A `user` or `group`: a name the host knows, or a numeric id. Kept even
/// when the host does not know it, so that the rest is still checked.
fn account(ctx: &mut Ctx<'_>, field: &Field<'_, '_>, kind: Account) -> Option<String> {
    let name = ctx.text_value(field)?;
    if let Err(why) = ctx.host.check_accounts() {
        ctx.error(
            field.value.span(),
            format!("{} cannot be set on this system", field.place()),
            Some(why),
        );
        return Some(name.to_string());
    }
    if is_numeric_id(name) {
        return Some(name.to_string());
    }
    let (answer, id) = match kind {
        Account::User => (ctx.host.check_user(name), "uid"),
        Account::Group => (ctx.host.check_group(name), "gid"),
    };
    if let Err(why) = answer {
        ctx.error(
            field.value.span(),
            format!("{why} for {}", field.place()),
            Some(format!(
                "ward runs the program as this {}: fix the name, create it, or give a numeric {id}",
                field.key
            )),
        );
    }
    Some(name.to_string())
}

fn exit_codes(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> Option<Vec<i32>> {
    let DeValue::Array(items) = field.value.get_ref() else {
        ctx.error(
            field.value.span(),
            format!(
                "wrong type for {}: expected an array of integers, found {}",
                field.place(),
                found(field.value.get_ref())
            ),
            Some("e.g. success_exit_codes = [0, 2]".into()),
        );
        return None;
    };
    let mut codes = Vec::new();
    let mut ok = true;
    for item in items.iter() {
        let code = match item.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .and_then(|n| i32::try_from(n).ok())
                .filter(|n| (0..=255).contains(n)),
            _ => None,
        };
        match code {
            Some(c) if !codes.contains(&c) => codes.push(c),
            Some(_) => {}
            None => {
                ok = false;
                ctx.error(
                    item.span(),
                    format!(
                        "invalid exit code {} in {}",
                        ctx.source(item.span()),
                        field.place()
                    ),
                    Some("exit codes are integers from 0 to 255".into()),
                );
            }
        }
    }
    ok.then_some(codes)
}

fn backoff(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> BackoffSpec {
    let mut b = DEFAULT_BACKOFF;
    let Some(section) = Section::of(ctx, field) else {
        return b;
    };
    section.check_keys(ctx, &BACKOFF_KEYS, &[]);
    let initial = section.get("initial");
    let max = section.get("max");
    if let Some(d) = initial.as_ref().and_then(|f| ctx.duration(f)) {
        b.initial = d;
    }
    if let Some(d) = max.as_ref().and_then(|f| ctx.duration(f)) {
        b.max = d;
    }
    if let Some(x) = section
        .get("factor")
        .and_then(|f| ctx.number(&f, 1.0, f64::INFINITY))
    {
        b.factor = x;
    }
    if let Some(x) = section.get("jitter").and_then(|f| ctx.number(&f, 0.0, 1.0)) {
        b.jitter = x;
    }
    if let Some(d) = section.get("reset_after").and_then(|f| ctx.duration(&f)) {
        b.reset_after = d;
    }
    if b.initial > b.max {
        // Point at what the user wrote: the initial delay if they set it.
        if let Some(at) = initial.or(max) {
            ctx.error(
                at.value.span(),
                format!(
                    "backoff initial ({}) is longer than max ({}) in [{}]",
                    format_duration(b.initial),
                    format_duration(b.max),
                    section.path
                ),
                Some("the first delay cannot exceed the cap; raise max or lower initial".into()),
            );
        }
    }
    b
}

fn start_limit(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> StartLimit {
    let mut limit = DEFAULT_START_LIMIT;
    let Some(section) = Section::of(ctx, field) else {
        return limit;
    };
    section.check_keys(ctx, &START_LIMIT_KEYS, &[]);
    if let Some(n) = section
        .get("burst")
        .and_then(|f| ctx.integer(&f, 1, i64::from(u32::MAX)))
    {
        limit.burst = u32::try_from(n).unwrap_or(limit.burst);
    }
    if let Some(d) = section.get("interval").and_then(|f| ctx.duration(&f)) {
        limit.interval = d;
    }
    if let Some(f) = section.get("cooldown") {
        if f.value.get_ref().as_str() == Some("never") {
            limit.cooldown = None;
        } else if let Some(d) = ctx.duration(&f) {
            limit.cooldown = Some(d);
        }
    }
    limit
}

fn signal(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> Option<Signal> {
    let names: Vec<&str> = Signal::ALL
        .iter()
        .filter(|s| ctx.host.check_signal(**s).is_ok())
        .map(|s| s.name())
        .collect();
    let DeValue::String(s) = field.value.get_ref() else {
        let help = matches!(field.value.get_ref(), DeValue::Integer(_))
            .then(|| "signal numbers differ between systems; write the name, e.g. \"TERM\"".into());
        ctx.error(
            field.value.span(),
            format!(
                "wrong type for {}: expected a signal name like \"TERM\", found {}",
                field.place(),
                found(field.value.get_ref())
            ),
            help,
        );
        return None;
    };
    if let Some(sig) = Signal::from_name(s) {
        if let Err(why) = ctx.host.check_signal(sig) {
            ctx.error(
                field.value.span(),
                format!("{} cannot be {sig} on this system", field.place()),
                Some(why),
            );
        }
        return Some(sig);
    }
    let upper = s.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let listed = quoted_list(&names);
    let help = match did_you_mean(bare, names.iter().copied()) {
        Some(best) => format!("did you mean \"{best}\"? (expected one of {listed})"),
        None => format!("expected one of {listed}"),
    };
    ctx.error(
        field.value.span(),
        format!("unknown signal \"{s}\" for {}", field.place()),
        Some(help),
    );
    None
}

/// `{ db = "started" }` or `["db"]` (each meaning started).
fn depends_on(ctx: &mut Ctx<'_>, field: &Field<'_, '_>) -> Vec<(Dep, Condition)> {
    let mut deps: Vec<(Dep, Condition)> = Vec::new();
    match field.value.get_ref() {
        DeValue::Array(items) => {
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(name) => {
                        if !deps.iter().any(|(d, _)| d.name == name.as_ref()) {
                            let dep = Dep {
                                name: name.to_string(),
                                span: item.span(),
                            };
                            deps.push((dep, Condition::Started));
                        }
                    }
                    other => ctx.error(
                        item.span(),
                        format!(
                            "wrong type for an element of {}: expected a program name, found {}",
                            field.place(),
                            found(other)
                        ),
                        None,
                    ),
                }
            }
        }
        DeValue::Table(_) => {
            let Some(section) = Section::of(ctx, field) else {
                return deps;
            };
            for entry in section.entries() {
                if let Some(condition) = condition(ctx, &entry) {
                    let dep = Dep {
                        name: entry.key.to_string(),
                        span: entry.key_span.clone(),
                    };
                    deps.push((dep, condition));
                }
            }
        }
        other => ctx.error(
            field.value.span(),
            format!(
                "wrong type for {}: expected a table or an array of program names, found {}",
                field.place(),
                found(other)
            ),
            Some("e.g. depends_on = { db = \"started\" } or depends_on = [\"db\"]".into()),
        ),
    }
    deps
}

fn condition(ctx: &mut Ctx<'_>, entry: &Field<'_, '_>) -> Option<Condition> {
    if entry.value.get_ref().as_str() == Some("healthy") {
        ctx.error(
            entry.value.span(),
            "condition \"healthy\" needs health probes, which ward does not have yet; use \"started\""
                .into(),
            None,
        );
        return None;
    }
    ctx.choice(
        entry,
        &[
            ("started", Condition::Started),
            ("completed", Condition::Completed),
        ],
    )
}
