//! The index: a red-black tree over the zone's entries, ordered by key hash
//! and then key bytes, linked by zone offsets.
//!
//! Entries carry no parent link (it would cost four bytes each): every
//! change walks down from the root and keeps the way it went in a [`Path`],
//! which the rebalancing climbs back up.

use core::cmp::Ordering;
use core::mem::MaybeUninit;

use super::store::{Store, ZoneLock};

/// Deeper than any red-black tree of 2^32 entries can grow (2 log2 n).
const MAX_DEPTH: usize = 72;

/// The way from the root down to a node: each node passed and whether the
/// walk went on to its left child. Left uninitialised beyond `len`: a write
/// walks the index on every call, and zeroing the whole array each time
/// would cost as much as the walk. (Built element by element as below:
/// rustc 1.93 and later zero a `MaybeUninit<[Step; N]>` that sits beside
/// an initialised field, rust-lang/rust#152541.)
pub(super) struct Path {
    steps: [MaybeUninit<Step>; MAX_DEPTH],
    len: usize,
}

#[derive(Clone, Copy)]
struct Step {
    node: u32,
    went_left: bool,
}

impl Path {
    pub(super) fn new() -> Path {
        Path {
            steps: [const { MaybeUninit::uninit() }; MAX_DEPTH],
            len: 0,
        }
    }

    fn push(&mut self, node: u32, went_left: bool) {
        self.len += 1;
        self.set(self.len - 1, node, went_left);
    }

    fn pop(&mut self) {
        self.len -= 1;
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn set(&mut self, i: usize, node: u32, went_left: bool) {
        self.steps[i] = MaybeUninit::new(Step { node, went_left });
    }

    fn at(&self, i: usize) -> (u32, bool) {
        assert!(i < self.len);
        // SAFETY: every index below `len` was written by `push` or `set`.
        let step = unsafe { self.steps[i].assume_init() };
        (step.node, step.went_left)
    }

    /// The step `back` places above the last one (0: the last).
    fn step(&self, back: usize) -> Option<(u32, bool)> {
        let i = self.len.checked_sub(back + 1)?;
        Some(self.at(i))
    }

    fn set_step(&mut self, back: usize, node: u32, went_left: bool) {
        self.set(self.len - back - 1, node, went_left);
    }
}

/// Where [`Store::index_find`] records its way down: a [`Path`] for a
/// change to follow, nothing for a read.
pub(super) trait Trail {
    /// Whether the way down is kept. A find that keeps none may answer with
    /// the most recently used entry without walking.
    const KEEPS_PATH: bool;
    /// The step at `depth` (0: the root).
    fn record(&mut self, depth: usize, node: u32, went_left: bool);
    /// The walk ended after `depth` steps.
    fn finish(&mut self, depth: usize);
}

impl Trail for Path {
    const KEEPS_PATH: bool = true;

    fn record(&mut self, depth: usize, node: u32, went_left: bool) {
        self.set(depth, node, went_left);
    }

    fn finish(&mut self, depth: usize) {
        self.len = depth;
    }
}

/// A read's trail: records nothing.
pub(super) struct NoTrail;

impl Trail for NoTrail {
    const KEEPS_PATH: bool = false;

    fn record(&mut self, _depth: usize, _node: u32, _went_left: bool) {}

    fn finish(&mut self, _depth: usize) {}
}

/// Where a side's child sits in [`EntryHeader::children`].
fn side(left: bool) -> usize {
    usize::from(!left)
}

impl Store {
    fn child(&self, lock: &ZoneLock<'_>, node: u32, left: bool) -> u32 {
        self.entry_header(lock, node).children[side(left)]
    }

    fn set_child(&self, lock: &ZoneLock<'_>, node: u32, left: bool, child: u32) {
        self.entry_header(lock, node).children[side(left)] = child;
    }

    /// Missing children (0) count as black.
    fn is_red(&self, lock: &ZoneLock<'_>, node: u32) -> bool {
        node != 0 && self.entry_header(lock, node).is_red()
    }

    fn paint(&self, lock: &ZoneLock<'_>, node: u32, red: bool) {
        self.entry_header(lock, node).set_red(red);
    }

    /// Makes `node` the child the step `parent` went through, or the root.
    fn relink(&self, lock: &ZoneLock<'_>, parent: Option<(u32, bool)>, node: u32) {
        match parent {
            Some((parent, left)) => self.set_child(lock, parent, left, node),
            None => self.header_mut(lock).root = node,
        }
    }

    /// Turns `node` down towards `left` (a left rotation when true); returns
    /// the child that took its place, which the caller links in.
    fn rotate(&self, lock: &ZoneLock<'_>, node: u32, left: bool) -> u32 {
        let up = self.child(lock, node, !left);
        let inner = self.child(lock, up, left);
        self.set_child(lock, node, !left, inner);
        self.set_child(lock, up, left, node);
        up
    }

