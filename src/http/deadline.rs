//! Slow clients hold nothing for long. actix bounds a request's head (5 s) but not its body: a
//! client that sends a head and one byte of body would hold its connection, and a descriptor,
//! for ever. Here every request body gets REQUEST_BODY_TIMEOUT to arrive (then `read_body`
//! answers 408 and the connection is closed, on every route), the server keeps at most
//! MAX_CONNECTIONS connections open (below the descriptor limit, so a flood cannot starve
//! `/healthz`, the store's connections or the log), and past half that bound each new connection
//! cuts off the request that has waited longest for its body, so that a flood of slow clients churns
//! through the slots instead of sitting in them while normal clients queue behind.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use futures_util::Stream;
use futures_util::task::AtomicWaker;

/// Descriptors kept for everything that is not a client connection: the listener, the store's
/// connections, log and key files, the password threads' wake-ups.
const RESERVED_DESCRIPTORS: usize = 64;

/// actix's own default, per worker.
const ACTIX_DEFAULT_PER_WORKER: usize = 25_000;

/// The connection bound: MAX_CONNECTIONS, or when it is 0, the open-file limit less a reserve.
pub fn connection_limit(configured: usize, workers: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let ceiling = ACTIX_DEFAULT_PER_WORKER * workers.max(1);
    match open_file_limit() {
        Some(limit) => limit
            .saturating_sub(RESERVED_DESCRIPTORS)
            .clamp(16, ceiling),
        None => ceiling,
    }
}

/// The soft RLIMIT_NOFILE, the number of descriptors this process may hold.
pub fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct it is given.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as usize)
}

/// Shared by every worker: the open connections, and the requests still waiting for their body,
/// oldest first.
pub struct BodyDeadlines {
    timeout: Duration,
    /// At or above this many open connections, a new connection cuts off the oldest waiter.
    high_water: usize,
    open: AtomicUsize,
    next: AtomicU64,
    waiting: Mutex<BTreeMap<u64, Arc<Waiter>>>,
}

#[derive(Default)]
struct Waiter {
    cut_off: AtomicBool,
    waker: AtomicWaker,
}

impl BodyDeadlines {
    /// `limit` is the connection bound; cutting off starts at half of it. A connection cut off
    /// still holds its slot while actix lingers for the client to take its 408 (up to a
    /// second): the other half is room for those, so that the listener keeps accepting, and so
    /// keeps cutting off, while a flood lasts.
    pub fn new(timeout: Duration, limit: usize) -> Arc<Self> {
        Arc::new(Self {
            timeout,
            high_water: (limit / 2).max(1),
            open: AtomicUsize::new(0),
            next: AtomicU64::new(0),
            waiting: Mutex::new(BTreeMap::new()),
        })
    }

    /// A guard for one accepted connection, to keep in its extensions: counts it while it is
    /// open. Near the bound, the request that has waited longest for its body is cut off.
    pub fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        if open >= self.high_water {
            self.cut_off_oldest();
        }
        OpenConnection(self.clone())
    }

    fn cut_off_oldest(&self) {
        let oldest = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.pop_first().map(|(_, waiter)| waiter));
        if let Some(waiter) = oldest {
            waiter.cut_off.store(true, Ordering::Relaxed);
            waiter.waker.wake();
        }
    }

    fn forget(&self, id: u64) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(&id);
        }
    }

    /// The request's payload, failing with a timeout once REQUEST_BODY_TIMEOUT has passed (or
    /// the request is cut off) before its end; and a watch that says whether it reached its end.
    pub fn guard(self: &Arc<Self>, payload: Payload) -> (Payload, BodyWatch) {
        let watch = BodyWatch::default();
        if matches!(payload, Payload::None) {
            watch.finished.set(true);
            return (payload, watch);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let waiter = Arc::new(Waiter::default());
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(id, waiter.clone());
        }
        let stream = DeadlinePayload {
            inner: Some(payload),
            sleep: Box::pin(tokio::time::sleep(self.timeout)),
            waiter,
            id,
            shared: self.clone(),
            finished: watch.finished.clone(),
            unread: watch.unread.clone(),
            over: false,
        };
        (
            Payload::Stream {
                payload: Box::pin(stream),
            },
            watch,
        )
    }
}

