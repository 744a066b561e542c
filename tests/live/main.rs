//! The integration tests that run in real time against the machine's own services: the
//! virtual microphone (a private PulseAudio server, `scripts/env/vmic.sh`), the desktop
//! notification bus (`scripts/env/notify-bus.sh`), real processes with deadlines, and `voxd
//! run` listening live. One module per subject; the helpers are `tests/common/`.
//!
//! They are a test binary of their own, apart from `tests/it/`, so that none of them runs
//! beside the CPU-bound tests there (cargo runs the test binaries one after the other): a
//! starved player or recogniser would chop the audio or miss its deadline. Within this binary
//! each test takes a turn from [`turns`].

#[path = "../common/mod.rs"]
mod common;

mod actions;
mod capture;
mod daemon;
mod doctor;

/// How the real-time tests share the machine. The light ones (a front end on the microphone,
/// actions, doctor) run side by side; one that runs a recogniser on a live stream runs alone,
/// since each would slow the other's audio or recogniser down on a small machine.
mod turns {
    use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

    static MACHINE: RwLock<()> = RwLock::new(());

    /// Held for the whole of a light test: it may run beside other light tests.
    pub fn shared() -> RwLockReadGuard<'static, ()> {
        // A test that failed while holding a turn leaves the lock poisoned; the next test
        // still gets its turn.
        MACHINE.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Held for the whole of a test that needs the machine to itself.
    pub fn alone() -> RwLockWriteGuard<'static, ()> {
        MACHINE.write().unwrap_or_else(|e| e.into_inner())
    }
}
