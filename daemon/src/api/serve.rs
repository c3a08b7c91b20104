//! Serving the router: axum's routes on hyper's HTTP/1 connections, with the bounds that
//! `axum::serve` does not set. A client that opens connections and never finishes a request's
//! headers (or leaves one idle) is dropped after [`HEADER_TIMEOUT`], and at most
//! [`MAX_CONNECTIONS`] are open at once: beyond that a new connection is closed at once, so a
//! flood of idle sockets cannot use up the daemon's file descriptors and take the API down.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections open at once. The CLI opens one per command, the tray one or two; the systemd
/// units allow the process far more descriptors (`LimitNOFILE`).
pub const MAX_CONNECTIONS: usize = 64;
/// How long a connection may take to send a request's headers, or sit idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for requests in progress (event streams end by themselves).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in
/// progress finish (bounded).
pub async fn serve(listener: TcpListener, router: Router, shutdown: impl Future<Output = ()>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    let mut refused = 0u64;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: give the open connections time to end.
                tracing::warn!("accepting an API connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    "more than {MAX_CONNECTIONS} API connections are open; refused {refused} so far (idle ones close after {HEADER_TIMEOUT:?})"
                );
            }
            continue; // dropping the stream closes it
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .keep_alive(true);
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("API connection ended: {e}");
            }
            drop(permit);
        });
    }
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => {
            tracing::warn!("API requests still open after {DRAIN_TIMEOUT:?}; stopping anyway");
        }
    }
}
