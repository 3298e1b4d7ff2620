//! The HTTP side: which path does what.
//!
//! - `/ws` and `/ws/{room}`: the WebSocket upgrade (room `lobby` when none is named).
//! - `/healthz`: `ok` while the relay serves; `degraded: ...` while its hub cannot deliver
//!   everything (the broker is away).
//! - `/metrics`: the counters in Prometheus text format.
//! - everything else: the web app from the static directory, with `index.html` for unknown paths
//!   so client-side routes survive a reload, or a page explaining how to build the app.
//!
//! The WebSocket handshake is answered here rather than by `warp::ws()` so the socket can be
//! configured (warp gives every connection a 128 KiB read buffer).

use crate::connection;
use crate::hub::{HubHealth, RoomName};
use crate::metrics::Rejection;
use crate::server::RemoteAddr;
use crate::Relay;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use shared::protocol::relay::DEFAULT_ROOM;
use shared::protocol::RelayErrorCode;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

/// All routes of the relay.
pub(crate) fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    let health_relay = relay.clone();
    let healthz = warp::path("healthz")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || match health_relay.hub.health() {
            HubHealth::Ok => "ok\n".into_response(),
            // Still 200: the relay serves its own peers, and a proxy that took every degraded
            // relay out during a broker outage would leave users with nothing.
            HubHealth::Degraded(why) => format!("degraded: {why}\n").into_response(),
        });

    let metrics_relay = relay.clone();
    let metrics = warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            let mut body = metrics_relay.metrics.render(metrics_relay.hub.room_count());
            metrics_relay.hub.render_metrics(&mut body);
            warp::reply::with_header(
                body,
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .into_response()
        });

    let ws_relay = relay.clone();
    let websocket = warp::path("ws")
        .and(warp::path::tail())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<RemoteAddr>())
        .map(
            move |tail: warp::path::Tail,
                  headers: HeaderMap,
                  on_upgrade: Option<OnUpgrade>,
                  remote: Option<RemoteAddr>| {
                let remote = remote.map(|RemoteAddr(addr)| addr);
                upgrade(&ws_relay, tail.as_str(), &headers, on_upgrade, remote)
            },
        );

    let static_dir = relay.config.static_dir.clone();
    let app = warp::fs::dir(static_dir.clone())
        .or(warp::fs::file(static_dir.join("index.html")))
        .unify()
        .map(Reply::into_response);
    let app_missing = warp::get().map(move || app_missing_page(&static_dir));

    healthz
        .or(metrics)
        .unify()
        .or(websocket)
        .unify()
        .or(app)
        .unify()
        .or(app_missing)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            let status = if rejection.is_not_found() {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::METHOD_NOT_ALLOWED
            };
            Ok::<_, std::convert::Infallible>(status.into_response())
        })
        .unify()
}

fn text(status: StatusCode, body: &'static str) -> Response {
    warp::reply::with_status(body, status).into_response()
}

