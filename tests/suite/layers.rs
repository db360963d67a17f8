//! The layers of `src/`: each top-level module may import only modules of a lower layer. This test
//! reads every `crate::` path in production code (a file's tests, from its first `#[cfg(test)]`
//! on, and `*_tests.rs` files are left out) and fails on an import that points up a layer or
//! sideways to a sibling, naming the file and the import. `KNOTS` is where a knot that cannot be
//! untied at once would be listed (none is today); a listed knot that is gone fails the test too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Lowest first. Modules in one layer are siblings and may not import each other.
const LAYERS: &[&[&str]] = &[
    &["record", "duration", "progress", "priority", "sqlite"],
    &["collect"],
    &["kafka"],
    &["transmit", "billing"],
    // The config schema validates with transmit's rules and billing's budgets; the tools use both.
    &["config", "simulate"],
    &["bench"],
    // What the app and the headless commands run.
    &["runtime"],
    &["gui"],
    &["cli"],
    // The edge: each command, wired from the parsed command line.
    &["commands"],
];

/// Imports allowed to point up or sideways for now, as `(file, module imported)`: none.
const KNOTS: &[(&str, &str)] = &[];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// The top-level modules named by `crate::…` in the production part of `text`.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let production = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut modules = BTreeSet::new();
    for (at, _) in production.match_indices("crate::") {
        let preceded_by_word = production[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_');
        if preceded_by_word {
            continue;
        }
        let rest = &production[at + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if !name.is_empty() {
            modules.insert(name);
        }
    }
    modules
}

#[test]
fn every_import_points_down_a_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut found: BTreeSet<(String, String)> = BTreeSet::new();
    let mut unplaced = Vec::new();
    let mut checked = 0;
    for path in &files {
        let relative = path.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
        let name = path.file_name().unwrap().to_str().unwrap();
        if relative == "src/main.rs" || relative == "src/lib.rs" || name.ends_with("_tests.rs") || name == "tests.rs" {
            continue;
        }
        let module = relative.trim_start_matches("src/").split(['/', '.']).next().unwrap().to_owned();
        let Some(own) = layer_of(&module) else {
            unplaced.push(relative);
            continue;
        };
        checked += 1;
        for imported in imported_modules(&std::fs::read_to_string(path).unwrap()) {
            if imported == module {
                continue;
            }
            match layer_of(&imported) {
                Some(theirs) if theirs < own => {}
                Some(_) => {
                    found.insert((relative.clone(), imported));
                }
                None => unplaced.push(format!("{relative} imports crate::{imported}")),
            }
        }
    }
    assert!(checked > 50, "the test read the sources ({checked} files)");
    assert!(unplaced.is_empty(), "modules with no layer (add them to LAYERS): {unplaced:?}");
    let known: BTreeSet<(String, String)> = KNOTS.iter().map(|(file, module)| ((*file).to_owned(), (*module).to_owned())).collect();
    let new: Vec<String> = found.difference(&known).map(|(file, module)| format!("{file} imports crate::{module}")).collect();
    assert!(new.is_empty(), "imports that point up a layer or to a sibling:\n{}", new.join("\n"));
    let untied: Vec<String> = known.difference(&found).map(|(file, module)| format!("({file:?}, {module:?})")).collect();
    assert!(untied.is_empty(), "knots that are gone; take them off KNOTS: {}", untied.join(", "));
}

#[test]
fn the_import_reader_finds_paths_and_skips_tests() {
    let text =
        "use crate::billing::ledger::Ledger;\nfn f() { crate::kafka::ensure_topic(); }\n// not_crate::x\n#[cfg(test)]\nuse crate::gui::X;";
    let found = imported_modules(text);
    assert_eq!(found, BTreeSet::from(["billing".to_owned(), "kafka".to_owned()]));
}