    /// Finds the entry of `key`. `path` is left holding the way down: to
    /// the entry's parent when found, else to the node under which `key`
    /// belongs.
    pub(super) fn index_find<T: Trail>(
        &self,
        lock: &ZoneLock<'_>,
        key: &[u8],
        hash: u32,
        path: &mut T,
    ) -> Option<u32> {
        let header = self.header_mut(lock);
        let (mut node, recent) = (header.root, header.lru_head);
        // A hot key (a counter, a list, a flag read on every request) is
        // the most recently used entry: one comparison instead of a walk.
        if !T::KEEPS_PATH
            && recent != 0
            && self.entry_header(lock, recent).hash == hash
            && self.entry_key(lock, recent) == key
        {
            return Some(recent);
        }
        let mut depth = 0;
        while node != 0 {
            let h = self.entry_header(lock, node);
            // Both children are read before the comparison and one is kept
            // by a shift: the next node's load then waits for this node's
            // hash only, not for a branch that goes either way half the
            // time (a third of a miss's time in the walk before).
            let children = u64::from(h.children[0]) | u64::from(h.children[1]) << 32;
            let left = if hash != h.hash {
                hash < h.hash
            } else {
                match key.cmp(self.entry_key(lock, node)) {
                    Ordering::Less => true,
                    Ordering::Greater => false,
                    Ordering::Equal => {
                        path.finish(depth);
                        return Some(node);
                    }
                }
            };
            path.record(depth, node, left);
            depth += 1;
            node = (children >> (32 * side(left))) as u32;
        }
        path.finish(depth);
        None
    }

    /// Links `node` (hash and key already written) where a failed
    /// [`Store::index_find`] for its key stopped, and rebalances.
    pub(super) fn index_insert(&self, lock: &ZoneLock<'_>, node: u32, path: &mut Path) {
        {
            let h = self.entry_header(lock, node);
            h.children = [0, 0];
            h.set_red(true);
        }
        self.relink(lock, path.step(0), node);
        let mut x = node;
        loop {
            let Some((parent, x_left)) = path.step(0) else {
                self.paint(lock, x, false);
                return;
            };
            if !self.is_red(lock, parent) {
                return;
            }
            // A red parent is not the root: there is a grandparent.
            let Some((grand, parent_left)) = path.step(1) else {
                self.paint(lock, parent, false);
                return;
            };
            let uncle = self.child(lock, grand, !parent_left);
            if self.is_red(lock, uncle) {
                self.paint(lock, parent, false);
                self.paint(lock, uncle, false);
                self.paint(lock, grand, true);
                x = grand;
                path.pop();
                path.pop();
                continue;
            }
            if x_left != parent_left {
                // x is the inner grandchild: turn it outward first.
                let up = self.rotate(lock, parent, parent_left);
                self.set_child(lock, grand, parent_left, up);
            }
            let top = self.rotate(lock, grand, !parent_left);
            self.paint(lock, top, false);
            self.paint(lock, grand, true);
            self.relink(lock, path.step(2), top);
            return;
        }
    }

    /// Unlinks `node`, whose ancestors `path` holds (as
    /// [`Store::index_find`] left it), and rebalances.
    pub(super) fn index_remove_at(&self, lock: &ZoneLock<'_>, node: u32, path: &mut Path) {
        let (left, right) = (self.child(lock, node, true), self.child(lock, node, false));
        if left != 0 && right != 0 {
            // Swap places with the in-order successor, which has no left
            // child; then the node leaves from the successor's old place.
            let node_at = path.len;
            path.push(node, false);
            let mut successor = right;
            loop {
                let next = self.child(lock, successor, true);
                if next == 0 {
                    break;
                }
                path.push(successor, true);
                successor = next;
            }
            let node_red = self.is_red(lock, node);
            let successor_red = self.is_red(lock, successor);
            let successor_right = self.child(lock, successor, false);
            let above = (node_at > 0).then(|| path.at(node_at - 1));
            self.relink(lock, above, successor);
            self.set_child(lock, successor, true, left);
            self.paint(lock, successor, node_red);
            if path.len == node_at + 1 {
                self.set_child(lock, successor, false, node);
            } else {
                self.set_child(lock, successor, false, right);
                let (successor_parent, _) = path.step(0).expect("deeper than the node");
                self.set_child(lock, successor_parent, true, node);
            }
            self.set_child(lock, node, true, 0);
            self.set_child(lock, node, false, successor_right);
            self.paint(lock, node, successor_red);
            path.set(node_at, successor, false);
        }
        let only_child = match self.child(lock, node, true) {
            0 => self.child(lock, node, false),
            left => left,
        };
        self.relink(lock, path.step(0), only_child);
        if self.is_red(lock, node) {
            return;
        }
        if self.is_red(lock, only_child) {
            self.paint(lock, only_child, false);
            return;
        }
        // One black short on the way through `only_child` (possibly 0).
        loop {
            let Some((parent, x_left)) = path.step(0) else {
                return;
            };
            let mut sibling = self.child(lock, parent, !x_left);
            if self.is_red(lock, sibling) {
                self.paint(lock, sibling, false);
                self.paint(lock, parent, true);
                let top = self.rotate(lock, parent, x_left);
                self.relink(lock, path.step(1), top);
                path.set_step(0, top, x_left);
                path.push(parent, x_left);
                sibling = self.child(lock, parent, !x_left);
            }
            let near = self.child(lock, sibling, x_left);
            let far = self.child(lock, sibling, !x_left);
            if !self.is_red(lock, near) && !self.is_red(lock, far) {
                self.paint(lock, sibling, true);
                if self.is_red(lock, parent) {
                    self.paint(lock, parent, false);
                    return;
                }
                path.pop();
                continue;
            }
            if !self.is_red(lock, far) {
                self.paint(lock, near, false);
                self.paint(lock, sibling, true);
                let top = self.rotate(lock, sibling, !x_left);
                self.set_child(lock, parent, !x_left, top);
                sibling = top;
            }
            let parent_red = self.is_red(lock, parent);
            self.paint(lock, sibling, parent_red);
            self.paint(lock, parent, false);
            let far = self.child(lock, sibling, !x_left);
            self.paint(lock, far, false);
            let top = self.rotate(lock, parent, x_left);
            self.relink(lock, path.step(1), top);
            return;
        }
    }

