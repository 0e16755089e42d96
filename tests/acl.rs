//! Users and permissions (`users:`, `backend.username` / `password_file`) against
//! real redis-servers: every allow/deny reply is compared with what a redis-server
//! with the same user (made with ACL SETUSER) answers, so texts and semantics are
//! Redis's own; the glob matcher is compared with the server's ACL DRYRUN.

mod common;

use common::admin::{http, scrape};
use common::*;
use std::process::Command;
use std::time::Duration;

/// One test user: (name, password, commands, keys, channels).
type TestUser = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

/// The users of the tests.
const USERS: &[TestUser] = &[
    ("reader", "rpw", "+@read +ping", &["*"], &[]),
    (
        "app",
        "apw",
        "+@all -@admin -@dangerous",
        &["app:*", "{t}app:*"],
        &["news.*"],
    ),
    (
        "writer",
        "wpw",
        "+@write +acl|whoami",
        &["w:?", "w:[xy]z"],
        &["*"],
    ),
    ("cfg", "cpw", "+config -config|set +info", &["*"], &[]),
];

/// The `users:` section for [`USERS`] (plus `auth` for the default user).
fn users_yaml() -> String {
    let mut y = String::from("auth: defpw\nusers:\n");
    for (name, pw, cmds, keys, chans) in USERS {
        let list = |l: &[&str]| {
            let q: Vec<String> = l.iter().map(|p| format!("{p:?}")).collect();
            format!("[{}]", q.join(", "))
        };
        y.push_str(&format!(
            "  - {{name: {name}, password: {pw}, commands: {cmds:?}, keys: {}, channels: {}}}\n",
            list(keys),
            list(chans)
        ));
    }
    y
}

/// The same users on a plain redis-server, with ACL SETUSER (as the default user,
/// with `auth` when it has a password).
fn setuser(r: &RedisServer, auth: Option<&str>) {
    let mut c = Conn::connect(r.port());
    if let Some(pw) = auth {
        assert_eq!(c.cmd(&["AUTH", pw]), Reply::ok());
    }
    for (name, pw, cmds, keys, chans) in USERS {
        let mut args: Vec<String> = vec!["ACL".into(), "SETUSER".into(), name.to_string()];
        args.extend(["reset", "on"].map(String::from));
        args.push(format!(">{pw}"));
        args.extend(cmds.split(' ').map(String::from));
        args.extend(keys.iter().map(|k| format!("~{k}")));
        args.extend(chans.iter().map(|c| format!("&{c}")));
        assert_eq!(c.cmd(&args), Reply::ok(), "{args:?}");
    }
}

fn login(port: u16, user: &str, pw: &str) -> Conn {
    let mut c = Conn::connect(port);
    assert_eq!(c.cmd(&["AUTH", user, pw]), Reply::ok(), "AUTH {user}");
    c
}

/// Sends `cmd` as `user` to the proxy and to the reference server; the replies
/// (errors exactly) must be the same.
fn same(proxy: u16, redis: u16, user: &str, cmd: &[&str]) -> Reply {
    let pw = USERS.iter().find(|u| u.0 == user).map(|u| u.1).unwrap();
    let got = login(proxy, user, pw).cmd(cmd);
    let want = login(redis, user, pw).cmd(cmd);
    // Errors exactly; other replies may differ (the data differs).
    if got.is_error() || want.is_error() {
        assert_eq!(got, want, "{user}: {cmd:?}");
    }
    got
}

fn denied(r: &Reply) -> bool {
    matches!(r, Reply::Error(e) if e.starts_with("NOPERM"))
}

