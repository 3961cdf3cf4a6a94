//! One engine thread: a current-thread tokio runtime whose single
//! [`Worker`] (one plugin instance, one HTTP client) serves every pair the
//! thread has in flight, each pair a local task. The thread takes batches of
//! pairs from the shared per-size-class queues only when its own backlog
//! cannot fill its free slots, and sends finished records in batches, so no
//! thread is woken from another for each request.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use super::worker::Worker;
use super::{Queues, SharedJob};
use crate::record::Record;

/// Records sent to the recorder in one message, at most.
const RESULTS_BATCH: usize = 256;

/// What one thread is given.
pub(crate) struct ThreadPlan {
    /// Pairs this thread may have in flight.
    pub slots: usize,
    /// Of those, how many prefer small, medium, large sources.
    pub reserved: [usize; 3],
    /// Edges each pair is warmed at (`--edge`; 1 without): each gets an
    /// even share of the slots while others have work, so a slow edge
    /// cannot fill them all.
    pub edges: usize,
}

/// Start an engine thread; it ends when the queues are closed and drained
/// and its last record is sent.
pub(crate) fn spawn(
    index: usize,
    plan: ThreadPlan,
    worker: impl FnOnce() -> Worker + Send + 'static,
    queues: Arc<Queues>,
    results: mpsc::Sender<Vec<Record>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name(format!("prewarm-engine-{index}")).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("engine thread {index}: cannot start its runtime: {e}");
                return;
            }
        };
        let local = tokio::task::LocalSet::new();
        let worker = Rc::new(worker());
        local.spawn_local(pump(worker, plan, queues, results, index));
        // Runs until every local task is done, the last results batch's
        // send included.
        runtime.block_on(local);
    })
}

/// The thread's pairs in flight per class, and a wake-up for the pump when
/// one finishes.
struct Slots {
    in_flight: Cell<[usize; 3]>,
    finished: Notify,
    /// Pairs in flight per edge.
    per_edge: RefCell<Vec<usize>>,
}

impl Slots {
    fn total(&self) -> usize {
        self.in_flight.get().iter().sum()
    }

    fn change(&self, class: usize, up: bool) {
        let mut n = self.in_flight.get();
        if up {
            n[class] += 1;
        } else {
            n[class] -= 1;
        }
        self.in_flight.set(n);
    }
}

