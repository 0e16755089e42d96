//! What the proxy does with a command. The assignment of commands to classes is data
//! (see [`class_of`]); the dispatcher matches on [`Class`].

/// Handling of one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Routed by its keys; all keys must live on one node (else a CROSSSLOT-style error).
    Keyed,
    /// Keys spread over nodes: one sub-request per node, replies merged.
    Split(SplitKind),
    /// Sent to every node, replies merged.
    Broadcast(MergeKind),
    /// Answered by the proxy itself.
    Local(LocalKind),
    /// No key, no state: any live node answers (TIME, COMMAND INFO, ...).
    AnyNode,
    /// Routed by the channel in argument 1 (PUBLISH, SPUBLISH).
    Channel,
    /// Needs a backend connection of its own while the state lasts.
    Dedicated(DedicatedKind),
    /// Refused with this reason (the error names the command).
    Refused(&'static str),
}

/// How a split command is divided and merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitKind {
    /// MGET: keys step 1, reply array re-assembled in key order.
    Mget,
    /// MSET: key/value pairs, all parts +OK.
    Mset,
    /// DEL, UNLINK, EXISTS, TOUCH: keys step 1, integer replies summed.
    SumInt,
}

/// How broadcast replies are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeKind {
    /// Integers summed (DBSIZE).
    SumInt,
    /// Arrays concatenated (KEYS).
    Concat,
    /// Every node must answer the same status; that status is returned (FLUSHALL, SCRIPT FLUSH).
    AllOk,
    /// Every node answers; the first reply is returned (SCRIPT LOAD: same SHA everywhere).
    First,
    /// Arrays of 0/1 combined element-wise with AND (SCRIPT EXISTS).
    AndArrays,
    /// SCAN with a proxy cursor that walks the nodes in turn.
    Scan,
    /// RANDOMKEY: first non-null reply.
    FirstNonNull,
}

/// Commands the proxy answers itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    /// PING [message]
    Ping,
    /// ECHO message
    Echo,
    /// QUIT
    Quit,
    /// HELLO [protover [AUTH user pass] [SETNAME name]]
    Hello,
    /// AUTH [user] password
    Auth,
    /// SELECT db (only 0)
    Select,
    /// CLIENT SETNAME/GETNAME/ID/SETINFO/INFO ...
    Client,
    /// COMMAND COUNT (others go to a node)
    Command,
    /// RESET
    Reset,
    /// INFO (proxy figures)
    Info,
}

/// Commands that need a dedicated backend connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DedicatedKind {
    /// MULTI / EXEC / DISCARD
    Transaction,
    /// WATCH / UNWATCH
    Watch,
    /// SUBSCRIBE family
    Subscribe,
    /// Blocking commands (BLPOP, XREAD BLOCK, WAIT, ...)
    Blocking,
}

/// The class of a command by its table name (lower case; subcommands as
/// `client|setname`), given its key count from the table. SKELETON: the command
/// helper replaces this with the full overlay.
pub fn class_of(name: &str, has_keys: bool) -> Class {
    match name {
        "mget" => Class::Split(SplitKind::Mget),
        "mset" => Class::Split(SplitKind::Mset),
        "del" | "unlink" | "exists" | "touch" => Class::Split(SplitKind::SumInt),
        "ping" => Class::Local(LocalKind::Ping),
        "echo" => Class::Local(LocalKind::Echo),
        "quit" => Class::Local(LocalKind::Quit),
        "hello" => Class::Local(LocalKind::Hello),
        "dbsize" => Class::Broadcast(MergeKind::SumInt),
        _ if has_keys => Class::Keyed,
        _ => Class::Refused("the proxy cannot route a command without a key"),
    }
}
