//! Which requests coalesce, and when a client may join.

use super::*;
use crate::command::CommandTable;

#[test]
fn only_reads_that_depend_on_the_value_coalesce() {
    let t = CommandTable::new(&[]);
    let yes = [
        "get", "hget", "hgetall", "smembers", "zrange", "lrange", "strlen", "type",
    ];
    let no = [
        "set",
        "getex",
        "getdel",
        "spop",
        "srandmember",
        "hrandfield",
        "zrandmember",
        "ttl",
        "pttl",
        "blpop",
        "incr",
        "xread",
        "mget",
        "eval_ro",
        "sort_ro",
        "sort",
    ];
    for name in yes {
        let s = t.by_name(name.as_bytes()).unwrap();
        assert!(eligible(s), "{name}");
    }
    for name in no {
        let s = t.by_name(name.as_bytes()).unwrap();
        assert!(!eligible(s), "{name}");
    }
}

#[test]
fn a_client_joins_only_groups_newer_than_its_writes() {
    let mut m = Mark::default();
    // No write yet: any group.
    assert!(m.may_join(3, 10, 1));
    m.saw(
        CommandFlags::default(),
        Class::Local(crate::command::LocalKind::Ping),
    );
    assert!(m.may_join(3, 10, 1), "a local command writes nothing");
    m.saw(CommandFlags::WRITE, Class::Keyed);
    // A write unanswered: none.
    assert!(!m.may_join(1, 10, 11));
    // Answered when groups 1..=12 exist: only groups created later.
    assert!(!m.may_join(0, 12, 12));
    assert!(m.may_join(0, 13, 13));
    m.saw(CommandFlags::READONLY, Class::Keyed);
    assert!(m.may_join(5, 14, 14));
}