/// Start pairs while slots are free, fetch batches when the backlog runs
/// short, until every queue is closed and every pair has its record.
async fn pump(
    worker: Rc<Worker>,
    plan: ThreadPlan,
    queues: Arc<Queues>,
    results: mpsc::Sender<Vec<Record>>,
    index: usize,
) {
    let edges = plan.edges.max(1);
    let slots = Rc::new(Slots {
        in_flight: Cell::new([0; 3]),
        finished: Notify::new(),
        per_edge: RefCell::new(vec![0; edges]),
    });
    let outbox = Rc::new(Outbox { records: RefCell::new(Vec::new()), tx: results, scheduled: Cell::new(false) });
    let mut backlog: [VecDeque<SharedJob>; 3] = Default::default();
    let mut parked = Parked::new(edges, plan.slots);
    let mut turn = index;
    loop {
        // Once no new pairs can come and none waits in a backlog or the
        // spill, a parked pair may take any free slot: the share only keeps
        // a slow edge from crowding out others, so while a pair of another
        // edge still waits anywhere, it comes first.
        let no_more = queues.classes.iter().all(|(_, rx)| rx.is_closed() && rx.is_empty());
        let tail = |backlog: &[VecDeque<SharedJob>; 3]| {
            no_more && backlog.iter().all(VecDeque::is_empty) && spill_is_empty(&queues)
        };
        while slots.total() < plan.slots {
            let job = match parked.next(&slots.per_edge.borrow(), tail(&backlog)) {
                Some(job) => job,
                None => {
                    let Some(class) = pick(&backlog, slots.in_flight.get(), plan.reserved, &mut turn) else { break };
                    let Some(job) = backlog[class].pop_front() else { break };
                    if !parked.may_start(&job, &slots.per_edge.borrow(), tail(&backlog)) {
                        parked.park(job);
                        if parked.full() {
                            break;
                        }
                        continue;
                    }
                    job
                }
            };
            let (class, edge) = (job.job.class as usize, usize::from(job.edge).min(edges - 1));
            slots.change(class, true);
            slots.per_edge.borrow_mut()[edge] += 1;
            let (worker, slots, outbox) = (worker.clone(), slots.clone(), outbox.clone());
            tokio::task::spawn_local(async move {
                let derivative = job.derivative;
                worker.started(derivative);
                let record = warm_caught(&worker, job).await;
                worker.finished(derivative, &record);
                outbox.push(record).await;
                slots.change(class, false);
                slots.per_edge.borrow_mut()[edge] -= 1;
                slots.finished.notify_one();
            });
        }
        if parked.full() {
            // Enough set aside: wait for the busy edge rather than fetch
            // more (memory stays bounded; its pairs are in flight).
            slots.finished.notified().await;
            continue;
        }
        let free = plan.slots - slots.total();
        let queued: usize = backlog.iter().map(VecDeque::len).sum();
        // Once the dispatcher is done (the queues closed, maybe not yet
        // empty), what this thread cannot start now goes back for any
        // thread with free slots, and free slots take what others gave
        // back: no pair waits a whole transform in one thread's backlog
        // while another thread idles.
        let ended = queues.classes.iter().all(|(_, rx)| rx.is_closed());
        if ended && queued > free {
            give_back(&queues, &mut backlog, queued - free);
            continue;
        }
        if ended && free > 0 && queued == 0 && take_back(&queues, &mut backlog, free) {
            continue;
        }
        let drained = ended && queues.classes.iter().all(|(_, rx)| rx.is_empty());
        if drained && queued == 0 {
            // Everything taken: wait for a pair to finish or for pairs given
            // back; leave only when nothing is left anywhere.
            let spilled = queues.spilled.notified();
            tokio::pin!(spilled);
            spilled.as_mut().enable();
            if take_back(&queues, &mut backlog, free) {
                continue;
            }
            if slots.total() == 0 && parked.is_empty() {
                break;
            }
            tokio::select! {
                _ = slots.finished.notified() => {}
                _ = spilled => {}
            }
            continue;
        }
        // A class whose reserved slots are idle is fetched even when other
        // classes' backlog would fill the free slots.
        let in_flight = slots.in_flight.get();
        let wanted = |c: usize, backlog: &[VecDeque<SharedJob>; 3]| {
            free > queued || (backlog[c].is_empty() && in_flight[c] < plan.reserved[c])
        };
        if take_ready(&queues, &mut backlog, wanted) {
            continue;
        }
        if free > 0 && queued == 0 {
            tokio::select! {
                got = recv_any(&queues) => if let Some((class, batch)) = got {
                    backlog[class].extend(batch);
                },
                _ = slots.finished.notified() => {}
            }
            continue;
        }
        slots.finished.notified().await;
    }
    outbox.flush().await;
}

/// Pairs of an edge that had its share of the thread's slots busy, set
/// aside per edge until one of its pairs finishes.
struct Parked {
    per_edge: Vec<VecDeque<SharedJob>>,
    total: usize,
    /// A thread's slots divided evenly among the edges (at least 1).
    share: usize,
    /// Most pairs set aside at once.
    most: usize,
}

impl Parked {
    fn new(edges: usize, slots: usize) -> Self {
        Parked {
            per_edge: (0..edges).map(|_| VecDeque::new()).collect(),
            total: 0,
            share: slots.div_ceil(edges).max(1),
            most: (slots * 4).max(64),
        }
    }

    fn edge(&self, job: &SharedJob) -> usize {
        usize::from(job.edge).min(self.per_edge.len() - 1)
    }

    fn may_start(&self, job: &SharedJob, busy: &[usize], tail: bool) -> bool {
        tail || self.per_edge.len() == 1 || busy[self.edge(job)] < self.share
    }

    fn park(&mut self, job: SharedJob) {
        let edge = self.edge(&job);
        self.per_edge[edge].push_back(job);
        self.total += 1;
    }

    /// A parked pair whose edge has room now.
    fn next(&mut self, busy: &[usize], tail: bool) -> Option<SharedJob> {
        if self.total == 0 {
            return None;
        }
        let edge =
            (0..self.per_edge.len()).find(|&e| !self.per_edge[e].is_empty() && (tail || busy[e] < self.share))?;
        self.total -= 1;
        self.per_edge[edge].pop_front()
    }

