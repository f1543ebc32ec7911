//! `ward logs` and `ward events` when no daemon answers: the same output,
//! read from the files the config names (so that after `ward down` one can
//! still see why things stopped).

use std::io::Write;
use std::time::Duration;

use ward_core::{Restore, Supervisor};

use super::{Failure, Locations, Outcome};

/// The config, read for where its files are (users and groups need not
/// exist for that).
fn config(loc: &Locations) -> Result<ward_config::Config, Failure> {
    let host = crate::host::Places(loc.places.clone());
    ward_config::load_with(&loc.config, &host).map_err(|diags| {
        let mut failure = Failure::new(format!(
            "ward is not running, and {} has errors, so its files cannot be found",
            loc.config.display()
        ));
        failure.details = diags.items.iter().map(|d| d.to_string()).collect();
        failure
    })
}

fn note(config: &ward_config::Config) {
    eprintln!(
        "ward: ward is not running; reading the files in {}",
        config.ward.state_dir.display()
    );
}

fn print(bytes: &[u8]) -> Outcome {
    let mut stdout = std::io::stdout();
    // A closed stdout (`ward logs api | head`) is not a failure.
    let _ = stdout.write_all(bytes).and_then(|_| stdout.flush());
    Ok(())
}

/// The last `lines` lines of the target's instances, as the daemon would
/// send them: one instance as stored, several with their names in front.
pub fn logs(loc: &Locations, target: &str, lines: usize) -> Outcome {
    let config = config(loc)?;
    let target = crate::api::parse_target(target).map_err(Failure::new)?;
    // The engine's own selection, on the config alone: the same names,
    // the same errors (and suggestions) as a running ward gives.
    let snapshot =
        Supervisor::new(config.specs.clone(), Restore::default(), 0, Duration::ZERO).snapshot();
    let views = snapshot
        .select(&target)
        .map_err(|e| Failure::new(e.to_string()))?;
    note(&config);
    let ids: Vec<_> = views.iter().map(|v| v.id.clone()).collect();
    let prefixed = crate::api::prefix_width(&ids);
    let mut out = Vec::new();
    for view in views {
        let Some(spec) = config.specs.programs.get(&*view.id.program) else {
            continue;
        };
        match crate::logs::tail(&spec.logs.dir, &view.id.program, view.id.index, lines) {
            Ok(bytes) => out.extend(crate::api::prefix_lines(
                &view.id.to_string(),
                &bytes,
                prefixed,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Failure::new(format!(
                    "cannot read the log of {}: {e}",
                    view.id
                )))
            }
        }
    }
    print(&out)
}

/// The last `lines` events of the journal, printed by `printer`.
pub fn events(loc: &Locations, lines: usize, printer: &mut super::events::EventPrinter) -> Outcome {
    let config = config(loc)?;
    let path = config.ward.state_dir.join("events.jsonl");
    note(&config);
    let bytes = crate::bus::journal_tail(&path, lines)
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", path.display())))?;
    printer.write(&bytes);
    Ok(())
}
