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
}
