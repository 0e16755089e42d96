//! The fixed label values of the metrics: request classes, node error kinds, reload
//! results. Bounded by construction (never a key, never a command name).

use crate::command::Class;
use crate::errors::BackendError;

/// Defines a label enum: variants in index order, `ALL`, `COUNT`, `as_str`, `index`.
macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v,)* }

        impl $name {
            /// Every value, in index order.
            pub const ALL: [$name; [$($s),*].len()] = [$($name::$v),*];
            /// Number of values (length of the handle arrays indexed by it).
            pub const COUNT: usize = Self::ALL.len();

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }

            /// Position in [`Self::ALL`] (same as `self as usize`).
            #[inline]
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_enum! {
    /// How the proxy handled a client request (the `class` label).
    RequestClass {
        /// Routed by its key(s) to one node.
        Keyed = "keyed",
        /// Split into one sub-request per node.
        Split = "split",
        /// Sent to every node.
        Broadcast = "broadcast",
        /// Answered by the proxy.
        Local = "local",
        /// Keyless, sent to any live node.
        AnyNode = "any_node",
        /// Routed by a channel name (PUBLISH).
        Channel = "channel",
        /// Served on a dedicated backend connection.
        Dedicated = "dedicated",
        /// Refused by the proxy.
        Refused = "refused",
        /// Not in the command table.
        Unknown = "unknown",
        /// Wrong arity or malformed.
        Invalid = "invalid",
    }
}

label_enum! {
    /// Why a node request failed (the `kind` label).
    NodeErrorKind {
        /// The node was marked down; the request was not sent.
        Down = "down",
        /// No reply within the request timeout.
        Timeout = "timeout",
        /// The connection broke while the request was in flight.
        ConnectionLost = "connection_lost",
        /// The node sent bytes that are not RESP.
        Protocol = "protocol",
        /// The node answered with an error reply (`-ERR ...`).
        ErrorReply = "error_reply",
    }
}

label_enum! {
    /// Outcome of a topology reload (the `result` label).
    ReloadResult {
        /// A new topology was applied.
        Ok = "ok",
        /// The new config was rejected; the old topology keeps running.
        Failed = "failed",
        /// The config had not changed.
        Unchanged = "unchanged",
    }
}

impl RequestClass {
    /// The metric class of a command-table class.
    pub fn of(class: &Class) -> RequestClass {
        match class {
            Class::Keyed => Self::Keyed,
            Class::Split(_) => Self::Split,
            Class::Broadcast(_) => Self::Broadcast,
            Class::Local(_) => Self::Local,
            Class::AnyNode => Self::AnyNode,
            Class::Channel => Self::Channel,
            Class::Dedicated(_) => Self::Dedicated,
            Class::Refused(_) => Self::Refused,
        }
    }
}

impl NodeErrorKind {
    /// The kind of a backend failure; `None` for failures not tied to a node.
    pub fn of(err: BackendError) -> Option<NodeErrorKind> {
        match err {
            BackendError::Down => Some(Self::Down),
            BackendError::Timeout => Some(Self::Timeout),
            BackendError::ConnectionLost => Some(Self::ConnectionLost),
            BackendError::Protocol => Some(Self::Protocol),
            BackendError::NoNode => None,
        }
    }
}
