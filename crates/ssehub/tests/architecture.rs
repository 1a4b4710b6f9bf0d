//! The crate graph points one way (ARCHITECTURE.md, "The crate graph"): each product crate
//! depends only on the crates of ours listed for it below, and the tools in `tools/` are never
//! part of the product. Read from `cargo metadata`, so a wrong edge added to any `Cargo.toml`
//! fails here, with the rule it breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Each product crate (in `crates/`) and the crates of ours it may depend on. The same rows,
/// word for word, are the table in ARCHITECTURE.md: `the_documented_graph_is_this_one` holds
/// the two together.
const ALLOWED: &[(&str, &[&str])] = &[
    ("ssehub-wire", &[]),
    ("ssehub-core", &["ssehub-wire"]),
    ("ssehub-store", &["ssehub-core", "ssehub-wire"]),
    ("ssehub-http", &["ssehub-core", "ssehub-wire"]),
    ("ssehub-server", &["ssehub-http"]),
    ("ssehub-client", &["ssehub-wire"]),
    ("ssehub-bench", &["ssehub-wire"]),
    ("ssehub-cluster", &["ssehub-core"]),
    (
        "ssehub",
        &[
            "ssehub-bench",
            "ssehub-client",
            "ssehub-cluster",
            "ssehub-core",
            "ssehub-http",
            "ssehub-server",
            "ssehub-store",
            "ssehub-wire",
        ],
    ),
];

/// The one tool a product crate may use, and only in its tests (a dev-dependency): the shared
/// conformance vectors.
const TEST_ONLY_TOOL: &str = "ssehub-conformance";

/// One workspace member, as `cargo metadata` describes it.
struct Member {
    /// In `tools/` (not published, not the product) rather than `crates/`.
    tool: bool,
    /// `(dependency name, kind)` for every dependency; kind is `normal`, `dev` or `build`.
    deps: Vec<(String, String)>,
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/ssehub is two levels below the workspace root")
}

fn members() -> BTreeMap<String, Member> {
    let root = workspace_root();
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata is JSON");
    let mut members = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"]
            .as_str()
            .expect("a package name")
            .to_string();
        let manifest = Path::new(package["manifest_path"].as_str().expect("a manifest path"));
        let dir = manifest
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.components().next())
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default();
        assert!(
            dir == "crates" || dir == "tools",
            "{name} is neither in crates/ (the product) nor in tools/: {}",
            manifest.display()
        );
        let deps = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .map(|d| {
                let name = d["name"].as_str().expect("a dependency name").to_string();
                let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                (name, kind)
            })
            .collect();
        members.insert(
            name,
            Member {
                tool: dir == "tools",
                deps,
            },
        );
    }
    members
}

/// Every product crate depends only on what its row allows; a tool is at most a dev-dependency
/// (the conformance vectors), never something the product ships with.
#[test]
fn dependencies_point_one_way() {
    let members = members();
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(name, deps)| (*name, deps.iter().copied().collect()))
        .collect();
    let product: BTreeSet<&str> = members
        .iter()
        .filter(|(_, m)| !m.tool)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        product,
        allowed.keys().copied().collect(),
        "the crates in crates/ and the rows of ALLOWED (and of ARCHITECTURE.md's table) differ: \
         a new product crate needs its row, a moved one loses it"
    );

    let mut broken = Vec::new();
    for (name, member) in members.iter().filter(|(_, m)| !m.tool) {
        let may = &allowed[name.as_str()];
        for (dep, kind) in &member.deps {
            let Some(target) = members.get(dep) else {
                continue; // not ours
            };
            if target.tool {
                if !(kind == "dev" && dep == TEST_ONLY_TOOL) {
                    broken.push(format!(
                        "{name} -> {dep} ({kind}): tools/ crates are never part of the product \
                         (only {TEST_ONLY_TOOL}, and only as a dev-dependency)"
                    ));
                }
                continue;
            }
            // A crate may use itself in its tests (to turn on a feature such as `testing`).
            if dep == name && kind == "dev" {
                continue;
            }
            if !may.contains(dep.as_str()) {
                broken.push(format!(
                    "{name} -> {dep} ({kind}): {name} may depend on {may:?} only"
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "dependency edges against ARCHITECTURE.md, \"The crate graph\":\n{}",
        broken.join("\n")
    );
}

/// ARCHITECTURE.md's table of allowed dependencies says what `ALLOWED` says.
#[test]
fn the_documented_graph_is_this_one() {
    let doc = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md"))
        .expect("ARCHITECTURE.md at the workspace root");
    for (name, deps) in ALLOWED {
        let deps = if deps.is_empty() {
            "none of ours".to_string()
        } else {
            deps.iter()
                .map(|d| format!("`{d}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let row = format!("| `{name}` | {deps} |");
        assert!(
            doc.lines().any(|line| line.starts_with(&row)),
            "ARCHITECTURE.md has no row starting {row:?}"
        );
    }
}
