//! Users and permissions with Redis ACL semantics.
//!
//! ```text
//! category.rs  @read, @write, ...: the categories of the command table
//! glob.rs      Redis's stringmatchlen (key and channel patterns)
//! rules.rs     command rules (+@all -@admin +get -config|set) → a bitset of command ids
//! user.rs      one user: secret, commands, keys, channels; `allows(spec, req)`
//! users.rs     the pool's users (the default user included), login
//! ```
//!
//! The rest of the proxy asks two things: [`Users::login`] (AUTH, HELLO AUTH) and
//! [`User::allows`] (once per request, before routing).

pub mod category;
pub mod glob;
pub mod rules;
pub mod user;
pub mod users;

pub use category::Categories;
pub use rules::RuleError;
pub use user::{Denied, Patterns, Secret, User};
pub use users::{DEFAULT_USER, UserError, Users};
