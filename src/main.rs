//! ward keeps long-running programs alive.
//!
//! `main` parses the command line and hands each verb to its function in
//! `cli`. The daemon (`ward up`) is `daemon::run`; everything else is a
//! client of its control API.

mod api;
mod bus;
mod cli;
mod daemon;
mod exec;
mod exits;
mod files;
mod hooks;
mod host;
mod inbox;
mod logs;
mod offload;
mod proc;
mod service;
mod state;
mod stats;
mod text;
mod transport;
mod voice;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use cli::{Failure, Locations, Outcome};

/// The exit codes, as every `--help` shows them (docs/usage.md has the
/// same table).
macro_rules! exit_codes {
    () => {
        "Exit codes:\n  \
         0  done: what was asked happened\n  \
         1  not done: an instance did not get up, a program was given up on,\n     \
         the config has errors, a follow stream broke\n  \
         2  wrong command line: bad arguments, an unknown signal, no such program\n  \
         3  ward is not running (no daemon answers on the control socket)"
    };
}

#[derive(Parser)]
#[command(
    name = "ward",
    version,
    about = "Keeps long-running programs alive: starts them in dependency order, restarts them \
             with backoff when they crash, stops whole process trees, captures and rotates their logs.",
    after_help = concat!(
        "Run `ward up` in a folder with a ward.toml. Every verb but `up` and `check` talks to \
         the running daemon through its control socket.\n\n",
        exit_codes!()
    )
)]
struct Cli {
    /// The config file (default: `ward.toml` in the current folder, or in
    /// the nearest folder above it that has one, up to your home folder or
    /// a file-system boundary).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "WARD_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    /// The daemon's control socket, for the verbs that talk to it, given
    /// before the verb: `ward --socket PATH status` (default: from the
    /// config, `.ward/ward.sock` beside it).
    #[arg(long, env = "WARD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The installed service to talk to (see `ward install`), given before
    /// the verb: `ward --service api status` (default: the `ward.toml`
    /// found from the current folder up, else the only installed service).
    #[arg(long, env = "WARD_SERVICE", value_name = "NAME")]
    service: Option<String>,
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Start every program and supervise them (foreground: streams their
    /// output; Ctrl-C stops everything gracefully, a second Ctrl-C kills).
    ///
    /// In the foreground a hangup (the terminal closing) stops everything
    /// too; detached, or as PID 1 in a container, SIGHUP reloads the config
    /// and SIGTERM stops everything gracefully.
    ///
    /// The state dir (`.ward/` beside the config) holds the control socket,
    /// the lock that keeps a second daemon away, state.json (what you
    /// stopped stays stopped across restarts), events.jsonl, the log files,
    /// and, detached, ward's own log ward.log.
    ///
    /// Refuses to start when the open-files limit cannot cover every
    /// instance (see `ward check`).
    #[command(after_help = exit_codes!())]
    Up {
        /// Run in the background. Returns once the daemon answers and its
        /// programs have settled (each running past its `min_uptime`,
        /// waiting on a dependency, failed, or stopped) or --wait has
        /// passed; prints a line for each instance that is not running,
        /// with why; exits 1 if one was given up on (`fatal`).
        #[arg(long, short = 'd')]
        detach: bool,
        /// With --detach: how long at most to wait for programs to settle.
        #[arg(
            long,
            default_value = "5s",
            value_name = "DURATION",
            value_parser = duration_arg,
            requires = "detach"
        )]
        wait: std::time::Duration,
        /// Do not check that each command can be run (for a command that an
        /// earlier program creates); reloads then skip the check too.
        #[arg(long)]
        no_verify_commands: bool,
    },
    /// Validate the config, print every error with file:line:col; starts nothing.
    ///
    /// Also fails when the open-files limit cannot cover every instance
    /// (about 3 descriptors each, plus 64 for ward), as `ward up` would
    /// refuse to start.
    #[command(after_help = exit_codes!())]
    Check {
        /// Do not check that each command can be run (for a command that an
        /// earlier program creates).
        #[arg(long)]
        no_verify_commands: bool,
    },
    /// Write a commented starter ward.toml in the current folder (or at
    /// --config FILE); never over an existing file. It passes `ward check`
    /// as it is.
    #[command(after_help = exit_codes!())]
    Init,
    /// Print shell completions: `ward completions bash > /etc/bash_completion.d/ward`,
    /// `ward completions zsh > "${fpath[1]}/_ward"`, `ward completions fish >
    /// ~/.config/fish/completions/ward.fish`, `ward completions powershell >> $PROFILE`.
    #[command(after_help = exit_codes!())]
    Completions {
        /// bash, zsh, fish, powershell or elvish.
        shell: clap_complete::Shell,
    },
    /// Print the manual page ward(1), or write it and one page per verb
    /// (ward-up.1, ward-status.1, ...) into a folder: `ward man --dir
    /// /usr/local/share/man/man1`.
    #[command(after_help = exit_codes!())]
    Man {
        /// Write ward.1 and ward-VERB.1 here instead of printing ward(1).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Install ward as a service of this system's service manager (a
    /// systemd unit; a launchd daemon or agent on macOS), enable it so that
    /// it starts at boot, and start it.
    ///
    /// The service runs the config given (`--config`, or the `ward.toml`
    /// found from the current folder up), or, with a COMMAND after `--`,
    /// one program without a config of yours (ward writes one, in
    /// /etc/ward/NAME.toml or ~/.config/ward/NAME.toml). The config is
    /// checked first: one with errors installs nothing. Its state, socket
    /// and logs go to the service's places (`/var/lib/ward/NAME`,
    /// `/run/ward/NAME`, `/var/log/ward/NAME`) unless the config names
    /// others. Afterwards `ward status` (and every other verb) finds it
    /// from any folder; `systemctl reload NAME` is `ward reload`.
    ///
    /// A unit ward did not write, or one edited by hand since, is not
    /// replaced without --force. If a step fails, what was written is
    /// taken back. See docs/install.md.
    #[command(after_help = exit_codes!())]
    Install(cli::service::InstallArgs),
    /// Stop an installed service, disable it and remove its unit, state and
    /// runtime folders (its logs are kept unless --remove-logs; your config
    /// stays; a config ward wrote for a COMMAND goes).
    #[command(after_help = exit_codes!())]
    Uninstall(cli::service::UninstallArgs),
    /// What an installed unit runs: the daemon under a service manager.
    #[command(hide = true)]
    ServiceRun {
        #[arg(long, value_name = "NAME")]
        name: String,
        /// A user's service.
        #[arg(long)]
        user: bool,
    },
    #[command(flatten)]
    Control(Control),
}

