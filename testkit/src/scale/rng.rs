//! The seeded randomness of a cluster (SplitMix64): the same seed lays out the same cluster everywhere, and
//! names and uids look like the ones Kubernetes generates.

/// A seeded generator (SplitMix64): the same seed lays out the same cluster everywhere.
pub(super) struct Rng(u64);

/// The alphabet of Kubernetes' generated name suffixes (`k8s.io/apimachinery/pkg/util/rand`).
pub(super) const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A generated-name suffix (`web-7d9f8c6b5d-x2k4q`).
    pub fn suffix(&mut self, len: usize) -> String {
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len())] as char).collect()
    }

    pub fn uid(&mut self) -> String {
        let hex = format!("{:016x}{:016x}", self.next(), self.next());
        format!("{}-{}-4{}-a{}-{}", &hex[..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..])
    }
}
