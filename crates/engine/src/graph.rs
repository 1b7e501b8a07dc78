//! Dependency graphs (flags on flags, cohorts on cohorts): the one home of ordering and cycle
//! finding. Nodes are dense indices; `deps[i]` lists the nodes `i` depends on.

/// A topological order of a graph and the nodes that have none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sorted {
    /// Every node once; dependencies before dependents, then the `stuck` nodes.
    pub(crate) order: Vec<usize>,
    /// Nodes in a cycle or depending (transitively) on one.
    pub(crate) stuck: Vec<bool>,
}

/// Kahn's algorithm: orders `deps` (entries outside `0..deps.len()` are ignored).
pub(crate) fn sort(deps: &[Vec<usize>]) -> Sorted {
    let n = deps.len();
    let mut pending = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds.iter().filter(|&&d| d < n) {
            pending[i] += 1;
            dependents[d].push(i);
        }
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| pending[i] == 0).collect();
    let mut head = 0;
    while head < order.len() {
        let i = order[head];
        head += 1;
        for &j in &dependents[i] {
            pending[j] -= 1;
            if pending[j] == 0 {
                order.push(j);
            }
        }
    }
    let stuck: Vec<bool> = pending.iter().map(|&p| p > 0).collect();
    order.extend((0..n).filter(|&i| stuck[i]));
    Sorted { order, stuck }
}

/// A path `start → … → start` through `deps`, if `start` is in a cycle (iterative depth-first
/// search, so deep graphs cannot overflow the stack).
pub(crate) fn cycle_through(start: usize, deps: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut path = vec![start];
    let mut next_child = vec![0usize];
    let mut visited = vec![false; deps.len()];
    *visited.get_mut(start)? = true;
    while let (Some(&node), Some(child)) = (path.last(), next_child.last_mut()) {
        let next = deps.get(node).and_then(|d| d.get(*child)).copied();
        *child += 1;
        match next {
            None => {
                path.pop();
                next_child.pop();
            }
            Some(n) if n == start => {
                path.push(start);
                return Some(path);
            }
            Some(n) => {
                if visited.get(n) == Some(&false) {
                    visited[n] = true;
                    path.push(n);
                    next_child.push(0);
                }
            }
        }
    }
    None
}

/// Which nodes reach `target` (itself included), following `deps` (iterative).
pub(crate) fn reaching(target: usize, deps: &[Vec<usize>]) -> Vec<bool> {
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); deps.len()];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds.iter().filter(|&&d| d < deps.len()) {
            dependents[d].push(i);
        }
    }
    let mut reached = vec![false; deps.len()];
    let mut stack = Vec::new();
    if let Some(r) = reached.get_mut(target) {
        *r = true;
        stack.push(target);
    }
    while let Some(i) = stack.pop() {
        for &j in &dependents[i] {
            if !reached[j] {
                reached[j] = true;
                stack.push(j);
            }
        }
    }
    reached
}

/// The longest chain of dependencies from each node, the node included (1 for a node without
/// dependencies); 0 for the [`Sorted::stuck`] nodes. One pass over `sorted.order`.
pub(crate) fn depths(deps: &[Vec<usize>], sorted: &Sorted) -> Vec<usize> {
    let mut depth = vec![0usize; deps.len()];
    for &i in &sorted.order {
        if sorted.stuck[i] {
            continue;
        }
        let below = deps[i]
            .iter()
            .filter_map(|&d| depth.get(d))
            .max()
            .copied()
            .unwrap_or(0);
        depth[i] = below.saturating_add(1);
    }
    depth
}

/// For each node `i` with `wanted[i]` (0 for the others), the sum of `weight` over the node and
/// every node it reaches, each counted once; a search stops as soon as its sum passes `cap`, so
/// results above `cap` only mean "too many". Iterative; each search visits at most `cap + 1`
/// nodes of positive weight.
pub(crate) fn reach(
    deps: &[Vec<usize>],
    weight: &[usize],
    cap: usize,
    wanted: &[bool],
) -> Vec<usize> {
    let n = deps.len();
    // `seen[j] == i + 1`: node j was reached in the search from node i (no clearing between).
    let mut seen = vec![0usize; n];
    let mut stack = Vec::new();
    (0..n)
        .map(|i| {
            let mut sum = 0usize;
            if !wanted.get(i).copied().unwrap_or(false) {
                return sum;
            }
            seen[i] = i + 1;
            stack.clear();
            stack.push(i);
            while let Some(j) = stack.pop() {
                sum = sum.saturating_add(weight.get(j).copied().unwrap_or(0));
                if sum > cap {
                    break;
                }
                for &d in deps[j].iter().filter(|&&d| d < n) {
                    if seen[d] != i + 1 {
                        seen[d] = i + 1;
                        stack.push(d);
                    }
                }
            }
            sum
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_found_with_their_path() {
        // 0 → 1 → {2, 3}, 3 → 0; 4 → 4.
        let deps = vec![vec![1], vec![2, 3], vec![], vec![0], vec![4]];
        assert_eq!(cycle_through(0, &deps), Some(vec![0, 1, 3, 0]));
        assert_eq!(cycle_through(2, &deps), None);
        assert_eq!(cycle_through(4, &deps), Some(vec![4, 4]));
        assert_eq!(cycle_through(9, &deps), None);
    }

    #[test]
    fn order_puts_dependencies_first_and_cycles_last() {
        // 0 → 1, 2 → 3 → 2, 4 → 3, 5 → out of range (ignored).
        let deps = vec![vec![1], vec![], vec![3], vec![2], vec![3], vec![99]];
        let sorted = sort(&deps);
        assert_eq!(sorted.order, vec![1, 5, 0, 2, 3, 4]);
        assert_eq!(sorted.stuck, vec![false, false, true, true, true, false]);
    }

    #[test]
    fn reaching_follows_dependents() {
        // 0 → 1 → 2, 3 → 2, 4 alone.
        let deps = vec![vec![1], vec![2], vec![], vec![2], vec![]];
        assert_eq!(reaching(2, &deps), vec![true, true, true, true, false]);
        assert_eq!(reaching(0, &deps), vec![true, false, false, false, false]);
    }

    #[test]
    fn depths_count_the_longest_chain_and_skip_cycles() {
        // 0 → 1 → 2, 0 → 2, 3 → 4 → 3.
        let deps = vec![vec![1, 2], vec![2], vec![], vec![4], vec![3]];
        assert_eq!(depths(&deps, &sort(&deps)), vec![3, 2, 1, 0, 0]);
    }

    #[test]
    fn reach_counts_each_node_once_and_stops_past_the_cap() {
        // A diamond 0 → {1, 2} → 3, weights 1, 10, 10, 100: node 3 counts once.
        let deps = vec![vec![1, 2], vec![3], vec![3], vec![]];
        let weight = [1, 10, 10, 100];
        let all = [true; 4];
        assert_eq!(reach(&deps, &weight, 1_000, &all), vec![121, 110, 110, 100]);
        assert!(reach(&deps, &weight, 115, &all)[0] > 115);
        assert_eq!(
            reach(&deps, &weight, 1_000, &[false, true, false, true]),
            vec![0, 110, 0, 100]
        );
        // Cycles terminate.
        assert_eq!(
            reach(&[vec![1], vec![0]], &[1, 1], 10, &[true; 2]),
            vec![2, 2]
        );
    }
}