/// Kept in a connection's extensions: dropped when the connection closes.
pub struct OpenConnection(Arc<BodyDeadlines>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether a request's body was read to its end (or there was none), and what is left of one
/// that was not.
#[derive(Default)]
pub struct BodyWatch {
    finished: Rc<Cell<bool>>,
    unread: Rc<RefCell<Option<Payload>>>,
}

/// The unread rest of a request's body, kept alive by its response's body until that has been
/// sent. actix drains a chunked request body whose reader was dropped, with no deadline, before
/// it reads the next request; while the reader lives it closes the connection after the response
/// instead.
pub struct UnreadBody(#[allow(dead_code)] Payload);

/// A response body that keeps the request's unread body (if any) until it has been sent.
pub struct KeepUnread {
    body: BoxBody,
    _unread: Option<UnreadBody>,
}

impl KeepUnread {
    pub fn new(body: BoxBody, unread: Option<UnreadBody>) -> Self {
        Self {
            body,
            _unread: unread,
        }
    }
}

impl MessageBody for KeepUnread {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

impl BodyWatch {
    pub fn finished(&self) -> bool {
        self.finished.get()
    }

    /// The body's reader, if the body was not read to its end.
    pub fn unread(&self) -> Option<UnreadBody> {
        self.unread.borrow_mut().take().map(UnreadBody)
    }
}

/// The error a body that did not arrive in time ends with; `is_timeout` recognises it.
fn timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "request body timed out",
    ))
}

/// Whether a body read failed because the body did not arrive in time.
pub fn is_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

struct DeadlinePayload {
    /// `None` once handed to `unread` on drop.
    inner: Option<Payload>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    waiter: Arc<Waiter>,
    id: u64,
    shared: Arc<BodyDeadlines>,
    finished: Rc<Cell<bool>>,
    unread: Rc<RefCell<Option<Payload>>>,
    /// Ended: read to its end, failed or timed out.
    over: bool,
}

impl DeadlinePayload {
    fn end(&mut self) {
        if !self.over {
            self.over = true;
            self.shared.forget(self.id);
        }
    }
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.over {
            return Poll::Ready(None);
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.finished.set(true);
                this.end();
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => {
                this.end();
                return Poll::Ready(Some(Err(e)));
            }
            Poll::Ready(Some(Ok(bytes))) => return Poll::Ready(Some(Ok(bytes))),
            Poll::Pending => {}
        }
        this.waiter.waker.register(cx.waker());
        let cut_off = this.waiter.cut_off.load(Ordering::Relaxed);
        if cut_off || this.sleep.as_mut().poll(cx).is_ready() {
            this.end();
            return Poll::Ready(Some(Err(timed_out())));
        }
        Poll::Pending
    }
}

impl Drop for DeadlinePayload {
    fn drop(&mut self) {
        self.end();
        if !self.finished.get() {
            *self.unread.borrow_mut() = self.inner.take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_stays_below_the_descriptor_limit() {
        assert_eq!(connection_limit(500, 2), 500);
        let auto = connection_limit(0, 1);
        if let Some(limit) = open_file_limit() {
            assert!(
                auto < limit.max(RESERVED_DESCRIPTORS + 16),
                "{auto} vs {limit}"
            );
        }
        assert!(auto >= 16);
    }

    #[test]
    fn near_the_bound_a_new_connection_cuts_off_the_oldest_waiter() {
        let d = BodyDeadlines::new(Duration::from_secs(60), 8);
        let (a, b) = (Arc::new(Waiter::default()), Arc::new(Waiter::default()));
        d.waiting.lock().unwrap().insert(1, a.clone());
        d.waiting.lock().unwrap().insert(2, b.clone());
        let open: Vec<_> = (0..3).map(|_| d.connection_opened()).collect();
        assert!(!a.cut_off.load(Ordering::Relaxed), "below half the bound");
        let seventh = d.connection_opened();
        assert!(a.cut_off.load(Ordering::Relaxed));
        assert!(!b.cut_off.load(Ordering::Relaxed), "one per new connection");
        drop((open, seventh));
        assert_eq!(d.open.load(Ordering::Relaxed), 0);
    }
}
