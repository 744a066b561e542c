//! `read_wav` holds the 16 kHz result and little else: a file's samples are resampled as
//! they are read, never collected whole first. Measured with a counting allocator, so this
//! file holds this one test (any other test's allocations would count too).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use voxd::audio::{read_wav, SAMPLE_RATE};

/// The system allocator, counting the bytes live now and the most ever live.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn a_long_48k_stereo_file_is_resampled_while_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    // Two minutes of 48 kHz stereo 16-bit: 23 MB of file, 46 MB as f32 samples, 7.7 MB of
    // 16 kHz result.
    let seconds = 120;
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    for n in 0..48_000 * seconds {
        let v = ((n % 480) as i16 - 240) * 100;
        writer.write_sample(v).unwrap();
        writer.write_sample(-v / 2).unwrap();
    }
    writer.finalize().unwrap();

    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let samples = read_wav(&path).unwrap();
    let peak = PEAK.load(Ordering::Relaxed) - before;

    let result_bytes = samples.len() * std::mem::size_of::<f32>();
    assert_eq!(samples.len(), SAMPLE_RATE as usize * seconds);
    // The result, plus the reader's chunk, the resampler's blocks and buffers: a few MB at
    // most, where the whole file as f32 would be 46 MB more.
    let overhead = peak - result_bytes;
    println!("result {result_bytes} bytes, peak {peak} bytes, overhead {overhead} bytes");
    assert!(
        overhead < 4 << 20,
        "read_wav held {peak} bytes at its peak for a result of {result_bytes}"
    );
}