#[test]
fn commands_keys_and_channels_as_redis() {
    let nodes = [RedisServer::start(), RedisServer::start()];
    let proxy = Proxy::with_nodes(&[&nodes[0], &nodes[1]], &users_yaml());
    let reference = RedisServer::start();
    setuser(&reference, None);
    let (p, r) = (proxy.port(), reference.port());
    // Categories: @read, @write, @dangerous, @admin; names and subcommands.
    let cases: &[(&str, &[&str], bool)] = &[
        ("reader", &["GET", "x"], true),
        ("reader", &["PING"], true),
        ("reader", &["SET", "x", "1"], false),
        ("reader", &["ACL", "WHOAMI"], false),
        ("reader", &["KEYS", "*"], true), // @read and @dangerous: +@read allows it
        ("app", &["SET", "app:1", "v"], true),
        ("app", &["GET", "app:1"], true),
        ("app", &["FLUSHALL"], false),
        ("app", &["KEYS", "*"], false),
        ("app", &["CONFIG", "GET", "maxmemory"], false),
        ("app", &["ACL", "WHOAMI"], true),
        ("writer", &["SET", "w:a", "1"], true),
        ("writer", &["SET", "w:xz", "1"], true),
        ("writer", &["SET", "w:ab", "1"], false),
        ("writer", &["GET", "w:a"], false),
        ("writer", &["ACL", "WHOAMI"], true),
        ("cfg", &["CONFIG", "SET", "maxmemory", "0"], false),
        ("cfg", &["SET", "x", "1"], false),
    ];
    for (user, cmd, ok) in cases {
        let reply = same(p, r, user, cmd);
        assert_eq!(!denied(&reply), *ok, "{user} {cmd:?}: {reply}");
    }
    // Keys: every key of a multi-key or split command must be allowed.
    for cmd in [
        &["MSET", "app:1", "a", "other", "b"][..],
        &["MGET", "app:1", "other"],
        &["DEL", "app:1", "other"],
        &["EXISTS", "other", "app:2"],
        &["GET", "other"],
    ] {
        assert!(denied(&same(p, r, "app", cmd)), "{cmd:?}");
    }
    assert!(!denied(&same(
        p,
        r,
        "app",
        &["MSET", "app:a", "1", "app:b", "2"]
    )));
    assert!(!denied(&same(p, r, "app", &["MGET", "app:a", "app:b"])));
    // NOPERM before any backend IO: the denied MSET wrote nothing anywhere.
    for n in &nodes {
        assert!(
            !n.keys().iter().any(|k| k == b"other"),
            "denied MSET reached a node"
        );
    }
    // Channels: PUBLISH checks its channel, SUBSCRIBE every channel, PSUBSCRIBE
    // its patterns literally.
    assert!(!denied(&same(p, r, "app", &["PUBLISH", "news.x", "m"])));
    assert!(denied(&same(p, r, "app", &["PUBLISH", "sport", "m"])));
    assert!(denied(&same(
        p,
        r,
        "app",
        &["SUBSCRIBE", "news.a", "sport"]
    )));
    assert!(denied(&same(p, r, "app", &["PSUBSCRIBE", "news.a*"])));
    assert!(denied(&same(p, r, "reader", &["PUBLISH", "news.x", "m"])));
    // Inside MULTI a denied command fails the transaction, as in Redis.
    for port in [p, r] {
        let mut c = login(port, "app", "apw");
        assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
        assert_eq!(
            c.cmd(&["SET", "app:m", "1"]),
            Reply::Status("QUEUED".into())
        );
        assert!(denied(&c.cmd(&["SET", "other", "1"])));
        let exec = c.cmd(&["EXEC"]);
        assert_eq!(
            exec.err_text(),
            "EXECABORT Transaction discarded because of previous errors."
        );
    }
    let mut sub = login(p, "app", "apw");
    let ok = sub.cmd(&["PSUBSCRIBE", "news.*"]);
    assert!(!ok.is_error(), "{ok}");
}

#[test]
fn auth_hello_whoami_and_failures() {
    let node = RedisServer::start();
    let proxy = Proxy::with_nodes(&[&node], &users_yaml());
    let reference = RedisServer::start_with(&["--requirepass", "defpw"]);
    setuser(&reference, Some("defpw"));
    for port in [proxy.port(), reference.port()] {
        let mut c = Conn::connect(port);
        let noauth = Reply::Error("NOAUTH Authentication required.".into());
        assert_eq!(c.cmd(&["GET", "k"]), noauth);
        let wrong =
            Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
        assert_eq!(c.cmd(&["AUTH", "app", "nope"]), wrong);
        assert_eq!(c.cmd(&["AUTH", "nobody", "apw"]), wrong);
        assert_eq!(c.cmd(&["AUTH", "nope"]), wrong);
        assert_eq!(c.cmd(&["HELLO", "3", "AUTH", "app", "nope"]), wrong);
        assert_eq!(c.cmd(&["GET", "k"]), noauth);
        let hello = c.cmd(&["HELLO", "3", "AUTH", "app", "apw"]);
        assert!(matches!(hello, Reply::Map(_)), "{hello}");
        assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Reply::bulk("app"));
        let info = String::from_utf8_lossy(c.cmd(&["CLIENT", "INFO"]).bytes()).into_owned();
        assert!(info.contains(" user=app "), "{info}");
        // A failed AUTH keeps the login it had.
        assert_eq!(c.cmd(&["AUTH", "reader", "nope"]), wrong);
        assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Reply::bulk("app"));
        assert_eq!(c.cmd(&["AUTH", "defpw"]), Reply::ok());
        assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Reply::bulk("default"));
        assert_eq!(c.cmd(&["FLUSHALL"]).is_error(), port == proxy.port()); // allow_flush
        assert_eq!(c.cmd(&["AUTH", "default", "defpw"]), Reply::ok());
        assert_eq!(c.cmd(&["RESET"]), Reply::Status("RESET".into()));
        assert_eq!(c.cmd(&["GET", "k"]), noauth);
    }
    let mut c = login(proxy.port(), "default", "defpw");
    let info = String::from_utf8_lossy(c.cmd(&["INFO"]).bytes()).into_owned();
    assert!(
        !info.contains("defpw") && !info.contains("apw"),
        "INFO shows a password"
    );
    let admin = proxy.admin_port();
    let failures = scrape(admin).series("ringproxy_auth_failures_total{pool=\"default\"}");
    assert_eq!(failures, 5.0);
    let log = proxy.log();
    assert!(log.contains("authentication failed"), "{log}");
    for secret in ["nope", "apw", "defpw", "rpw"] {
        let hits: Vec<&str> = log.lines().filter(|l| l.contains(secret)).collect();
        assert!(hits.is_empty(), "log shows a password: {hits:?}");
    }
    assert!(
        !log.contains("nobody"),
        "an unknown user name is not logged"
    );
}

