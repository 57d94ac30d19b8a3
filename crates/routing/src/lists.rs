//! Black and white lists: exact numbers and prefixes (`170*` — a whole virtual-operator
//! number block), matched against the caller's canonical number.

use std::collections::HashSet;

use sihai_config::ListEntry;

#[derive(Debug, Clone, Default)]
pub struct NumberList {
    exact: HashSet<String>,
    prefixes: Vec<String>,
}

impl NumberList {
    pub fn new(entries: &[ListEntry]) -> NumberList {
        let mut list = NumberList::default();
        for entry in entries {
            match entry {
                ListEntry::Exact(n) => {
                    list.exact.insert(n.clone());
                }
                ListEntry::Prefix(p) => list.prefixes.push(p.clone()),
            }
        }
        list
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    pub fn contains(&self, number: &str) -> bool {
        self.exact.contains(number) || self.prefixes.iter().any(|p| number.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix() {
        let list = NumberList::new(&[
            ListEntry::Exact("13900000000".into()),
            ListEntry::Prefix("170".into()),
        ]);
        assert!(list.contains("13900000000"));
        assert!(list.contains("17012345678"));
        assert!(!list.contains("13900000001"));
        assert!(!list.contains("1701"[..2].to_string().as_str()));
        assert!(NumberList::default().is_empty());
    }
}