/// What only the threads under the views may touch: files, sockets, threads, processes, the ledger
/// and the broker. The views (`src/gui`) name none of them; `runtime::background` runs them.
const NOT_IN_VIEWS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::thread",
    "std::process",
    "rusqlite::",
    "rdkafka::",
    "billing::ledger",
    "billing::feed",
    "billing::worker",
];

/// The `(file, path)` pairs of `NOT_IN_VIEWS` named in the production part of the files under `dir`.
fn io_in(dir: &Path) -> Vec<(String, &'static str)> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    assert!(!files.is_empty(), "no sources under {}", dir.display());
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let production = text.split("#[cfg(test)]").next().unwrap_or_default();
        for forbidden in NOT_IN_VIEWS {
            if production.contains(forbidden) {
                found.push((path.display().to_string(), *forbidden));
            }
        }
    }
    found
}

#[test]
fn the_views_do_no_io_of_their_own() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = io_in(&root.join("src/gui"));
    assert!(found.is_empty(), "the views reach for I/O themselves (move it under runtime): {found:?}");
    assert!(!io_in(&root.join("src/runtime")).is_empty(), "the check finds I/O where it is");
}

/// The submodule of `top` a file under `src/top/` belongs to (`src/billing/ledger/rollup.rs` → `ledger`).
fn submodule_of(relative: &Path) -> Option<String> {
    let mut parts = relative.iter().map(|part| part.to_str().unwrap().trim_end_matches(".rs").to_owned());
    parts.next()?;
    let sub = parts.next()?;
    (sub != "mod").then_some(sub)
}

/// Within each top-level module, the submodules named by `crate::top::sub` (anywhere) and by
/// `super::sub` (in the files directly under it), per importing submodule.
fn submodule_imports(root: &Path) -> BTreeSet<(String, String, String)> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut edges = BTreeSet::new();
    for path in files {
        let relative = path.strip_prefix(root.join("src")).unwrap().to_owned();
        let name = path.file_name().unwrap().to_str().unwrap();
        let (Some(top), Some(sub)) = (relative.iter().next().and_then(|top| top.to_str()), submodule_of(&relative)) else { continue };
        if name.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let production: String =
            text.split("#[cfg(test)]").next().unwrap_or_default().lines().filter(|line| !line.trim_start().starts_with("//")).collect();
        let directly_under = relative.iter().count() == 2;
        let prefixes = [format!("crate::{top}::"), "super::".to_owned()];
        for (index, prefix) in prefixes.iter().enumerate() {
            if index == 1 && !directly_under {
                continue;
            }
            for (at, _) in production.match_indices(prefix.as_str()) {
                let target: String = production[at + prefix.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                let module = root.join("src").join(top);
                let exists = module.join(&target).is_dir() || module.join(format!("{target}.rs")).is_file();
                if !target.is_empty() && target != sub && exists {
                    edges.insert((top.to_owned(), sub.clone(), target));
                }
            }
        }
    }
    edges
}

#[test]
fn no_two_submodules_import_each_other_even_through_others() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let edges = submodule_imports(root);
    assert!(edges.iter().any(|(top, _, _)| top == "billing"), "the test read billing's imports: {edges:?}");
    let reaches = |top: &str, from: &str, to: &str| {
        let mut seen = BTreeSet::from([from.to_owned()]);
        let mut frontier = vec![from.to_owned()];
        while let Some(next) = frontier.pop() {
            for (_, _, target) in edges.iter().filter(|(t, source, _)| t == top && *source == next) {
                if target == to {
                    return true;
                }
                if seen.insert(target.clone()) {
                    frontier.push(target.clone());
                }
            }
        }
        false
    };
    let cycles: Vec<String> = edges
        .iter()
        .filter(|(top, source, target)| reaches(top, target, source))
        .map(|(top, source, target)| format!("{top}: {source} → {target} → … → {source}"))
        .collect();
    assert!(cycles.is_empty(), "import cycles between submodules:\n{}", cycles.join("\n"));
}
