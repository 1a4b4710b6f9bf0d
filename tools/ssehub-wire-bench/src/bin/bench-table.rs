//! Prints the parse and encode tables of `BENCHMARKS.md` from criterion's saved results.
//!
//! ```text
//! cargo bench -p ssehub-wire-bench -- --warm-up-time 1 --measurement-time 3 --save-baseline run1
//! cargo bench -p ssehub-wire-bench -- --warm-up-time 1 --measurement-time 3 --save-baseline run2
//! cargo run -p ssehub-wire-bench --bin bench-table -- --baseline run1 --baseline run2
//! ```
//!
//! Each benchmark's fastest run among the baselines is shown (default: criterion's latest run,
//! `new`). `--dir DIR` reads another criterion directory than `$CARGO_TARGET_DIR/criterion`
//! (else the workspace's `target/criterion`).

use std::path::PathBuf;
use std::process::ExitCode;

use ssehub_wire_bench::table;

fn main() -> ExitCode {
    let mut dir = table::default_criterion_dir();
    let mut baselines = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--dir", Some(value)) => dir = PathBuf::from(value),
            ("--baseline", Some(value)) => baselines.push(value),
            _ => {
                eprintln!("usage: bench-table [--dir DIR] [--baseline NAME]...");
                return ExitCode::from(2);
            }
        }
    }
    if baselines.is_empty() {
        baselines.push("new".to_string());
    }
    match table::render(&dir, &baselines) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-table: {e}");
            ExitCode::FAILURE
        }
    }
}
