//! One port, two protocols: a connection whose first byte is a TLS handshake (0x16) is served over
//! rustls, any other over plain HTTP. Each connection can be killed by its handler, which is how a
//! "response lost" fault closes the socket without an answer.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Largest request body accepted.
const MAX_BODY: usize = 1 << 20;

/// Lets a handler close its connection without answering.
#[derive(Debug, Clone, Default)]
pub struct ConnectionKill(Arc<Notify>);

impl ConnectionKill {
    pub fn kill(&self) {
        self.0.notify_one();
    }
}

/// The request path as the client sent it, before a base-URL prefix was stripped.
#[derive(Debug, Clone)]
pub struct OriginalPath(pub String);

/// Strips a base-URL prefix: `/prefix/api/v3/...` is routed as `/api/v3/...`.
fn strip_prefix(request: &mut Request<Incoming>, markers: &[&str]) {
    let path = request.uri().path().to_string();
    request.extensions_mut().insert(OriginalPath(path.clone()));
    if markers.iter().any(|m| path.starts_with(m)) {
        return;
    }
    let Some(start) = markers.iter().filter_map(|m| path.find(m)).min() else {
        return;
    };
    let mut parts = request.uri().clone().into_parts();
    let rest = match request.uri().query() {
        Some(q) => format!("{}?{q}", &path[start..]),
        None => path[start..].to_string(),
    };
    if let Ok(pq) = rest.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = hyper::Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
    }
}

/// Accepts connections until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: TlsAcceptor,
    markers: &'static [&'static str],
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(connection(
                    stream,
                    router.clone(),
                    tls.clone(),
                    markers,
                    shutdown.clone(),
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

async fn connection(
    stream: TcpStream,
    router: Router,
    tls: TlsAcceptor,
    markers: &'static [&'static str],
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let is_tls = matches!(stream.peek(&mut first).await, Ok(1) if first[0] == 0x16);
    let kill = ConnectionKill::default();
    let handle = kill.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        strip_prefix(&mut request, markers);
        request.extensions_mut().insert(handle.clone());
        let router = router.clone();
        async move {
            // Read the whole body before routing: a handler that ignores a body (SDKs send `{}`
            // on GETs) would leave it unread, and hyper then closes the keep-alive connection.
            let (parts, body) = request.into_parts();
            let Ok(bytes) = axum::body::to_bytes(Body::new(body), MAX_BODY).await else {
                let mut response = Response::new(Body::empty());
                *response.status_mut() = hyper::StatusCode::PAYLOAD_TOO_LARGE;
                return Ok(response);
            };
            let request = Request::from_parts(parts, Body::from(bytes));
            Ok::<Response<Body>, Infallible>(
                router.oneshot(request).await.unwrap_or_else(|e| match e {}),
            )
        }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if is_tls {
        let stream = match tls.accept(stream).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
        };
        // ALPN decided the protocol: no need to sniff for an HTTP/2 preface.
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(stream);
        let result = if h2 {
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service);
            tokio::select! {
                result = conn => result,
                _ = kill.0.notified() => Ok(()),
                _ = shutdown.cancelled() => Ok(()),
            }
        } else {
            let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
            tokio::select! {
                result = conn => result,
                _ = kill.0.notified() => Ok(()),
                _ = shutdown.cancelled() => Ok(()),
            }
        };
        if let Err(error) = result {
            tracing::debug!(%error, "TLS connection ended with an error");
        }
    } else {
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::select! {
            _ = conn => {}
            _ = kill.0.notified() => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
