//! The default microphone through the sound server's own API (PulseAudio, or PipeWire's
//! PulseAudio service), for Linux desktops and boards that run one.
//!
//! Why not ALSA's PulseAudio plugin, which cpal reaches: the plugin hands audio over in
//! pieces smaller than the period cpal waits for, and cpal's ALSA thread then polls in a
//! loop until a whole period has arrived. Measured on the virtual microphone with a quiet
//! noise playing, that loop took 26 % of a core with 20 ms periods; idle, the plugin's two
//! threads woke about 500 times a second. A blocking read of whole fragments from the
//! server wakes once per fragment and costs a few tenths of a percent.
//!
//! The reader thread asks for 32-bit float samples (the server converts whatever the
//! source delivers) and pushes what arrives into the ring as a microphone callback would.
//! The server sends a fragment of `buffer_ms` at a time while the front end's [`Attention`]
//! is close (someone may be speaking: an utterance's end must be heard at once), and of
//! [`RELAXED_FRAGMENT_MS`] while the room is quiet, so that an idle daemon wakes a few
//! times a second. A failed read is a fault for the supervisor, which reopens the stream
//! as it does a cpal device's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{bounded, Sender};
use libpulse_binding::context::{Context, FlagSet as ContextFlags, State as ContextState};
use libpulse_binding::def::BufferAttr;
use libpulse_binding::mainloop::standard::{IterateResult, Mainloop};
use libpulse_binding::sample::{Format, Spec};
use libpulse_binding::stream::{
    FlagSet as StreamFlags, PeekResult, State as StreamState, Stream as PaStream,
};

use super::ring::RingWriter;
use super::{Attention, CaptureError, StreamFormat};

/// What a source is opened at when the settings leave rate or channels open: the server
/// converts to it, and voxd's resampler takes it from there to 16 kHz.
pub(super) const DEFAULT_RATE: u32 = 48_000;
pub(super) const DEFAULT_CHANNELS: u16 = 1;

/// Fragment length when the settings leave the period to the driver (`buffer_ms = 0`).
const DEFAULT_FRAGMENT_MS: u32 = 20;

/// Fragment length while the room is quiet. Speech that starts then reaches the front end
/// up to this late, which moves no utterance (times are on the audio clock) and delays
/// only the first partial caption; the fragments shorten before the utterance can end.
const RELAXED_FRAGMENT_MS: u32 = 100;

/// How often the server sends audio.
pub struct Pace {
    /// Fragment length while attention is close; `None`: [`DEFAULT_FRAGMENT_MS`].
    pub buffer_ms: Option<u32>,
    /// The front end's attention.
    pub attention: Attention,
}

/// The name the server shows for voxd's stream.
const CLIENT_NAME: &str = "voxd";

/// A stream from the server's default source; dropping it stops the reader and closes it.
pub struct PulseStream {
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Drop for PulseStream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.reader.take() {
            let _ = handle.join();
        }
    }
}

/// Connects to the sound server and starts reading its default source, converted to
/// `format`, into `writer`. Fails at once (no thread left behind) when no server answers or
/// it refuses the format.
pub fn open(
    format: StreamFormat,
    pace: Pace,
    writer: RingWriter,
    fault: Sender<String>,
) -> Result<PulseStream, CaptureError> {
    let spec = Spec {
        format: Format::F32le,
        rate: format.rate,
        channels: u8::try_from(format.channels).unwrap_or(u8::MAX),
    };
    if !spec.is_valid() {
        return Err(CaptureError::UnsupportedConfig {
            device: "the sound server's default source".into(),
            requested: format!("{} ch {} Hz", format.channels, format.rate),
            supported: "1 to 32 channels, up to 384000 Hz".into(),
        });
    }
    let close_ms = pace.buffer_ms.unwrap_or(DEFAULT_FRAGMENT_MS);
    let stop = Arc::new(AtomicBool::new(false));
    let (connected_tx, connected) = bounded(1);
    let reading = Reader {
        stop: stop.clone(),
        writer,
        fault,
        channels: usize::from(format.channels),
        close_fragment: fragment_bytes(format, close_ms),
        relaxed_fragment: fragment_bytes(format, close_ms.max(RELAXED_FRAGMENT_MS)),
        attention: pace.attention,
    };
    let reader = thread::Builder::new()
        .name("voxd-pulse".into())
        .spawn(move || reading.run(spec, connected_tx))
        .map_err(|e| CaptureError::Device(format!("cannot start the capture thread: {e}")))?;
    match connected.recv() {
        Ok(Ok(())) => Ok(PulseStream {
            stop,
            reader: Some(reader),
        }),
        Ok(Err(reason)) => {
            let _ = reader.join();
            Err(CaptureError::Host(format!("sound server: {reason}")))
        }
        Err(_) => {
            let _ = reader.join();
            Err(CaptureError::Host(
                "sound server: the capture thread ended while connecting".into(),
            ))
        }
    }
}

/// Bytes in one fragment of `ms` of 32-bit samples (whole frames, at least one).
fn fragment_bytes(format: StreamFormat, ms: u32) -> usize {
    let frames = (u64::from(format.rate) * u64::from(ms.max(1)) / 1000).max(1);
    frames as usize * usize::from(format.channels) * std::mem::size_of::<f32>()
}

/// The reader thread's state.
struct Reader {
    stop: Arc<AtomicBool>,
    writer: RingWriter,
    fault: Sender<String>,
    channels: usize,
    /// Bytes per fragment while attention is close, and while it is relaxed.
    close_fragment: usize,
    relaxed_fragment: usize,
    attention: Attention,
}

