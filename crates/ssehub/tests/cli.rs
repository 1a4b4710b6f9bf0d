//! The command line's shape: what `--help` offers.

use std::process::Command;

#[test]
fn help_lists_only_working_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_ssehub"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("decode"), "{help}");
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
