//! The runtime's modules depend on each other one way, with one named
//! exception. Reads `src/` and builds the graph of `crate::module`
//! references between top-level modules (test modules excluded), then
//! names every cycle a change would close.
//!
//! The one cycle allowed is inherent to the public API: application
//! callbacks (packet handlers, routines) receive the `PeerNetwork` handle,
//! and the handle's node must hold those callbacks. So `network`, `node`,
//! `hooks`, `handler` and `routines` refer to each other by type. Every
//! other module (the owners of the tables, the actor, dialing, discovery)
//! stays outside any cycle: the review of 2026-12 found the actor and the
//! network reaching into each other's state, which this test keeps out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const CALLBACK_CYCLE: [&str; 5] = ["handler", "hooks", "network", "node", "routines"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level module name → the modules it references.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_owned();
            (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(name)
        })
        .filter(|name| name != "lib")
        .collect();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap();
        let module = Path::new(first.as_os_str())
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests may use anything.
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let targets = graph.entry(module.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                .collect();
            if name != module && modules.contains(&name) {
                targets.insert(name);
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.found
}

#[test]
fn the_only_module_cycle_is_the_callback_api() {
    let graph = graph();
    assert!(graph.len() > 20, "the source was read: {:?}", graph.keys());
    let allowed: BTreeSet<String> = CALLBACK_CYCLE.iter().map(|s| (*s).to_owned()).collect();
    let found = cycles(&graph);
    for cycle in &found {
        let outside: Vec<_> = cycle.difference(&allowed).collect();
        assert!(
            outside.is_empty(),
            "a module cycle through {outside:?}: {cycle:?}\n{graph:#?}"
        );
    }
    // The owners of the tables and the tasks never point back up.
    for module in [
        "actor",
        "dial",
        "discovery",
        "accept",
        "reconnect",
        "channels",
        "peers",
    ] {
        assert!(
            found.iter().all(|cycle| !cycle.contains(module)),
            "{module} is in a cycle"
        );
    }
}

#[test]
fn the_check_sees_a_cycle_when_there_is_one() {
    let mut graph = graph();
    graph
        .entry("channels".to_owned())
        .or_default()
        .insert("actor".to_owned());
    let found = cycles(&graph);
    assert!(
        found
            .iter()
            .any(|cycle| cycle.contains("channels") && cycle.contains("actor")),
        "{found:?}"
    );
}
