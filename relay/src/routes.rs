//! The HTTP side: which path does what.
//!
//! - `/ws` and `/ws/{room}`: the WebSocket upgrade (room `lobby` when none is named).
//! - `/healthz`: `ok` while the relay serves; `degraded: ...` while its hub cannot deliver
//!   everything (the broker is away).
//! - `/metrics`: the counters in Prometheus text format.
//! - everything else: the web app from the static directory, with `index.html` for unknown paths
//!   so client-side routes survive a reload, or a page explaining how to build the app.
//!
//! The WebSocket handshake is checked and answered here rather than by `warp::ws()`: the relay
//! runs its own framing on the socket (see `ws`), and an upgrade that breaks RFC 6455 (not a
//! GET, a missing or malformed `Sec-WebSocket-Key`) is refused with 400, not served.
//!
//! A socket admitted only to be refused (over a cap) still gets `/healthz` and `/metrics`, a
//! WebSocket that is told `server_full`, and a 503 or 429 for anything else.

use crate::admission::{Held, Hold, Refused, RemoteAddr};
use crate::app::{self, AppSource};
use crate::connection::{self, PeerSocket};
use crate::hub::{HubHealth, RoomName};
use crate::metrics::Rejection;
use crate::Relay;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use shared::protocol::relay::{parse_resume_token, DEFAULT_ROOM};
use shared::protocol::{PeerId, RelayErrorCode};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tracing::debug;
use warp::http::header::{self, HeaderMap, HeaderValue};
use warp::http::{Method, StatusCode};
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
        .and(warp::ext::optional::<RemoteAddr>())
        .map(move |remote: Option<RemoteAddr>| {
            // Counters tell an attacker how close each limit is: only the addresses of
            // --metrics-allow (this machine by default) read them, so `--lan` does not open
            // them to the local network.
            let allowed = remote.is_some_and(|RemoteAddr(remote)| {
                let remote = remote.ip().to_canonical();
                metrics_relay
                    .config
                    .metrics_allow
                    .iter()
                    .any(|allowed| allowed.to_canonical() == remote)
            });
            if !allowed {
                return text(StatusCode::NOT_FOUND, "not found\n");
            }
            let mut body = metrics_relay.metrics.render(
                metrics_relay.hub.room_count(),
                metrics_relay.budgets.gauges(),
            );
            metrics_relay.hub.render_metrics(&mut body);
            warp::reply::with_header(
                body,
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .into_response()
        });

    // The LAN URLs (`--lan`) for the page's "Join this room" QR code; `{"urls":[]}` otherwise.
    let lan_body = serde_json::json!({ "urls": relay.config.lan_urls }).to_string();
    let lan = warp::path("lan.json")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            warp::reply::with_header(lan_body.clone(), header::CONTENT_TYPE, "application/json")
                .into_response()
        });

    let ws_relay = relay.clone();
    let websocket = warp::path("ws")
        .and(warp::path::tail())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and(warp::ext::optional::<RemoteAddr>())
        .and(warp::ext::optional::<Hold>())
        .map(
            move |tail: warp::path::Tail,
                  query: String,
                  method: Method,
                  headers: HeaderMap,
                  on_upgrade: Option<OnUpgrade>,
                  remote: Option<RemoteAddr>,
                  hold: Option<Hold>| {
                let request = UpgradeRequest {
                    room: tail.as_str(),
                    query: &query,
                    method: &method,
                    headers: &headers,
                    remote: remote.map(|RemoteAddr(addr)| addr),
                };
                upgrade(&ws_relay, request, on_upgrade, hold)
            },
        );

    // A socket over a cap gets nothing else: not the app, whose files are the large answers.
    let refused = warp::ext::optional::<Refused>()
        .and(warp::path::full())
        .and_then(
            |refused: Option<Refused>, path: warp::path::FullPath| async move {
                match refused {
                    Some(Refused(rejection)) if !is_api_path(path.as_str()) => {
                        Ok(refusal_response(rejection))
                    }
                    _ => Err(warp::reject::not_found()),
                }
            },
        );

    let source = AppSource::choose(relay.config.static_dir.as_ref());
    let app = match &source {
        AppSource::Embedded => warp::get()
            .and(warp::path::tail())
            .and(warp::header::optional::<String>("accept-encoding"))
            .and_then(
                |tail: warp::path::Tail, accept_encoding: Option<String>| async move {
                    app::embedded_response(tail.as_str(), accept_encoding.as_deref())
                        .ok_or_else(warp::reject::not_found)
                },
            )
            .boxed(),
        AppSource::Dir(dir) => warp::fs::dir(dir.clone())
            .or(warp::fs::file(dir.join("index.html")))
            .unify()
            .map(Reply::into_response)
            .boxed(),
    };
    let app_missing = warp::get().map(move || app_missing_page(&source));

    refused
        .or(healthz)
        .unify()
        .or(metrics)
        .unify()
        .or(lan)
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