/// A connected context and its record stream, driven by this thread's own main loop: one
/// thread that sleeps until the server sends a fragment (libpulse's threaded loop, as its
/// "simple" API uses, would add a second thread woken for every packet).
///
/// Fields drop in order: the stream, then the context, then the loop both were made on.
struct Connection {
    stream: PaStream,
    context: Context,
    mainloop: Mainloop,
}

impl Drop for Connection {
    fn drop(&mut self) {
        let _ = self.stream.disconnect();
        self.context.disconnect();
    }
}

impl Connection {
    fn open(spec: &Spec, fragment: usize) -> Result<Self, String> {
        let mut mainloop = Mainloop::new().ok_or("cannot create a main loop")?;
        let mut context =
            Context::new(&mainloop, CLIENT_NAME).ok_or("cannot create a client context")?;
        context
            .connect(None, ContextFlags::NOAUTOSPAWN, None)
            .map_err(|e| format!("{e}"))?;
        wait_until(&mut mainloop, || match context.get_state() {
            ContextState::Ready => Some(Ok(())),
            ContextState::Failed | ContextState::Terminated => {
                Some(Err("no server answers".to_string()))
            }
            _ => None,
        })?;
        let mut stream = PaStream::new(&mut context, "microphone", spec, None)
            .ok_or("the server refused the sample format")?;
        stream
            .connect_record(
                None,
                Some(&buffer_attr(fragment)),
                StreamFlags::ADJUST_LATENCY,
            )
            .map_err(|e| format!("{e}"))?;
        wait_until(&mut mainloop, || match stream.get_state() {
            StreamState::Ready => Some(Ok(())),
            StreamState::Failed | StreamState::Terminated => Some(Err(
                "the server could not open its default source".to_string(),
            )),
            _ => None,
        })?;
        Ok(Connection {
            stream,
            context,
            mainloop,
        })
    }
}

/// The server keeps its default buffer; `fragsize` is how much it gathers before it sends,
/// so that is how often the reader wakes.
fn buffer_attr(fragment: usize) -> BufferAttr {
    BufferAttr {
        maxlength: u32::MAX,
        tlength: u32::MAX,
        prebuf: u32::MAX,
        minreq: u32::MAX,
        fragsize: u32::try_from(fragment).unwrap_or(u32::MAX),
    }
}

/// Runs the main loop until `done` says how it ended.
fn wait_until(
    mainloop: &mut Mainloop,
    mut done: impl FnMut() -> Option<Result<(), String>>,
) -> Result<(), String> {
    loop {
        if let Some(result) = done() {
            return result;
        }
        if let IterateResult::Quit(_) | IterateResult::Err(_) = mainloop.iterate(true) {
            return Err("the connection to the server broke".into());
        }
    }
}

impl Reader {
    fn run(mut self, spec: Spec, connected: Sender<Result<(), String>>) {
        let mut close = self.attention.is_close();
        let mut connection = match Connection::open(&spec, self.fragment(close)) {
            Ok(connection) => connection,
            Err(reason) => {
                let _ = connected.send(Err(reason));
                return;
            }
        };
        let _ = connected.send(Ok(()));
        let mut samples = Vec::with_capacity(self.relaxed_fragment / 4);
        while !self.stop.load(Ordering::Acquire) {
            if let Err(reason) = self.read_available(&mut connection, &mut samples) {
                let _ = self.fault.try_send(format!("sound server: {reason}"));
                return;
            }
            if self.attention.is_close() != close {
                close = !close;
                // Takes effect with the server's next fragment; nothing waits for it.
                let attr = buffer_attr(self.fragment(close));
                drop(connection.stream.set_buffer_attr(&attr, |_| {}));
            }
        }
    }

    fn fragment(&self, close: bool) -> usize {
        if close {
            self.close_fragment
        } else {
            self.relaxed_fragment
        }
    }

    /// Waits for the server, then moves everything it has sent into the ring.
    fn read_available(
        &mut self,
        connection: &mut Connection,
        samples: &mut Vec<f32>,
    ) -> Result<(), String> {
        if let IterateResult::Quit(_) | IterateResult::Err(_) = connection.mainloop.iterate(true) {
            return Err("the connection broke".into());
        }
        if let StreamState::Failed | StreamState::Terminated = connection.stream.get_state() {
            return Err("the stream ended".into());
        }
        while connection.stream.readable_size().unwrap_or(0) > 0 {
            match connection.stream.peek().map_err(|e| format!("{e}"))? {
                PeekResult::Empty => break,
                // Audio the server lost (an overrun of the source under load): silence of
                // the same length keeps every later sample at its time on the audio clock.
                PeekResult::Hole(bytes) => {
                    samples.clear();
                    samples.resize(bytes / 4, 0.0);
                    self.writer.push_frames(samples, self.channels, |s| s);
                }
                PeekResult::Data(bytes) => {
                    samples.clear();
                    samples.extend(
                        bytes
                            .chunks_exact(4)
                            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    );
                    self.writer.push_frames(samples, self.channels, |s| s);
                }
            }
            connection.stream.discard().map_err(|e| format!("{e}"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fragment_holds_whole_frames_of_the_period() {
        let stereo = StreamFormat {
            rate: 48_000,
            channels: 2,
        };
        assert_eq!(fragment_bytes(stereo, 20), 960 * 2 * 4);
        let mono = StreamFormat {
            rate: 16_000,
            channels: 1,
        };
        assert_eq!(fragment_bytes(mono, 0), 16 * 4);
        assert_eq!(fragment_bytes(mono, 50), 800 * 4);
    }
}
