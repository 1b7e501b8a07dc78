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
}