    fn full(&self) -> bool {
        self.total >= self.most
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// Warm one pair; a panic (a prewarm bug) still ends the pair with its
/// one record instead of losing it and stalling the thread.
async fn warm_caught(worker: &Worker, job: SharedJob) -> Record {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(worker.warm(&job)).catch_unwind().await {
        Ok(record) => record,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let derivative = &worker.derivative_name(job.derivative);
            let mut record = Record::blank(&job.job.object.path, derivative, job.job.object.size, job.job.class);
            worker.label(&mut record, &job);
            record.outcome = crate::record::Outcome::Failed;
            record.error_kind = Some("internal".into());
            record.error =
                Some(crate::util::redact::redact_text(&format!("prewarm panicked warming this pair: {message}")));
            record.finished_at = crate::record::now_rfc3339();
            record
        }
    }
}

/// The class of the next pair to start: first one whose reserved slots are
/// not all busy, then in rotation; `None` when the backlog is empty.
fn pick(
    backlog: &[VecDeque<SharedJob>; 3],
    in_flight: [usize; 3],
    reserved: [usize; 3],
    turn: &mut usize,
) -> Option<usize> {
    if let Some(c) = (0..3).find(|&c| !backlog[c].is_empty() && in_flight[c] < reserved[c]) {
        return Some(c);
    }
    for _ in 0..3 {
        *turn = (*turn + 1) % 3;
        if !backlog[*turn].is_empty() {
            return Some(*turn);
        }
    }
    None
}

/// Take a batch already waiting of each class `wanted`, without waiting;
/// true if any came.
fn take_ready(
    queues: &Queues,
    backlog: &mut [VecDeque<SharedJob>; 3],
    wanted: impl Fn(usize, &[VecDeque<SharedJob>; 3]) -> bool,
) -> bool {
    let mut got = false;
    for c in 0..3 {
        if !wanted(c, backlog) {
            continue;
        }
        if let Ok(batch) = queues.classes[c].1.try_recv() {
            backlog[c].extend(batch);
            got = true;
        }
    }
    got
}

/// Give `n` pairs of the backlog back to the shared spill.
fn give_back(queues: &Queues, backlog: &mut [VecDeque<SharedJob>; 3], mut n: usize) {
    let mut spill = queues.spill.lock().unwrap_or_else(|p| p.into_inner());
    for class in backlog.iter_mut().rev() {
        while n > 0 {
            let Some(job) = class.pop_back() else { break };
            spill.push(job);
            n -= 1;
        }
    }
    drop(spill);
    queues.spilled.notify_waiters();
}

fn spill_is_empty(queues: &Queues) -> bool {
    queues.spill.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
}

/// Take up to `n` pairs given back by any thread; true if any came.
fn take_back(queues: &Queues, backlog: &mut [VecDeque<SharedJob>; 3], n: usize) -> bool {
    let mut spill = queues.spill.lock().unwrap_or_else(|p| p.into_inner());
    let take = n.min(spill.len());
    let from = spill.len() - take;
    for job in spill.drain(from..) {
        backlog[job.job.class as usize].push_back(job);
    }
    take > 0
}

/// Wait for a batch of any class; `None` when all are closed and drained
/// (a drained closed queue answers at once, and its branch is dropped).
async fn recv_any(queues: &Queues) -> Option<(usize, Vec<SharedJob>)> {
    let [a, b, c] = [0, 1, 2].map(|i| &queues.classes[i].1);
    tokio::select! {
        Ok(batch) = a.recv() => Some((0, batch)),
        Ok(batch) = b.recv() => Some((1, batch)),
        Ok(batch) = c.recv() => Some((2, batch)),
        else => None,
    }
}

/// Finished records waiting to go to the recorder. They go as soon as the
/// thread has run everything that was ready (so a record is never held
/// while the thread waits), or when a batch is full.
struct Outbox {
    records: RefCell<Vec<Record>>,
    tx: mpsc::Sender<Vec<Record>>,
    scheduled: Cell<bool>,
}

impl Outbox {
    async fn push(self: &Rc<Self>, record: Record) {
        let full = {
            let mut records = self.records.borrow_mut();
            records.push(record);
            records.len() >= RESULTS_BATCH
        };
        if full {
            self.flush().await;
        } else if !self.scheduled.replace(true) {
            let outbox = self.clone();
            tokio::task::spawn_local(async move {
                // Deferred until the tasks ready now have run: their records
                // join this batch.
                tokio::task::yield_now().await;
                outbox.scheduled.set(false);
                outbox.flush().await;
            });
        }
    }

    async fn flush(&self) {
        let batch = std::mem::take(&mut *self.records.borrow_mut());
        if !batch.is_empty() && self.tx.send(batch).await.is_err() {
            tracing::error!("the recorder stopped before every record was sent");
        }
    }
}
