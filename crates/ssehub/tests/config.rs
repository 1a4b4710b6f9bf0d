//! One setting, one field: every `serve` flag, its `SSEHUB_*` variable and the TOML key its
//! `--help` names land in the same setting, with the documented precedence (the flag, then
//! the variable, then the file, then the default), and the default file goes through
//! `--check-config` unchanged.

use std::collections::BTreeSet;
use std::process::Command;

/// Each setting that has a flag (`section.key`, as `--help` names it), and the value given in
/// the file, in the variable and on the command line, as the command line spells them. The
/// values differ from each other and from the default, and each set passes `validate`.
const SETTINGS: &[(&str, [&str; 3])] = &[
    ("storage.fsync", ["interval", "always", "interval"]),
    (
        "cluster.url",
        [
            "redis://file.example",
            "redis://variable.example",
            "redis://flag.example:1/2",
        ],
    ),
    ("cluster.name", ["file", "variable", "flag"]),
    ("sse.heartbeat_secs", ["11", "22", "33"]),
    ("sse.retry_ms", ["11", "22", "33"]),
    ("sse.retry_jitter_ms", ["11", "22", "33"]),
    ("sse.direct_writes", ["false", "true", "true"]),
    (
        "cors.origins",
        [
            "https://file.example",
            "https://variable.example",
            "https://flag.example",
        ],
    ),
    (
        "http.allowed_hosts",
        ["file.example", "variable.example", "flag.example:8080"],
    ),
    (
        "http.trusted_proxy",
        ["forwarded", "x-forwarded-for", "none"],
    ),
    ("limits.max_body_bytes", ["1000", "2000", "3000"]),
    (
        "tls.cert",
        ["/file/cert.pem", "/variable/cert.pem", "/flag/cert.pem"],
    ),
    (
        "tls.key",
        ["/file/key.pem", "/variable/key.pem", "/flag/key.pem"],
    ),
    ("limits.max_connections", ["11", "22", "33"]),
    (
        "limits.subscriber_buffer_bytes",
        ["2000000", "3000000", "4000000"],
    ),
    ("history.max_events", ["11", "22", "33"]),
    (
        "auth.publisher_key",
        [
            "file-publisher-key-of-32-bytes-at-least",
            "variable-publisher-key-of-32-bytes-at-least",
            "flag-publisher-key-of-32-bytes-at-least",
        ],
    ),
    (
        "auth.subscriber_key",
        [
            "file-subscriber-key-of-32-bytes-at-least",
            "variable-subscriber-key-of-32-bytes-at-least",
            "flag-subscriber-key-of-32-bytes-at-least",
        ],
    ),
    // An on/off flag only switches its setting on; see below for `false` in the variable.
    ("auth.allow_anonymous_publish", ["false", "true", "true"]),
    ("shutdown.grace_secs", ["11", "22", "33"]),
    // A switch takes its value (`--console false`), so the flag can turn it off.
    ("console.enabled", ["false", "true", "false"]),
];

/// The options of `serve` that are not settings of the file: process knobs and actions.
const NOT_SETTINGS: &[&str] = &[
    "--listen",
    "--store",
    "--data-dir",
    "--config",
    "--check-config",
    "--print-default-config",
    "--log",
    // Adds a `[[relay]]` table (a list of tables, not one key): `config::relay` and the
    // `relay` tests.
    "--relay",
    "--help",
    "--version",
    "--demo",
];

/// An option of `serve --help`.
struct Flag {
    /// `--retry-ms`
    flag: String,
    /// `sse.retry_ms`, for a setting of the file
    key: Option<String>,
    /// `SSEHUB_RETRY_MS`
    variable: Option<String>,
    /// `<RETRY_MS>`: the value it takes, if any
    value: Option<String>,
}

