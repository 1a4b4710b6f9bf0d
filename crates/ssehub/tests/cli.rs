//! The command line's shape: what `--help` offers.

use std::process::Command;

/// The commands a `--help` lists, in order (the `help` command left out).
fn listed_commands(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?} --help failed");
    let help = String::from_utf8(out.stdout).unwrap();
    let commands = help
        .split("\nCommands:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{args:?} --help lists no commands:\n{help}"));
    commands
        .lines()
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// Every command and bench scenario `--help` lists is one this binary has, each listed once,
/// and each answers its own `--help` with its own usage line: a command added, removed or
/// left unwired shows up here.
#[test]
fn help_lists_only_working_commands() {
    let commands = listed_commands(&[]);
    assert_eq!(
        commands,
        ["decode", "serve", "pub", "sub", "tail", "exec", "bench"],
        "top-level commands"
    );
    let scenarios = listed_commands(&["bench"]);
    assert_eq!(
        scenarios,
        ["fanout", "publish", "conns", "topics", "storm", "snapshot"],
        "bench scenarios"
    );
    let every = commands
        .iter()
        .map(|c| vec![c.as_str()])
        .chain(scenarios.iter().map(|s| vec!["bench", s.as_str()]));
    for command in every {
        let out = Command::new(env!("CARGO_BIN_EXE_ssehub"))
            .args(&command)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{command:?} --help: {out:?}");
        let usage = format!("Usage: ssehub {}", command.join(" "));
        assert!(
            help.contains(&usage),
            "{command:?} --help lacks {usage:?}:\n{help}"
        );
    }
}

#[test]
fn unknown_command_fails_with_usage() {
    let out = Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .arg("no-such-command")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}
