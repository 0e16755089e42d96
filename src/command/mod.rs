//! The command table as data, and what the proxy does with each command.
//!
//! - [`table`]: every Redis 7 command (arity, flags, key specs), generated once from
//!   a real `redis-server`'s COMMAND output (`commands.tsv`), plus module commands
//!   declared in config; lookup resolves subcommands (`CLIENT SETNAME`).
//! - [`keys`]: which arguments of a request are keys (Redis 7 key specs, so movable
//!   keys like `EVAL ... numkeys` and `XREAD ... STREAMS` are exact).
//! - [`class`]: the proxy's handling of each command ([`Class`]), and the Redis-style
//!   the dispatcher answers with.

pub mod class;
pub mod keys;
pub mod merge;
pub mod scan;
pub mod split;
pub mod table;

pub use class::{Class, DedicatedKind, LocalKind, MergeKind, SplitKind, class_for, is_blocking};
pub use keys::{KeyError, KeyIter};
pub use table::{CommandFlags, CommandSpec, CommandTable};
