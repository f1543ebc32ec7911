//! The dependency graph between programs: cycles and order.

use std::collections::{BTreeMap, BTreeSet};

/// A dependency cycle, as the names along it, first name repeated at the
/// end: `["a", "b", "a"]`. Returns the first cycle found in name order, so
/// the answer is deterministic. Dependencies on unknown names are ignored
/// (the config reports those separately).
pub fn find_cycle<'a, I, D>(graph: I) -> Option<Vec<String>>
where
    I: IntoIterator<Item = (&'a str, D)>,
    D: IntoIterator<Item = &'a str>,
{
    let graph: BTreeMap<&str, Vec<&str>> = graph
        .into_iter()
        .map(|(name, deps)| (name, deps.into_iter().collect()))
        .collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark: BTreeMap<&str, Mark> = graph.keys().map(|k| (*k, Mark::New)).collect();
    for &root in graph.keys() {
        if mark[root] != Mark::New {
            continue;
        }
        // Iterative DFS: (node, index of the next dependency to visit).
        let mut path: Vec<(&str, usize)> = vec![(root, 0)];
        mark.insert(root, Mark::OnPath);
        while let Some(&mut (node, ref mut next)) = path.last_mut() {
            let deps = &graph[node];
            if *next < deps.len() {
                let dep = deps[*next];
                *next += 1;
                match mark.get(dep) {
                    None | Some(Mark::Done) => {}
                    Some(Mark::OnPath) => {
                        let start = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            path[start..].iter().map(|(n, _)| n.to_string()).collect();
                        cycle.push(dep.to_string());
                        return Some(cycle);
                    }
                    Some(Mark::New) => {
                        mark.insert(dep, Mark::OnPath);
                        path.push((dep, 0));
                    }
                }
            } else {
                mark.insert(node, Mark::Done);
                path.pop();
            }
        }
    }
    None
}

/// Every name that `name` depends on, directly or not (not `name` itself).
pub fn transitive_deps<'a>(
    graph: &'a BTreeMap<String, BTreeSet<String>>,
    name: &str,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&str> = graph
        .get(name)
        .map(|d| d.iter().map(String::as_str).collect())
        .unwrap_or_default();
    while let Some(dep) = todo.pop() {
        if let Some((key, _)) = graph.get_key_value(dep) {
            if seen.insert(key.as_str()) {
                todo.extend(graph[dep].iter().map(String::as_str));
            }
        }
    }
    seen
}

/// Every name in dependency order: each after everything it depends on,
/// ties broken by name so the order is deterministic. Names caught in a
/// cycle (the config rejects those) come last, in name order, so that the
/// result always lists every name once. Unknown dependencies are ignored.
pub fn dependency_order(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut waiting_on: BTreeMap<&str, usize> = graph
        .iter()
        .map(|(name, deps)| {
            let known = deps.iter().filter(|d| graph.contains_key(*d)).count();
            (name.as_str(), known)
        })
        .collect();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, deps) in graph {
        for dep in deps.iter().filter(|d| graph.contains_key(*d)) {
            dependents
                .entry(dep.as_str())
                .or_default()
                .push(name.as_str());
        }
    }
    let mut ready: BTreeSet<&str> = waiting_on
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(name, _)| *name)
        .collect();
    let mut order = Vec::with_capacity(graph.len());
    while let Some(name) = ready.pop_first() {
        order.push(name.to_string());
        waiting_on.remove(name);
        for dependent in dependents.get(name).into_iter().flatten() {
            if let Some(n) = waiting_on.get_mut(dependent) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    ready.insert(dependent);
                }
            }
        }
    }
    order.extend(waiting_on.keys().map(|n| n.to_string()));
    order
}

/// Every name that depends on `name`, directly or not (not `name` itself).
pub fn transitive_dependents<'a>(
    graph: &'a BTreeMap<String, BTreeSet<String>>,
    name: &str,
) -> BTreeSet<&'a str> {
    let mut seen: BTreeSet<&'a str> = BTreeSet::new();
    let mut todo: Vec<&str> = vec![name];
    while let Some(target) = todo.pop() {
        for (candidate, deps) in graph {
            if deps.contains(target) && candidate != name && seen.insert(candidate.as_str()) {
                todo.push(candidate.as_str());
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(edges: &[(&'static str, &[&'static str])]) -> Option<Vec<String>> {
        find_cycle(edges.iter().map(|(n, d)| (*n, d.iter().copied())))
    }

    #[test]
    fn no_cycle_in_a_chain() {
        assert_eq!(cycle(&[("a", &["b"]), ("b", &["c"]), ("c", &[])]), None);
    }

    #[test]
    fn finds_a_cycle_and_names_it() {
        assert_eq!(
            cycle(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])]),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
    }

    #[test]
    fn self_loop_is_a_cycle() {
        assert_eq!(cycle(&[("a", &["a"])]), Some(vec!["a".into(), "a".into()]));
    }

    #[test]
    fn unknown_names_are_not_cycles() {
        assert_eq!(cycle(&[("a", &["zzz"])]), None);
    }

    #[test]
    fn transitive() {
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
        g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
        g.insert("c".to_string(), BTreeSet::new());
        assert_eq!(transitive_deps(&g, "a"), BTreeSet::from(["b", "c"]));
        assert!(transitive_deps(&g, "c").is_empty());
    }

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        edges
            .iter()
            .map(|(n, d)| (n.to_string(), d.iter().map(|x| x.to_string()).collect()))
            .collect()
    }

    #[test]
    fn order_puts_dependencies_first() {
        let g = graph(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("zz", &[]),
        ]);
        assert_eq!(
            dependency_order(&g),
            vec!["cache", "db", "api", "web", "zz"]
        );
    }

    #[test]
    fn order_lists_cycles_last_and_ignores_unknown() {
        let g = graph(&[("a", &["b"]), ("b", &["a"]), ("c", &["nope"])]);
        assert_eq!(dependency_order(&g), vec!["c", "a", "b"]);
    }

    #[test]
    fn dependents_are_transitive() {
        let g = graph(&[
            ("a", &["b"]),
            ("b", &["c"]),
            ("c", &[]),
            ("d", &["c"]),
            ("e", &[]),
        ]);
        assert_eq!(
            transitive_dependents(&g, "c"),
            BTreeSet::from(["a", "b", "d"])
        );
        assert_eq!(transitive_dependents(&g, "a"), BTreeSet::new());
        let cyc = graph(&[("a", &["b"]), ("b", &["a"])]);
        assert_eq!(transitive_dependents(&cyc, "a"), BTreeSet::from(["b"]));
    }
}
