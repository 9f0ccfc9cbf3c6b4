//! Shared by the policy tests: random policy cases ([`random`]) and the analyzer's output ([`nca`]).

#![allow(dead_code)]

pub mod nca;
pub mod random;
