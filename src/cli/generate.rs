//! `ward completions SHELL` and `ward man`: shell completions and manual
//! pages, generated from the command-line definitions themselves.

use std::io::Write;
use std::path::Path;

use super::{Failure, Outcome};

/// Completions for `shell` on stdout.
pub fn completions(mut command: clap::Command, shell: clap_complete::Shell) -> Outcome {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "ward", &mut out);
    write_stdout(&out)
}

/// `ward(1)` on stdout; with `dir`, `ward.1` and a `ward-VERB.1` for each
/// verb written there.
pub fn man(command: clap::Command, dir: Option<&Path>) -> Outcome {
    let mut command = command;
    command.build();
    let Some(path) = dir else {
        return write_stdout(&render(command.clone())?);
    };
    let dir = crate::files::Dir::open_named(path)
        .map_err(|e| Failure::new(format!("cannot write manual pages: {e}")))?;
    let mut written = vec![write_page(&dir, "ward.1", &render(command.clone())?)?];
    // Not clap's own `help` verb: `ward help VERB` is `ward VERB --help`.
    for verb in command
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
    {
        let name = format!("ward-{}", verb.get_name());
        let page = verb
            .clone()
            .name(name.clone())
            .bin_name(format!("ward {}", verb.get_name()));
        written.push(write_page(&dir, &format!("{name}.1"), &render(page)?)?);
    }
    println!(
        "wrote {} manual pages to {} (try: man {})",
        written.len(),
        path.display(),
        path.join("ward.1").display()
    );
    Ok(())
}

fn render(command: clap::Command) -> Result<Vec<u8>, Failure> {
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .map_err(|e| Failure::new(format!("cannot render the manual page: {e}")))?;
    Ok(out)
}

/// Writes `name` in `dir` through a new file renamed into place (relative
/// to the folder's descriptor): never through a link someone left under
/// that name, never half-written.
fn write_page(dir: &crate::files::Dir, name: &str, page: &[u8]) -> Result<String, Failure> {
    dir.replace(name, page, super::init::SHARED_FILE, false)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", dir.join(name).display())))?;
    Ok(name.to_string())
}

fn write_stdout(bytes: &[u8]) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        // `ward man | head`: the reader had enough.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::new(format!("cannot write to stdout: {e}"))),
    }
}
