//! Sets of TCP ports as sorted, disjoint ranges: what a policy set lets through between two endpoints, and the
//! algebra the evaluator needs (union across rules and policies, intersection of the two directions).

use std::fmt;

/// The lowest and highest port a policy can name.
const FIRST: u16 = 1;
const LAST: u16 = 65535;

/// A set of ports, kept as sorted ranges that neither overlap nor touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortSet(Vec<(u16, u16)>);

impl PortSet {
    /// Every port.
    pub fn all() -> PortSet {
        PortSet(vec![(FIRST, LAST)])
    }

    /// No port.
    pub fn none() -> PortSet {
        PortSet(Vec::new())
    }

    /// The ports `first..=last` (empty when `last < first`).
    pub fn range(first: u16, last: u16) -> PortSet {
        let first = first.max(FIRST);
        if last < first { PortSet::none() } else { PortSet(vec![(first, last)]) }
    }

    pub fn contains(&self, port: u16) -> bool {
        self.0.iter().any(|&(a, b)| a <= port && port <= b)
    }

    pub fn is_all(&self) -> bool {
        self.0 == [(FIRST, LAST)]
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The ranges, in order.
    pub fn ranges(&self) -> &[(u16, u16)] {
        &self.0
    }

    pub fn union(&self, other: &PortSet) -> PortSet {
        let mut all: Vec<(u16, u16)> = self.0.iter().chain(&other.0).copied().collect();
        all.sort_unstable();
        let mut merged: Vec<(u16, u16)> = Vec::with_capacity(all.len());
        for (a, b) in all {
            match merged.last_mut() {
                // Touching ranges merge too (80-81 and 82-90), so equal sets compare equal.
                Some(last) if u32::from(a) <= u32::from(last.1) + 1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        PortSet(merged)
    }

    pub fn intersect(&self, other: &PortSet) -> PortSet {
        let mut out = Vec::new();
        for &(a, b) in &self.0 {
            for &(c, d) in &other.0 {
                let (lo, hi) = (a.max(c), b.min(d));
                if lo <= hi {
                    out.push((lo, hi));
                }
            }
        }
        PortSet(out).union(&PortSet::none())
    }
}

impl fmt::Display for PortSet {
    /// `all ports`, `no port`, or `80, 443, 8000-8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_all() {
            return f.write_str("all ports");
        }
        if self.is_empty() {
            return f.write_str("no port");
        }
        let parts: Vec<String> =
            self.0.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_merges_overlapping_and_touching_ranges() {
        let set = PortSet::range(80, 81).union(&PortSet::range(82, 90)).union(&PortSet::range(443, 443));
        assert_eq!(set.ranges(), [(80, 90), (443, 443)]);
        assert_eq!(set.to_string(), "80-90, 443");
        assert!(PortSet::range(1, 100).union(&PortSet::range(101, 65535)).is_all());
    }

    #[test]
    fn intersection_keeps_only_common_ports() {
        let a = PortSet::range(80, 90).union(&PortSet::range(100, 200));
        let b = PortSet::range(85, 150);
        assert_eq!(a.intersect(&b).ranges(), [(85, 90), (100, 150)]);
        assert!(a.intersect(&PortSet::none()).is_empty());
        assert_eq!(PortSet::all().intersect(&a), a);
        assert!(!a.contains(95) && a.contains(100));
        assert!(PortSet::range(10, 9).is_empty());
    }
}
