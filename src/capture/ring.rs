//! The hand-off between a capture callback and the front-end thread: a lock-free
//! single-producer single-consumer ring of mono `f32` samples, with counters that account
//! for every sample offered.
//!
//! The producer side ([`RingWriter`]) runs inside audio callbacks, so its real-time push
//! takes no lock, allocates nothing and never logs: it converts, downmixes, pushes what fits
//! and counts the rest as dropped. File sources use the blocking push instead, which waits
//! for room and never drops. Invariant: `offered == pushed + dropped`, and the consumer's
//! `processed` count catches up with `pushed` once it has drained the ring.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Duration;

use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

/// Counters shared by both ends of the ring.
#[derive(Debug, Default)]
pub struct RingStats {
    offered: AtomicU64,
    dropped: AtomicU64,
    processed: AtomicU64,
    closed: AtomicBool,
}

/// A snapshot of [`RingStats`], in mono frames at the source's rate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingCounts {
    /// Frames the source delivered.
    pub offered: u64,
    /// Frames that did not fit in the ring (the consumer fell behind).
    pub dropped: u64,
    /// Frames the consumer has taken out.
    pub processed: u64,
}

impl RingCounts {
    /// Both sets of counters added (rings used one after another).
    pub fn plus(self, other: RingCounts) -> RingCounts {
        RingCounts {
            offered: self.offered + other.offered,
            dropped: self.dropped + other.dropped,
            processed: self.processed + other.processed,
        }
    }
}

impl RingStats {
    /// The counters now.
    pub fn counts(&self) -> RingCounts {
        RingCounts {
            offered: self.offered.load(Ordering::Acquire),
            dropped: self.dropped.load(Ordering::Acquire),
            processed: self.processed.load(Ordering::Acquire),
        }
    }
}

/// Both ends' shared parts: the counters and the consumer's thread (to wake).
struct Shared {
    stats: Arc<RingStats>,
    consumer: OnceLock<Thread>,
}

/// Creates a ring holding `capacity` mono samples; returns its writer and reader.
pub fn ring(capacity: usize) -> (RingWriter, RingReader) {
    let (prod, cons) = HeapRb::<f32>::new(capacity.max(1)).split();
    let shared = Arc::new(Shared {
        stats: Arc::new(RingStats::default()),
        consumer: OnceLock::new(),
    });
    (
        RingWriter {
            prod: Some(prod),
            shared: shared.clone(),
        },
        RingReader { cons, shared },
    )
}

/// The producer end. Moving it into a capture callback is the intended use.
pub struct RingWriter {
    prod: Option<HeapProd<f32>>,
    shared: Arc<Shared>,
}

impl RingWriter {
    /// The shared counters.
    pub fn stats(&self) -> Arc<RingStats> {
        self.shared.stats.clone()
    }

    /// Real-time push of interleaved frames of `channels` samples: each frame is converted
    /// with `to_f32` and averaged to mono. Frames that do not fit are dropped and counted.
    /// No lock, no allocation, no logging: safe inside an audio callback.
    pub fn push_frames<T: Copy>(&mut self, data: &[T], channels: usize, to_f32: impl Fn(T) -> f32) {
        let Some(prod) = self.prod.as_mut() else {
            return;
        };
        let channels = channels.max(1);
        let frames = data.len() / channels;
        let pushed = prod.push_iter(downmixed(data, channels, &to_f32));
        let stats = &self.shared.stats;
        stats.offered.fetch_add(frames as u64, Ordering::AcqRel);
        if pushed < frames {
            stats
                .dropped
                .fetch_add((frames - pushed) as u64, Ordering::AcqRel);
        }
        self.wake_consumer();
    }

    /// Blocking push for sources that can wait (files, pipes): waits for room instead of
    /// dropping. Returns `false` if the reader is gone.
    pub fn push_frames_blocking<T: Copy>(
        &mut self,
        data: &[T],
        channels: usize,
        to_f32: impl Fn(T) -> f32,
    ) -> bool {
        let channels = channels.max(1);
        let frames = data.len() / channels;
        let mut iter = downmixed(data, channels, &to_f32);
        let mut done = 0;
        while done < frames {
            let Some(prod) = self.prod.as_mut() else {
                return false;
            };
            done += prod.push_iter(&mut iter);
            wake(&self.shared);
            if done < frames {
                if !prod.read_is_held() {
                    return false;
                }
                thread::sleep(Duration::from_millis(1));
            }
        }
        self.shared
            .stats
            .offered
            .fetch_add(frames as u64, Ordering::AcqRel);
        true
    }

