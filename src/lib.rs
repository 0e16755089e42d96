//! ringproxy: a Redis sharding proxy over a consistent-hash ring.
//! (Crate overview: see README; the full layout doc is written with the core.)

#![warn(missing_docs)]

pub mod command;
pub mod config;
pub mod resp;
pub mod route;
