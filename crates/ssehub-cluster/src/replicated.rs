//! `min_replicas`: nodes deliver only events that replicas have.
//!
//! Redis replicates asynchronously. A `WAIT` after an append tells its publisher that
//! `min_replicas` replicas have the events, but the primary has them (and any node's tail
//! could read them) before. Were a node to deliver an event the replicas lack, and the primary
//! then die, the promoted replica would give that event's sequence number to another event —
//! which that node's tail, reading after the number it delivered, would skip, and which its
//! subscribers, resuming after the id they hold, would skip too: a silent loss.
//!
//! So with `min_replicas > 0` the log has a watermark, `committed`: every event up to it is
//! on `min_replicas` replicas. An append raises it once its `WAIT` succeeds; the tails read
//! the log only up to it (`tail.rs`), woken by the `commits` stream. Events whose `WAIT`
//! failed (their publishers got 503) are confirmed later by any node's sweep loop
//! ([`confirm_pending`]) once the replicas have them, and are delivered then; until then no
//! node delivers them, and if the primary dies first they are gone without anyone having seen
//! them.
//!
//! Why a later `WAIT` covers earlier events: Redis replicates in order, and `WAIT` returns
//! how many replicas have acknowledged everything up to this connection's last write. Each
//! node appends on one connection, and [`confirm_pending`] writes `probe` after reading the
//! last sequence number, so a success covers every event up to it, whichever node wrote it.

use redis::aio::ConnectionManager;
use ssehub_core::StoreError;

use crate::store::Inner;

/// `WAIT`s for `min_replicas` after this connection's writes, up to `replica_timeout`.
async fn wait(inner: &Inner, conn: &mut ConnectionManager) -> Result<(), StoreError> {
    let timeout = u64::try_from(inner.replica_timeout.as_millis()).unwrap_or(u64::MAX);
    let acked = redis::cmd("WAIT")
        .arg(inner.min_replicas)
        .arg(timeout.max(1))
        .query_async(conn)
        .await;
    let acked: u64 = inner.answer(acked).await?;
    if acked < u64::from(inner.min_replicas) {
        return Err(StoreError::Io(format!(
            "only {acked} of cluster.min_replicas = {} Redis replicas have the events",
            inner.min_replicas
        )));
    }
    Ok(())
}

/// Raises the watermark to `seq` (events up to it are replicated).
async fn commit(inner: &Inner, conn: &mut ConnectionManager, seq: u64) -> Result<(), StoreError> {
    let raised = inner
        .scripts
        .commit
        .key(inner.keys.key("committed"))
        .key(inner.keys.key("commits"))
        .arg(seq)
        .invoke_async::<u64>(conn)
        .await;
    inner.answer(raised).await.map(drop)
}

/// After an append whose last event is `last` (on `conn`): waits for the replicas, then
/// raises the watermark, so the event may be delivered. An error leaves the events stored
/// but undelivered until [`confirm_pending`] confirms them.
pub(crate) async fn wait_and_commit(
    inner: &Inner,
    conn: &mut ConnectionManager,
    last: u64,
) -> Result<(), StoreError> {
    wait(inner, conn).await?;
    commit(inner, conn, last).await
}

/// Confirms the events past the watermark whose own `WAIT` failed, once the replicas have
/// them; does nothing when there are none.
pub(crate) async fn confirm_pending(inner: &Inner) -> Result<(), StoreError> {
    let mut conn = inner.link.conn();
    let pending = inner
        .scripts
        .pending
        .key(inner.keys.key("seq"))
        .key(inner.keys.key("committed"))
        .key(inner.keys.key("probe"))
        .invoke_async::<u64>(&mut conn)
        .await;
    let last = inner.answer(pending).await?;
    if last == 0 {
        return Ok(());
    }
    wait_and_commit(inner, &mut conn, last).await
}