/// `/healthz`, `/metrics` and the WebSocket path: what a refused socket is still answered on.
fn is_api_path(path: &str) -> bool {
    path == "/healthz" || path == "/metrics" || path == "/ws" || path.starts_with("/ws/")
}

/// What a socket over a cap is told on a plain HTTP path.
fn refusal_response(rejection: Rejection) -> Response {
    let (status, body) = match rejection {
        Rejection::AddressFull => (
            StatusCode::TOO_MANY_REQUESTS,
            "address_full: your address holds as many connections as the relay allows\n",
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_full: the relay has as many connections as it allows; try again later\n",
        ),
    };
    let mut response = text(status, body);
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

/// The parts of a request on `/ws...` the handshake looks at.
struct UpgradeRequest<'a> {
    room: &'a str,
    /// The query string, without `?` (empty when there is none).
    query: &'a str,
    method: &'a Method,
    headers: &'a HeaderMap,
    remote: Option<SocketAddr>,
}

/// Answers a request on `/ws...`: checks it, then switches protocols and starts the connection.
/// `hold` is what the socket holds of the caps. A WebSocket takes it along; any other answer
/// leaves it with the connection, which keeps counting against the caps until it closes.
fn upgrade(
    relay: &Arc<Relay>,
    request: UpgradeRequest<'_>,
    on_upgrade: Option<OnUpgrade>,
    hold: Option<Hold>,
) -> Response {
    let room_name = if request.room.is_empty() {
        DEFAULT_ROOM
    } else {
        request.room
    };
    let Some(room) = RoomName::parse(room_name) else {
        relay.metrics.reject(Rejection::InvalidRoom);
        return text(
            StatusCode::BAD_REQUEST,
            "invalid_room: a room name is 1 to 64 characters of a-z A-Z 0-9 - _ .\n",
        );
    };
    let Ok(resumed) = resume_token(request.query) else {
        relay.metrics.reject(Rejection::BadResumeToken);
        return text(
            StatusCode::BAD_REQUEST,
            "bad_resume_token: `resume` is 64 lowercase hex digits (a 256-bit secret), given once\n",
        );
    };
    let key = match check_handshake(request.method, request.headers) {
        Handshake::Valid(key) => key,
        Handshake::NotUpgrade => {
            relay.metrics.reject(Rejection::NotWebSocket);
            let mut response = text(
                StatusCode::UPGRADE_REQUIRED,
                "this is the relay's WebSocket endpoint; connect with a WebSocket client\n",
            );
            response
                .headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            return response;
        }
        Handshake::WrongVersion => {
            relay.metrics.reject(Rejection::BadHandshake);
            let mut response = text(
                StatusCode::UPGRADE_REQUIRED,
                "bad_handshake: the relay speaks WebSocket version 13\n",
            );
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return response;
        }
        Handshake::Invalid(why) => {
            relay.metrics.reject(Rejection::BadHandshake);
            debug!(error = why, "malformed WebSocket handshake");
            return text(StatusCode::BAD_REQUEST, why);
        }
    };
    if !origin_allowed(&relay.config.allowed_origins, request.headers) {
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
    let Some(hold) = hold else {
        // Every served socket carries a hold (see `server`); without one there is nothing to
        // count the WebSocket against.
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_full: no connection slot\n",
        );
    };
    // The client: the socket's address, or behind a trusted proxy the forwarded one.
    let client = client_address(relay, request.remote, request.headers);
    let refused_as = hold.refusal();
    let mut proxied_address = None;
    if let Some(rejection) = refused_as {
        if rejection != Rejection::ServerFull {
            return refusal_response(rejection);
        }
    } else {
        if let Some(client) = client.filter(|_| is_proxied(relay, request.remote)) {
            // Behind a trusted proxy the socket was not counted per address: its client is.
            match relay.admission.address_slot(client) {
                Some(address) => proxied_address = Some(address),
                None => {
                    relay.metrics.reject(Rejection::AddressFull);
                    return refusal_response(Rejection::AddressFull);
                }
            }
        }
        if let Some(client) = client {
            if !relay.admission.allow_join(room.as_str(), client) {
                relay.metrics.reject(Rejection::JoinRateLimited);
                let mut response = text(
                    StatusCode::TOO_MANY_REQUESTS,
                    "join_rate_limited: too many joins into this room or from your address; retry in a second\n",
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                return response;
            }
        }
    }
    // Only now, with the answer 101, does the WebSocket take the socket's hold along.
    let held = match hold.take() {
        Some(Held::Slot(mut slot)) => {
            if let Some(address) = proxied_address {
                slot.set_address(address);
            }
            Held::Slot(slot)
        }
        Some(refusal) => refusal,
        None => {
            // The socket's slot went to an earlier upgrade on the same connection (cannot
            // happen with a conforming client: an upgrade ends HTTP on its connection).
            return text(
                StatusCode::BAD_REQUEST,
                "bad_handshake: one upgrade per connection\n",
            );
        }
    };
    let task_relay = relay.clone();
    let remote = request.remote.map(|addr| addr.ip());
    // The client's share of the memory budgets: the forwarded client behind a trusted proxy.
    let share = client.map(|client| relay.budgets.share(client));
    let ice_servers = relay.welcome_ice_servers(
        request
            .headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok()),
    );
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
        let socket = PeerSocket::new(
            parts.io.into_inner(),
            &parts.read_buf,
            task_relay.config.max_frame_bytes,
            task_relay.config.message_timeout,
            task_relay.budgets.incoming_for(share.as_ref()),
        );
        match held {
            Held::Slot(slot) => {
                let joining = connection::Joining {
                    room,
                    remote,
                    resumed,
                    ice_servers,
                    share,
                };
                connection::serve(task_relay, socket, joining, slot).await
            }
            Held::Refusal(_, _permit) => {
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

/// The peer id a `resume` query parameter asks for (`None` without one). Other parameters are
/// ignored, for clients newer than this relay; an empty, malformed or repeated `resume` is an
/// error.
fn resume_token(query: &str) -> Result<Option<PeerId>, ()> {
    let mut tokens = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("resume="));
    match (tokens.next(), tokens.next()) {
        (None, _) if !query.split('&').any(|pair| pair == "resume") => Ok(None),
        (Some(token), None) => parse_resume_token(token)
            .map(|token| Some(PeerId::from_resume_token(&token)))
            .ok_or(()),
        _ => Err(()),
    }
}

/// True when the socket comes from a trusted proxy, whose clients are named in a header.
fn is_proxied(relay: &Relay, remote: Option<SocketAddr>) -> bool {
    remote.is_some_and(|remote| relay.admission.is_trusted_proxy(remote.ip()))
}

/// The client a request is from: the socket's address, or behind a trusted proxy the last address
/// in `X-Forwarded-For` (the one the proxy itself added; earlier ones are the client's word).
fn client_address(
    relay: &Relay,
    remote: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let remote = remote?.ip();
    if !relay.admission.is_trusted_proxy(remote) {
        return Some(remote);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    Some(forwarded.unwrap_or(remote))
}

/// What a request on the WebSocket path is.
#[derive(Debug, PartialEq, Eq)]
enum Handshake<'a> {
    /// A valid upgrade (RFC 6455 section 4.2.1), with its key.
    Valid(&'a HeaderValue),
    /// Not an upgrade at all: plain HTTP on the WebSocket path.
    NotUpgrade,
    /// An upgrade to another version of the protocol.
    WrongVersion,
    /// An upgrade that breaks the RFC, with the reason told to the client.
    Invalid(&'static str),
}

fn check_handshake<'a>(method: &Method, headers: &'a HeaderMap) -> Handshake<'a> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(header::UPGRADE, "websocket") {
        return Handshake::NotUpgrade;
    }
    if method != Method::GET {
        return Handshake::Invalid("bad_handshake: a WebSocket upgrade is a GET request\n");
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return Handshake::Invalid("bad_handshake: an upgrade needs `Connection: Upgrade`\n");
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|version| version != "13")
    {
        return Handshake::WrongVersion;
    }
    let mut keys = headers.get_all(header::SEC_WEBSOCKET_KEY).iter();
    match (keys.next(), keys.next()) {
        (Some(key), None) if valid_key(key.as_bytes()) => Handshake::Valid(key),
        _ => Handshake::Invalid(
            "bad_handshake: Sec-WebSocket-Key must be 16 bytes in base64, given once\n",
        ),
    }
}

/// RFC 6455 section 4.1: the key is 16 random bytes in base64, which is 22 characters and `==`;
/// the last character carries only 2 bits, so it is one of `A`, `Q`, `g`, `w`.
fn valid_key(key: &[u8]) -> bool {
    let is_base64 = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/');
    key.len() == 24
        && key[..22].iter().all(is_base64)
        && matches!(key[21], b'A' | b'Q' | b'g' | b'w')
        && &key[22..] == b"=="
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

fn app_missing_page(source: &AppSource) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tabchain relay</title></head>\n\
         <body><h1>The tabchain relay is running, but the web app is not built</h1>\n\
         <p>No <code>index.html</code> in <code>{}</code>. Build the app from the repository root with</p>\n\
         <pre>cargo xtask build-web</pre>\n\
         <p>and start the relay with <code>--static-dir dist</code> (or <code>STATIC_DIR</code>), or run \
         <code>cargo xtask run</code>, which does both.</p>\n\
         <p>The WebSocket endpoint <code>/ws/&lt;room&gt;</code> works without the app.</p></body></html>\n",
        html_escape(&source.public_name())
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
    fn upgrade_requests_are_checked() {
        let valid = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        let without = |name: &str| -> Vec<(&'static str, &'static str)> {
            valid
                .iter()
                .filter(|(key, _)| *key != name)
                .copied()
                .collect()
        };
        let with = |name: &'static str, value: &'static str| -> Vec<(&'static str, &'static str)> {
            let mut pairs = without(name);
            pairs.push((name, value));
            pairs
        };
        let get = Method::GET;
        let key = HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ==");
        type Pairs = Vec<(&'static str, &'static str)>;
        let cases: Vec<(&str, Method, Pairs, Handshake)> = vec![
            ("valid", get.clone(), valid.to_vec(), Handshake::Valid(&key)),
            (
                "no upgrade header",
                get.clone(),
                without("upgrade"),
                Handshake::NotUpgrade,
            ),
            ("POST", Method::POST, valid.to_vec(), Handshake::Invalid("")),
            (
                "no connection",
                get.clone(),
                without("connection"),
                Handshake::Invalid(""),
            ),
            (
                "no version",
                get.clone(),
                without("sec-websocket-version"),
                Handshake::WrongVersion,
            ),
            (
                "version 8",
                get.clone(),
                with("sec-websocket-version", "8"),
                Handshake::WrongVersion,
            ),
            (
                "no key",
                get.clone(),
                without("sec-websocket-key"),
                Handshake::Invalid(""),
            ),
            (
                "empty key",
                get.clone(),
                with("sec-websocket-key", ""),
                Handshake::Invalid(""),
            ),
            (
                "short key",
                get.clone(),
                with("sec-websocket-key", "abcd"),
                Handshake::Invalid(""),
            ),
            (
                "key of 17 bytes",
                get.clone(),
                with("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZSE="),
                Handshake::Invalid(""),
            ),
            (
                "key not base64",
                get.clone(),
                with("sec-websocket-key", "dGhlIHNhbXBsZSBub25j*Q=="),
                Handshake::Invalid(""),
            ),
        ];
        for (name, method, pairs, expected) in cases {
            let map = headers(&pairs);
            let got = check_handshake(&method, &map);
            match expected {
                Handshake::Invalid(_) => {
                    assert!(matches!(got, Handshake::Invalid(_)), "{name}: {got:?}")
                }
                expected => assert_eq!(got, expected, "{name}"),
            }
        }
    }

    #[test]
    fn resume_parameters_are_checked() {
        let token = "ab".repeat(32);
        let id = PeerId::from_resume_token(&[0xab; 32]);
        let cases = [
            (String::new(), Ok(None)),
            ("other=1".to_owned(), Ok(None)),
            (format!("resume={token}"), Ok(Some(id.clone()))),
            (format!("v=2&resume={token}&x"), Ok(Some(id))),
            ("resume=".to_owned(), Err(())),
            ("resume".to_owned(), Err(())),
            (format!("resume={}", token.to_uppercase()), Err(())),
            (format!("resume={}", &token[2..]), Err(())),
            (format!("resume=%61{}", &token[2..]), Err(())),
            (format!("resume={token}&resume={token}"), Err(())),
        ];
        for (query, expected) in cases {
            assert_eq!(resume_token(&query), expected, "{query:?}");
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
