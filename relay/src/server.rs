//! The accept loop: TCP connections in, HTTP/1.1 served by hyper with the warp routes, until
//! shutdown.
//!
//! The relay accepts connections itself rather than through `warp::serve` for three reasons:
//! every socket gets `TCP_NODELAY` (small relay frames must not wait for Nagle's algorithm and a
//! delayed ACK, which adds up to 40 ms per hop), an upgraded connection comes back as the plain
//! `TcpStream` (no boxed wrapper per connection), and every socket is admitted (or not) before
//! HTTP begins: it takes one of the connection slots and one of its address's, and a plain HTTP
//! connection lives at most `--http-timeout-secs` (headers, body and response together), so a
//! client that asks for a file and never reads it gives its socket back.

use crate::admission::{Admitted, Held, Hold, Refused, RemoteAddr};
use crate::Relay;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::{debug, warn};

/// A client must send its request headers within this time, or the connection is dropped
/// (a slow-headers client would otherwise hold a socket forever).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time plain HTTP requests in flight get to finish at shutdown or at their deadline.
const HTTP_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// hyper's read buffer per HTTP connection, at most (its default is about 400 KiB): a browser's
/// request headers are 1-2 KiB and the relay reads no request bodies, so 16 KiB bounds what a
/// client sending huge headers can make a socket hold.
const HTTP_READ_BUFFER_BYTES: usize = 16 * 1024;
/// A socket over a cap is served only to be told so: a request and a short answer.
const REFUSAL_DEADLINE: Duration = Duration::from_secs(2);
/// Pause after an accept error that is not about one connection (for example, out of file
/// descriptors), so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Accepts and serves until the relay's shutdown token is cancelled; then stops accepting and
/// gives HTTP requests in flight a moment to finish.
pub(crate) async fn serve(listener: TcpListener, relay: Arc<Relay>) {
    let routes = warp::service(crate::routes::routes(relay.clone()));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = relay.shutdown.cancelled() => break,
        };
        let (stream, remote) = match accepted {
            Ok(connection) => connection,
            Err(error) if is_per_connection(&error) => continue,
            Err(error) => {
                warn!(%error, "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                    () = relay.shutdown.cancelled() => break,
                }
            }
        };
        let (held, refused, lifetime) = match relay.admission.admit(remote.ip()) {
            Admitted::Slot(slot) => (Held::Slot(slot), None, relay.config.http_timeout),
            Admitted::Refused(rejection, permit) => {
                relay.metrics.reject(rejection);
                (
                    Held::Refusal(rejection, permit),
                    Some(Refused(rejection)),
                    REFUSAL_DEADLINE,
                )
            }
            Admitted::Dropped(rejection) => {
                relay.metrics.reject(rejection);
                debug!(%remote, reason = rejection.as_str(), "socket closed at accept");
                continue;
            }
        };
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, "could not set TCP_NODELAY");
        }
        let hold = Hold::new(held);
        let service = TowerToHyperService::new(routes.clone());
        let request_hold = hold.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let extensions = request.extensions_mut();
            extensions.insert(RemoteAddr(remote));
            extensions.insert(request_hold.clone());
            if let Some(refused) = refused {
                extensions.insert(refused);
            }
            service.call(request)
        });
        let shutdown = relay.shutdown.clone();
        relay.tasks.spawn(async move {
            // Held here until the connection ends, unless an upgrade took it.
            let _hold = hold;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(HTTP_READ_BUFFER_BYTES)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(connection);
            let deadline = tokio::time::sleep(lifetime);
            tokio::pin!(deadline);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    match tokio::time::timeout(HTTP_SHUTDOWN_GRACE, connection.as_mut()).await {
                        Ok(result) => result,
                        Err(_) => return,
                    }
                }
                () = &mut deadline => {
                    // Past its lifetime: finish the response in flight briefly, then drop.
                    connection.as_mut().graceful_shutdown();
                    match tokio::time::timeout(HTTP_SHUTDOWN_GRACE, connection.as_mut()).await {
                        Ok(result) => result,
                        Err(_) => {
                            debug!(%remote, "HTTP connection past its deadline; dropped");
                            return;
                        }
                    }
                }
            };
            if let Err(error) = result {
                debug!(%error, %remote, "HTTP connection ended with an error");
            }
        });
    }
    debug!("stopped accepting connections");
}

/// Errors that concern only the connection being accepted; the next accept is unaffected.
fn is_per_connection(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
