//! Why `execve` failed, when `errno` alone misleads: a script whose `#!`
//! interpreter is missing fails with ENOENT though the script exists, and
//! a directory fails with EACCES. Once the child has reported the error,
//! the parent looks at the files it tried: their type and mode, and the
//! first line (at most [`FIRST_LINE`] bytes) of regular files only.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::child::DEFAULT_PATH;

/// As much as the kernel reads of a `#!` line (BINPRM_BUF_SIZE).
const FIRST_LINE: u64 = 256;

/// What went wrong with an exec that failed with `errno`, if the files
/// tried say more than `errno` does: the file it is about when the program
/// was looked up in PATH (else the program names it already), and the
/// reason in words.
pub(crate) fn diagnose(
    errno: i32,
    program: &str,
    candidates: &[CString],
    cwd: &Path,
    path: Option<&OsStr>,
) -> Option<(Option<PathBuf>, String)> {
    if errno != libc::ENOENT && errno != libc::EACCES {
        return None;
    }
    let searched = !program.contains('/');
    let mut exists = false;
    for candidate in candidates {
        // The child resolved relative paths against its working directory.
        let file = cwd.join(OsStr::from_bytes(candidate.as_bytes()));
        let Ok(meta) = fs::metadata(&file) else {
            continue;
        };
        exists = true;
        if let Some(why) = what_is_wrong(errno, &file, &meta, cwd) {
            return Some((searched.then_some(file), why));
        }
    }
    if searched && !exists && errno == libc::ENOENT {
        let path = path.map_or(DEFAULT_PATH.into(), |p| p.to_string_lossy());
        return Some((None, format!("not found in PATH ({path})")));
    }
    None
}

fn what_is_wrong(errno: i32, file: &Path, meta: &fs::Metadata, cwd: &Path) -> Option<String> {
    if meta.is_dir() {
        return (errno == libc::EACCES).then(|| "is a directory".to_string());
    }
    if !meta.is_file() {
        return None;
    }
    let mode = meta.permissions().mode();
    if errno == libc::EACCES && mode & 0o111 == 0 {
        return Some(format!("is not executable (mode {:04o})", mode & 0o7777));
    }
    let head = first_line(file).ok()?;
    if let Some(line) = head.strip_prefix(b"#!") {
        return interpreter_problem(errno, line, cwd);
    }
    if errno == libc::ENOENT && head.starts_with(b"\x7fELF") {
        return Some(
            "its ELF interpreter (the dynamic loader it was linked against) \
             does not exist on this system"
                .into(),
        );
    }
    None
}

/// What is wrong with the interpreter a `#!` line names (the text after
/// `#!`, without the newline).
fn interpreter_problem(errno: i32, line: &[u8], cwd: &Path) -> Option<String> {
    let name = line
        .split(|b| *b == b' ' || *b == b'\t')
        .find(|word| !word.is_empty());
    let Some(name) = name else {
        return Some("its #! line names no interpreter".into());
    };
    let name = Path::new(OsStr::from_bytes(name));
    match fs::metadata(cwd.join(name)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(format!(
            "its interpreter {} (from its #! line) does not exist",
            name.display()
        )),
        Ok(meta)
            if errno == libc::EACCES
                && (!meta.is_file() || meta.permissions().mode() & 0o111 == 0) =>
        {
            Some(format!(
                "its interpreter {} (from its #! line) is not executable",
                name.display()
            ))
        }
        _ => None,
    }
}

