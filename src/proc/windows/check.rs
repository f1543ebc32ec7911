//! Finding the program to run on Windows, as a spawn finds it and as
//! `ward check` checks it: a path (relative to the program's working
//! directory), or a name looked up in PATH with the extensions PATHEXT
//! lists. A batch file (`.bat`, `.cmd`) is run by cmd.exe, explicitly.

use std::path::{Path, PathBuf};

/// What PATHEXT is when the environment does not say.
const DEFAULT_PATHEXT: &str = ".COM;.EXE;.BAT;.CMD";

/// What a command's first word turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resolved {
    /// An executable file.
    Program(PathBuf),
    /// A batch file, which cmd.exe runs.
    Batch(PathBuf),
}

fn has_dir(program: &str) -> bool {
    program.contains(['\\', '/', ':'])
}

fn is_batch(file: &Path) -> bool {
    file.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("bat") || e.eq_ignore_ascii_case("cmd"))
}

/// `file`, or `file` with one of the extensions when it has none and is
/// not there as it is (as CreateProcess adds `.exe`).
fn with_extensions(file: &Path, exts: &[&str]) -> Option<PathBuf> {
    if file.is_file() {
        return Some(file.to_path_buf());
    }
    if file.extension().is_some() {
        return None;
    }
    exts.iter().find_map(|ext| {
        let mut name = file.as_os_str().to_owned();
        name.push(ext);
        let candidate = PathBuf::from(name);
        candidate.is_file().then_some(candidate)
    })
}

fn extensions(pathext: Option<&str>) -> Vec<String> {
    pathext
        .unwrap_or(DEFAULT_PATHEXT)
        .split(';')
        .map(str::trim)
        .filter(|e| e.starts_with('.') && e.len() > 1)
        .map(str::to_ascii_lowercase)
        .collect()
}

/// The file `program` names, or why there is none.
pub(crate) fn resolve(
    program: &str,
    cwd: &Path,
    path: Option<&str>,
    pathext: Option<&str>,
) -> Result<Resolved, String> {
    let exts = extensions(pathext);
    let exts: Vec<&str> = exts.iter().map(String::as_str).collect();
    let found = if has_dir(program) {
        let file = cwd.join(program);
        with_extensions(&file, &exts).ok_or_else(|| format!("{} does not exist", file.display()))?
    } else {
        let inherited = std::env::var("PATH").ok();
        let path = path.or(inherited.as_deref()).unwrap_or_default();
        std::env::split_paths(path)
            .filter(|d| !d.as_os_str().is_empty())
            .find_map(|dir| with_extensions(&dir.join(program), &exts))
            .ok_or_else(|| format!("not found in PATH ({path})"))?
    };
    Ok(if is_batch(&found) {
        Resolved::Batch(found)
    } else {
        Resolved::Program(found)
    })
}

/// Whether `program` can be run: it exists as a file, here or in PATH.
/// `near` offers a name from PATH for a typo.
pub(crate) fn check_command(
    program: &str,
    cwd: &Path,
    path: Option<&str>,
    near: &dyn Fn(&str, &[String]) -> Option<String>,
) -> Result<(), String> {
    match resolve(program, cwd, path, std::env::var("PATHEXT").ok().as_deref()) {
        Ok(_) => Ok(()),
        Err(why) if has_dir(program) => Err(why),
        Err(why) => {
            let inherited = std::env::var("PATH").ok();
            let path = path.or(inherited.as_deref()).unwrap_or_default();
            let mut names: Vec<String> = Vec::new();
            for dir in std::env::split_paths(path) {
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    names.extend(
                        entries
                            .flatten()
                            .take(20_000)
                            .filter_map(|e| e.file_name().into_string().ok())
                            .map(|n| match n.rsplit_once('.') {
                                Some((stem, ext))
                                    if ext.eq_ignore_ascii_case("exe")
                                        || ext.eq_ignore_ascii_case("com") =>
                                {
                                    stem.to_string()
                                }
                                _ => n,
                            }),
                    );
                }
            }
            Err(match near(program, &names) {
                Some(near) => format!("{why}; did you mean {near:?}?"),
                None => why,
            })
        }
    }
}

