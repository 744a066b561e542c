//! Attention's key and value rows asked for ahead of their use, by the AVX-512 and the AVX2
//! kernels.
//!
//! A head's cross-attention keys (and values) are one block of up to 1500 short rows (64
//! values), a row apart by the whole model width: a few rows to a page, which the hardware
//! prefetcher alone followed at a fraction of the bandwidth. Asking 8 KiB ahead took base's
//! decoder step from 2.9 to 2.2 ms on AVX-512 (f16 weights, 2 threads). On AVX2, whose
//! kernels spend longer on each row, it measured within the noise (base 2.25 -> 2.20 ms); it
//! costs nothing there. A prefetch is only a hint: the numbers computed are the same with it or
//! without it.

use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};

/// How far ahead of the key or value row being read the later ones are asked for.
const ROWS_AHEAD_BYTES: usize = 8 << 10;

/// Bytes per prefetch: the cache line of every x86_64.
const LINE: usize = 64;

/// Asks for attention's key or value rows ahead of their use, into the first-level cache.
pub(super) struct RowsAhead {
    /// The rows' start, and the first address past the last row's end.
    start: *const u8,
    end: *const u8,
    /// Bytes from one row to the next, and bytes read of each row.
    stride: usize,
    width: usize,
    /// Rows between the one being read and the one asked for.
    ahead: usize,
}

impl RowsAhead {
    /// For `rows` rows of `width` values, `stride` values apart, at `p`.
    pub(super) fn new<T>(p: *const T, rows: usize, stride: usize, width: usize) -> Self {
        let size = size_of::<T>();
        // No bytes to ask for when there is nothing to read: `ask` then returns at once.
        let bytes = if rows == 0 || width == 0 {
            0
        } else {
            ((rows - 1) * stride + width) * size
        };
        Self {
            start: p as *const u8,
            end: (p as *const u8).wrapping_add(bytes),
            stride: stride * size,
            width: width * size,
            ahead: ROWS_AHEAD_BYTES.div_ceil((width * size).max(1)),
        }
    }

    /// Asks for the row `ahead` rows after row `j`, if there is one: every cache line it
    /// touches.
    #[inline(always)]
    pub(super) fn ask(&self, j: usize) {
        let row = self.start.wrapping_add((j + self.ahead) * self.stride);
        if row >= self.end {
            return;
        }
        let mut line = row.wrapping_sub(row as usize % LINE);
        let last = row.wrapping_add(self.width - 1);
        while line <= last {
            fetch_line(line);
            line = line.wrapping_add(LINE);
        }
    }
}

/// Asks for the cache line holding `p` into the first-level cache.
#[inline(always)]
fn fetch_line(p: *const u8) {
    // SAFETY: a prefetch (SSE, part of every x86_64) never faults and writes nothing; `ask`
    // asks only for lines holding bytes of the rows anyway.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p as *const i8) }
}
