//! A worker thread that handles items from a bounded queue one at a time: for work that may
//! wait on something slow (a notification server, a speech program) while the thread that
//! offers it must not.

use std::thread::{self, JoinHandle};

use crossbeam_channel::{bounded, Sender, TrySendError};

/// The handle of a worker thread; [`Background::finish`] (or dropping it) ends the thread
/// once the queue is empty.
#[derive(Debug)]
pub struct Background<T> {
    queue: Sender<T>,
    thread: JoinHandle<()>,
}

impl<T: Send + 'static> Background<T> {
    /// Starts the thread `name`, which calls `handle` on each item, in order.
    pub fn start(
        name: &str,
        capacity: usize,
        mut handle: impl FnMut(T) + Send + 'static,
    ) -> std::io::Result<Background<T>> {
        let (queue, waiting) = bounded(capacity);
        let thread = thread::Builder::new()
            .name(name.into())
            .spawn(move || waiting.into_iter().for_each(&mut handle))?;
        Ok(Background { queue, thread })
    }

    /// Queues `item` if there is a place; never waits.
    pub fn offer(&self, item: T) -> Result<(), TrySendError<T>> {
        self.queue.try_send(item)
    }

    /// Handles what is queued, then ends the thread.
    pub fn finish(self) {
        drop(self.queue);
        if self.thread.join().is_err() {
            tracing::error!("a background thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_handled_in_order_and_a_full_queue_refuses() {
        let (done, results) = crossbeam_channel::unbounded();
        let (gate_tx, gate) = crossbeam_channel::bounded::<()>(0);
        let worker = Background::start("test-worker", 1, move |n: u32| {
            // The first item holds the thread until the test has filled the queue.
            if n == 0 {
                gate.recv().unwrap();
            }
            done.send(n).unwrap();
        })
        .unwrap();
        worker.offer(0).unwrap();
        // The thread takes item 0 and waits; one more item fits, the next does not.
        let mut offered = 1;
        while worker.offer(offered).is_ok() {
            offered += 1;
            assert!(offered < 4, "the queue holds at most one waiting item");
        }
        gate_tx.send(()).unwrap();
        worker.finish();
        let handled: Vec<u32> = results.try_iter().collect();
        assert_eq!(handled, (0..offered).collect::<Vec<_>>());
    }
}
