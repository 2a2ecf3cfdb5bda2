//! A test helper process for the store's integration tests: an owner that
//! writes fenced on command, a timer loop, or a clock reader, driven over
//! stdin/stdout (one command or reply per line) so that tests can pause it
//! (SIGSTOP) and kill it (SIGKILL) like a real replica.
//!
//! ```text
//! tilewave-store-probe --endpoints URL[,URL] --prefix P --mode owner|timers|clock
//!                      [--work W] [--holder H] [--ttl-secs N] [--handler-delay-ms N]
//!                      [--tls-cert F --tls-key F --tls-ca F]
//! ```
//!
//! With the TLS files, `https://` endpoints are reached over mutual TLS.
//!
//! - `owner`: acquires `--work`, prints `OWNED <token>` (and `LOST` when the
//!   lease is lost); `write <key below the prefix> <text>` commits a fenced
//!   put and prints `OK <revision>` or `ERR <kind> <message>`.
//! - `timers`: acquires `--work`, prints `OWNED <token>`, and runs the timer
//!   loop on the virtual clock; each timer's effect puts
//!   `events/fired-<timer id>` (an `Event` naming the holder).
//! - `clock`: follows the virtual clock; `now` prints `NOW <unix nanos>`,
//!   `advance <seconds>` prints `OK <unix nanos>` or `ERR <kind> <message>`.
//!
//! `quit` (or end of input) exits. Diagnostics go to stderr.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use tilewave_proto::common::v1::Event;
use tilewave_store::{
    Actor, Change, Clock, Error, Ownership, Store, StoreConfig, TimerKinds, VirtualClock, run_timer_loop,
};
use tokio::io::{AsyncBufReadExt, BufReader};

type BoxResult<T> = Result<T, Box<dyn StdError + Send + Sync>>;

#[derive(Debug, Default)]
struct Args {
    endpoints: Vec<String>,
    prefix: String,
    mode: String,
    work: String,
    holder: String,
    ttl: Duration,
    handler_delay: Duration,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    tls_ca: Option<String>,
}

fn parse_args() -> BoxResult<Args> {
    let mut a = Args {
        prefix: tilewave_store::keys::DEFAULT_PREFIX.to_owned(),
        work: "probe".into(),
        holder: format!("probe-{}", std::process::id()),
        ttl: Duration::from_secs(3),
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--endpoints" => a.endpoints = value.split(',').map(str::to_owned).collect(),
            "--prefix" => a.prefix = value,
            "--mode" => a.mode = value,
            "--work" => a.work = value,
            "--holder" => a.holder = value,
            "--ttl-secs" => a.ttl = Duration::from_secs(value.parse()?),
            "--handler-delay-ms" => a.handler_delay = Duration::from_millis(value.parse()?),
            "--tls-cert" => a.tls_cert = Some(value),
            "--tls-key" => a.tls_key = Some(value),
            "--tls-ca" => a.tls_ca = Some(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    if a.endpoints.is_empty() {
        return Err("--endpoints is required".into());
    }
    Ok(a)
}

/// The client TLS of `--tls-cert/--tls-key/--tls-ca`, when all are given.
fn tls(a: &Args) -> BoxResult<Option<etcd_client::TlsOptions>> {
    let (Some(cert), Some(key), Some(ca)) = (&a.tls_cert, &a.tls_key, &a.tls_ca) else {
        return Ok(None);
    };
    let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
    Ok(Some(
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?))
            .identity(tonic::transport::Identity::from_pem(read(cert)?, read(key)?)),
    ))
}

/// The error's variant name, for the test to match on.
fn kind(e: &Error) -> String {
    format!("{e:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

fn say(line: &str) {
    // stdout is a pipe the test reads line by line.
    println!("{line}");
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("tilewave-store-probe: {e}");
        std::process::exit(1);
    }
}

async fn run() -> BoxResult<()> {
    let args = parse_args()?;
    let store = Store::connect(
        StoreConfig::new(args.endpoints.clone())
            .with_prefix(args.prefix.clone())
            .with_tls(tls(&args)?),
    )
    .await?;
    let actor = Actor::new(&args.holder);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    match args.mode.as_str() {
        "owner" => {
            let owner = Ownership::acquire(&store, &args.work, &args.holder, args.ttl).await?;
            let token = owner.token();
            say(&format!("OWNED {}", token.revision));
            let lost = owner.lost_signal();
            tokio::spawn(async move {
                let mut lost = lost;
                if lost.wait_for(|l| *l).await.is_ok() {
                    say("LOST");
                }
            });
            while let Some(line) = lines.next_line().await? {
                let mut parts = line.splitn(3, ' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("write"), Some(key), Some(text)) => {
                        let key = format!("{}{key}", store.keys().prefix());
                        let event = Event {
                            id: text.to_owned(),
                            message: args.holder.clone(),
                            ..Default::default()
                        };
                        let change = Change::new()
                            .put_unchecked(key, &event)
                            .fence(&token)
                            .audit(tilewave_store::audit::record("ProbeWrite", "probe", text, ""));
                        match store.commit(change, &actor).await {
                            Ok(info) => say(&format!("OK {}", info.revision)),
                            Err(e) => say(&format!("ERR {} {e}", kind(&e))),
                        }
                    }
                    (Some("quit"), _, _) => break,
                    _ => say(&format!("ERR Usage unknown command {line:?}")),
                }
            }
            owner.release().await?;
        }
        "timers" => {
            let owner = Ownership::acquire(&store, &args.work, &args.holder, args.ttl).await?;
            say(&format!("OWNED {}", owner.token().revision));
            let clock: Arc<dyn Clock> = VirtualClock::attach(&store).await?;
            let holder = args.holder.clone();
            let delay = args.handler_delay;
            let keys = store.keys().clone();
            let handler = move |timer: tilewave_store::Versioned<tilewave_proto::common::v1::Timer>| {
                let holder = holder.clone();
                let key = keys.event(&format!("fired-{}", timer.value.id));
                async move {
                    tokio::time::sleep(delay).await;
                    let event = Event {
                        id: timer.value.id.clone(),
                        message: holder,
                        ..Default::default()
                    };
                    Ok(Change::new().put_unchecked(key, &event))
                }
            };
            let shutdown = async {
                // Ends on `quit`, end of input, or lost ownership.
                tokio::select! {
                    () = owner.lost() => {}
                    _ = async { while let Ok(Some(l)) = lines.next_line().await { if l == "quit" { break; } } } => {}
                }
            };
            let kinds = TimerKinds::new().on("test", handler);
            let result = run_timer_loop(&store, clock, owner.token(), actor, kinds, shutdown).await;
            if let Err(e) = &result {
                say(&format!("ERR {} {e}", kind(e)));
            }
            owner.release().await?;
        }
        "clock" => {
            let clock = VirtualClock::attach(&store).await?;
            while let Some(line) = lines.next_line().await? {
                let mut parts = line.split(' ');
                match (parts.next(), parts.next()) {
                    (Some("now"), _) => say(&format!("NOW {}", clock.now().as_nanosecond())),
                    (Some("advance"), Some(secs)) => {
                        let secs: i64 = secs.parse()?;
                        match clock.advance(jiff::SignedDuration::from_secs(secs), &actor).await {
                            Ok(t) => say(&format!("OK {}", t.as_nanosecond())),
                            Err(e) => say(&format!("ERR {} {e}", kind(&e))),
                        }
                    }
                    (Some("quit"), _) => break,
                    _ => say(&format!("ERR Usage unknown command {line:?}")),
                }
            }
        }
        other => return Err(format!("unknown --mode {other:?}").into()),
    }
    Ok(())
}
