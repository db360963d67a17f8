//! The module tree of a crate, followed from `src/lib.rs` through each `mod` by the compiler's rules:
//! `mod x;` in a mod-rs file (`lib.rs`, `mod.rs`, a file named by `#[path]`) is `x.rs` or
//! `x/mod.rs` beside it, in any other file `foo.rs` it is under `foo/`; `#[path]` is relative to the
//! file's folder, or within an inline `mod { … }` to that module's folder. A file whose `mod` carries
//! a `cfg` that implies `test` (`test`, `all(test, …)`) is test code, and so is every file under it.

use std::collections::{BTreeMap, BTreeSet};

use syn::punctuated::Punctuated;
use syn::{Attribute, Meta, Token};

/// A module from the crate root: `["crate", "billing", "ledger"]`.
pub type Module = Vec<String>;

#[derive(Default)]
pub struct Tree {
    /// Every module of production code, inline ones too.
    pub modules: BTreeSet<Module>,
    /// Each production file with its module, parsed.
    pub production: Vec<(String, Module, syn::File)>,
    pub test_files: Vec<String>,
    /// Files that no `mod` reaches, files that do not parse, `mod`s without a file.
    pub problems: Vec<String>,
}

/// The tree of the crate whose sources are `files` (relative path → text, e.g. `"src/lib.rs"`).
/// `src/main.rs`, the binary, is a crate of its own and is left out.
pub fn read(files: &BTreeMap<String, String>) -> Tree {
    let mut reader = Reader { files, tree: Tree::default() };
    reader.load("src/lib.rs", vec!["crate".to_owned()], true, false);
    let mut tree = reader.tree;
    let reached: BTreeSet<&String> = tree.production.iter().map(|(path, ..)| path).chain(&tree.test_files).collect();
    let unreached = files.keys().filter(|path| path.ends_with(".rs") && *path != "src/main.rs" && !reached.contains(path));
    let problems: Vec<String> = unreached.map(|path| format!("{path}: no `mod` reaches it")).collect();
    tree.problems.extend(problems);
    tree
}

/// Whether a `#[cfg(…)]` among `attrs` holds only in tests: `test`, `all(…)` with such a part, or
/// `any(…)` of only such parts.
pub fn test_only(attrs: &[Attribute]) -> bool {
    fn implies_test(meta: &Meta) -> bool {
        let parts = |list: &syn::MetaList| list.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated).ok();
        match meta {
            Meta::Path(path) => path.is_ident("test"),
            Meta::List(list) if list.path.is_ident("all") => parts(list).is_some_and(|parts| parts.iter().any(implies_test)),
            Meta::List(list) if list.path.is_ident("any") => {
                parts(list).is_some_and(|parts| !parts.is_empty() && parts.iter().all(implies_test))
            }
            _ => false,
        }
    }
    attrs.iter().any(|attr| attr.path().is_ident("cfg") && attr.parse_args::<Meta>().is_ok_and(|meta| implies_test(&meta)))
}

struct Reader<'a> {
    files: &'a BTreeMap<String, String>,
    tree: Tree,
}

impl Reader<'_> {
    /// Reads the file of `module` and, through its `mod`s, the files under it.
    fn load(&mut self, path: &str, module: Module, mod_rs: bool, test: bool) {
        let Some(text) = self.files.get(path) else {
            return self.tree.problems.push(format!("{path}: the file of `{}` is missing", module.join("::")));
        };
        let syntax = match syn::parse_file(text) {
            Ok(syntax) => syntax,
            Err(error) => {
                let at = error.span().start();
                return self.tree.problems.push(format!("{path}:{}:{}: does not parse: {error}", at.line, at.column));
            }
        };
        let test = test || test_only(&syntax.attrs);
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir).to_owned();
        let stem = path.rsplit('/').next().unwrap().trim_end_matches(".rs");
        let children = if mod_rs { dir.clone() } else { format!("{dir}/{stem}") };
        self.declare(&dir, &children, &syntax.items, &module, test, true);
        if test {
            self.tree.test_files.push(path.to_owned());
        } else {
            self.tree.modules.insert(module.clone());
            self.tree.production.push((path.to_owned(), module, syntax));
        }
    }

    /// Follows the `mod`s among `items`, whose files are under `children`; `outer` says whether
    /// `items` are a file's own (not in an inline `mod { … }`), for which `#[path]` starts at `dir`.
    fn declare(&mut self, dir: &str, children: &str, items: &[syn::Item], module: &Module, test: bool, outer: bool) {
        for item in items {
            let syn::Item::Mod(declared) = item else { continue };
            let name = declared.ident.to_string();
            let child = [module.clone(), vec![name.clone()]].concat();
            let test = test || test_only(&declared.attrs);
            let path_attribute = declared.attrs.iter().find(|attr| attr.path().is_ident("path")).and_then(|attr| match &attr.meta {
                Meta::NameValue(syn::MetaNameValue { value: syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(text), .. }), .. }) => {
                    Some(text.value())
                }
                _ => None,
            });
            match (&declared.content, path_attribute) {
                (Some((_, inner)), _) => {
                    if !test {
                        self.tree.modules.insert(child.clone());
                    }
                    self.declare(dir, &format!("{children}/{name}"), inner, &child, test, false);
                }
                (None, Some(relative)) => {
                    let base = if outer { dir } else { children };
                    self.load(&normalise(&format!("{base}/{relative}")), child, true, test);
                }
                (None, None) => {
                    let flat = format!("{children}/{name}.rs");
                    match self.files.contains_key(&flat) {
                        true => self.load(&flat, child, false, test),
                        false => self.load(&format!("{children}/{name}/mod.rs"), child, true, test),
                    }
                }
            }
        }
    }
}

/// `a/./b/../c` → `a/c`.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    parts.join("/")
}
