//! No import circles between the core's modules: a module that uses another must not be
//! used by it, directly or through others. A circle means two files can only be read,
//! changed and tested together, which is what splitting them was meant to avoid.
//!
//! The graph is read from the source: one node per file (`http/routes.rs` is
//! `http::routes`), one edge per path that names another module (`use super::state`,
//! `crate::protocol::json::now_epoch_ms()`), with items a module re-exports
//! (`pub use server::HttpServer`) followed to the module that defines them, so using
//! `crate::http::HttpServer` depends on `http::server`, not on `http/mod.rs`. Declaring a
//! submodule (`mod routes;`) is not a use, and test modules (`#[cfg(test)] mod tests`) are
//! left out. Every module is checked, the engine's included.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

type ModPath = Vec<String>;

struct Module {
    text: String,
    /// Item name → the path it re-exports (`pub use a::b::C` gives `C → a::b::C`).
    reexports: HashMap<String, ModPath>,
    /// Modules re-exported whole (`pub use a::b::*`).
    glob_reexports: Vec<ModPath>,
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/http/routes.rs` → `[http, routes]`; `src/http/mod.rs` → `[http]`; `src/lib.rs` → `[]`.
fn module_path(src: &Path, file: &Path) -> Option<ModPath> {
    let relative = file.strip_prefix(src).ok()?;
    let mut parts: ModPath = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    let last = parts.pop()?;
    match last.as_str() {
        "lib.rs" | "mod.rs" => {}
        name => parts.push(name.trim_end_matches(".rs").to_string()),
    }
    Some(parts)
}

/// The text without comments, string literals and test modules.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"r#\"") {
            let end = text[i + 3..].find("\"#").map_or(bytes.len(), |e| i + 3 + e + 2);
            out.push_str("\"\"");
            i = end;
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            out.push_str("\"\"");
            i += 1;
        } else if bytes[i] == b'\'' && i + 2 < bytes.len() && (bytes[i + 2] == b'\'' || bytes[i + 1] == b'\\')
        {
            // A char literal ('"', '\'', '{'): skipped so it cannot open a string or a group.
            let end = text[i + 1..].find('\'').map_or(bytes.len(), |e| i + 1 + e + 1);
            let end = if bytes[i + 1] == b'\\' && bytes.get(i + 2) == Some(&b'\'') { i + 4 } else { end };
            out.push_str("' '");
            i = end;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Expands one `use` tree (`a::{b, c::{d as e}, self}`) into full paths, each with the
/// name it binds.
fn expand_use(tree: &str, prefix: &[String], out: &mut Vec<(ModPath, String)>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: ModPath =
            tree[..open].split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
        let mut base = prefix.to_vec();
        base.extend(head);
        let body = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    expand_use(&body[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        expand_use(&body[start..], &base, out);
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path.trim(), Some(alias.trim().to_string())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(path.split("::").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string));
    if full.last().is_some_and(|s| s == "self") {
        full.pop();
    }
    let name = alias.unwrap_or_else(|| full.last().cloned().unwrap_or_default());
    out.push((full, name));
}

/// Every `use` statement of the code: (is it a re-export, its paths with bound names).
fn uses(code: &str) -> Vec<(bool, Vec<(ModPath, String)>)> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let before = &rest[..at];
        let word_start = before.chars().last().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let lead = before[line_start..].trim();
        let public = lead.starts_with("pub");
        let statement = lead.is_empty() || lead.starts_with("pub");
        let tail = &rest[at + 4..];
        let Some(end) = tail.find(';') else { break };
        if word_start && statement {
            let mut paths = Vec::new();
            expand_use(&tail[..end], &[], &mut paths);
            found.push((public, paths));
            rest = &tail[end..];
        } else {
            rest = tail;
        }
    }
    found
}

/// `crate::…`, `super::…` and `self::…` paths written inline in the code.
fn inline_paths(code: &str) -> Vec<ModPath> {
    let mut found = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String =
                code[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            let parts: ModPath = path.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
            found.push(parts);
        }
    }
    found
}

/// `path` as written in module `here`, made absolute (`super::x` in `a::b` is `a::x`).
fn absolute(here: &[String], path: &[String]) -> Option<ModPath> {
    let mut base: ModPath = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("super") | Some("self") => here.to_vec(),
        _ => return None,
    };
    let mut rest = &path[1..];
    if path[0] == "super" {
        base.pop()?;
    }
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend(rest.iter().cloned());
    Some(base)
}

fn defines(code: &str, name: &str) -> bool {
    ["fn ", "struct ", "enum ", "trait ", "type ", "const ", "static ", "mod ", "macro_rules! "].iter().any(
        |kind| {
            code.match_indices(&format!("{kind}{name}")).any(|(at, m)| {
                code[at + m.len()..].chars().next().is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            })
        },
    )
}

/// The module that defines what `path` names: the longest module prefix, with the item
/// after it followed through re-exports.
fn resolve(modules: &BTreeMap<ModPath, Module>, path: &[String], depth: usize) -> Option<ModPath> {
    let prefix = (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains_key(p))?;
    let Some(item) = path.get(prefix.len()) else { return Some(prefix) };
    if depth > 16 {
        return Some(prefix);
    }
    let module = &modules[&prefix];
    if let Some(target) = module.reexports.get(item) {
        let mut target = target.clone();
        target.extend(path[prefix.len() + 1..].iter().cloned());
        return resolve(modules, &target, depth + 1).or(Some(prefix));
    }
    if !defines(&module.text, item) {
        for glob in &module.glob_reexports {
            let mut target = glob.clone();
            target.extend(path[prefix.len()..].iter().cloned());
            if let Some(found) = resolve(modules, &target, depth + 1)
                && found != *glob
            {
                return Some(found);
            }
        }
    }
    Some(prefix)
}

fn name(path: &[String]) -> String {
    if path.is_empty() { "crate".to_string() } else { path.join("::") }
}

/// Strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<ModPath, BTreeSet<ModPath>>,
        index: HashMap<ModPath, usize>,
        low: HashMap<ModPath, usize>,
        stack: Vec<ModPath>,
        on_stack: BTreeSet<ModPath>,
        found: Vec<Vec<ModPath>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, node: &ModPath) {
            let n = self.index.len();
            self.index.insert(node.clone(), n);
            self.low.insert(node.clone(), n);
            self.stack.push(node.clone());
            self.on_stack.insert(node.clone());
            for next in self.edges.get(node).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node.clone(), low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node.clone(), low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(&top);
                    let done = top == *node;
                    component.push(top);
                    if done {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found
}

fn module_graph() -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let mut modules = BTreeMap::new();
    for file in &files {
        let Some(path) = module_path(&src, file) else { continue };
        let text = code_of(&std::fs::read_to_string(file).unwrap());
        modules.insert(path, Module { text, reexports: HashMap::new(), glob_reexports: Vec::new() });
    }
    // Re-exports first, so that uses can be followed through them.
    let paths: Vec<ModPath> = modules.keys().cloned().collect();
    for here in &paths {
        let mut reexports = HashMap::new();
        let mut globs = Vec::new();
        for (public, list) in uses(&modules[here].text) {
            if !public {
                continue;
            }
            for (path, bound) in list {
                let written = if matches!(path.first().map(String::as_str), Some("crate" | "super" | "self"))
                {
                    path
                } else {
                    // `pub use child::Item` names a submodule of this one.
                    let mut p = vec!["self".to_string()];
                    p.extend(path);
                    p
                };
                let Some(full) = absolute(here, &written) else { continue };
                if bound == "*" {
                    globs.push(full[..full.len() - 1].to_vec());
                } else {
                    reexports.insert(bound, full);
                }
            }
        }
        let module = modules.get_mut(here).unwrap();
        module.reexports = reexports;
        module.glob_reexports = globs;
    }
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for here in &paths {
        let code = &modules[here].text;
        let mut written: Vec<ModPath> =
            uses(code).into_iter().flat_map(|(_, l)| l.into_iter().map(|(p, _)| p)).collect();
        written.extend(inline_paths(code));
        let targets = edges.entry(here.clone()).or_default();
        for path in written {
            let path =
                if path.last().is_some_and(|s| s == "*") { path[..path.len() - 1].to_vec() } else { path };
            let Some(full) = absolute(here, &path) else { continue };
            if let Some(target) = resolve(&modules, &full, 0)
                && target != *here
                && !here.starts_with(&target)
            {
                targets.insert(target);
            }
        }
    }
    edges
}

#[test]
fn the_core_has_no_import_circles() {
    let edges = module_graph();
    assert!(edges.len() > 50, "the module graph looks empty: {} modules", edges.len());
    let found = circles(&edges);
    let described: Vec<String> = found
        .iter()
        .map(|component| {
            let members: BTreeSet<&ModPath> = component.iter().collect();
            let links: Vec<String> = component
                .iter()
                .flat_map(|from| {
                    edges[from]
                        .iter()
                        .filter(|to| members.contains(to))
                        .map(move |to| format!("{} → {}", name(from), name(to)))
                })
                .collect();
            links.join(", ")
        })
        .collect();
    assert!(described.is_empty(), "import circles:\n  {}", described.join("\n  "));
}

#[test]
fn the_check_sees_a_circle() {
    let a = vec!["a".to_string()];
    let b = vec!["b".to_string()];
    let c = vec!["c".to_string()];
    let mut edges = BTreeMap::new();
    edges.insert(a.clone(), BTreeSet::from([b.clone()]));
    edges.insert(b.clone(), BTreeSet::from([c.clone()]));
    edges.insert(c.clone(), BTreeSet::from([a.clone()]));
    assert_eq!(circles(&edges), vec![vec![a.clone(), b.clone(), c.clone()]]);
    edges.insert(c.clone(), BTreeSet::new());
    assert!(circles(&edges).is_empty());
    // And the reader sees the edges real code has.
    let graph = module_graph();
    let routes = graph.get(&vec!["http".to_string(), "routes".to_string()]).expect("http::routes");
    assert!(routes.contains(&vec!["session".to_string(), "encryption".to_string()]), "{routes:?}");
    assert!(routes.contains(&vec!["protocol".to_string(), "ids".to_string()]), "{routes:?}");
    let module = |path: &str| path.split("::").map(str::to_string).collect::<ModPath>();
    let pool = graph.get(&module("engine::pool")).expect("engine::pool");
    assert!(pool.contains(&module("engine::process")), "{pool:?}");
    let sandbox = graph.get(&module("engine::child::sandbox")).expect("engine::child::sandbox");
    assert!(sandbox.contains(&module("engine::child::natives")), "{sandbox:?}");
}
