//! What the proxy does with a command. The assignment of commands to classes is data
//! (the sorted [`OVERRIDES`] table plus a few rules, see [`class_of`]); the dispatcher
//! matches on [`Class`].

use super::table::{CommandFlags, CommandSpec};
use crate::resp::Request;
// Short names keep the OVERRIDES table one entry per line.
use Class::{AnyNode, Broadcast as B, Channel, Dedicated as D, Keyed, Local as L, Refused as R};
use DedicatedKind::{Blocking, Subscribe, Transaction, Watch};

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
    /// Arrays merged without duplicates (PUBSUB CHANNELS / SHARDCHANNELS).
    Union,
    /// `[name, count, ...]` arrays summed per name, in the first reply's order
    /// (PUBSUB NUMSUB / SHARDNUMSUB).
    SumPairs,
    /// The largest integer (PUBSUB NUMPAT: patterns are subscribed on every node).
    MaxInt,
}

/// Commands the proxy answers itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalKind {
    /// `PING [message]`
    Ping,
    /// ECHO message
    Echo,
    /// QUIT
    Quit,
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`
    Hello,
    /// `AUTH [user] password`
    Auth,
    /// SELECT db (only 0)
    Select,
    /// CLIENT SETNAME/GETNAME/ID/SETINFO/INFO/LIST/KILL/REPLY/NO-EVICT/NO-TOUCH (about
    /// the proxy's own clients; other CLIENT subcommands are refused or go to a node).
    Client,
    /// COMMAND COUNT (others go to a node)
    Command,
    /// RESET
    Reset,
    /// ACL WHOAMI (other ACL subcommands are refused: users live in the config)
    Acl,
    /// INFO, ROLE, CONFIG GET/SET/RESETSTAT, SLOWLOG GET/LEN/RESET, LATENCY
    /// LATEST/RESET: the proxy's own figures and the nodes' merged
    /// (`server::info` serves them by command name).
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

// Reasons for refusing (the dispatcher's error names the command, see `refused_error`).
const ADMIN: &str = "administrative command; run it on the nodes directly";
const CLUSTER: &str = "the proxy is not a Redis Cluster";
const REPLICATION: &str = "replication command; run it on the nodes directly";
const PER_NODE: &str = "it reports or changes the state of one node; ask the nodes directly";
const DB: &str = "the proxy serves database 0 only";
const CONN_STATE: &str = "it changes connection state the proxy cannot keep on shared connections";
const WHICH_NODE: &str = "the proxy cannot tell which node runs it";
const MOVES_KEYS: &str = "it moves keys behind the proxy's back";
const PAUSE: &str = "pausing clients would stall every client of the proxy; pause writes on the nodes, or stop the proxy's clients";
const NO_KEY: &str = "the proxy cannot route a command without a key";
const REWRITE: &str = "it rewrites the nodes' config files; run it on the nodes directly";

/// Classes by table name, sorted. An entry for a container (`client`) also applies to
/// its keyless subcommands without an entry of their own.
pub const OVERRIDES: &[(&str, Class)] = &[
    ("acl", R(ADMIN)),
    ("acl|whoami", L(LocalKind::Acl)),
    ("asking", R(CLUSTER)),
    ("auth", L(LocalKind::Auth)),
    ("bgrewriteaof", R(ADMIN)),
    ("bgsave", R(ADMIN)),
    ("client", R(CONN_STATE)),
    ("client|getname", L(LocalKind::Client)),
    ("client|help", AnyNode),
    ("client|id", L(LocalKind::Client)),
    ("client|info", L(LocalKind::Client)),
    ("client|kill", L(LocalKind::Client)),
    ("client|list", L(LocalKind::Client)),
    ("client|no-evict", L(LocalKind::Client)),
    ("client|no-touch", L(LocalKind::Client)),
    ("client|pause", R(PAUSE)),
    ("client|reply", L(LocalKind::Client)),
    ("client|setinfo", L(LocalKind::Client)),
    ("client|setname", L(LocalKind::Client)),
    ("client|unblock", R(ADMIN)),
    ("client|unpause", R(PAUSE)),
    ("cluster", R(CLUSTER)),
    ("command", AnyNode),
    ("command|count", L(LocalKind::Command)),
    ("config", L(LocalKind::Info)),
    ("config|help", AnyNode),
    ("config|rewrite", R(REWRITE)),
    ("dbsize", B(MergeKind::SumInt)),
    ("debug", R(ADMIN)),
    ("del", Class::Split(SplitKind::SumInt)),
    ("discard", D(Transaction)),
    ("echo", L(LocalKind::Echo)),
    ("exec", D(Transaction)),
    ("exists", Class::Split(SplitKind::SumInt)),
    ("failover", R(REPLICATION)),
    ("flushall", B(MergeKind::AllOk)),
    ("flushdb", B(MergeKind::AllOk)),
    ("function|delete", B(MergeKind::AllOk)),
    ("function|dump", AnyNode),
    ("function|flush", B(MergeKind::AllOk)),
    ("function|help", AnyNode),
    ("function|kill", R(WHICH_NODE)),
    ("function|list", AnyNode),
    ("function|load", B(MergeKind::First)),
    ("function|restore", B(MergeKind::AllOk)),
    ("function|stats", R(PER_NODE)),
    ("hello", L(LocalKind::Hello)),
    ("info", L(LocalKind::Info)),
    ("keys", B(MergeKind::Concat)),
    ("lastsave", R(PER_NODE)),
    ("latency", R(PER_NODE)),
    ("latency|help", AnyNode),
    ("latency|latest", L(LocalKind::Info)),
    ("latency|reset", L(LocalKind::Info)),
    ("lolwut", AnyNode),
    ("memory", R(PER_NODE)),
    ("memory|help", AnyNode),
    ("mget", Class::Split(SplitKind::Mget)),
    ("migrate", R(MOVES_KEYS)),
    ("module", R(ADMIN)),
    ("monitor", R(PER_NODE)),
    ("move", R(DB)),
    ("mset", Class::Split(SplitKind::Mset)),
    ("msetnx", Keyed),
    ("multi", D(Transaction)),
    ("object|help", AnyNode),
    ("ping", L(LocalKind::Ping)),
    ("psubscribe", D(Subscribe)),
    ("psync", R(REPLICATION)),
    ("publish", Channel),
    ("pubsub|channels", B(MergeKind::Union)),
    ("pubsub|help", AnyNode),
    ("pubsub|numpat", B(MergeKind::MaxInt)),
    ("pubsub|numsub", B(MergeKind::SumPairs)),
    ("pubsub|shardchannels", B(MergeKind::Union)),
    ("pubsub|shardnumsub", B(MergeKind::SumPairs)),
    ("punsubscribe", D(Subscribe)),
    ("quit", L(LocalKind::Quit)),
    ("randomkey", B(MergeKind::FirstNonNull)),
    ("readonly", R(CLUSTER)),
    ("readwrite", R(CLUSTER)),
    ("replconf", R(REPLICATION)),
    ("replicaof", R(REPLICATION)),
    ("reset", L(LocalKind::Reset)),
    ("restore-asking", R(CLUSTER)),
    ("role", L(LocalKind::Info)),
    ("save", R(ADMIN)),
    ("scan", B(MergeKind::Scan)),
    ("script|debug", R(CONN_STATE)),
    ("script|exists", B(MergeKind::AndArrays)),
    ("script|flush", B(MergeKind::AllOk)),
    ("script|help", AnyNode),
    ("script|kill", R(WHICH_NODE)),
    ("script|load", B(MergeKind::First)),
    ("select", L(LocalKind::Select)),
    ("shutdown", R(ADMIN)),
    ("slaveof", R(REPLICATION)),
    ("slowlog", L(LocalKind::Info)),
    ("slowlog|help", AnyNode),
    ("spublish", Channel),
    ("ssubscribe", D(Subscribe)),
    ("subscribe", D(Subscribe)),
    ("sunsubscribe", D(Subscribe)),
    ("swapdb", R(DB)),
    ("sync", R(REPLICATION)),
    ("time", AnyNode),
    ("touch", Class::Split(SplitKind::SumInt)),
    ("unlink", Class::Split(SplitKind::SumInt)),
    ("unsubscribe", D(Subscribe)),
    ("unwatch", D(Watch)),
    ("wait", D(Blocking)),
    ("watch", D(Watch)),
    ("xgroup|help", AnyNode),
    ("xinfo|help", AnyNode),
    ("xread", Keyed),
    ("xreadgroup", Keyed),
];

fn lookup(name: &str) -> Option<Class> {
    OVERRIDES
        .binary_search_by(|(n, _)| n.cmp(&name))
        .ok()
        .map(|i| OVERRIDES[i].1)
}

/// The class of a command by its table name (lower case; subcommands as
/// `client|setname`), flags and whether it takes keys. In order: its [`OVERRIDES`]
/// entry; the BLOCKING flag (dedicated connection); its container's entry when it
/// has no keys; the ADMIN flag (refused); keys (routed by key); else refused.
pub fn class_of(name: &str, flags: CommandFlags, has_keys: bool) -> Class {
    let container = || name.split_once('|').and_then(|(c, _)| lookup(c));
    if let Some(class) = lookup(name) {
        class
    } else if flags.contains(CommandFlags::BLOCKING) {
        D(Blocking)
    } else if let Some(class) = container().filter(|_| !has_keys) {
        class
    } else if flags.contains(CommandFlags::ADMIN) {
        R(ADMIN)
    } else if has_keys {
        Keyed
    } else {
        R(NO_KEY)
    }
}

/// Whether this request blocks: always for a `Dedicated(Blocking)` command; for
/// XREAD/XREADGROUP (class `Keyed`) only with the BLOCK option before STREAMS.
pub fn is_blocking(spec: &CommandSpec, req: &Request) -> bool {
    match spec.name.as_str() {
        "xread" | "xreadgroup" => has_block_option(req),
        _ => spec.class == D(Blocking),
    }
}

/// The class of this request: the command's, except XREAD/XREADGROUP with BLOCK.
pub fn class_for(spec: &CommandSpec, req: &Request) -> Class {
    if is_blocking(spec, req) {
        D(Blocking)
    } else {
        spec.class
    }
}

/// XREAD [COUNT n] [BLOCK ms] STREAMS ... / XREADGROUP GROUP g c [COUNT n] [BLOCK ms]
/// [NOACK] STREAMS ...: is BLOCK among the options?
fn has_block_option(req: &Request) -> bool {
    let mut i = 1;
    while let Some(arg) = req.get(i) {
        let is = |w: &[u8]| arg.eq_ignore_ascii_case(w);
        if is(b"block") {
            return true;
        }
        if is(b"streams") {
            return false;
        }
        i += if is(b"count") {
            2
        } else if is(b"group") {
            3
        } else {
            1
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::CommandTable;

    fn class(t: &CommandTable, line: &str) -> Class {
        let r = Request::from_args(&line.split(' ').collect::<Vec<_>>());
        class_for(t.get(&r).unwrap_or_else(|| panic!("{line}")), &r)
    }

    #[test]
    fn overrides_are_sorted_and_known() {
        let t = CommandTable::new(&[]);
        assert!(
            OVERRIDES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, unique"
        );
        for (name, _) in OVERRIDES {
            assert!(
                t.by_name(name.as_bytes()).is_some(),
                "{name} not in the table"
            );
        }
    }

    #[test]
    fn every_command_has_a_sensible_class() {
        for spec in CommandTable::new(&[]).iter() {
            match spec.class {
                Keyed | Class::Split(_) => assert!(spec.has_keys(), "{}", spec.name),
                R(reason) => assert!(reason.len() > 10, "{}", spec.name),
                D(Blocking) => {
                    assert!(spec.flags.contains(CommandFlags::BLOCKING) || spec.name == "wait")
                }
                _ => {}
            }
            let blocking =
                spec.flags.contains(CommandFlags::BLOCKING) && !spec.name.starts_with("xread");
            assert!(!blocking || spec.class == D(Blocking), "{}", spec.name);
        }
    }

    #[test]
    fn spot_checks() {
        let t = CommandTable::new(&[]);
        let cases = [
            ("GET k", Keyed),
            ("msetnx a 1 b 2", Keyed),
            ("EVAL s 1 k", Keyed),
            ("OBJECT FREQ k", Keyed),
            ("MEMORY USAGE k", Keyed),
            ("XINFO STREAM s", Keyed),
            ("MGET a b", Class::Split(SplitKind::Mget)),
            ("MSET a 1", Class::Split(SplitKind::Mset)),
            ("UNLINK a", Class::Split(SplitKind::SumInt)),
            ("DBSIZE", B(MergeKind::SumInt)),
            ("KEYS *", B(MergeKind::Concat)),
            ("FLUSHDB", B(MergeKind::AllOk)),
            ("SCRIPT LOAD s", B(MergeKind::First)),
            ("SCRIPT EXISTS a b", B(MergeKind::AndArrays)),
            ("FUNCTION LOAD code", B(MergeKind::First)),
            ("SCAN 0", B(MergeKind::Scan)),
            ("RANDOMKEY", B(MergeKind::FirstNonNull)),
            ("PING", L(LocalKind::Ping)),
            ("client setname x", L(LocalKind::Client)),
            ("CLIENT SETINFO LIB-NAME x", L(LocalKind::Client)),
            ("COMMAND COUNT", L(LocalKind::Command)),
            ("SELECT 0", L(LocalKind::Select)),
            ("INFO", L(LocalKind::Info)),
            ("COMMAND", AnyNode),
            ("COMMAND INFO get", AnyNode),
            ("COMMAND GETKEYS get k", AnyNode),
            ("TIME", AnyNode),
            ("PUBLISH ch m", Channel),
            ("SPUBLISH ch m", Channel),
            ("MULTI", D(Transaction)),
            ("WATCH k", D(Watch)),
            ("SSUBSCRIBE ch", D(Subscribe)),
            ("BLPOP k 0", D(Blocking)),
            ("BZMPOP 0 1 k MIN", D(Blocking)),
            ("WAIT 1 0", D(Blocking)),
            ("XREAD STREAMS s 0", Keyed),
            ("XREAD COUNT 1 BLOCK 0 STREAMS s 0", D(Blocking)),
            ("XREADGROUP GROUP BLOCK c STREAMS s >", Keyed),
            (
                "XREADGROUP GROUP g c NOACK BLOCK 5 STREAMS s >",
                D(Blocking),
            ),
            ("CONFIG GET x", L(LocalKind::Info)),
            ("CONFIG SET x 1", L(LocalKind::Info)),
            ("CONFIG RESETSTAT", L(LocalKind::Info)),
            ("CONFIG REWRITE", R(REWRITE)),
            ("CONFIG HELP", AnyNode),
            ("SLOWLOG GET 5", L(LocalKind::Info)),
            ("SLOWLOG LEN", L(LocalKind::Info)),
            ("SLOWLOG RESET", L(LocalKind::Info)),
            ("LATENCY LATEST", L(LocalKind::Info)),
            ("LATENCY RESET", L(LocalKind::Info)),
            ("LATENCY DOCTOR", R(PER_NODE)),
            ("LATENCY HISTORY command", R(PER_NODE)),
            ("LATENCY HISTOGRAM", R(PER_NODE)),
            ("ROLE", L(LocalKind::Info)),
            ("CLIENT LIST", L(LocalKind::Client)),
            ("CLIENT TRACKING on", R(CONN_STATE)),
            ("ACL WHOAMI", L(LocalKind::Acl)),
            ("CLUSTER INFO", R(CLUSTER)),
            ("MOVE k 1", R(DB)),
            ("MIGRATE h 1 k 0 5", R(MOVES_KEYS)),
            ("PFDEBUG GETREG k", R(ADMIN)),
            ("PUBSUB CHANNELS", B(MergeKind::Union)),
            ("PUBSUB NUMSUB a", B(MergeKind::SumPairs)),
            ("PUBSUB NUMPAT", B(MergeKind::MaxInt)),
            ("MEMORY STATS", R(PER_NODE)),
        ];
        for (line, want) in cases {
            assert_eq!(class(&t, line), want, "{line}");
        }
    }
}
