//! Addresses to the pod slots that claim them: one small entry per address, and a side list for the few
//! addresses several pods claim (hostNetwork pods share their node's; a reused IP briefly has two pods).

use std::net::IpAddr;

use rustc_hash::FxHashMap as HashMap;

use crate::sources::inventory::table::{Id, IpMap};

/// In `by_ip`: several pods claim this address; they are listed in `shared`.
const SHARED: Id = Id::MAX;

/// Pod slots by address.
#[derive(Debug, Default)]
pub(in crate::sources::inventory) struct IpIndex {
    /// The one slot that claims an address, or `SHARED`. One small entry per address keeps the common case one
    /// probe.
    by_ip: IpMap<Id>,
    shared: HashMap<IpAddr, Vec<Id>>,
}

impl IpIndex {
    /// Records that slot `id` claims `ip`.
    pub(super) fn link(&mut self, ip: IpAddr, id: Id) {
        match self.by_ip.get_mut(&ip) {
            None => {
                self.by_ip.insert(ip, id);
            }
            Some(&mut SHARED) => self.shared.entry(ip).or_default().push(id),
            Some(first) => {
                self.shared.insert(ip, vec![*first, id]);
                *first = SHARED;
            }
        }
    }

    /// Drops one claim of slot `id` on `ip`.
    pub(super) fn unlink(&mut self, ip: &IpAddr, id: Id) {
        match self.by_ip.get(ip).copied() {
            Some(SHARED) => {
                let Some(ids) = self.shared.get_mut(ip) else { return };
                if let Some(at) = ids.iter().position(|&p| p == id) {
                    ids.swap_remove(at);
                }
                match ids[..] {
                    [] => {
                        self.shared.remove(ip);
                        self.by_ip.remove(ip);
                    }
                    [one] => {
                        self.shared.remove(ip);
                        self.by_ip.insert(*ip, one);
                    }
                    _ => {}
                }
            }
            Some(one) if one == id => {
                self.by_ip.remove(ip);
            }
            _ => {}
        }
    }

    /// Every slot that claims `ip`.
    pub(super) fn get(&self, ip: &IpAddr) -> impl Iterator<Item = Id> + '_ {
        let (one, several) = match self.by_ip.get(ip) {
            None => (None, &[][..]),
            Some(&SHARED) => (None, self.shared.get(ip).map_or(&[][..], Vec::as_slice)),
            Some(&id) => (Some(id), &[][..]),
        };
        one.into_iter().chain(several.iter().copied())
    }

    /// Whether no address is claimed.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.by_ip.is_empty() && self.shared.is_empty()
    }

    /// Addresses claimed, and of them those claimed by several slots.
    #[cfg(test)]
    pub(super) fn claimed(&self) -> (usize, usize) {
        (self.by_ip.len(), self.shared.len())
    }
}