    /// Marks the end of the stream: the reader drains what is left and then reports the end.
    pub fn close(&mut self) {
        self.shared.stats.closed.store(true, Ordering::Release);
        self.wake_consumer();
    }

    fn wake_consumer(&self) {
        wake(&self.shared);
    }
}

fn wake(shared: &Shared) {
    if let Some(thread) = shared.consumer.get() {
        thread.unpark();
    }
}

fn downmixed<'a, T: Copy>(
    data: &'a [T],
    channels: usize,
    to_f32: &'a impl Fn(T) -> f32,
) -> impl Iterator<Item = f32> + 'a {
    let scale = 1.0 / channels as f32;
    data.chunks_exact(channels)
        .map(move |frame| frame.iter().map(|&s| to_f32(s)).sum::<f32>() * scale)
}

/// The consumer end, owned by the front-end thread.
pub struct RingReader {
    cons: HeapCons<f32>,
    shared: Arc<Shared>,
}

/// What [`RingReader::read`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadStatus {
    /// This many samples were written into the buffer.
    Samples(usize),
    /// Nothing arrived within the wait.
    Idle,
    /// The source closed and everything it pushed has been read.
    Closed,
}

impl RingReader {
    /// Takes up to `buf.len()` samples; if none are ready, sleeps until the producer pushes
    /// or `wait` passes.
    pub fn read(&mut self, buf: &mut [f32], wait: Duration) -> ReadStatus {
        let _ = self.shared.consumer.set(thread::current());
        let n = self.take(buf);
        if n > 0 {
            return ReadStatus::Samples(n);
        }
        if self.shared.stats.closed.load(Ordering::Acquire) {
            // The producer may have pushed between our read and its close.
            let n = self.take(buf);
            return if n > 0 {
                ReadStatus::Samples(n)
            } else {
                ReadStatus::Closed
            };
        }
        thread::park_timeout(wait);
        match self.take(buf) {
            0 => ReadStatus::Idle,
            n => ReadStatus::Samples(n),
        }
    }

    fn take(&mut self, buf: &mut [f32]) -> usize {
        let n = self.cons.pop_slice(buf);
        self.shared
            .stats
            .processed
            .fetch_add(n as u64, Ordering::AcqRel);
        n
    }

    /// The shared counters.
    pub fn stats(&self) -> Arc<RingStats> {
        self.shared.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_push_downmixes_and_counts_drops() {
        let (mut w, mut r) = ring(4);
        // Three stereo frames fit, then two more frames find the ring full after one.
        w.push_frames(&[1i16, 3, 5, 7, -2, -4], 2, f32::from);
        w.push_frames(&[10i16, 10, 20, 20], 2, f32::from);
        let mut buf = [0.0; 8];
        assert_eq!(r.read(&mut buf, Duration::ZERO), ReadStatus::Samples(4));
        assert_eq!(&buf[..4], &[2.0, 6.0, -3.0, 10.0]);
        let c = r.stats().counts();
        assert_eq!((c.offered, c.dropped, c.processed), (5, 1, 4));
        assert_eq!(c.offered, c.processed + c.dropped);
    }

    #[test]
    fn blocking_push_waits_for_the_reader_and_loses_nothing() {
        let (mut w, mut r) = ring(64);
        let total = 10_000usize;
        let producer = thread::spawn(move || {
            let data: Vec<f32> = (0..total).map(|i| i as f32).collect();
            for chunk in data.chunks(333) {
                assert!(w.push_frames_blocking(chunk, 1, |s| s));
            }
            w.close();
        });
        let mut got = Vec::new();
        let mut buf = [0.0; 50];
        loop {
            match r.read(&mut buf, Duration::from_millis(5)) {
                ReadStatus::Samples(n) => got.extend_from_slice(&buf[..n]),
                ReadStatus::Idle => {}
                ReadStatus::Closed => break,
            }
        }
        producer.join().unwrap();
        assert_eq!(got.len(), total);
        assert!(got.iter().enumerate().all(|(i, &v)| v == i as f32));
        let c = r.stats().counts();
        assert_eq!(
            (c.offered, c.dropped, c.processed),
            (total as u64, 0, total as u64)
        );
    }
}