/// The Windows subsystem an executable's PE header names: 2 is a GUI
/// program, 3 a console one. `None` when the file is not a PE image (or
/// cannot be read). Reads the headers only (at most 4 KiB).
pub(crate) fn subsystem(file: &Path) -> Option<u16> {
    use std::io::Read;
    let mut head = Vec::new();
    super::super::fs::open_regular(file)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    let u16_at = |at: usize| Some(u16::from_le_bytes(head.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(head.get(at..at + 4)?.try_into().ok()?));
    if head.get(..2)? != b"MZ" {
        return None;
    }
    let pe = u32_at(0x3c)? as usize;
    if head.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    // The optional header follows the 20-byte file header; its subsystem
    // is at offset 68 in both PE32 and PE32+.
    u16_at(pe + 4 + 20 + 68)
}

/// A console event cannot reach a program that has no console: a GUI
/// program (told by its PE header) is refused with one.
pub(crate) fn check_stop_signal(
    program: &str,
    cwd: &Path,
    path: Option<&str>,
    signal: ward_core::Signal,
) -> Result<(), String> {
    if !signal.is_console_event() {
        return Ok(());
    }
    let pathext = std::env::var("PATHEXT").ok();
    let Ok(Resolved::Program(file)) = resolve(program, cwd, path, pathext.as_deref()) else {
        return Ok(());
    };
    if subsystem(&file) == Some(2) {
        return Err(format!(
            "{} is a GUI program: it has no console, so no {signal} can reach it; set \
             stop_command to a way of asking it to close, or stop_signal = \"KILL\"",
            file.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_with_their_extensions_and_batch_files_are_told_apart() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("server.exe"), b"MZ").unwrap();
        std::fs::write(dir.join("job.cmd"), b"@echo off").unwrap();
        let path = dir.to_str().unwrap();
        assert_eq!(
            resolve("server", dir, Some(path), None),
            Ok(Resolved::Program(dir.join("server.exe")))
        );
        assert_eq!(
            resolve("job", dir, Some(path), None),
            Ok(Resolved::Batch(dir.join("job.cmd")))
        );
        assert_eq!(
            resolve(r".\job.cmd", dir, Some(""), None),
            Ok(Resolved::Batch(dir.join(r".\job.cmd")))
        );
        let missing = resolve("nothing", dir, Some(path), None).unwrap_err();
        assert!(missing.starts_with("not found in PATH"), "{missing}");
        let near = |_: &str, names: &[String]| names.iter().find(|n| *n == "server").cloned();
        let said = check_command("servr", dir, Some(path), &near).unwrap_err();
        assert!(said.ends_with("did you mean \"server\"?"), "{said}");
    }

    #[test]
    fn gui_programs_are_told_apart_by_their_headers() {
        let tmp = tempfile::tempdir().unwrap();
        let image = |subsystem: u16| {
            let mut head = vec![0u8; 512];
            head[..2].copy_from_slice(b"MZ");
            head[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
            head[0x80..0x84].copy_from_slice(b"PE\0\0");
            let at = 0x80 + 4 + 20 + 68;
            head[at..at + 2].copy_from_slice(&subsystem.to_le_bytes());
            head
        };
        std::fs::write(tmp.path().join("gui.exe"), image(2)).unwrap();
        std::fs::write(tmp.path().join("cli.exe"), image(3)).unwrap();
        std::fs::write(tmp.path().join("junk.exe"), b"MZ").unwrap();
        let path = tmp.path().to_str().unwrap();
        let check = |name: &str, signal| check_stop_signal(name, tmp.path(), Some(path), signal);
        let refused = check("gui", ward_core::Signal::CtrlBreak).unwrap_err();
        assert!(refused.contains("is a GUI program"), "{refused}");
        assert!(check("gui", ward_core::Signal::Kill).is_ok());
        assert!(check("cli", ward_core::Signal::CtrlBreak).is_ok());
        assert!(check("junk", ward_core::Signal::CtrlC).is_ok());
        // ward's own testee is a console program.
        let exe = std::env::current_exe().unwrap();
        let testee = exe
            .parent()
            .and_then(|deps| deps.parent())
            .map(|d| d.join("testee.exe"));
        if let Some(testee) = testee.filter(|t| t.exists()) {
            assert_eq!(subsystem(&testee), Some(3));
        }
    }
}
