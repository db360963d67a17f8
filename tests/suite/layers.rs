//! The layers of `src/`: each top-level module may use only modules of a lower layer, and the views
//! (`src/gui`) do no I/O of their own. `tree` follows the module tree from `src/lib.rs` with `syn`,
//! `paths` resolves every path that production code names (`use` groups, renames and globs,
//! `super::super::…`, `crate::…` in expressions, types and macros); test code is what a `cfg`
//! implying `test` covers, item by item, and the files of `mod`s declared so. The tests at the end
//! plant each trick the old text search missed and show that it is reported.

mod paths;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use paths::{Crate, Named};

/// Lowest first. Modules in one layer are siblings and may not use each other. To add a module,
/// put its name in the layer it belongs to (or in a new row between two layers).
const LAYERS: &[&[&str]] = &[
    &["record", "duration", "errors", "files", "progress", "priority", "sqlite"],
    &["collect"],
    &["kafka"],
    // config is the file's schema and range checks alone: in this row, it cannot import billing or
    // transmit (runtime::Settings parses rules and budgets once).
    &["transmit", "billing", "config"],
    // The cost feed and the cost summaries, published from and read back beside the ledger.
    &["feed"],
    // The consumer runtime: bills from the topic into the ledger, feeds the feed, keeps its metrics.
    &["worker"],
    // The HTTP API over the ledger and the worker's metrics.
    &["api"],
    // The record simulator.
    &["simulate"],
    &["bench"],
    // What the app and the headless commands run.
    &["runtime"],
    &["gui"],
    &["cli"],
    // The edge: each command, wired from the parsed command line.
    &["commands"],
];

/// Uses allowed to point up or sideways for now, as `(file, module used)`: none.
const KNOTS: &[(&str, &str)] = &[];

/// What only the threads under the views may touch: files, sockets, threads, processes, the ledger
/// and the broker. The views (`src/gui`) name none of them, however spelt; `runtime::background`
/// runs them. Paths from the crate root (`crate::…`) or from an outside crate.
const NOT_IN_VIEWS: &[&str] = &[
    "std::fs",
    "std::net",
    "std::thread",
    "std::process",
    "rusqlite",
    "rdkafka",
    "crate::billing::ledger",
    "crate::feed::publisher",
    "crate::feed::materialiser",
    "crate::feed::summary::publish",
    "crate::feed::summary::reader",
    "crate::worker",
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn describe_layer(module: &str, layer: usize) -> String {
    format!("`{module}` (layer {} of {}: {})", layer + 1, LAYERS.len(), LAYERS[layer].join(", "))
}

fn where_named(named: &Named) -> String {
    format!("{}:{}: `{}` (→ {})", named.file, named.line, named.written, named.target.join("::"))
}

/// Uses that point up a layer or sideways, as `(file, module used, message)`, and uses of modules
/// that have no layer.
fn breaches(krate: &Crate) -> (BTreeSet<(String, String, String)>, Vec<String>) {
    let (mut found, mut unplaced) = (BTreeSet::new(), Vec::new());
    for named in &krate.named {
        let (Some(own), Some(theirs)) = (named.from.get(1), named.target.get(1)) else { continue };
        if named.target[0] != "crate" || own == theirs {
            continue;
        }
        match (layer_of(own), layer_of(theirs)) {
            (Some(mine), Some(other)) if other < mine => {}
            (Some(mine), Some(other)) => {
                let (own_layer, their_layer) = (describe_layer(own, mine), describe_layer(theirs, other));
                let why = if other == mine { "a sibling" } else { "a higher layer" };
                let message = format!("{}: {own_layer} may not use {their_layer}, {why}", where_named(named));
                found.insert((named.file.clone(), theirs.clone(), message));
            }
            (None, _) => unplaced.push(format!("{}: `{own}` has no layer", named.file)),
            (_, None) => unplaced.push(format!("{}: `{theirs}` has no layer", where_named(named))),
        }
    }
    (found, unplaced)
}

/// The paths of `NOT_IN_VIEWS` named in the production code of `module` and the modules under it.
fn io_in(krate: &Crate, module: &str) -> Vec<String> {
    let forbidden: Vec<Vec<&str>> = NOT_IN_VIEWS.iter().map(|path| path.split("::").collect()).collect();
    let starts = |path: &[String], prefix: &[&str]| path.len() >= prefix.len() && path.iter().zip(prefix).all(|(a, b)| a == b);
    let mut found = Vec::new();
    for named in krate.named.iter().filter(|named| named.from.get(1).is_some_and(|top| top == module)) {
        let hit = forbidden.iter().find(|bad| {
            // A glob of an outside crate's module brings in what we cannot list: `use std::*` may bring `fs`.
            let glob_over = named.glob
                && named.target[0] != "crate"
                && bad.len() > named.target.len()
                && starts(&named.target, &bad[..named.target.len()]);
            starts(&named.target, bad) || starts(&named.canonical, bad) || glob_over
        });
        if let Some(bad) = hit {
            found.push(format!("{} names {}", where_named(named), bad.join("::")));
        }
    }
    found
}

/// Within each top-level module, `(top, submodule, submodule it uses)` for each path from one
/// submodule's code into another's.
fn submodule_uses(krate: &Crate) -> BTreeSet<(String, String, String)> {
    let mut edges = BTreeSet::new();
    for named in &krate.named {
        let (Some(top), Some(source)) = (named.from.get(1), named.from.get(2)) else { continue };
        let (Some(target_top), Some(target)) = (named.target.get(1), named.target.get(2)) else { continue };
        let is_module = krate.modules.contains(&named.target[..3]);
        if named.target[0] == "crate" && target_top == top && target != source && is_module {
            edges.insert((top.clone(), source.clone(), target.clone()));
        }
    }
    edges
}

/// Every `.rs` file under `src/`, by path from the crate's root.
fn src_files() -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, files);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let relative = path.strip_prefix(root).unwrap().to_str().unwrap().to_owned();
                files.insert(relative, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = BTreeMap::new();
    walk(root, &root.join("src"), &mut files);
    files
}

