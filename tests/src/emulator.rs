//! What every cloud directory emulator shares: a latency before each answer, faults injected on
//! demand (a status after `skip` matching requests, or an answer cut off mid-body), and the
//! request log tests assert on. Each emulator says how its vendor words an injected status.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A fault to inject: requests whose path and query contain `path_contains` pass `skip` times,
/// then the next `remaining` get `status` (with `Retry-After` when given), or have their answer
/// cut off mid-body when `status` is 0.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fault {
    pub path_contains: String,
    #[serde(default)]
    pub skip: usize,
    pub status: u16,
    #[serde(default)]
    pub retry_after_secs: Option<u64>,
    #[serde(default = "one")]
    pub remaining: usize,
}

fn one() -> usize {
    1
}

/// One request to an emulated API (not its `/_test/` controls).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string.
    pub query: String,
    pub status: u16,
    /// Answered by an injected fault.
    pub injected: bool,
    /// The bytes of the answer's body (for the benchmarks' traffic count).
    pub bytes: usize,
}

#[derive(Default)]
struct Inner {
    faults: Vec<Fault>,
    requests: Vec<Recorded>,
    latency: Duration,
}

/// The latency, faults and log of one emulator.
#[derive(Default)]
pub struct Traffic {
    inner: Mutex<Inner>,
}

impl Traffic {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Drops every fault not yet answered.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// The fault for this request, if one applies now.
    fn take_fault(&self, target: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let index = inner
            .faults
            .iter()
            .position(|f| target.contains(&f.path_contains))?;
        let fault = &mut inner.faults[index];
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        let taken = fault.clone();
        fault.remaining = fault.remaining.saturating_sub(1);
        if fault.remaining == 0 {
            inner.faults.remove(index);
        }
        Some(taken)
    }
}

/// The middleware's state: the traffic, and how the vendor answers an injected status.
#[derive(Clone)]
pub struct Emulation {
    pub traffic: Arc<Traffic>,
    pub injected: fn(&Fault) -> Response,
}

/// Latency, injected faults and the request log, for everything but `/_test/`.
pub async fn middleware(
    State(emulation): State<Emulation>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/_test") {
        return next.run(request).await;
    }
    let query = request.uri().query().unwrap_or_default().to_string();
    let method = request.method().to_string();
    let traffic = &emulation.traffic;
    let latency = traffic.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let fault = traffic.take_fault(&format!("{path}?{query}"));
    let injected = fault.is_some();
    let (response, bytes) = match fault {
        Some(fault) if fault.status == 0 => (cut_off(), 0),
        Some(fault) => {
            let mut response = (emulation.injected)(&fault);
            if let Some(seconds) = fault.retry_after_secs {
                response.headers_mut().insert("retry-after", seconds.into());
            }
            (response, 0)
        }
        None => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
            let bytes = body.len();
            (Response::from_parts(parts, Body::from(body)), bytes)
        }
    };
    traffic.lock().requests.push(Recorded {
        method,
        path,
        query,
        status: response.status().as_u16(),
        injected,
        bytes,
    });
    response
}

/// A 200 whose body stops half-way: the connection is cut after the first bytes.
fn cut_off() -> Response {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(
            b"{\"kind\":\"cut\",\"value\":[{\"id\":\"",
        )),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "cut off by the emulator",
        )),
    ];
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An emulator's listener on 127.0.0.1 (`port` 0: a free one), and its address.
///
/// # Panics
/// When the port cannot be bound.
pub async fn bind(port: u16) -> (TcpListener, std::net::SocketAddr) {
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))
        .await
        .expect("bind the emulator on 127.0.0.1");
    let addr = listener.local_addr().expect("the emulator's address");
    (listener, addr)
}

/// A running emulator's server task; dropping it stops the server.
pub struct Served {
    shutdown: Option<oneshot::Sender<()>>,
}

impl Served {
    /// Serves `app` on `listener` until dropped; `name` is for the log.
    pub fn start(listener: TcpListener, app: axum::Router, name: &'static str) -> Served {
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("{name} emulator stopped: {e}");
            }
        });
        Served { shutdown: Some(tx) }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