/// The verbs that talk to a running daemon.
#[derive(Subcommand)]
enum Control {
    /// Stop every program in reverse dependency order, then the daemon.
    #[command(after_help = exit_codes!())]
    Down,
    /// Show every instance: state, pid, uptime, restarts, and why it is in
    /// its state (the error of a command that cannot run, the last exit,
    /// the time until the next try, what it waits for, who stopped it).
    ///
    /// With a NAME, each of its instances in detail: command, folder,
    /// state and since when, desired state and who set it, restarts, the
    /// last exits with their times, the last lines it wrote to stderr.
    #[command(after_help = exit_codes!())]
    Status {
        /// A program (`api`), an instance (`web:1`), `all`, or nothing for
        /// the table of all.
        name: Option<String>,
        /// Print JSON instead: an array of instance objects (with a NAME,
        /// with their details); see docs/api.md.
        #[arg(long)]
        json: bool,
    },
    /// Start programs (and what they depend on); waits until each is up.
    ///
    /// "Up" means running and still running after its `min_uptime` (1s by
    /// default), or, for a one-shot program, exited with a success code.
    /// Each instance that waits on a dependency still on its way (a
    /// migration that is running) is waited for, up to --timeout. Prints a
    /// line per instance; exits 1 naming each instance that did not get
    /// up, with why (the error of a command that cannot run, its exit, a
    /// dependency that failed).
    #[command(after_help = exit_codes!())]
    Start {
        /// Programs (`api`), instances (`web:1`), or `all`.
        #[arg(required = true)]
        names: Vec<String>,
        /// How long to wait for dependencies that are on their way.
        #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
        timeout: std::time::Duration,
    },
    /// Stop programs; waits until every process of each tree is gone.
    ///
    /// What you stop stays stopped (across `ward down`/`ward up` too) until
    /// you start it again.
    #[command(after_help = exit_codes!())]
    Stop {
        /// Programs (`api`), instances (`web:1`), or `all`.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop, then start programs; waits and fails as `ward start` does.
    #[command(after_help = exit_codes!())]
    Restart {
        /// Programs (`api`), instances (`web:1`), or `all`.
        #[arg(required = true)]
        names: Vec<String>,
        /// How long to wait for dependencies that are on their way.
        #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = duration_arg)]
        timeout: std::time::Duration,
    },
    /// Send a signal to the main process of each instance (`HUP` to
    /// reload, `USR1` to reopen logs, ...): not to what it forked, unless
    /// `--tree` says so.
    #[command(after_help = exit_codes!())]
    Signal {
        /// One of HUP, INT, QUIT, ABRT, KILL, USR1, USR2, ALRM, TERM, CONT,
        /// STOP, TSTP, WINCH; with or without `SIG`, any case.
        signal: String,
        /// A program (`api`), an instance (`web:1`), or `all`.
        name: String,
        /// Send it to every process of each tree, not only the main process.
        #[arg(long)]
        tree: bool,
    },
    /// Show a program's output (from its log files). When ward is not
    /// running, the files are read directly (said on stderr); `-f` needs a
    /// running ward.
    #[command(after_help = exit_codes!())]
    Logs {
        /// A program (`api`; all its instances, each line prefixed with its
        /// instance), an instance (`web:1`), or `all`.
        name: String,
        /// Keep printing new lines as they come, until ward stops (then
        /// `ward stopped` on stderr, exit 0; a broken connection exits 1).
        #[arg(long, short = 'f')]
        follow: bool,
        /// How many lines of the past to show.
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
    },
    /// Re-read the config and apply it: restarts only what changed.
    /// A config with errors is rejected whole; nothing changes.
    #[command(after_help = exit_codes!())]
    Reload {
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show ward's events (state changes, exits, reloads, dropped log
    /// lines, notices), one JSON object a line, from the journal
    /// (events.jsonl). When ward is not running, the journal is read
    /// directly (said on stderr); `-f` needs a running ward.
    #[command(after_help = exit_codes!())]
    Events {
        /// Keep printing events as they happen, until ward stops (then
        /// `ward stopped` on stderr, exit 0; a broken connection exits 1).
        #[arg(long, short = 'f')]
        follow: bool,
        /// How many past events to show (then, with -f, the new ones).
        #[arg(long, short = 'n', default_value_t = 20)]
        lines: usize,
        /// The journal's JSON lines as they are (the default when stdout is
        /// not a terminal); on a terminal events are shown as sentences.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    // On Windows, a copy of ward started to send a console event.
    if let Some(code) = proc::run_helper() {
        std::process::exit(code);
    }
    let cli = parse();
    let socket_override = cli.socket.is_some();
    let config_given = cli.config.is_some();
    // Where the config and the daemon are, for the verbs that need them
    // (found only then: `ward init` in an empty folder looks for nothing).
    let wanted = (cli.config.clone(), cli.socket.clone(), cli.service.clone());
    let mut located: Option<Locations> = None;
    // `installed`: a verb that talks to a daemon may find the only
    // installed service; `up`, `check` and `install` never take it unasked.
    let mut locate =
        |verify_commands: bool, installed: bool, act: Box<dyn FnOnce(&Locations) -> Outcome>| {
            let mut loc = Locations::resolve(
                wanted.0.clone(),
                wanted.1.clone(),
                wanted.2.clone(),
                installed,
            )?;
            loc.verify_commands = verify_commands;
            let outcome = act(&loc);
            located = Some(loc);
            outcome
        };
    let outcome = match cli.verb {
        // `up` must run before any thread exists: no runtime yet.
        Verb::Up {
            detach: false,
            no_verify_commands,
            ..
        } => locate(
            !no_verify_commands,
            false,
            Box::new(move |loc| {
                let report = cli::up::take_report_path();
                let outcome = cli::up::foreground(loc, socket_override);
                if let (Err(failure), Some(path)) = (&outcome, report) {
                    cli::up::write_report(&path, failure);
                }
                outcome
            }),
        ),
        Verb::Up {
            detach: true,
            wait,
            no_verify_commands,
        } => locate(
            !no_verify_commands,
            false,
            Box::new(move |loc| cli::up::detach(loc, socket_override, wait)),
        ),
        Verb::Check { no_verify_commands } => {
            locate(!no_verify_commands, false, Box::new(cli::check))
        }
        Verb::Install(args) => locate(
            true,
            false,
            Box::new(move |loc| cli::service::install(loc, config_given, &args)),
        ),
        Verb::Control(verb) => locate(true, true, Box::new(move |loc| control(loc, verb))),
        Verb::Init => cli::init::init(
            &cli.config
                .clone()
                .unwrap_or_else(|| PathBuf::from("ward.toml")),
        ),
        Verb::Completions { shell } => cli::generate::completions(command(), shell),
        Verb::Man { dir } => cli::generate::man(command(), dir.as_deref()),
        Verb::Uninstall(args) => cli::service::uninstall(&args),
        // Before any thread exists, as `up`.
        Verb::ServiceRun { name, user } => cli::service::run(cli.config.clone(), &name, user),
    };
    finish(outcome, located.as_ref());
}

/// Exits: 0, or the failure's code after saying why (and, unless the
/// command line itself was wrong, where the config was looked for).
fn finish(outcome: Outcome, loc: Option<&Locations>) -> ! {
    let Err(failure) = outcome else {
        std::process::exit(0);
    };
    for line in &failure.details {
        eprintln!("{line}");
    }
    let service_down = loc
        .and_then(Locations::service_not_running)
        .filter(|_| failure.code == cli::EXIT_NOT_RUNNING);
    eprintln!("ward: {}", service_down.unwrap_or(failure.message));
    if let Some(note) = loc
        .and_then(Locations::search_note)
        .filter(|_| failure.code != cli::EXIT_USAGE)
    {
        eprintln!("ward: {note}");
    }
    std::process::exit(failure.code);
}

/// The command line. `--socket` on `ward check`, which reads the config
/// only, is a usage error (`WARD_SOCKET` in the environment is not).
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    if matches.subcommand_name() == Some("check")
        && matches.value_source("socket") == Some(clap::parser::ValueSource::CommandLine)
    {
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "`ward check` reads the config only; --socket is for the verbs that talk to the daemon",
            )
            .exit();
    }
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The command line's definition, for completions and manual pages.
fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
}

/// A `--timeout` value: `30s`, `2m`, `1m30s`.
fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    ward_config::parse_duration(s)
}

