//! Every path that a crate's production code names, resolved to where it points. Paths come from
//! each `use` (groups, renames, `self` and globs expanded), from every path in expressions, types,
//! patterns and attributes, and from the tokens of every macro (`$crate::…` too); items carrying a
//! `cfg` that implies `test` are skipped, nothing else. A path's first segment is resolved: `crate`,
//! `self` and `super` chains (from the module the code is in, inline modules counted), a name that a
//! `use` brought in (an alias) or a glob did, a child module, or else an outside crate (`std`, …).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};
use syn::{Attribute, UseTree};

use super::tree::{self, Module, test_only};

/// A path named in production code.
#[derive(Clone, Debug)]
pub struct Named {
    pub file: String,
    pub line: usize,
    /// The module whose code names it.
    pub from: Module,
    /// As written, a `use` group expanded (`crate::record` out of `use crate::{record, gui}`).
    pub written: String,
    /// Where it points: `crate::…` inside the crate, else the outside crate's path (`std::fs::read`).
    pub target: Vec<String>,
    /// Where it points after following the crate's own `use`s (re-exports) on the way.
    pub canonical: Vec<String>,
    /// A glob import (`use x::*`): it names all of `target`.
    pub glob: bool,
}

/// What `read` found.
#[derive(Default, Debug)]
pub struct Crate {
    pub modules: BTreeSet<Module>,
    pub production_files: Vec<String>,
    pub test_files: Vec<String>,
    /// Every path that production code names.
    pub named: Vec<Named>,
    /// Files that no `mod` reaches, files that do not parse, `mod`s without a file, `include!`s.
    pub problems: Vec<String>,
}

/// Reads the crate whose sources are `files` (relative path → text, e.g. `"src/lib.rs"`).
pub fn read(files: &BTreeMap<String, String>) -> Crate {
    let tree::Tree { modules, production, test_files, mut problems } = tree::read(files);
    let mut scopes = Scopes { modules, ..Scopes::default() };
    let mut raw = Vec::new();
    for (file, module, syntax) in &production {
        let problems = &mut problems;
        Collector { file, inside: vec![module.clone()], scopes: &mut scopes, raw: &mut raw, problems }.visit_file(syntax);
    }
    let mut named = Vec::new();
    for (file, line, from, segments, glob) in raw {
        if segments.len() < 2 && !glob {
            continue; // a lone name: `self`, a local item, or one a `use` brought in (that `use` is read itself)
        }
        let Some(target) = scopes.resolve(&from, &segments, &mut Vec::new()) else { continue };
        let canonical = scopes.canonical(&target);
        let written = segments.join("::").replacen("$crate", "crate", 1);
        named.push(Named { file, line, from, written, target, canonical, glob });
    }
    let production_files = production.into_iter().map(|(file, ..)| file).collect();
    Crate { modules: scopes.modules, production_files, test_files, named, problems }
}

/// What each module's `use`s bring in: names (aliases) and globs, each as written there.
#[derive(Default)]
struct Scopes {
    modules: BTreeSet<Module>,
    aliases: HashMap<Module, HashMap<String, Vec<String>>>,
    globs: HashMap<Module, Vec<Vec<String>>>,
}

impl Scopes {
    /// Where `segments`, written in `from`, point. `resolving` holds the aliases being followed.
    fn resolve(&self, from: &Module, segments: &[String], resolving: &mut Vec<(Module, String)>) -> Option<Vec<String>> {
        let (first, rest) = segments.split_first()?;
        let joined = |base: Vec<String>, rest: &[String]| Some([base, rest.to_vec()].concat());
        match first.as_str() {
            "" => Some(rest.to_vec()), // `::std::fs`: an outside crate
            "crate" | "$crate" => joined(vec!["crate".to_owned()], rest),
            "self" | "super" => {
                let mut module = from.clone();
                let mut rest = if first == "self" { rest } else { segments };
                while rest.first().is_some_and(|segment| segment == "super") {
                    if module.len() < 2 {
                        return None; // above the crate: does not compile
                    }
                    module.pop();
                    rest = &rest[1..];
                }
                joined(module, rest)
            }
            "Self" => None,
            name => {
                let key = (from.clone(), name.to_owned());
                if resolving.contains(&key) {
                    return Some(segments.to_vec());
                }
                resolving.push(key);
                let found = self.resolve_name(from, name, rest, resolving);
                resolving.pop();
                found
            }
        }
    }

