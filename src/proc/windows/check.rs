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
}
