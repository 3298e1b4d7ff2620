//! A map of the most recent keys, at most `CAP` of them: the oldest inserted is forgotten first.
//! What a node remembers per block hash (who sent it, what each peer has, which block was
//! announced on a parent) is bounded this way, so no peer can grow it without limit.

use crate::hash::Hash;
use std::collections::{HashMap, VecDeque};

#[derive(Clone, Debug)]
pub(crate) struct Recent<V, const CAP: usize> {
    map: HashMap<Hash, V>,
    order: VecDeque<Hash>,
}

impl<V, const CAP: usize> Default for Recent<V, CAP> {
    fn default() -> Self {
        Recent {
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<V, const CAP: usize> Recent<V, CAP> {
    /// Sets `key`'s value and returns the one it replaced. A new key may push the oldest out.
    pub(crate) fn insert(&mut self, key: Hash, value: V) -> Option<V> {
        let previous = self.map.insert(key, value);
        if previous.is_none() {
            self.order.push_back(key);
            if self.order.len() > CAP {
                if let Some(oldest) = self.order.pop_front() {
                    self.map.remove(&oldest);
                }
            }
        }
        previous
    }
    pub(crate) fn get(&self, key: &Hash) -> Option<&V> {
        self.map.get(key)
    }
    pub(crate) fn get_mut(&mut self, key: &Hash) -> Option<&mut V> {
        self.map.get_mut(key)
    }
    pub(crate) fn contains(&self, key: &Hash) -> bool {
        self.map.contains_key(key)
    }
    pub(crate) fn remove(&mut self, key: &Hash) -> Option<V> {
        self.map.remove(key)
    }
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}
