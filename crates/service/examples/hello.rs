//! A small service built on ward-service: says hello over HTTP, answers
//! `/healthz`, tells systemd when it is ready and that it is alive, and
//! stops cleanly on SIGTERM. It installs itself.
//!
//! ```text
//! hello [--port PORT]          serve (what the installed unit runs)
//! hello install [--user] [--port PORT]
//! hello uninstall [--user]
//! hello status [--user]
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use ward_service::{InstallOptions, Scope, Service};

const NAME: &str = "hello";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scope = if args.iter().any(|a| a == "--user") {
        Scope::User
    } else {
        Scope::System
    };
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(8080);
    let result = match args.first().map(String::as_str) {
        Some("install") => install(scope, port),
        Some("uninstall") => ward_service::uninstall(NAME, scope, NAME, false)
            .map(|file| println!("removed {}", file.display())),
        Some("status") => ward_service::status(NAME, scope).map(|s| {
            println!(
                "{}{}",
                s.state,
                s.text.map(|t| format!(": {t}")).unwrap_or_default()
            );
            if !s.restart_delays.is_empty() {
                let delays: Vec<String> = s
                    .restart_delays
                    .iter()
                    .map(|d| format!("{}s", d.as_secs()))
                    .collect();
                println!("restarts after failures: {}", delays.join(" "));
            }
            // What the installer recorded, read back.
            let listed = ward_service::list(scope, NAME)
                .iter()
                .any(|found| found.name == NAME);
            if matches!(ward_service::find(NAME, scope, NAME), Ok(Some(_))) && listed {
                println!("installed by hello");
            }
        }),
        _ => {
            serve(port);
            Ok(())
        }
    };
    if let Err(e) = result {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}

fn install(scope: Scope, port: u16) -> Result<(), ward_service::Error> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| ward_service::Error::new(ward_service::ErrorKind::Failed, e.to_string()))?;
    let mut service = Service::new(NAME, exe, scope)
        .description("Says hello over HTTP")
        .args(["--port".to_string(), port.to_string()])
        .notify(true);
    service.watchdog = Some(Duration::from_secs(10));
    service.generator = NAME.into();
    let installed = ward_service::install(&service, &InstallOptions::default())?;
    println!("installed {}", installed.file.display());
    Ok(())
}

fn serve(port: u16) {
    ward_service::run(move |ctx| {
        let listener = match TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("{}cannot listen on port {port}: {e}", prefix(3));
                std::process::exit(1);
            }
        };
        // Requests are answered on a thread of their own; this one keeps
        // the watchdog fed and waits for the stop.
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream);
            }
        });
        ctx.notifier.ready();
        ctx.notifier
            .status(&format!("listening on 127.0.0.1:{port}"));
        eprintln!("{}listening on 127.0.0.1:{port}", prefix(6));
        let tick = ctx
            .notifier
            .watchdog_interval()
            .unwrap_or(Duration::from_secs(60));
        while !ctx.shutdown.wait_timeout(tick) {
            ctx.notifier.watchdog();
        }
        ctx.notifier.stopping();
        eprintln!("{}stopping", prefix(6));
    });
}

fn answer(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are read too (and ignored): closing a connection with
    // unread bytes would reset it under the answer.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let body = match path {
        "/healthz" => "ok\n",
        _ => "hello\n",
    };
    let mut stream = &stream;
    write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A journal priority prefix when stderr is the journal.
fn prefix(priority: u8) -> &'static str {
    use ward_service::journal::Priority;
    if !ward_service::journal::stderr_is_journal() {
        return "";
    }
    match priority {
        3 => Priority::Error.prefix(),
        _ => Priority::Info.prefix(),
    }
}