    /// Where `name::rest` points in `from`: through a `use`, a child module or a glob.
    fn resolve_name(&self, from: &Module, name: &str, rest: &[String], resolving: &mut Vec<(Module, String)>) -> Option<Vec<String>> {
        let segments = [vec![name.to_owned()], rest.to_vec()].concat();
        if let Some(alias) = self.aliases.get(from).and_then(|names| names.get(name)) {
            return Some([self.resolve(from, alias, resolving)?, rest.to_vec()].concat());
        }
        if self.modules.contains(&[from.clone(), vec![name.to_owned()]].concat()) {
            return Some([from.clone(), segments].concat());
        }
        for glob in self.globs.get(from).into_iter().flatten() {
            let Some(source) = self.resolve(from, glob, resolving) else { continue };
            let child = self.modules.contains(&[source.clone(), vec![name.to_owned()]].concat());
            if child || self.aliases.get(&source).is_some_and(|names| names.contains_key(name)) {
                return self.resolve(&source, &segments, resolving);
            }
        }
        Some(segments) // an outside crate, or an item of this module
    }

    /// `target` after following the `use` re-exports of the crate's modules it passes through.
    fn canonical(&self, target: &[String]) -> Vec<String> {
        let mut path = target.to_vec();
        for _ in 0..16 {
            let Some(end) = (1..path.len()).rev().find(|end| self.modules.contains(&path[..*end])) else { break };
            let module = path[..end].to_vec();
            let alias = self.aliases.get(&module).and_then(|names| names.get(&path[end]));
            let Some(next) = alias.and_then(|alias| self.resolve(&module, alias, &mut Vec::new())) else { break };
            path = [next, path[end + 1..].to_vec()].concat();
        }
        path
    }
}

type Raw = (String, usize, Module, Vec<String>, bool);

/// Walks one production file, skipping test-only items, collecting paths and each module's `use`s.
struct Collector<'a> {
    file: &'a str,
    /// The module being read, innermost last.
    inside: Vec<Module>,
    scopes: &'a mut Scopes,
    raw: &'a mut Vec<Raw>,
    problems: &'a mut Vec<String>,
}

impl Collector<'_> {
    fn module(&self) -> Module {
        self.inside.last().unwrap().clone()
    }

    fn note(&mut self, line: usize, segments: Vec<String>, glob: bool) {
        self.raw.push((self.file.to_owned(), line, self.module(), segments, glob));
    }

    /// Every leaf of a `use` tree: a path named, and the name or glob it brings into the module.
    fn use_tree(&mut self, prefix: Vec<String>, tree: &UseTree) {
        let (ident, brought) = match tree {
            UseTree::Path(path) => return self.use_tree([prefix, vec![path.ident.to_string()]].concat(), &path.tree),
            UseTree::Group(group) => return group.items.iter().for_each(|tree| self.use_tree(prefix.clone(), tree)),
            UseTree::Name(name) => (&name.ident, name.ident.to_string()),
            UseTree::Rename(rename) => (&rename.ident, rename.rename.to_string()),
            UseTree::Glob(glob) => {
                self.scopes.globs.entry(self.module()).or_default().push(prefix.clone());
                return self.note(glob.star_token.span.start().line, prefix, true);
            }
        };
        let line = ident.span().start().line;
        let path = match ident == "self" {
            true => prefix,
            false => [prefix, vec![ident.to_string()]].concat(),
        };
        let brought = if brought == "self" { path.last().cloned().unwrap_or_default() } else { brought };
        if brought != "_" {
            self.scopes.aliases.entry(self.module()).or_default().insert(brought, path.clone());
        }
        self.note(line, path, false);
    }

    /// Paths in a macro's tokens (`a::b…`, `::a::b…`, `$crate::a…`), also inside its groups.
    fn tokens(&mut self, tokens: TokenStream) {
        let trees: Vec<TokenTree> = tokens.into_iter().collect();
        let mut at = 0;
        while at < trees.len() {
            if let TokenTree::Group(group) = &trees[at] {
                self.tokens(group.stream());
                at += 1;
                continue;
            }
            let (segments, line, next) = path_in(&trees, at);
            if segments.iter().filter(|segment| !segment.is_empty()).count() >= 2 {
                self.note(line, segments, false);
            }
            at = next.max(at + 1);
        }
    }
}