#[test]
fn a_config_default_user_replaces_auth() {
    let node = RedisServer::start();
    let yaml = "users:\n  - {name: default, password: d, commands: \"+@read\", keys: [\"*\"]}\n";
    let proxy = Proxy::with_nodes(&[&node], yaml);
    let mut c = proxy.conn();
    assert_eq!(
        c.cmd(&["GET", "k"]).err_text(),
        "NOAUTH Authentication required."
    );
    assert_eq!(c.cmd(&["AUTH", "d"]), Reply::ok());
    assert_eq!(c.cmd(&["GET", "k"]), Reply::Nil);
    let set = c.cmd(&["SET", "k", "v"]);
    assert_eq!(
        set.err_text(),
        "NOPERM this user has no permissions to run the 'set' command"
    );
    // Without users nor auth, every client is the default user with every permission.
    let open = Proxy::with_nodes(&[&node], "");
    let mut c = open.conn();
    assert_eq!(c.cmd(&["ACL", "WHOAMI"]), Reply::bulk("default"));
    assert_eq!(c.cmd(&["SET", "k", "v"]), Reply::ok());
}

/// The glob matcher against the server's own (ACL DRYRUN with a key pattern).
#[test]
fn glob_matches_redis() {
    let r = RedisServer::start();
    let patterns = [
        "a*",
        "a?c",
        "h[ae]llo",
        "h[^e]llo",
        "h[a-c]llo",
        "h[c-a]llo",
        "x\\*y",
        "\\?",
        "*a*b*",
        "a[bc",
        "[\\]]x",
        "a\\",
        "**",
        "?*?",
        "[a-]z",
        "a*b*c",
        "user:{*}",
    ];
    let texts = [
        "", "a", "abc", "ac", "hello", "hallo", "hbllo", "hillo", "x*y", "xay", "?", "b",
        "xxaxxbxx", "ba", "ab", "ac", "]x", "a\\", "-z", "az", "aXbYc", "user:{1}", "abcabc",
        "h-llo",
    ];
    for p in patterns {
        assert_eq!(
            r.cmd(&[
                "ACL",
                "SETUSER",
                "g",
                "reset",
                "on",
                "nopass",
                "+get",
                &format!("~{p}")
            ]),
            Reply::ok()
        );
        for t in texts {
            let theirs = r.cmd(&["ACL", "DRYRUN", "g", "GET", t]) == Reply::ok();
            let ours = ringproxy::acl::glob::matches(p.as_bytes(), t.as_bytes());
            assert_eq!(ours, theirs, "pattern {p:?} text {t:?}");
        }
    }
}