/// Checks the signal name before the daemon is asked: an unknown one is a
/// usage error (exit 2) that lists the names, and says the order when the
/// two arguments came the other way round (`ward signal web HUP`).
fn check_signal_args(signal: &str, name: &str) -> Outcome {
    let Err(listing) = api::parse_signal(signal) else {
        return Ok(());
    };
    let mut failure = Failure::new(match api::parse_signal(name) {
        Ok(sig) => format!(
            "the signal comes first: `ward signal {} {signal}` ({signal:?} is not a signal)",
            sig.name()
        ),
        Err(_) => listing,
    });
    failure.code = cli::EXIT_USAGE;
    Err(failure)
}

fn control(loc: &Locations, verb: Control) -> Outcome {
    if let Control::Signal { signal, name, .. } = &verb {
        check_signal_args(signal, name)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        use cli::control;
        match verb {
            Control::Down => control::down(loc).await,
            Control::Status { name, json } => control::status(loc, name.as_deref(), json).await,
            Control::Start { names, timeout } => cli::start(loc, "start", &names, timeout).await,
            Control::Stop { names } => control::stop(loc, &names).await,
            Control::Restart { names, timeout } => {
                cli::start(loc, "restart", &names, timeout).await
            }
            Control::Signal { signal, name, tree } => {
                control::signal(loc, &signal, &name, tree).await
            }
            Control::Logs {
                name,
                follow,
                lines,
            } => control::logs(loc, &name, follow, lines).await,
            Control::Reload { dry_run } => control::reload(loc, dry_run).await,
            Control::Events {
                follow,
                lines,
                json,
            } => {
                use std::io::IsTerminal;
                let human = !json && std::io::stdout().is_terminal();
                control::events(loc, follow, lines, human).await
            }
        }
    })
}
