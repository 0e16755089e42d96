//! Tests of [`super`]: users and the backend identity, each problem with its line.

use crate::config::*;

const BASE: &str = "listen: 127.0.0.1:6380\nnodes:\n  - {name: a, addr: 127.0.0.1:7001}\n";

fn problems(extra: &str) -> Vec<(Option<usize>, String)> {
    let err = parse(&format!("{BASE}{extra}")).expect_err("expected problems");
    err.into_iter().map(|p| (p.line, p.message)).collect()
}

fn one(extra: &str, line: usize, message: &str) {
    assert_eq!(
        problems(extra),
        vec![(Some(line), message.to_string())],
        "{extra}"
    );
}

fn pool(extra: &str) -> PoolConfig {
    let c = parse(&format!("{BASE}{extra}")).unwrap_or_else(|p| panic!("{p:?}"));
    c.pools[0].clone()
}

#[test]
fn users_with_each_kind_of_password() {
    let dir = std::env::temp_dir().join(format!("ringproxy-users-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pw");
    std::fs::write(&file, "from-file\n").unwrap();
    let p = pool(&format!(
        "users:\n  - {{name: a, password: pa, commands: \"+@read\", keys: [\"*\"]}}\n  \
         - {{name: b, password_file: {:?}}}\n  \
         - {{name: c, password_sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b}}\n",
        file.display()
    ));
    let [a, b, c] = &p.users[..] else {
        panic!("{:?}", p.users)
    };
    assert!(a.secret.accepts(b"pa") && !a.secret.accepts(b"pb"));
    assert!(
        b.secret.accepts(b"from-file"),
        "one trailing newline dropped"
    );
    assert!(c.secret.accepts(b"1"));
    assert_eq!(
        (a.commands.as_str(), &a.keys[..]),
        ("+@read", &["*".to_string()][..])
    );
    assert!(b.commands.is_empty() && b.keys.is_empty() && b.channels.is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn user_problems() {
    let msg = "users[0]: needs exactly one of password, password_file, password_sha256";
    one("users:\n  - {name: a}\n", 5, msg);
    one(
        "users:\n  - {name: a, password: x, password_sha256: ab}\n",
        5,
        msg,
    );
    let msg = "users[0].password_sha256: must be 64 hex digits (the SHA-256 of the password)";
    one("users:\n  - {name: a, password_sha256: abc}\n", 5, msg);
    let msg = "users[0].commands: rule \"+nope\": unknown command";
    one(
        "users:\n  - name: a\n    password: x\n    commands: \"+get +nope\"\n",
        7,
        msg,
    );
    let msg = "users[0].commands: rule \"+@nope\": unknown ACL category";
    one(
        "users:\n  - {name: a, password: x, commands: \"+@nope\"}\n",
        5,
        msg,
    );
    let msg = "users[1].name: \"a\" is already defined by users[0]";
    one(
        "users:\n  - {name: a, password: x}\n  - {name: a, password: y}\n",
        6,
        msg,
    );
    let msg = "auth: users defines the default user: give its password there, not in auth";
    one(
        "auth: pw\nusers:\n  - {name: default, password: x}\n",
        4,
        msg,
    );
    let msg = "users[0].password_file: cannot read \"/nonexistent/pw\"";
    let got = problems("users:\n  - {name: a, password_file: /nonexistent/pw}\n");
    assert!(got.len() == 1 && got[0].1.starts_with(msg), "{got:?}");
}

#[test]
fn backend_identity() {
    let p = pool("backend:\n  username: proxy\n  password: pw\n");
    assert_eq!(p.backend_username.as_deref(), Some("proxy"));
    assert_eq!(p.backend_password.as_deref(), Some("pw"));
    let msg = "backend.username: needs backend.password or backend.password_file";
    one("backend:\n  username: proxy\n", 5, msg);
    let msg = "backend.password_file: give password or password_file, not both";
    one("backend:\n  password: x\n  password_file: /x\n", 6, msg);
}
