//! `ssehub serve`: configuration, telemetry, the listener, and phased shutdown. The hub logic
//! is in `ssehub-core` and the routes in `ssehub-http`; this file only wires them to a process.
//!
//! Shutdown, on SIGTERM or SIGINT:
//! 1. stop accepting connections, and tell the hub to end every stream (each sends what it has
//!    queued, then ends, so its client reconnects with its `Last-Event-ID`);
//! 2. wait for open requests and streams to finish, up to `[shutdown] grace_secs`;
//! 3. past that deadline, close whatever is left and exit.
//!
//! A second signal exits at once.
//!
//! With `[tls]`, the hub serves HTTPS (HTTP/2 and HTTP/1.1) and reads its certificate and key
//! again on SIGHUP (see `ssehub_server::TlsCerts`): new connections get the new certificate,
//! open streams keep going, and a bad file keeps the old one (logged as an error).

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ssehub_core::{BoxFuture, Hub, MemoryStore, Store, StoreError};
use ssehub_http::{AppState, SubscriptionDirectory, router};
use ssehub_store::DiskStore;
use tokio::sync::watch;
use tracing_subscriber::EnvFilter;

use crate::cli::{ServeArgs, StoreKind};
use crate::config::Config;

pub(crate) fn run(args: &ServeArgs) -> anyhow::Result<()> {
    if args.print_default_config {
        print!("{}", Config::default().to_toml());
        return Ok(());
    }
    let mut config = effective_config(args)?;
    let demo = match args.demo {
        true => Some(crate::demo::prepare(&mut config, args.listen)?),
        false => None,
    };
    if args.check_config {
        print!("{}", config.to_toml());
        eprintln!("ssehub: the configuration is valid");
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    ssehub_server::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut store = None;
    let result = runtime.block_on(serve(args, config, &mut store, demo));
    // Whatever is still open after the grace period is closed here.
    runtime.shutdown_timeout(Duration::from_millis(200));
    if let Some(store) = store
        && store.close(Duration::from_secs(5))
    {
        tracing::info!("the store is closed");
    }
    result
}

/// The config file, with flags and `SSEHUB_*` variables on top, validated.
fn effective_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    args.override_config(&mut config)?;
    config.add_relay_flags(&args.relay)?;
    config.validate()?;
    Ok(config)
}

