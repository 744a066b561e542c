//! Lets parallel tasks write disjoint pieces of one output buffer.
//!
//! Row-major outputs split by column ranges (weight rows of `matmul_t_f16`, heads of
//! `attention`) are not contiguous per task, so `chunks_mut` cannot hand them out. This type
//! hands out short row segments instead; the callers guarantee that no two tasks ask for
//! overlapping segments.

use std::marker::PhantomData;

pub(super) struct SharedOut<'a> {
    ptr: *mut f32,
    len: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: the buffer is exclusively borrowed for 'a, and `segment`'s contract makes every
// access from any thread disjoint from every other.
unsafe impl Send for SharedOut<'_> {}
unsafe impl Sync for SharedOut<'_> {}

impl<'a> SharedOut<'a> {
    pub(super) fn new(buf: &'a mut [f32]) -> Self {
        SharedOut {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _borrow: PhantomData,
        }
    }

    /// The elements `start..start + len` of the buffer. Panics when out of bounds.
    ///
    /// # Safety
    ///
    /// While the returned slice lives, no other call may return a slice overlapping it.
    #[allow(clippy::mut_from_ref)]
    pub(super) unsafe fn segment(&self, start: usize, len: usize) -> &mut [f32] {
        assert!(
            start <= self.len && len <= self.len - start,
            "segment out of bounds"
        );
        std::slice::from_raw_parts_mut(self.ptr.add(start), len)
    }
}
