//! The repository's layout stays what its documents say: every script is in the table of
//! `scripts/README.md` and every row there names a script, and every integration test file
//! is compiled into one of the two test binaries.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::repo;

/// Files under `dir`, as paths relative to `base` with `/` separators, leaving out Python's
/// byte-code caches (made by running the scripts, git-ignored).
fn files_under(base: &Path, dir: &Path, found: &mut BTreeSet<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "__pycache__" || name.ends_with(".pyc") {
            continue;
        }
        if path.is_dir() {
            files_under(base, &path, found);
        } else {
            let relative = path.strip_prefix(base).unwrap();
            found.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The files the table rows of `readme` name: the first word inside the backticks that
/// open a row's first cell (the rest of that cell is the arguments). Rows whose first cell
/// is not code (the folder headings) name no file.
fn table_files(readme: &str) -> Vec<String> {
    readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .map(|cell| {
            cell.split(['`', ' '])
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[test]
fn every_script_is_in_the_scripts_table() {
    let scripts = repo().join("scripts");
    let readme_path = scripts.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)
        .unwrap_or_else(|e| panic!("{}: {e}", readme_path.display()));
    let listed = table_files(&readme);
    let mut on_disk = BTreeSet::new();
    files_under(&scripts, &scripts, &mut on_disk);
    on_disk.remove("README.md");

    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &listed {
        if !seen.insert(file) {
            problems.push(format!("`{file}` has two rows"));
        }
        if !on_disk.contains(file) {
            problems.push(format!(
                "the table lists `{file}`, which is not in scripts/"
            ));
        }
    }
    for file in &on_disk {
        if !seen.contains(file) {
            problems.push(format!(
                "scripts/{file} has no row in the table of scripts/README.md"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        readme_path.display(),
        problems.join("\n")
    );
    // The check itself looked at something: the three commands at the top are rows.
    for top in ["run.sh", "test.sh", "setup.sh"] {
        assert!(listed.iter().any(|f| f == top), "no row for {top}");
    }
}

#[test]
fn the_table_parser_reads_paths_not_headings() {
    let table = "| file | what |\n|---|---|\n| `a.sh [X]` | one |\n| **bench/** | **b** |\n\
                 | `bench/b.py` | two |\n";
    assert_eq!(table_files(table), ["a.sh", "bench/b.py"]);
}

/// Every `.rs` file in a test binary's folder is a module its `main.rs` declares: a file
/// left out would compile into nothing, and its tests would never run.
#[test]
fn every_test_file_is_a_module_of_a_test_binary() {
    let tests = repo().join("tests");
    let mut problems = Vec::new();
    // `memory` is alone in its process: its counting allocator would count every other
    // test's allocations too.
    for binary in ["it", "live", "memory"] {
        let dir = tests.join(binary);
        let main = std::fs::read_to_string(dir.join("main.rs"))
            .unwrap_or_else(|e| panic!("{}/main.rs: {e}", dir.display()));
        let mut files = BTreeSet::new();
        files_under(&dir, &dir, &mut files);
        for file in files {
            let Some(module) = file.strip_suffix(".rs") else {
                continue;
            };
            if module != "main" && !main.lines().any(|l| l == format!("mod {module};")) {
                problems.push(format!(
                    "tests/{binary}/{file}: no `mod {module};` in main.rs"
                ));
            }
        }
    }
    // A file directly in tests/ would be a test binary of its own, linking the crate again.
    for entry in std::fs::read_dir(&tests).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            problems.push(format!(
                "{}: a test binary of its own; make it a module of tests/it/ or tests/live/",
                path.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
