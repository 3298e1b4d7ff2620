//! The relay binary: reads the command line, sets up logging, binds, prints the URL to open and
//! runs [`relay::run`] until SIGINT or SIGTERM.

use anyhow::Context;
use clap::Parser;
use relay::Cli;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    allocator::tune();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?
        .block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    init_logging(cli.log_json);
    cli.config.validate()?;

    let addr = SocketAddr::new(cli.listen_addr(), cli.port);
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("could not listen on {addr} (is another relay running? try --port)")
    })?;
    let bound = listener
        .local_addr()
        .context("the listener has no address")?;
    plan_file_descriptors(&mut cli.config);

    // `cargo xtask run` and people read this line: print it to stdout, not only to the log.
    let url = browser_url(bound);
    println!("tabchain relay listening; open {url}");
    tracing::info!(%bound, %url, "tabchain relay listening");
    let mut config = cli.config;
    if cli.lan {
        config.lan_urls = relay::lan_urls(&interface_addresses(), bound.port());
        if config.lan_urls.is_empty() {
            println!(
                "--lan: this machine has no IPv4 address on a network; phones cannot reach it"
            );
        }
        for lan_url in &config.lan_urls {
            println!("on the local network (phones on the same Wi-Fi): open {lan_url}");
        }
        tracing::info!(urls = ?config.lan_urls, "listening on the local network");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(allocator::give_back_freed_memory());

    relay::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// Every address of this machine's interfaces; none when they cannot be listed.
fn interface_addresses() -> Vec<(String, IpAddr)> {
    match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces
            .iter()
            .map(|interface| (interface.name.clone(), interface.ip()))
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "could not list the network interfaces");
            Vec::new()
        }
    }
}

/// A URL a browser on this machine can open: an unspecified address (0.0.0.0) means loopback too.
fn browser_url(bound: SocketAddr) -> String {
    let host = if bound.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        bound.ip()
    };
    format!("http://{}/", SocketAddr::new(host, bound.port()))
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Logs go to stderr; stdout carries only the line with the URL, for people and scripts.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (systemd's stop).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the relay");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

/// Each connection is a file descriptor; a soft limit below the connection cap makes accepts fail
/// long before the cap is reached. Reads /proc so no libc binding is needed.
/// Makes sure the process may open the descriptors its caps allow: raises the soft open-files
/// limit up to the hard one when it is lower than needed, and when even that is short, lowers
/// --max-connections to what fits (and says so), so the relay refuses sockets with `server_full`
/// rather than failing to accept them at all.
fn plan_file_descriptors(config: &mut relay::Config) {
    let needed = relay::descriptors_needed(config);
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit read and write the struct given, nothing else.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
                && (limit.rlim_cur as usize) < needed
            {
                let raised = libc::rlimit {
                    rlim_cur: (needed as libc::rlim_t).min(limit.rlim_max),
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    tracing::info!(
                        from = limit.rlim_cur,
                        to = raised.rlim_cur,
                        "raised the open-files limit"
                    );
                }
            }
        }
    }
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse::<usize>().ok());
    if let Some(soft) = soft.filter(|soft| *soft < needed) {
        let fits = relay::connections_that_fit(config, soft);
        tracing::warn!(
            open_files_limit = soft,
            needed,
            max_connections = config.max_connections,
            lowered_to = fits,
            "the open-files limit is below what --max-connections needs, so --max-connections is lowered to fit; raise the limit (ulimit -n, or LimitNOFILE= in the systemd unit)"
        );
        config.max_connections = fits;
    }
}

/// glibc's malloc keeps memory a flood freed: large blocks come from its heap once its mmap
/// threshold has grown (it grows to the largest block freed), and free heap pages stay mapped.
/// The relay fixes the threshold, so message buffers of 128 KiB and more are mapped on their own
/// and unmapped when freed, and every few seconds hands free heap pages back (`malloc_trim`), so
/// RSS falls back to what is in use after an attack. mimalloc was measured as the alternative and
/// lost: more memory idle, and slower to give a flood's memory back (BENCHMARKS.md, "Allocator").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod allocator {
    use std::time::Duration;

    /// Blocks at least this large are mapped on their own: every message buffer near the frame
    /// limit, none of the small frames of ordinary gossip.
    const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;
    /// How often free heap pages go back. A trim of an idle heap costs microseconds; after a
    /// flood a few milliseconds, once.
    const TRIM_INTERVAL: Duration = Duration::from_secs(5);

    /// Fixes the mmap threshold; called first thing, before the runtime's threads allocate.
    pub fn tune() {
        // SAFETY: mallopt only sets a parameter of glibc's own allocator; it takes no pointers.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
        }
    }

    pub async fn give_back_freed_memory() {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim walks glibc's own free lists under its locks; no pointers.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}