    /// Visits the nodes whose hash is `from` or more, in index order, until
    /// `visit` answers false. Read-only: the walk keeps its own way back up
    /// (nodes carry no parent link), so nothing may change the index
    /// meanwhile, which the lock guard ensures.
    pub(super) fn index_walk_from(
        &self,
        lock: &ZoneLock<'_>,
        from: u32,
        mut visit: impl FnMut(u32) -> bool,
    ) {
        // The nodes whose left side is being visited, innermost last.
        let mut pending = [0u32; MAX_DEPTH];
        let mut depth = 0;
        let mut node = self.header_mut(lock).root;
        // Down to the first node at or after `from`, keeping every node
        // whose left side holds it.
        while node != 0 {
            if self.entry_header(lock, node).hash >= from {
                pending[depth] = node;
                depth += 1;
                node = self.child(lock, node, true);
            } else {
                node = self.child(lock, node, false);
            }
        }
        while depth > 0 {
            depth -= 1;
            let here = pending[depth];
            if !visit(here) {
                return;
            }
            // Then the right side, from its leftmost node.
            node = self.child(lock, here, false);
            while node != 0 {
                pending[depth] = node;
                depth += 1;
                node = self.child(lock, node, true);
            }
        }
    }

    /// Unlinks `node`, walking down to it first.
    pub(super) fn index_remove(&self, lock: &ZoneLock<'_>, node: u32) {
        let mut path = Path::new();
        let hash = self.entry_header(lock, node).hash;
        let key = self.entry_key(lock, node);
        let found = self.index_find(lock, key, hash, &mut path);
        debug_assert_eq!(found, Some(node));
        self.index_remove_at(lock, node, &mut path);
    }

    /// Checks the index: in order by hash then key bytes, no red node with
    /// a red child, the same number of black nodes on every path, a black
    /// root; returns the number of nodes. Panics otherwise.
    #[cfg(test)]
    pub(super) fn check_index(&self, lock: &ZoneLock<'_>) -> u64 {
        // (black height, nodes) of the subtree at `node`.
        fn walk(
            store: &Store,
            lock: &ZoneLock<'_>,
            node: u32,
            previous: &mut Option<(u32, Vec<u8>)>,
        ) -> (usize, u64) {
            if node == 0 {
                return (1, 0);
            }
            let (left, right) = (
                store.child(lock, node, true),
                store.child(lock, node, false),
            );
            if store.is_red(lock, node) {
                assert!(!store.is_red(lock, left), "red node with a red child");
                assert!(!store.is_red(lock, right), "red node with a red child");
            }
            let (left_height, left_nodes) = walk(store, lock, left, previous);
            let here = (
                store.entry_header(lock, node).hash,
                store.entry_key(lock, node).to_vec(),
            );
            if let Some(before) = previous.as_ref() {
                assert!(*before < here, "out of order");
            }
            *previous = Some(here);
            let (right_height, right_nodes) = walk(store, lock, right, previous);
            assert_eq!(left_height, right_height, "black heights differ");
            let height = left_height + usize::from(!store.is_red(lock, node));
            (height, left_nodes + right_nodes + 1)
        }
        let root = self.header_mut(lock).root;
        assert!(!self.is_red(lock, root), "red root");
        walk(self, lock, root, &mut None).1
    }
}
