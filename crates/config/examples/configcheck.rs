//! `cargo run -p zrelay-config --example configcheck -- FILE... [--format F] [--what W]`:
//! validate configuration files and print them (or their errors), as
//! `zrelay configcheck` will.

use std::path::PathBuf;
use std::process::ExitCode;

use zrelay_config::{load, RenderFormat, RenderWhat};

fn main() -> ExitCode {
    let mut files = Vec::new();
    let mut format = RenderFormat::Yaml;
    let mut what = RenderWhat::All;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let parsed = match a.as_str() {
            "--format" => args.next().unwrap_or_default().parse().map(|f| format = f),
            "--what" => args.next().unwrap_or_default().parse().map(|w| what = w),
            _ => {
                files.push(PathBuf::from(a));
                Ok(())
            }
        };
        if let Err(e) = parsed {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    let mut failed = false;
    for f in files {
        match load(&f) {
            Ok(c) => {
                for w in &c.warnings {
                    eprintln!("warning: {w}");
                }
                print!("{}", c.render(format, what));
            }
            Err(e) => {
                println!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