/// Runs the hub until shutdown. A durable store is handed back through `disk` so that it can
/// be closed cleanly once the runtime has let go of it.
async fn serve(
    args: &ServeArgs,
    config: Config,
    disk: &mut Option<DiskStore>,
    demo: Option<crate::demo::Prepared>,
) -> anyhow::Result<()> {
    let auth = config.auth(args.listen)?;
    if auth.anonymous_publish {
        tracing::info!("no publisher key: anyone who can reach this loopback address may publish");
    }
    // Read before anything listens: a bad certificate stops the start.
    let tls = match (&config.tls.cert, &config.tls.key) {
        (Some(cert), Some(key)) => {
            let certs = ssehub_server::TlsCerts::load(cert, key)?;
            let server_config = certs.server_config()?;
            reload_on_hangup(certs)?;
            Some(server_config)
        }
        (None, None) => None,
        _ => anyhow::bail!("tls.cert and tls.key (--tls-cert, --tls-key) go together"),
    };
    let listener = ssehub_server::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let mut directory = None;
    let clustered = config.cluster_options()?;
    // What the listening line names: `--store` does not apply to a node of a cluster.
    let store_name = match (&clustered, args.store) {
        (Some(_), _) => "cluster",
        (None, StoreKind::Memory) => "memory",
        (None, StoreKind::Disk) => "disk",
    };
    let store: Arc<dyn Store> = match (clustered, args.store) {
        (Some(cluster), _) => {
            let (url, name) = (ssehub_cluster::redacted(&cluster.url), cluster.name.clone());
            let store = ssehub_cluster::RedisStore::open(cluster).await?;
            let nodes = store.directory();
            tracing::info!(%url, %name, node = nodes.node_id(), last = store.bounds().last, "a node of the cluster");
            directory = Some(Arc::new(ClusterSubscriptions(nodes)));
            Arc::new(store)
        }
        (None, StoreKind::Memory) => Arc::new(MemoryStore::new(config.memory_retention())),
        (None, StoreKind::Disk) => {
            let started = std::time::Instant::now();
            let store = DiskStore::open(&args.data_dir, config.disk_options()?)?;
            tracing::info!(
                data_dir = %args.data_dir.display(),
                events = store.len(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "the durable store is open"
            );
            *disk = Some(store.clone());
            Arc::new(store)
        }
    };
    let hub = Hub::new(store, config.hub());
    let mut http = config.http();
    http.allowed_hosts = config.allowed_hosts(args.listen);
    let mut state = AppState::new(hub.clone(), http).with_auth(auth);
    if let Some(directory) = directory {
        state = state.with_subscription_directory(directory);
    }
    let listener = ssehub_server::Listener::new(listener, state.metrics.connection_metrics());
    let app = router(state).map_err(anyhow::Error::msg)?;

    let (stop_tx, mut stop_rx) = watch::channel(false);
    tokio::spawn(watch_signals(stop_tx));
    let graceful = {
        let mut stop_rx = stop_rx.clone();
        let hub = hub.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
            hub.shutdown();
        }
    };
    let limits = config.server_limits();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut server = match tls {
        None => tokio::spawn(ssehub_server::serve(listener, app, limits, graceful)),
        Some(tls) => tokio::spawn(ssehub_server::serve_tls(
            listener, app, limits, tls, graceful,
        )),
    };

    // The one line scripts and tests wait for.
    println!("ssehub listening on {scheme}://{addr}");
    std::io::stdout().flush().ok();
    tracing::info!(%addr, store = store_name, "ssehub is listening");
    if let Some(demo) = demo {
        for line in crate::demo::start(&hub, &config, &format!("http://{addr}"), demo) {
            // Not `println!`: a closed stdout (`| head -1`) must not end the hub.
            writeln!(std::io::stdout(), "{line}").ok();
        }
        std::io::stdout().flush().ok();
    }

    // Biased, the signal first: on a signal the server may finish its drain before this
    // task looks, and that is still a shutdown (logged as one below), not a server failure.
    tokio::select! {
        biased;
        _ = stop_rx.wait_for(|stop| *stop) => {}
        result = &mut server => {
            result.context("the server failed")?;
            return Ok(());
        }
    }
    let grace = Duration::from_secs(config.shutdown.grace_secs);
    tracing::info!(
        grace_secs = grace.as_secs(),
        "shutting down: no new connections, streams are ending"
    );
    match tokio::time::timeout(grace, &mut server).await {
        Ok(result) => {
            result.context("the server failed while shutting down")?;
            tracing::info!("shut down cleanly");
        }
        Err(_) => tracing::warn!("the grace period is over; closing the remaining connections"),
    }
    Ok(())
}

/// The Mercure subscriptions of a cluster's nodes, kept as the records of each node in Redis.
#[derive(Debug)]
struct ClusterSubscriptions(ssehub_cluster::NodeDirectory);

impl SubscriptionDirectory for ClusterSubscriptions {
    fn enter(&self, subscriber: &str, record: String) {
        self.0.set(subscriber, record);
    }

    fn leave(&self, subscriber: &str) {
        self.0.remove(subscriber);
    }

    fn others<'a>(
        &'a self,
        keep: &'a (dyn Fn(&str) -> bool + Send + Sync),
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>, StoreError>> {
        Box::pin(self.0.others(keep, max))
    }

    fn other<'a>(
        &'a self,
        subscriber: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(self.0.other(subscriber))
    }
}

/// Reloads the TLS certificate and key on every SIGHUP, keeping the current ones when the
/// files are bad. The handler is in place when this returns (before the hub listens).
#[cfg(unix)]
fn reload_on_hangup(certs: Arc<ssehub_server::TlsCerts>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match certs.reload() {
                Ok(()) => tracing::info!("SIGHUP: the TLS certificate and key are reloaded"),
                Err(error) => tracing::error!(
                    %error,
                    "SIGHUP: cannot reload the TLS certificate; the current one stays in use"
                ),
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn reload_on_hangup(_certs: Arc<ssehub_server::TlsCerts>) -> anyhow::Result<()> {
    Ok(())
}

/// Sets `stop` on the first SIGTERM or SIGINT; exits the process on the second.
async fn watch_signals(stop: watch::Sender<bool>) {
    wait_for_signal().await;
    let _ = stop.send(true);
    wait_for_signal().await;
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