/// The path that starts at `trees[at]`, its line and where it ends.
fn path_in(trees: &[TokenTree], at: usize) -> (Vec<String>, usize, usize) {
    let colons = |at: usize| {
        matches!((trees.get(at), trees.get(at + 1)), (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
            if a.as_char() == ':' && b.as_char() == ':' && a.spacing() == proc_macro2::Spacing::Joint)
    };
    let (mut segments, mut line, mut next) = (Vec::new(), 0, at);
    if colons(next) {
        segments.push(String::new());
        next += 2;
    } else if let (Some(TokenTree::Punct(dollar)), Some(TokenTree::Ident(ident))) = (trees.get(next), trees.get(next + 1))
        && dollar.as_char() == '$'
        && ident == "crate"
        && colons(next + 2)
    {
        segments.push("$crate".to_owned());
        line = ident.span().start().line;
        next += 4;
    }
    while let Some(TokenTree::Ident(ident)) = trees.get(next) {
        line = if line == 0 { ident.span().start().line } else { line };
        segments.push(ident.to_string());
        next += 1;
        if !colons(next) {
            break;
        }
        next += 2;
    }
    (segments, line, next)
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs: &[Attribute] = match item {
            syn::Item::Const(i) => &i.attrs,
            syn::Item::Enum(i) => &i.attrs,
            syn::Item::ExternCrate(i) => &i.attrs,
            syn::Item::Fn(i) => &i.attrs,
            syn::Item::ForeignMod(i) => &i.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Macro(i) => &i.attrs,
            syn::Item::Mod(i) => &i.attrs,
            syn::Item::Static(i) => &i.attrs,
            syn::Item::Struct(i) => &i.attrs,
            syn::Item::Trait(i) => &i.attrs,
            syn::Item::TraitAlias(i) => &i.attrs,
            syn::Item::Type(i) => &i.attrs,
            syn::Item::Union(i) => &i.attrs,
            syn::Item::Use(i) => &i.attrs,
            _ => &[],
        };
        if test_only(attrs) {
            return;
        }
        match item {
            syn::Item::Use(used) => {
                let root = if used.leading_colon.is_some() { vec![String::new()] } else { Vec::new() };
                self.use_tree(root, &used.tree);
            }
            syn::Item::ExternCrate(external) => {
                let name = external.rename.as_ref().map_or(&external.ident, |(_, rename)| rename).to_string();
                let target = if external.ident == "self" { "crate".to_owned() } else { external.ident.to_string() };
                self.scopes.aliases.entry(self.module()).or_default().insert(name, vec![target]);
            }
            syn::Item::Mod(declared) => {
                // A `mod x;` file is read on its own; an inline `mod x { … }` is a module of its own here.
                if let Some((_, items)) = &declared.content {
                    self.inside.push([self.module(), vec![declared.ident.to_string()]].concat());
                    declared.attrs.iter().for_each(|attr| self.visit_attribute(attr));
                    items.iter().for_each(|item| self.visit_item(item));
                    self.inside.pop();
                }
            }
            _ => visit::visit_item(self, item),
        }
    }

    fn visit_impl_item(&mut self, item: &'ast syn::ImplItem) {
        let attrs: &[Attribute] = match item {
            syn::ImplItem::Const(i) => &i.attrs,
            syn::ImplItem::Fn(i) => &i.attrs,
            syn::ImplItem::Type(i) => &i.attrs,
            syn::ImplItem::Macro(i) => &i.attrs,
            _ => &[],
        };
        if !test_only(attrs) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_trait_item(&mut self, item: &'ast syn::TraitItem) {
        let attrs: &[Attribute] = match item {
            syn::TraitItem::Const(i) => &i.attrs,
            syn::TraitItem::Fn(i) => &i.attrs,
            syn::TraitItem::Type(i) => &i.attrs,
            syn::TraitItem::Macro(i) => &i.attrs,
            _ => &[],
        };
        if !test_only(attrs) {
            visit::visit_trait_item(self, item);
        }
    }

    fn visit_local(&mut self, local: &'ast syn::Local) {
        if !test_only(&local.attrs) {
            visit::visit_local(self, local);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let root = if path.leading_colon.is_some() { vec![String::new()] } else { Vec::new() };
        let segments = [root, path.segments.iter().map(|segment| segment.ident.to_string()).collect()].concat();
        let line = path.segments.first().map_or(0, |segment| segment.ident.span().start().line);
        self.note(line, segments, false);
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        if mac.path.is_ident("include") {
            let line = mac.path.segments[0].ident.span().start().line;
            self.problems.push(format!("{}:{line}: `include!` brings in code this test cannot read", self.file));
        }
        self.tokens(mac.tokens.clone());
        visit::visit_macro(self, mac);
    }
}