fn read_src() -> Crate {
    read_checked(&src_files())
}

fn read_checked(files: &BTreeMap<String, String>) -> Crate {
    let krate = paths::read(files);
    assert!(krate.problems.is_empty(), "the sources could not be read whole:\n{}", krate.problems.join("\n"));
    assert!(krate.production_files.len() > 50 && krate.test_files.len() > 5, "the test read the sources: {krate:?}");
    krate
}

#[test]
fn every_use_points_down_a_layer() {
    let krate = read_src();
    let (found, mut unplaced) = breaches(&krate);
    let tops = krate.modules.iter().filter(|module| module.len() == 2 && layer_of(&module[1]).is_none());
    unplaced.extend(tops.map(|module| format!("`{}` has no layer", module[1])));
    assert!(unplaced.is_empty(), "modules with no layer (add them to LAYERS):\n{}", unplaced.join("\n"));
    let known: BTreeSet<(&str, &str)> = KNOTS.iter().copied().collect();
    let new: Vec<&str> =
        found.iter().filter(|(file, module, _)| !known.contains(&(file, module))).map(|(.., message)| message.as_str()).collect();
    assert!(new.is_empty(), "uses that point up a layer or to a sibling:\n{}", new.join("\n"));
    let untied: Vec<String> = known
        .iter()
        .filter(|(file, module)| !found.iter().any(|(f, m, _)| f == file && m == module))
        .map(|knot| format!("{knot:?}"))
        .collect();
    assert!(untied.is_empty(), "knots that are gone; take them off KNOTS: {}", untied.join(", "));
}

#[test]
fn the_views_do_no_io_of_their_own() {
    let krate = read_src();
    let found = io_in(&krate, "gui");
    assert!(found.is_empty(), "the views reach for I/O themselves (move it under runtime):\n{}", found.join("\n"));
    assert!(!io_in(&krate, "runtime").is_empty(), "the check finds I/O where it is");
}

#[test]
fn no_two_submodules_use_each_other_even_through_others() {
    let edges = submodule_uses(&read_src());
    assert!(edges.iter().any(|(top, _, _)| top == "billing"), "the test read billing's uses: {edges:?}");
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
    assert!(cycles.is_empty(), "use cycles between submodules:\n{}", cycles.join("\n"));
}

// The checker on planted sources: each way the text search was fooled is reported now.