/// Answers a request on `/ws...`: checks it, then switches protocols and starts the connection.
fn upgrade(
    relay: &Arc<Relay>,
    room: &str,
    headers: &HeaderMap,
    on_upgrade: Option<OnUpgrade>,
    remote: Option<SocketAddr>,
) -> Response {
    let room_name = if room.is_empty() { DEFAULT_ROOM } else { room };
    let Some(room) = RoomName::parse(room_name) else {
        relay.metrics.reject(Rejection::InvalidRoom);
        return text(
            StatusCode::BAD_REQUEST,
            "invalid_room: a room name is 1 to 64 characters of a-z A-Z 0-9 - _ .\n",
        );
    };
    let Some(key) = websocket_key(headers) else {
        relay.metrics.reject(Rejection::NotWebSocket);
        let mut response = text(
            StatusCode::UPGRADE_REQUIRED,
            "this is the relay's WebSocket endpoint; connect with a WebSocket client\n",
        );
        response
            .headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return response;
    };
    if !origin_allowed(&relay.config.allowed_origins, headers) {
        relay.metrics.reject(Rejection::OriginNotAllowed);
        return text(
            StatusCode::FORBIDDEN,
            "this origin may not connect to this relay\n",
        );
    }
    let Some(on_upgrade) = on_upgrade else {
        // Only HTTP/1.1 connections can switch protocols.
        relay.metrics.reject(Rejection::NotWebSocket);
        return text(StatusCode::UPGRADE_REQUIRED, "WebSockets need HTTP/1.1\n");
    };
    let slot = relay.connection_slots.clone().try_acquire_owned().ok();
    let task_relay = relay.clone();
    relay.tasks.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                debug!(error = %error, "upgrade failed");
                return;
            }
        };
        // The server hands hyper a plain TcpStream, so this always succeeds.
        let Ok(parts) = upgraded.downcast::<TokioIo<TcpStream>>() else {
            tracing::error!("upgraded connection is not a TcpStream; dropping it");
            return;
        };
        let config = connection::websocket_config(task_relay.config.max_frame_bytes);
        let socket = WebSocketStream::from_partially_read(
            parts.io.into_inner(),
            parts.read_buf.to_vec(),
            Role::Server,
            Some(config),
        )
        .await;
        match slot {
            Some(slot) => connection::serve(task_relay, socket, room, remote, slot).await,
            None => {
                task_relay.metrics.reject(Rejection::ServerFull);
                connection::refuse(socket, RelayErrorCode::ServerFull).await;
            }
        }
    });

    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    response_headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    response_headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
            .expect("base64 is a valid header value"),
    );
    response
}

/// The `Sec-WebSocket-Key` of a valid WebSocket upgrade request (RFC 6455 section 4.2.1), or
/// `None` when the request is not one.
fn websocket_key(headers: &HeaderMap) -> Option<&HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    let is_upgrade = has_token(header::CONNECTION, "upgrade")
        && has_token(header::UPGRADE, "websocket")
        && headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|version| version == "13");
    is_upgrade
        .then(|| headers.get(header::SEC_WEBSOCKET_KEY))
        .flatten()
}

/// Browsers always send `Origin`; an empty allow-list or a request without one (a native node)
/// passes.
fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    if allowed.is_empty() {
        return true;
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => origin.to_str().is_ok_and(|origin| {
            allowed
                .iter()
                .any(|allowed| allowed.trim_end_matches('/') == origin)
        }),
    }
}

fn app_missing_page(static_dir: &std::path::Path) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tabchain relay</title></head>\n\
         <body><h1>The tabchain relay is running, but the web app is not built</h1>\n\
         <p>No <code>index.html</code> in <code>{}</code>. Build the app from the repository root with</p>\n\
         <pre>trunk build --release</pre>\n\
         <p>and start the relay with <code>--static-dir dist</code> (or <code>STATIC_DIR</code>), or run \
         <code>cargo xtask run</code>, which does both.</p>\n\
         <p>The WebSocket endpoint <code>/ws/&lt;room&gt;</code> works without the app.</p></body></html>\n",
        html_escape(&static_dir.display().to_string())
    );
    let mut response =
        warp::reply::with_status(warp::reply::html(body), StatusCode::SERVICE_UNAVAILABLE)
            .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn upgrade_requests_are_recognised() {
        let valid = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        assert!(websocket_key(&headers(&valid)).is_some());
        for missing in 0..valid.len() {
            let partial: Vec<_> = valid
                .iter()
                .enumerate()
                .filter(|(index, _)| *index != missing)
                .map(|(_, pair)| *pair)
                .collect();
            assert!(websocket_key(&headers(&partial)).is_none(), "{partial:?}");
        }
    }

    #[test]
    fn origin_allow_list() {
        let allowed = vec!["https://chain.example".to_owned()];
        let cases = [
            (vec![], &[("origin", "https://evil.example")][..], true),
            (
                allowed.clone(),
                &[("origin", "https://chain.example")][..],
                true,
            ),
            (
                allowed.clone(),
                &[("origin", "https://evil.example")][..],
                false,
            ),
            (allowed.clone(), &[][..], true),
        ];
        for (list, request, expected) in cases {
            assert_eq!(
                origin_allowed(&list, &headers(request)),
                expected,
                "{request:?}"
            );
        }
    }
}
