//! The `ringproxy` binary: serve, check a config, show where keys go.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ringproxy::config::{self, Config};
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;

/// A Redis sharding proxy over a consistent-hash ring.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// Config file (ringproxy YAML, or a nutcracker YAML file as it is).
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// Validate the config, print every problem with its line, and exit.
    #[arg(long)]
    check: bool,
    /// Log as JSON lines (overrides log.format).
    #[arg(long)]
    log_json: bool,
    /// Admin HTTP address, overriding the config's `admin` (e.g. for nutcracker
    /// files, which cannot set it); `none` turns the admin port off.
    #[arg(long, value_name = "HOST:PORT|none")]
    admin: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print the node of each key: `KEY NODE-NAME NODE-ADDR`, one line per key.
    Route {
        /// Keys to place (keys starting with `-` are taken as keys too).
        #[arg(required = true, allow_hyphen_values = true)]
        keys: Vec<std::ffi::OsString>,
    },
    /// Print the ringproxy YAML equivalent of a nutcracker (twemproxy) config file.
    Convert {
        /// The nutcracker YAML file.
        file: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Cmd::Convert { file }) = &cli.cmd {
        return convert(file);
    }
    let Some(path) = cli.config.clone() else {
        eprintln!("ringproxy: --config FILE is required");
        return std::process::ExitCode::from(2);
    };
    let (config, hash, nutcracker) = match load(&path) {
        Ok(Loaded {
            config,
            notes,
            hash,
            nutcracker,
        }) => {
            for n in &notes {
                eprintln!("{}: note: {n}", path.display());
            }
            (config, hash, nutcracker)
        }
        Err(config::ConfigError::Invalid { path, problems }) => {
            for p in &problems {
                eprintln!("{path}: {p}");
            }
            eprintln!("ringproxy: {} problem(s) in {path}", problems.len());
            return std::process::ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("ringproxy: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let admin_override = cli.admin.as_ref().map(|a| (a != "none").then(|| a.clone()));
    if cli.check {
        println!("{}: ok ({} pool(s))", path.display(), config.pools.len());
        print!("{}", binds(&config, &admin_override, nutcracker));
        print!("{}", eject_notes(&config));
        return std::process::ExitCode::SUCCESS;
    }
    let result = match cli.cmd {
        Some(Cmd::Route { keys }) => route(&config, &keys),
        None | Some(Cmd::Convert { .. }) => {
            let opts = ringproxy::app::RunOptions {
                workers: None,
                config_path: Some(path),
                config_hash: hash,
                admin_override,
            };
            serve(config, opts, cli.log_json)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringproxy: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

/// A checked config file.
struct Loaded {
    config: Config,
    /// Settings accepted but not used or used differently.
    notes: Vec<config::Problem>,
    /// Hash of the file's text.
    hash: u64,
    /// The file is a nutcracker pool file (it has no `admin` field).
    nutcracker: bool,
}

/// Reads and checks a config file.
fn load(path: &std::path::Path) -> Result<Loaded, config::ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| config::ConfigError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let hash = ringproxy::reload::text_hash(&text);
    let nutcracker = config::nutcracker::looks_like_nutcracker(&text);
    config::check(&text)
        .map(|(config, notes)| Loaded {
            config,
            notes,
            hash,
            nutcracker,
        })
        .map_err(|problems| config::ConfigError::Invalid {
            path: path.display().to_string(),
            problems,
        })
}

/// One line per pool with `health.eject: true`, for `--check`: what ejection costs.
fn eject_notes(config: &Config) -> String {
    config
        .pools
        .iter()
        .filter(|p| p.health.eject)
        .map(|p| {
            format!(
                "pool {}: health.eject is on: a down node's keys move to live nodes, and writes to them acknowledged while it is out are lost when it returns (its old values win; nutcracker's cache behaviour)\n",
                p.name
            )
        })
        .collect()
}

/// What serving `config` binds, for `--check`: a `listen:` line per pool, then the
/// admin address (after `--admin`) or why there is none.
fn binds(config: &Config, admin_override: &Option<Option<String>>, nutcracker: bool) -> String {
    let mut out = String::new();
    for p in &config.pools {
        out.push_str(&format!(
            "listen: {} (pool {})\n",
            config::checks::listen_text(&p.listen),
            p.name
        ));
    }
    let admin = match admin_override {
        Some(a) => a.as_ref(),
        None => config.admin.as_ref(),
    };
    let why = match (admin_override, nutcracker) {
        (Some(_), _) => "--admin none",
        (None, true) => "a nutcracker file has no admin field; --admin HOST:PORT enables it",
        (None, false) => "the file says admin: null",
    };
    match admin {
        Some(a) => out.push_str(&format!("admin: {a}\n")),
        None => out.push_str(&format!("admin: none ({why})\n")),
    }
    out
}

fn convert(file: &std::path::Path) -> std::process::ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("ringproxy: cannot read {}: {e}", file.display());
            return std::process::ExitCode::from(1);
        }
    };
    match config::nutcracker::parse(&text) {
        Ok(nc) => {
            print!("{}", config::convert::nutcracker_to_ringproxy(&nc));
            std::process::ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", file.display());
            }
            std::process::ExitCode::from(1)
        }
    }
}

fn route(config: &Config, keys: &[std::ffi::OsString]) -> anyhow::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let pool = config.pools.first().context("no pool in config")?;
    let placement = ringproxy::topology::placement_for(pool, &vec![true; pool.nodes.len()]);
    for k in keys {
        let key = k.as_bytes();
        let node = placement.node_for_key(key).context("no node")?;
        let n = &pool.nodes[node];
        let addr = config::checks::addr_text(&n.addr);
        println!("{} {} {}", key.escape_ascii(), n.name, addr);
    }
    Ok(())
}

fn serve(
    config: Config,
    mut opts: ringproxy::app::RunOptions,
    log_json: bool,
) -> anyhow::Result<()> {
    init_logging(&config, log_json);
    let n = match config.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // Absolute but NOT resolved: a Kubernetes ConfigMap swaps the symlink behind it.
    opts.config_path = opts
        .config_path
        .map(|p| std::path::absolute(&p).unwrap_or(p));
    ringproxy::workers::Workers::run(n, |workers| {
        opts.workers = Some(workers);
        ringproxy::app::run(config, opts, CancellationToken::new())
    })
    .context("cannot start the worker runtimes")??;
    Ok(())
}

fn init_logging(config: &Config, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json || config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}