/// A small crate: `record` at the bottom, `collect` above it, the views (`gui`) near the top;
/// `extra` adds or replaces files (an empty text takes the file away).
fn fixture(extra: &[(&str, &str)]) -> Crate {
    let mut files: BTreeMap<String, String> = [
        ("src/lib.rs", "pub mod record;\npub mod collect;\npub mod runtime;\npub mod gui;\n"),
        ("src/record/mod.rs", "pub struct Reading;\n"),
        ("src/collect/mod.rs", "pub mod window;\n"),
        ("src/collect/window/mod.rs", "pub fn open() {}\n"),
        ("src/runtime/mod.rs", "pub fn start() {}\n"),
        ("src/gui/mod.rs", "pub mod view;\npub fn x() {}\n"),
        ("src/gui/view.rs", "pub fn show() {}\n"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(path, text)| (path.to_owned(), text.to_owned()))
    .collect();
    files.retain(|_, text| !text.is_empty());
    files.insert("src/main.rs".to_owned(), "fn main() { usagebill::gui::x(); }\n".to_owned());
    let krate = paths::read(&files);
    assert!(krate.problems.is_empty(), "{:?}", krate.problems);
    krate
}

fn breach_messages(krate: &Crate) -> Vec<String> {
    let (found, unplaced) = breaches(krate);
    assert!(unplaced.is_empty(), "{unplaced:?}");
    found.into_iter().map(|(.., message)| message).collect()
}

/// Asserts `found` holds exactly one message per `expected` entry, each containing its text.
fn assert_reported(found: &[String], expected: &[&str]) {
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for text in expected {
        assert!(found.iter().any(|message| message.contains(text)), "{text:?} not in {found:#?}");
    }
}

#[test]
fn a_grouped_use_is_reported() {
    let text = "use crate::{record, gui};\nuse crate::{record::Reading, gui::{view::{show, self}, x}};\n";
    let krate = fixture(&[("src/collect/mod.rs", &format!("pub mod window;\n{text}"))]);
    let found = breach_messages(&krate);
    assert!(found.iter().all(|message| message.contains("`collect` (layer 2 of 13: collect) may not use `gui` (layer 11 of 13: gui)")));
    assert_reported(
        &found,
        &["mod.rs:2: `crate::gui`", "mod.rs:3: `crate::gui::view::show`", "mod.rs:3: `crate::gui::view`", "mod.rs:3: `crate::gui::x`"],
    );
}

#[test]
fn a_super_chain_is_reported() {
    let text = "use super::super::gui::view as v;\npub fn f() { super::super::gui::x(); let _ = self::super::super::gui::x; }\n";
    let found = breach_messages(&fixture(&[("src/collect/window/mod.rs", text)]));
    assert_reported(
        &found,
        &[
            "window/mod.rs:1: `super::super::gui::view` (→ crate::gui::view)",
            "mod.rs:2: `super::super::gui::x` (→ crate::gui::x)",
            "mod.rs:2: `self::super::super::gui::x`",
        ],
    );
    // From a foo.rs file (not mod.rs) and from an inline module, `super` counts the same way.
    let flat = fixture(&[
        ("src/collect/mod.rs", ""),
        ("src/collect/window/mod.rs", ""),
        ("src/collect.rs", "pub mod window;\nmod inner { fn f() { super::super::gui::x(); } }\n"),
        ("src/collect/window.rs", "fn f() { super::super::gui::x(); }\n"),
    ]);
    assert_reported(
        &breach_messages(&flat),
        &["src/collect.rs:2: `super::super::gui::x`", "src/collect/window.rs:1: `super::super::gui::x`"],
    );
}

#[test]
fn production_code_after_a_test_module_is_read() {
    let text = "#[cfg(test)]\nmod tests { use crate::gui::x; }\n#[cfg(test)]\nmod more;\n#[cfg(all(test, unix))]\n#[path = \"window_tests.rs\"]\nmod elsewhere;\npub fn f() -> crate::gui::View { todo!() }\n";
    let krate = fixture(&[
        ("src/collect/window/mod.rs", text),
        ("src/collect/window/more.rs", "use crate::gui::x;\n"),
        ("src/collect/window/window_tests.rs", "use crate::gui::x;\n"),
    ]);
    assert_reported(&breach_messages(&krate), &["src/collect/window/mod.rs:8: `crate::gui::View`"]);
    assert_eq!(krate.test_files, ["src/collect/window/more.rs", "src/collect/window/window_tests.rs"]);
}

#[test]
fn a_qualified_path_in_code_or_a_macro_is_reported() {
    let text = "pub fn f() { crate::gui::x(); }\npub fn g() { println!(\"{:?}\", ::usagebill::gui::x, crate::gui::view::show()); }\nmacro_rules! m { () => { $crate::gui::x() } }\nstruct S(crate::gui::view::Shown);\n";
    let found = breach_messages(&fixture(&[("src/record/mod.rs", text)]));
    assert_reported(
        &found,
        &[
            "mod.rs:1: `crate::gui::x`",
            "mod.rs:2: `crate::gui::view::show`",
            "mod.rs:3: `crate::gui::x`",
            "mod.rs:4: `crate::gui::view::Shown`",
        ],
    );
}

#[test]
fn io_in_a_view_is_reported_however_spelt() {
    let text = "use std::{fs, io};\nuse std as s;\nuse std::*;\nfn f() { fs::read(\"a\"); s::net::TcpStream::connect(\"b\"); std::process::exit(0); }\nfn g() { ::std::thread::spawn(|| ()); crate::runtime::files::read(\"c\"); self::fs::write(\"d\", \"\"); }\n";
    let krate = fixture(&[("src/gui/view.rs", text), ("src/runtime/mod.rs", "pub use std::fs as files;\n")]);
    let found = io_in(&krate, "gui");
    let expected = [
        "view.rs:1: `std::fs`",
        "view.rs:3: `std` (→ std) names std::fs",
        "view.rs:4: `fs::read` (→ std::fs::read)",
        "view.rs:4: `s::net::TcpStream::connect`",
    ];
    let more = [
        "view.rs:4: `std::process::exit`",
        "view.rs:5: `::std::thread::spawn`",
        "view.rs:5: `crate::runtime::files::read` (→ crate::runtime::files::read) names std::fs",
        "view.rs:5: `self::fs::write` (→ crate::gui::view::fs::write) names std::fs",
    ];
    assert_reported(&found, &[&expected[..], &more[..]].concat());
}

#[test]
fn a_clean_crate_is_not_reported() {
    let krate = fixture(&[
        (
            "src/collect/mod.rs",
            "pub mod window;\nuse crate::{record::{self, Reading}};\nuse super::record as r;\npub fn f(_: r::Reading) { window::open(); self::window::open(); }\n",
        ),
        (
            "src/collect/window/mod.rs",
            "use super::super::record::Reading;\npub fn open() { let _ = std::io::stdout(); }\n#[cfg(test)]\nmod tests { use crate::gui::x; }\n",
        ),
        (
            "src/gui/mod.rs",
            "pub mod view;\nuse crate::{collect::window, runtime::*};\npub fn x() { view::show(); window::open(); start(); }\n",
        ),
        (
            "src/gui/view.rs",
            "use std::{io, fmt::Write as _};\npub fn show() { io::stdout(); super::x(); crate::record::Reading; }\n#[cfg(test)]\nmod tests { fn f() { std::fs::read(\"a\"); } }\n",
        ),
    ]);
    assert_eq!(breach_messages(&krate), Vec::<String>::new());
    assert_eq!(io_in(&krate, "gui"), Vec::<String>::new());
    assert!(krate.named.iter().any(|named| named.written == "window::open" && named.target.join("::") == "crate::collect::window::open"));
}

#[test]
fn tricks_planted_in_the_real_sources_are_reported() {
    let mut files = src_files();
    let mut plant = |path: &str, text: &str| {
        let file = files.get_mut(path).unwrap();
        if !file.ends_with('\n') {
            file.push('\n');
        }
        let after = file.lines().count();
        file.push_str(text);
        after
    };
    let collect = plant(
        "src/collect/mod.rs",
        "#[cfg(test)]\nmod planted_tests {}\nuse crate::{record as _, gui as _};\npub fn planted() { super::gui::x(); }\n",
    );
    let view = plant("src/gui/format.rs", "use std::{fs as _, io as _};\n");
    let krate = read_checked(&files);
    let found = breach_messages(&krate);
    for expected in
        [format!("src/collect/mod.rs:{}: `crate::gui`", collect + 3), format!("src/collect/mod.rs:{}: `super::gui::x`", collect + 4)]
    {
        assert!(found.iter().any(|message| message.contains(&expected)), "{expected:?} not in {found:#?}");
    }
    let io = io_in(&krate, "gui");
    let expected = format!("src/gui/format.rs:{}: `std::fs`", view + 1);
    assert!(io.iter().any(|message| message.contains(&expected)), "{expected:?} not in {io:#?}");
}