/// `ssehub serve ARGS` with no `SSEHUB_*` variable but `variables`; its stdout.
fn serve(args: &[&str], variables: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ssehub"));
    command.arg("serve").args(args);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SSEHUB_")) {
        command.env_remove(name);
    }
    command.envs(variables.iter().copied());
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "serve {args:?} with {variables:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every option of `serve --help`.
fn flags() -> Vec<Flag> {
    let help = serve(&["--help"], &[]);
    let options = help.split("\nOptions:\n").nth(1).expect("an Options list");
    // An option starts at an unindented `-x`/`--name` line; its text follows, indented more.
    let mut blocks: Vec<String> = Vec::new();
    for line in options.lines() {
        if line.starts_with("  -") || line.starts_with("      --") {
            blocks.push(String::new());
        }
        if let Some(block) = blocks.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    let between = |text: &str, start: &str, end: &[char]| -> Option<String> {
        let rest = &text[text.find(start)? + start.len()..];
        Some(rest[..rest.find(end)?].to_owned())
    };
    blocks
        .iter()
        .map(|block| Flag {
            flag: block
                .split_whitespace()
                .find(|word| word.starts_with("--"))
                .unwrap()
                .to_owned(),
            key: between(block, "(config: ", &[')']),
            variable: between(block, "[env: ", &['=', ']']),
            value: block
                .lines()
                .next()
                .and_then(|line| between(line, "<", &['>']))
                .map(|v| format!("<{v}>")),
        })
        .collect()
}

/// `value` as the TOML of a setting whose default is `default` (absent: a string).
fn toml_value(value: &str, default: Option<&toml::Value>) -> toml::Value {
    match default {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(value.parse().unwrap()),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(value.parse().unwrap()),
        Some(toml::Value::Array(_)) => toml::Value::Array(vec![value.into()]),
        _ => value.into(),
    }
}

/// The value of `section.key` in a printed configuration.
fn printed(config: &str, key: &str) -> Option<toml::Value> {
    let (section, key) = key.split_once('.').unwrap();
    let config: toml::Table = toml::from_str(config).unwrap();
    config[section].get(key).cloned()
}

/// Each flag, its variable and its key set one setting: the file's value shows in
/// `--check-config`, the variable's replaces it, and the flag's replaces both.
#[test]
fn flag_variable_and_key_set_one_setting_in_order() {
    let flags = flags();
    let others: BTreeSet<&str> = flags
        .iter()
        .filter(|f| f.key.is_none())
        .map(|f| f.flag.as_str())
        .collect();
    assert_eq!(
        others,
        NOT_SETTINGS.iter().copied().collect(),
        "every other option names the key it sets, as (config: section.key)"
    );
    let listed: BTreeSet<&str> = flags.iter().filter_map(|f| f.key.as_deref()).collect();
    let tested: BTreeSet<&str> = SETTINGS.iter().map(|(key, _)| *key).collect();
    assert_eq!(listed, tested, "every setting with a flag is tested here");
    let defaults = serve(&["--print-default-config"], &[]);
    let dir = tempfile::tempdir().unwrap();
    for (key, [in_file, in_variable, on_command_line]) in SETTINGS {
        let flag = flags
            .iter()
            .find(|f| f.key.as_deref() == Some(key))
            .unwrap();
        let variable = flag
            .variable
            .as_deref()
            .expect("a setting's flag has a variable");
        let default = printed(&defaults, key);
        let expect = |value| toml_value(value, default.as_ref());
        let (section, name) = key.split_once('.').unwrap();
        let file = dir.path().join(format!("{key}.toml"));
        let line = format!("[{section}]\n{name} = {}\n", expect(in_file));
        std::fs::write(&file, line).unwrap();
        let file = file.to_str().unwrap();
        let variable = [(variable, *in_variable)];
        let flag_and_value = if matches!(default, Some(toml::Value::Boolean(_)))
            && flag.value.as_deref() != Some("<BOOL>")
        {
            vec![flag.flag.clone()]
        } else {
            vec![flag.flag.clone(), on_command_line.to_string()]
        };
        let mut args = vec!["--check-config", "--config", file];

        let from_file = serve(&args, &[]);
        assert_eq!(
            printed(&from_file, key),
            Some(expect(in_file)),
            "{key} in the file"
        );
        let from_variable = serve(&args, &variable);
        assert_eq!(
            printed(&from_variable, key),
            Some(expect(in_variable)),
            "{} over the file",
            variable[0].0
        );
        args.extend(flag_and_value.iter().map(String::as_str));
        let from_flag = serve(&args, &variable);
        assert_eq!(
            printed(&from_flag, key),
            Some(expect(on_command_line)),
            "{} over {} and the file",
            flag.flag,
            variable[0].0
        );
    }
}

/// An on/off flag only switches its setting on: `false` in its variable leaves the file's
/// `true`, and the file's value stays when the flag is absent.
#[test]
fn an_on_off_variable_cannot_switch_the_file_off() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssehub.toml");
    std::fs::write(&file, "[auth]\nallow_anonymous_publish = true\n").unwrap();
    let file = file.to_str().unwrap();
    let args = ["--check-config", "--config", file];
    let key = "auth.allow_anonymous_publish";
    let on = Some(toml::Value::Boolean(true));
    assert_eq!(printed(&serve(&args, &[]), key), on);
    let off = [("SSEHUB_ALLOW_ANONYMOUS_PUBLISH", "false")];
    assert_eq!(printed(&serve(&args, &off), key), on);
}

/// What `--print-default-config` prints is a valid file, read back as itself.
#[test]
fn the_default_file_round_trips() {
    let defaults = serve(&["--print-default-config"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ssehub.toml");
    std::fs::write(&file, &defaults).unwrap();
    let checked = serve(&["--check-config", "--config", file.to_str().unwrap()], &[]);
    assert_eq!(checked, defaults);
}
