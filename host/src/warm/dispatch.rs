//! The dispatcher: reads listed objects, expands each into its (object,
//! derivative) pairs, drops those `--resume` found warm, and sends the rest
//! in batches into the bounded per-size-class queues the engine threads
//! take from. A batch goes out when full, or as soon as the listing has
//! nothing more ready, so a slow listing never holds pairs back.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Job, Queues, SharedJob};
use crate::listing::{ListingProgress, Object};
use crate::record::route_key;
use crate::util::size::SizeClasses;

/// What the dispatcher needs besides its input and output.
pub(crate) struct Dispatch {
    pub classes: SizeClasses,
    pub derivative_names: Vec<String>,
    /// `--edge` and `--variant` names: each pair goes out once per edge and
    /// variant.
    pub edges: Vec<String>,
    pub variants: Vec<String>,
    pub already_warm: Option<HashSet<u64>>,
    /// Pairs per batch.
    pub batch: usize,
    pub cancel: CancellationToken,
    /// Told of each pair `--resume` skips (the progress display's total).
    pub progress: Arc<ListingProgress>,
}

impl Dispatch {
    /// Every (edge, variant) index a pair goes out at, edge by edge.
    fn routes(&self) -> impl Iterator<Item = (u16, u16)> + use<> {
        let (edges, variants) = (self.edges.len().max(1) as u16, self.variants.len().max(1) as u16);
        (0..edges).flat_map(move |e| (0..variants).map(move |v| (e, v)))
    }

    fn edge_name(&self, index: u16) -> Option<&str> {
        self.edges.get(usize::from(index)).map(String::as_str)
    }

    fn variant_name(&self, index: u16) -> Option<&str> {
        self.variants.get(usize::from(index)).map(String::as_str)
    }
}

/// Run until the listing ends or the run is cancelled; closes the queues.
/// Cancelling stops the taking of objects, never a pair of an object
/// already taken: each of those reaches a queue, where the engine records
/// it (`stopped` or `interrupted` when it cannot start), so no pair the
/// dispatcher took is left without a record. Returns the pairs skipped
/// because `--resume` found them warm.
pub(crate) async fn run(mut objects: mpsc::Receiver<Object>, queues: Arc<Queues>, d: Dispatch) -> u64 {
    let mut resumed = 0u64;
    let mut pending: [Vec<SharedJob>; 3] = Default::default();
    loop {
        let object = match objects.try_recv() {
            Ok(o) => o,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                // Nothing more ready: what is gathered goes now.
                for (class, batch) in pending.iter_mut().enumerate() {
                    if !send(&queues, class, batch).await {
                        return close(&queues, resumed);
                    }
                }
                tokio::select! {
                    o = objects.recv() => match o { Some(o) => o, None => break },
                    _ = d.cancel.cancelled() => break,
                }
            }
        };
        if d.cancel.is_cancelled() {
            break;
        }
        let class = d.classes.class_of(object.size);
        let job = Arc::new(Job { object, class });
        for (derivative, name) in d.derivative_names.iter().enumerate() {
            for (edge, variant) in d.routes() {
                let key = || route_key(&job.object.path, name, d.edge_name(edge), d.variant_name(variant));
                if d.already_warm.as_ref().is_some_and(|w| w.contains(&key())) {
                    resumed += 1;
                    d.progress.skip_pair();
                    continue;
                }
                pending[class as usize].push(SharedJob { job: job.clone(), derivative, edge, variant });
            }
        }
        let batch = &mut pending[class as usize];
        if batch.len() >= d.batch && !send(&queues, class as usize, batch).await {
            return close(&queues, resumed);
        }
    }
    for (class, batch) in pending.iter_mut().enumerate() {
        send(&queues, class, batch).await;
    }
    close(&queues, resumed)
}

fn close(queues: &Queues, resumed: u64) -> u64 {
    for (tx, _) in queues.classes.iter() {
        tx.close();
    }
    resumed
}

/// Send a class's gathered pairs (if any); false only when every engine is
/// gone. Not cancellable: once cancelled, engines record each pair at once,
/// so the queues drain quickly.
async fn send(queues: &Queues, class: usize, batch: &mut Vec<SharedJob>) -> bool {
    if batch.is_empty() {
        return true;
    }
    queues.classes[class].0.send(std::mem::take(batch)).await.is_ok()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A stop never drops a pair of an object already taken, even when it
    /// fires while the dispatcher waits on a full queue.
    #[tokio::test]
    async fn a_stop_keeps_every_pair_of_every_taken_object() {
        let queues = Arc::new(Queues {
            classes: std::array::from_fn(|_| async_channel::bounded(1)),
            spill: std::sync::Mutex::default(),
            spilled: tokio::sync::Notify::new(),
        });
        let (tx, rx) = mpsc::channel(64);
        for i in 0..20 {
            tx.send(Object { path: format!("v/{i}.mp4"), size: 1 }).await.unwrap();
        }
        let cancel = CancellationToken::new();
        let d = Dispatch {
            classes: SizeClasses::default(),
            derivative_names: vec!["desktop".into(), "tablet".into(), "mobile".into()],
            edges: vec![],
            variants: vec![],
            already_warm: None,
            batch: 2,
            cancel: cancel.clone(),
            progress: Arc::default(),
        };
        let dispatcher = tokio::spawn(run(rx, queues.clone(), d));
        let rx = queues.classes[0].1.clone();
        // One batch taken, then the stop while the dispatcher is blocked
        // on the full queue.
        let mut pairs: HashMap<String, usize> = HashMap::new();
        for job in rx.recv().await.unwrap() {
            *pairs.entry(job.job.object.path.clone()).or_default() += 1;
        }
        cancel.cancel();
        while let Ok(batch) = rx.recv().await {
            for job in batch {
                *pairs.entry(job.job.object.path.clone()).or_default() += 1;
            }
        }
        dispatcher.await.unwrap();
        assert!(!pairs.is_empty() && pairs.len() < 20, "{} objects taken", pairs.len());
        assert!(pairs.values().all(|&n| n == 3), "every taken object has all its pairs: {pairs:?}");
    }
}