/// Whether `program` can be run as a spawn would run it, asked before
/// anything runs (`ward check`, `ward up`, a reload): a path is taken
/// relative to `cwd`; a bare name is looked up in `path` (else ward's own
/// PATH, else the default), as the spawn does. The reason says what is
/// wrong, with a near name from PATH for a typo (`near` picks it from the
/// names PATH holds).
pub(crate) fn check_command(
    program: &str,
    cwd: &Path,
    path: Option<&str>,
    near: &dyn Fn(&str, &[String]) -> Option<String>,
) -> Result<(), String> {
    let check_file = |file: &Path| -> Result<(), String> {
        let meta = fs::metadata(file).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("{} does not exist", file.display()),
            _ => format!("{}: {e}", file.display()),
        })?;
        // What EACCES would find: a directory, a file without the execute
        // bit, an interpreter that cannot be run.
        if let Some(why) = what_is_wrong(libc::EACCES, file, &meta, cwd) {
            return Err(why);
        }
        // What ENOENT would find in a file that exists: a #! interpreter
        // that does not. (A missing ELF loader is not looked for here.)
        if let Some(line) = first_line(file)
            .ok()
            .and_then(|h| h.strip_prefix(b"#!").map(<[u8]>::to_vec))
        {
            if let Some(why) = interpreter_problem(libc::ENOENT, &line, cwd) {
                return Err(why);
            }
        }
        Ok(())
    };
    if program.contains('/') {
        // `./job.sh` names cwd/job.sh (said without the `./`).
        let file: PathBuf = cwd
            .join(program)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        return check_file(&file);
    }
    let inherited = std::env::var("PATH").ok();
    let path = path
        .or(inherited.as_deref())
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let dirs: Vec<PathBuf> = path
        .split(':')
        .map(|d| cwd.join(if d.is_empty() { "." } else { d }))
        .collect();
    let mut problem = None;
    for dir in &dirs {
        let file = dir.join(program);
        if fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            match check_file(&file) {
                Ok(()) => return Ok(()),
                // As execvp: a later candidate may still run.
                Err(why) => problem = problem.or(Some(format!("{} {why}", file.display()))),
            }
        }
    }
    if let Some(problem) = problem {
        return Err(problem);
    }
    let mut names: Vec<String> = Vec::new();
    for dir in &dirs {
        if let Ok(entries) = fs::read_dir(dir) {
            // Bounded: a PATH directory of a few thousand names is usual.
            names.extend(
                entries
                    .flatten()
                    .take(20_000)
                    .filter_map(|e| e.file_name().into_string().ok()),
            );
        }
    }
    Err(match near(program, &names) {
        Some(near) => format!("not found in PATH ({path}); did you mean {near:?}?"),
        None => format!("not found in PATH ({path})"),
    })
}

/// The first line of a regular file, at most [`FIRST_LINE`] bytes. Opened
/// non-blocking and checked again once open, so a file swapped for a FIFO
/// meanwhile cannot hold the spawner.
fn first_line(file: &Path) -> io::Result<Vec<u8>> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(file)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut head = Vec::new();
    f.take(FIRST_LINE).read_to_end(&mut head)?;
    if let Some(end) = head.iter().position(|b| *b == b'\n') {
        head.truncate(end);
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &[u8], mode: u32) {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn why(errno: i32, program: &str, cwd: &Path) -> Option<String> {
        let candidates = super::super::child::candidates(program, Some(OsStr::new("/nowhere")));
        diagnose(
            errno,
            program,
            &candidates,
            cwd,
            Some(OsStr::new("/nowhere")),
        )
        .map(|(file, why)| match file {
            Some(file) => format!("{}: {why}", file.display()),
            None => why,
        })
    }

    #[test]
    fn a_missing_interpreter_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "job.sh",
            b"#!/usr/bin/pythonx -u\nprint(1)\n",
            0o755,
        );
        write(dir.path(), "blank.sh", b"#!  \n", 0o755);
        assert_eq!(
            why(libc::ENOENT, "./job.sh", dir.path()).unwrap(),
            "its interpreter /usr/bin/pythonx (from its #! line) does not exist"
        );
        assert_eq!(
            why(libc::ENOENT, "./blank.sh", dir.path()).unwrap(),
            "its #! line names no interpreter"
        );
        // Only a file that exists says more than errno.
        assert_eq!(why(libc::ENOENT, "./missing.sh", dir.path()), None);
        assert_eq!(
            why(libc::ENOENT, "missing", dir.path()).unwrap(),
            "not found in PATH (/nowhere)"
        );
    }

    #[test]
    fn directories_and_modes_are_said() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("bin")).unwrap();
        write(dir.path(), "plain", b"echo\n", 0o644);
        write(dir.path(), "interp", b"", 0o644);
        write(dir.path(), "uses", b"#!./interp\n", 0o755);
        assert_eq!(
            why(libc::EACCES, "./bin", dir.path()).unwrap(),
            "is a directory"
        );
        assert_eq!(
            why(libc::EACCES, "./plain", dir.path()).unwrap(),
            "is not executable (mode 0644)"
        );
        assert_eq!(
            why(libc::EACCES, "./uses", dir.path()).unwrap(),
            "its interpreter ./interp (from its #! line) is not executable"
        );
        // Other errors, and files with nothing wrong to see, say nothing.
        assert_eq!(why(libc::E2BIG, "./bin", dir.path()), None);
        assert_eq!(why(libc::ENOENT, "./plain", dir.path()), None);
    }

    #[test]
    fn a_binary_without_its_loader_is_said() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "app", b"\x7fELF\x02\x01\x01rest", 0o755);
        let said = why(libc::ENOENT, "./app", dir.path()).unwrap();
        assert!(said.starts_with("its ELF interpreter"), "{said}");
    }

    #[test]
    fn only_the_first_line_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat_n(b'x', 1000));
        write(dir.path(), "long", &long, 0o755);
        assert_eq!(first_line(&dir.path().join("long")).unwrap().len(), 256);
    }
}
