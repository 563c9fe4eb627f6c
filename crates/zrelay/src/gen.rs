//! `zrelay gencompletion SHELL [PATH]` and `zrelay genman`: shell
//! completions and the man page, generated from the command line definition
//! by clap (`dist/` holds the generated files; a test keeps them current).
//! As in zrepl, `gencompletion` writes to PATH when given (zrelay also
//! prints to stdout without one).

use anyhow::Result;
use clap::{Args, CommandFactory, ValueEnum};

/// Shells with completions.
#[derive(Clone, Copy, ValueEnum)]
pub enum Shell {
    /// bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// `zrelay gencompletion`.
#[derive(Args)]
pub struct CompletionArgs {
    /// The shell.
    pub(crate) shell: Shell,
    /// Write the script to this file (zrepl's form) instead of stdout.
    pub(crate) path: Option<std::path::PathBuf>,
}

/// The completion script for `shell`.
pub fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    let sh = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(sh, &mut cmd, "zrelay", &mut out);
    out
}

/// The man page (roff), the main page with every subcommand listed.
pub fn man() -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(crate::Cli::command()).render(&mut out)?;
    Ok(out)
}

/// Write the completion script to the path, or print it.
pub fn gencompletion(a: CompletionArgs) -> Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let script = completion(a.shell);
    match &a.path {
        Some(p) => std::fs::write(p, &script)
            .with_context(|| format!("writing the completion script to {}", p.display())),
        None => Ok(std::io::stdout().write_all(&script)?),
    }
}

/// Print the man page.
pub fn genman() -> Result<()> {
    use std::io::Write;
    std::io::stdout().write_all(&man()?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(rel: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../dist")
            .join(rel)
    }

    #[test]
    fn gencompletion_writes_to_the_path_when_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("_zrelay");
        gencompletion(CompletionArgs {
            shell: Shell::Zsh,
            path: Some(path.clone()),
        })
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), completion(Shell::Zsh));
        let bad = dir.path().join("missing/dir/_zrelay");
        let e = gencompletion(CompletionArgs {
            shell: Shell::Zsh,
            path: Some(bad),
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("missing/dir/_zrelay"), "{e:#}");
    }

    /// dist/ holds what the current command line generates: regenerate with
    /// `dist/generate` when this fails.
    #[test]
    fn dist_completions_and_man_page_are_current() {
        let files: [(&str, Vec<u8>); 4] = [
            ("completions/zrelay.bash", completion(Shell::Bash)),
            ("completions/_zrelay", completion(Shell::Zsh)),
            ("completions/zrelay.fish", completion(Shell::Fish)),
            ("man/zrelay.1", man().unwrap()),
        ];
        for (rel, want) in files {
            let have = std::fs::read(dist(rel)).unwrap_or_default();
            assert!(have == want, "dist/{rel} is out of date: run dist/generate");
            assert!(want.len() > 500, "dist/{rel} looks empty");
        }
        let bash = String::from_utf8(completion(Shell::Bash)).unwrap();
        for sub in [
            "daemon",
            "signal",
            "status",
            "history",
            "prune",
            "configcheck",
        ] {
            assert!(bash.contains(sub), "bash completion lacks {sub}");
        }
    }
}
