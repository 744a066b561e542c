//! The layer rules of ARCHITECTURE.md ("Invariants"), checked on the source: each library
//! module may name (`crate::module`) only the modules below it, and only the command line
//! parses arguments with clap. A new dependency across the layers fails here with the file
//! and line that made it; a rule that should change is changed in both places.

use std::path::{Path, PathBuf};

/// Each top-level module of the library and the modules it may use.
const LAYERS: &[(&str, &[&str])] = &[
    ("util", &[]),
    ("kernels", &[]),
    ("audio", &["util"]),
    ("grammar", &["util"]),
    ("whisper", &["kernels", "audio", "util"]),
    ("llm", &["kernels", "util"]),
    ("capture", &["audio", "util"]),
    ("frontend", &["audio", "capture", "util"]),
    ("actions", &["grammar", "util"]),
    (
        "command",
        &["whisper", "grammar", "audio", "kernels", "util"],
    ),
    (
        "captions",
        &["whisper", "frontend", "audio", "kernels", "util"],
    ),
    ("bench", &["whisper", "llm", "audio", "kernels", "util"]),
    ("ops", &["util"]),
    // The settings file gathers the sections of the modules it configures.
    (
        "config",
        &[
            "actions", "captions", "command", "frontend", "capture", "whisper", "llm", "audio",
            "util",
        ],
    ),
    // The daemon wires everything together.
    (
        "daemon",
        &[
            "config", "actions", "captions", "command", "frontend", "capture", "whisper", "llm",
            "grammar", "audio", "kernels", "ops", "util",
        ],
    ),
    // The Wyoming server sits beside the daemon and serves its command set.
    (
        "wyoming",
        &[
            "daemon", "config", "actions", "command", "captions", "frontend", "capture", "whisper",
            "grammar", "audio", "util",
        ],
    ),
];

/// The layers that are crates of their own (`crates/*`), by package name, and the module of
/// the library that re-exports each (`voxd_kernels` is `crate::kernels`, `voxd_rng` is
/// `crate::util::rng`). Cargo keeps them from naming the main crate; the voxd crates their
/// manifests depend on are checked against LAYERS as a module's `use` lines are.
const CRATES: &[(&str, &str)] = &[("voxd-kernels", "kernels"), ("voxd-rng", "util")];

/// Crates only the command line (the binary, `src/main.rs` and `src/cli/`) may use.
const CLI_ONLY_CRATES: &[&str] = &["clap"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to; None for the crate roots and the
/// command line.
fn module_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main" | "cli")).then(|| name.to_string())
}

/// The modules a line of code names as `crate::name` or inside `crate::{a, b::c}`.
fn crate_paths(line: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            // Only the names at the group's top level are modules.
            let mut depth = 0;
            let mut start = true;
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                        names.push(String::new());
                        names.last_mut().unwrap().push(c);
                        start = false;
                    }
                    c if !start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                        if let Some(name) = names.last_mut() {
                            if !name.ends_with(':') {
                                name.push(c);
                            }
                        }
                    }
                    ':' if depth == 0 => {
                        if let Some(name) = names.last_mut() {
                            name.push(':');
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names
        .into_iter()
        .map(|n| n.trim_end_matches(':').to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Lines of code: comments (`//`, `///`, `//!`) say nothing about dependencies.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.split("//").next().unwrap_or("")))
        .filter(|(_, code)| !code.trim().is_empty())
}

fn allowed_for(module: &str) -> &'static [&'static str] {
    LAYERS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, allowed)| *allowed)
        .unwrap_or_else(|| panic!("{module} has no layer in LAYERS: add it"))
}

fn crate_module(package: &str) -> &'static str {
    CRATES
        .iter()
        .find(|(name, _)| *name == package)
        .map(|(_, module)| *module)
        .unwrap_or_else(|| panic!("the workspace crate {package} has no row in CRATES: add it"))
}

/// The workspace crates' manifests (`crates/*/Cargo.toml`), parsed.
fn crate_manifests() -> Vec<(PathBuf, toml::Table)> {
    let crates = src().parent().unwrap().join("crates");
    let mut manifests: Vec<(PathBuf, toml::Table)> = std::fs::read_dir(&crates)
        .unwrap()
        .map(|e| e.unwrap().path().join("Cargo.toml"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let table = text.parse().unwrap();
            (path, table)
        })
        .collect();
    manifests.sort_by(|a, b| a.0.cmp(&b.0));
    manifests
}

/// A workspace crate's package name.
fn package_name(manifest: &toml::Table) -> &str {
    manifest["package"]["name"].as_str().unwrap()
}

/// The voxd crates a workspace crate's manifest depends on outside the layers allowed to it.
fn crate_violations() -> Vec<String> {
    let mut found = Vec::new();
    for (path, manifest) in crate_manifests() {
        let module = crate_module(package_name(&manifest));
        let dependencies = manifest.get("dependencies").and_then(|d| d.as_table());
        for name in dependencies.into_iter().flat_map(|d| d.keys()) {
            if !name.starts_with("voxd") {
                continue;
            }
            let used = crate_module(name);
            if used != module && !allowed_for(module).contains(&used) {
                let shown = path.strip_prefix(src().parent().unwrap()).unwrap();
                found.push(format!("{}: {module} uses {used}", shown.display()));
            }
        }
    }
    found
}

fn violations() -> Vec<String> {
    let mut found = crate_violations();
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let allowed = allowed_for(&module);
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file
            .strip_prefix(src().parent().unwrap())
            .unwrap()
            .display();
        for (line, code) in code_lines(&text) {
            for used in crate_paths(code) {
                if used != module && !allowed.contains(&used.as_str()) {
                    found.push(format!("{shown}:{line}: {module} uses {used}"));
                }
            }
            for name in CLI_ONLY_CRATES {
                let word = code.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'));
                if word
                    .into_iter()
                    .any(|w| w.starts_with(&format!("{name}::")))
                {
                    found.push(format!("{shown}:{line}: {module} uses {name}"));
                }
            }
        }
    }
    found
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let found = violations();
    assert!(
        found.is_empty(),
        "{} dependencies break the layer rules (ARCHITECTURE.md, Invariants):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn the_rules_cover_every_module_and_name_only_real_ones() {
    let mut modules: Vec<String> = std::fs::read_dir(src())
        .unwrap()
        .filter_map(|e| module_of(&e.unwrap().path()))
        .chain(
            crate_manifests()
                .iter()
                .map(|(_, m)| crate_module(package_name(m)).to_string()),
        )
        .collect();
    modules.sort();
    modules.dedup();
    let mut ruled: Vec<String> = LAYERS.iter().map(|(m, _)| m.to_string()).collect();
    ruled.sort();
    assert_eq!(modules, ruled);
    for (module, allowed) in LAYERS {
        for used in *allowed {
            assert!(
                ruled.iter().any(|m| m == used),
                "{module} allows unknown {used}"
            );
        }
    }
}

#[test]
fn crate_paths_are_read_from_plain_and_grouped_uses() {
    assert_eq!(
        crate_paths("use crate::whisper::model::Whisper;"),
        ["whisper"]
    );
    assert_eq!(
        crate_paths("use crate::{config::Config, util, llm::{a, b}};"),
        ["config", "util", "llm"]
    );
    assert_eq!(
        crate_paths("let x = crate::kernels::dot(a, b) + crate::util::rng::clock_seed();"),
        ["kernels", "util"]
    );
    assert!(crate_paths("use super::model;").is_empty());
}