/// redis-py's `username=` / `password=` log in with AUTH (RESP2) or HELLO 3 AUTH.
#[test]
fn redis_py_username_and_password() {
    let node = RedisServer::start();
    let proxy = Proxy::with_nodes(&[&node], &users_yaml());
    let script = "import redis, sys\n\
        port, proto = int(sys.argv[1]), int(sys.argv[2])\n\
        r = redis.Redis(port=port, username='app', password='apw', protocol=proto)\n\
        assert r.acl_whoami() in (b'app', 'app'), r.acl_whoami()\n\
        r.set('app:py', 'v'); assert r.get('app:py') == b'v'\n\
        try:\n    r.set('other', 'v'); sys.exit('SET other was allowed')\n\
        except redis.exceptions.NoPermissionError as e: print('denied', e)\n\
        try:\n    redis.Redis(port=port, username='app', password='bad', protocol=proto).ping(); sys.exit('bad password was accepted')\n\
        except redis.exceptions.AuthenticationError as e: print('wrongpass', e)\n\
        print('ok')\n";
    for proto in ["2", "3"] {
        let out = Command::new("timeout")
            .args([
                "60",
                "python3",
                "-c",
                script,
                &proxy.port().to_string(),
                proto,
            ])
            .output()
            .expect("python3 with redis-py (run .ci/run)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("ok"),
            "protocol {proto}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A node whose default user is off and whose `proxy` user has a password.
fn acl_node(password: &str) -> RedisServer {
    let r = RedisServer::start_with(&["--requirepass", "unused-default"]);
    let mut c = Conn::connect(r.port());
    assert_eq!(c.cmd(&["AUTH", "unused-default"]), Reply::ok());
    let pw = format!(">{password}");
    let setuser = ["ACL", "SETUSER", "proxy", "on", &pw, "~*", "&*", "+@all"];
    assert_eq!(c.cmd(&setuser), Reply::ok());
    assert_eq!(c.cmd(&["ACL", "SETUSER", "default", "off"]), Reply::ok());
    r
}

fn as_proxy_user(r: &RedisServer, password: &str) -> Conn {
    login(r.port(), "proxy", password)
}

#[test]
fn backend_username_and_password_file_rotation() {
    let nodes = [acl_node("pw1"), acl_node("pw1")];
    let dir = TempDir::new("acl-secret");
    let file = dir.join("backend.pw");
    std::fs::write(&file, "pw1\n").unwrap();
    let backend = format!(
        "backend:\n  username: proxy\n  password_file: {:?}\nhealth:\n  interval: 50ms\n",
        file.display()
    );
    let proxy = Proxy::with_nodes(&[&nodes[0], &nodes[1]], &backend);
    let mut c = proxy.conn();
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let work = |c: &mut Conn, round: &str| {
        for k in &keys {
            assert_eq!(c.cmd(&["SET", k, round]), Reply::ok(), "SET {k} in {round}");
        }
        let mut mget = vec!["MGET"];
        mget.extend(keys.iter().map(String::as_str));
        assert_eq!(c.cmd(&mget).items().len(), keys.len());
        // A dedicated connection (transaction) and a subscriber log in too.
        assert_eq!(c.cmd(&["MULTI"]), Reply::ok());
        assert_eq!(c.cmd(&["INCR", "k0"]), Reply::Status("QUEUED".into()));
        assert!(!c.cmd(&["EXEC"]).is_error());
        let mut s = proxy.conn();
        assert!(
            !s.cmd(&["SUBSCRIBE", "ch"]).is_error(),
            "SUBSCRIBE in {round}"
        );
    };
    work(&mut c, "one");
    // Health checks log in: the nodes stay up.
    std::thread::sleep(Duration::from_millis(300));
    let topo = common::admin::topology(proxy.admin_port());
    assert!(topo.nodes.iter().all(|n| n.up()), "{topo}");
    let body = http(proxy.admin_port(), "GET", "/topology").body;
    assert!(!body.contains("pw1"), "{body}");
    // Rotate: new password on the nodes, the file rewritten, a reload (SIGHUP).
    for n in &nodes {
        let mut a = as_proxy_user(n, "pw1");
        assert_eq!(
            a.cmd(&["ACL", "SETUSER", "proxy", "resetpass", ">pw2"]),
            Reply::ok()
        );
    }
    std::fs::write(&file, "pw2\n").unwrap();
    let version = common::admin::topology(proxy.admin_port()).version;
    proxy.signal("HUP");
    wait_until("reload after rotation", Duration::from_secs(10), || {
        common::admin::topology(proxy.admin_port()).version > version
    });
    // Old connections are closed by the nodes; new ones must use pw2.
    for n in &nodes {
        as_proxy_user(n, "pw2").cmd(&["CLIENT", "KILL", "USER", "proxy"]);
    }
    let mut c = proxy.conn();
    work(&mut c, "two");
    let log = proxy.log();
    assert!(
        !log.contains("pw1") && !log.contains("pw2"),
        "log shows a secret"
    );
}

#[test]
fn check_and_convert_print_no_secret() {
    let dir = TempDir::new("acl-check");
    let file = dir.join("pw");
    std::fs::write(&file, "filesecret").unwrap();
    let yaml = format!(
        "listen: 127.0.0.1:{}\nnodes:\n  - {{name: a, addr: \"127.0.0.1:1\"}}\nauth: topsecret\n\
         backend:\n  username: u\n  password_file: {:?}\n\
         users:\n  - {{name: app, password: usersecret, commands: \"+@read +nosuchcmd\"}}\n",
        free_port(),
        file.display()
    );
    let cfg = dir.join("ringproxy.yaml");
    std::fs::write(&cfg, &yaml).unwrap();
    let out = Command::new(ringproxy_bin())
        .arg("--check")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("users[0].commands") && text.contains("nosuchcmd"),
        "{text}"
    );
    for secret in ["topsecret", "filesecret", "usersecret"] {
        assert!(!text.contains(secret), "--check printed {secret}: {text}");
    }
}
