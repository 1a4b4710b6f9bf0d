//! `ssehub bench conns --http2 K`: the same idle SSE streams, opened over HTTP/2 with prior
//! knowledge (h2c), K streams per connection, so that their cost to the hub can be set beside
//! the HTTP/1.1 figure (one connection per stream, on the hub's lean direct path).
//!
//! Each connection is one task: it does the HTTP/2 handshake (the `h2` crate's client), opens
//! its K streams (`GET {hub}/topics/{topic}`), waits for each one's `200` and first bytes
//! within `--timeout`, then reads and discards what comes (heartbeats), giving the window back
//! so the hub never stalls. A stream the hub ends is counted as closed by the hub.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::conns::{Local, Opened, Plan, connect, tally};

/// Opens `plan.connections` streams, `per_connection` on each HTTP/2 connection.
pub(crate) async fn open_all(plan: &Plan, per_connection: u32) -> (Local, Opened) {
    let connections = plan.connections.div_ceil(per_connection);
    let permits = Arc::new(Semaphore::new(plan.connect_concurrency));
    let closed_by_hub = Arc::new(AtomicU64::new(0));
    let (results, results_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let mut tasks = JoinSet::new();
    let mut spawned = 0;
    for i in 0..connections {
        let streams = per_connection.min(plan.connections - i * per_connection);
        let Some(permit) = plan.permit(&permits).await else {
            break;
        };
        let source = plan.source(plan.offset, i);
        let (addr, uri, timeout) = (plan.addr, plan.uri.clone(), plan.timeout);
        let (results, closed_by_hub) = (results.clone(), closed_by_hub.clone());
        tasks.spawn(async move {
            let connected = tokio::time::timeout(timeout, handshake(addr, source)).await;
            let (client, connection) = match connected {
                Ok(Ok(pair)) => pair,
                Ok(Err(error)) => return fail(&results, streams, &error),
                Err(_) => return fail(&results, streams, "timed out"),
            };
            let streams_done = async {
                let bodies = open_streams(client, &uri, streams, timeout, &results).await;
                drop(permit);
                drain(bodies, &closed_by_hub).await;
                // Every stream ended: keep the connection until aborted, as the others.
                std::future::pending::<()>().await;
            };
            tokio::select! {
                _ = connection => {}
                () = streams_done => {}
            }
        });
        spawned += streams;
    }
    drop(results);
    let opened = tally(plan, spawned, results_rx).await;
    (Local::new(tasks, closed_by_hub), opened)
}

type Client = h2::client::SendRequest<Bytes>;
type Connection = h2::client::Connection<tokio::net::TcpStream, Bytes>;

/// Connects (from `source`, if given) and does the HTTP/2 handshake.
async fn handshake(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> Result<(Client, Connection), String> {
    let stream = connect(addr, source).await?;
    h2::client::handshake(stream)
        .await
        .map_err(|e| format!("HTTP/2 handshake: {e}"))
}

/// Opens `count` streams and waits for each one's status and first bytes; reports each.
async fn open_streams(
    mut client: Client,
    uri: &str,
    count: u32,
    timeout: std::time::Duration,
    results: &mpsc::UnboundedSender<Result<(), String>>,
) -> Vec<h2::RecvStream> {
    let mut pending = FuturesUnordered::new();
    for sent in 0..count {
        client = match client.ready().await {
            Ok(client) => client,
            Err(error) => {
                fail(results, count - sent, &format!("HTTP/2: {error}"));
                break;
            }
        };
        let request = http::Request::get(uri)
            .header("accept", "text/event-stream")
            .header("user-agent", "ssehub-bench-conns")
            .body(())
            .expect("a valid request");
        match client.send_request(request, true) {
            Ok((response, _)) => {
                pending.push(tokio::time::timeout(timeout, first_bytes(response)));
            }
            Err(error) => {
                fail(results, count - sent, &format!("HTTP/2: {error}"));
                break;
            }
        }
    }
    let mut bodies = Vec::with_capacity(count as usize);
    while let Some(outcome) = pending.next().await {
        let _ = results.send(match outcome {
            Ok(Ok(body)) => {
                bodies.push(body);
                Ok(())
            }
            Ok(Err(error)) => Err(error),
            Err(_) => Err("timed out".to_string()),
        });
    }
    bodies
}

/// The response's status (200) and its first bytes; the body to hold.
async fn first_bytes(response: h2::client::ResponseFuture) -> Result<h2::RecvStream, String> {
    let response = response.await.map_err(|e| format!("HTTP/2: {e}"))?;
    if response.status() != http::StatusCode::OK {
        return Err(format!("status {}", response.status()));
    }
    let mut body = response.into_body();
    match body.data().await {
        Some(Ok(data)) => {
            let _ = body.flow_control().release_capacity(data.len());
            Ok(body)
        }
        Some(Err(error)) => Err(format!("HTTP/2: {error}")),
        None => Err("closed after the headers, before the first bytes".to_string()),
    }
}

/// Reads and discards every body until each one ends; counts those that end.
async fn drain(bodies: Vec<h2::RecvStream>, closed_by_hub: &AtomicU64) {
    let mut reading: FuturesUnordered<_> = bodies
        .into_iter()
        .map(|mut body| async move {
            while let Some(Ok(data)) = body.data().await {
                let _ = body.flow_control().release_capacity(data.len());
            }
        })
        .collect();
    while reading.next().await.is_some() {
        closed_by_hub.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reports `count` streams failed with `error`.
fn fail(results: &mpsc::UnboundedSender<Result<(), String>>, count: u32, error: &str) {
    for _ in 0..count {
        let _ = results.send(Err(error.to_string()));
    }
}
