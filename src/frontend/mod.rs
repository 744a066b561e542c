//! The live front end: from a source's ring buffer to utterances and caption windows.
//!
//! ```text
//! source ─► ring (mono, source rate) ─► [front-end thread]
//!     resample to 16 kHz ─► frames (10/20/30 ms) ─► FrameClassifier (webrtc-vad + earshot + energy)
//!         ─► Segmenter ─► SpeechStart / SpeechEnd(utterance)   ─► events channel (never dropped)
//!         ─► Windower  ─► caption windows                      ─► windows channel (oldest dropped)
//! ```
//!
//! Positions are samples on the 16 kHz audio clock: sample `n` is `n / 16000` s after the
//! first sample the source delivered (the resampler's delay is removed). [`listen`] starts a
//! source and the front end together; [`FrontEnd::start`] runs on any ring reader.

pub mod segment;
pub mod vad;
pub mod windows;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

pub use segment::{
    PauseStage, Segment, SegmentConfig, SegmentConfigError, Segmenter, Utterance, PEEK_MS,
};
pub use vad::{FrameClassifier, FrameVerdict, VadConfig, VadConfigError};
pub use windows::{CaptionWindow, WindowConfig, WindowConfigError, Windower};

use crate::audio::{AudioError, StreamResampler, SAMPLE_RATE};
use crate::capture::{
    Attention, CaptureError, CaptureEvent, CaptureOptions, DeviceCapture, Pace, PcmFormat,
    ReadStatus, RingCounts, RingReader, SourceOutput, StreamFormat, StreamSource,
};

/// Everything the front end can be configured with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrontEndConfig {
    /// Frame-level voice activity.
    pub vad: VadConfig,
    /// Utterance segmentation.
    pub segment: SegmentConfig,
    /// Caption windows, if wanted.
    pub windows: Option<WindowConfig>,
    /// Caption windows wait for the consumer instead of the oldest giving way: set for a
    /// source read as fast as it goes, so that every window is decoded and captions come
    /// out the same on every run (set by [`listen`] from the source's pace).
    pub every_window: bool,
    /// Also write the 16 kHz audio the VAD hears to this WAV file (for checking what a
    /// microphone delivers).
    pub record: Option<PathBuf>,
}

/// Why the front end could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum FrontEndError {
    /// Bad VAD settings.
    #[error(transparent)]
    Vad(#[from] VadConfigError),
    /// Bad segmentation settings.
    #[error(transparent)]
    Segment(#[from] SegmentConfigError),
    /// Bad caption window settings.
    #[error(transparent)]
    Window(#[from] WindowConfigError),
    /// The source failed to start.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Resampling failed.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The thread could not be started.
    #[error("cannot start the front-end thread: {0}")]
    Thread(String),
    /// The recording file could not be created.
    #[error("cannot write {}: {detail}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

/// What the front end reports, in stream order.
#[derive(Clone, Debug, PartialEq)]
pub enum FrontEndEvent {
    /// Speech confirmed.
    SpeechStart {
        /// First sample of the coming utterance (pre-roll included).
        start: u64,
        /// Where the detector heard it begin.
        onset: u64,
    },
    /// The speech has paused (`stage` says how long): the utterance so far. Recognisers may
    /// start on it early; a `Settled` pause has the span its `SpeechEnd` will have if no
    /// more speech comes.
    SpeechPause {
        utterance: Utterance,
        stage: PauseStage,
    },
    /// Speech ended: the utterance.
    SpeechEnd(Utterance),
    /// Something happened at the source (device lost, retrying, resumed, ...).
    Capture(CaptureEvent),
    /// The ring overflowed: this many more source frames were dropped (the consumer fell
    /// behind the device).
    Overrun {
        /// Newly dropped frames, at the source rate.
        dropped: u64,
    },
    /// The source ended; nothing follows.
    Finished(FrontEndStats),
}

/// Accounting for a whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrontEndStats {
    /// The ring's counters (source frames offered, dropped, processed).
    pub ring: RingCounts,
    /// 16 kHz samples that went through the VAD.
    pub samples: u64,
    /// Frames judged, and how many were voiced.
    pub frames: u64,
    /// Voiced frames.
    pub voiced_frames: u64,
    /// Utterances emitted.
    pub utterances: u64,
    /// Caption windows dropped because the consumer was behind.
    pub windows_dropped: u64,
}

/// Where the front end last heard voice: one past its last voiced frame, on the audio clock.
/// Clones share it; it is read without locks, so a consumer can tell whether speech went on
/// after a pause it is handling before the next event says so.
#[derive(Clone, Debug, Default)]
pub struct VoiceMark(Arc<AtomicU64>);

impl VoiceMark {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, at: u64) {
        self.0.store(at, Ordering::Release);
    }
}

/// Events queued before the front end waits for the consumer.
const EVENT_QUEUE: usize = 64;
/// Caption windows queued; beyond it the oldest is dropped.
const WINDOW_QUEUE: usize = 4;
/// Samples taken from the ring per read.
const READ_CHUNK: usize = 4096;
/// Longest sleep when the ring is empty.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// A running front-end thread.
pub struct FrontEnd {
    events: Receiver<FrontEndEvent>,
    windows: Receiver<CaptionWindow>,
    stop: Arc<AtomicBool>,
    voice: VoiceMark,
    handle: Option<JoinHandle<()>>,
}

impl FrontEnd {
    /// Starts the front end on a source's output (which delivers `input_rate` Hz); the
    /// source's reports are passed on in order.
    pub fn start(
        source: SourceOutput,
        input_rate: u32,
        config: FrontEndConfig,
    ) -> Result<Self, FrontEndError> {
        config.vad.validate()?;
        let segmenter = Segmenter::new(&config.segment)?;
        let windower = config.windows.as_ref().map(Windower::new).transpose()?;
        let resampler = StreamResampler::new(input_rate, SAMPLE_RATE)?;
        let recorder = config.record.as_deref().map(create_recording).transpose()?;
        let (events_tx, events) = bounded(EVENT_QUEUE);
        let (windows_tx, windows) = bounded(WINDOW_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let windows_rx = windows.clone();
        let vad = config.vad.clone();
        let voice = VoiceMark::default();
        let voice_heard = voice.clone();
        let handle = thread::Builder::new()
            .name("voxd-frontend".into())
            .spawn(move || {
                // webrtc-vad's state cannot cross threads: build the classifier here. The
                // configuration was validated above, so this does not fail.
                let Ok(classifier) = FrameClassifier::new(vad) else {
                    return;
                };
                let pipeline = Pipeline {
                    attention: AttentionKeeper::new(
                        source.attention.clone(),
                        classifier.config().frame_ms,
                    ),
                    frame_len: classifier.config().frame_len(),
                    classifier,
                    segmenter,
                    windower,
                    pending: Vec::new(),
                    events: events_tx,
                    windows: windows_tx,
                    windows_rx,
                    every_window: config.every_window,
                    stats: FrontEndStats::default(),
                    hung_up: false,
                    recorder,
                    voice: voice_heard,
                };
                run(source, resampler, pipeline, &stop_flag);
            })
            .map_err(|e| FrontEndError::Thread(e.to_string()))?;
        Ok(FrontEnd {
            events,
            windows,
            stop,
            voice,
            handle: Some(handle),
        })
    }

    /// Speech, capture and end-of-stream events.
    pub fn events(&self) -> &Receiver<FrontEndEvent> {
        &self.events
    }

    /// Caption windows (only when configured).
    pub fn windows(&self) -> &Receiver<CaptionWindow> {
        &self.windows
    }

    /// Where voice was last heard, as it changes.
    pub fn voice(&self) -> VoiceMark {
        self.voice.clone()
    }

    /// Asks the thread to stop: speech in progress is closed and `Finished` follows.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Drop for FrontEnd {
    fn drop(&mut self) {
        self.request_stop();
        // Unblock a send the thread may be waiting in, then wait for it.
        while self.events.try_recv().is_ok() {}
        if let Some(handle) = self.handle.take() {
            let events = self.events.clone();
            while !handle.is_finished() {
                let _ = events.recv_timeout(Duration::from_millis(10));
            }
            let _ = handle.join();
        }
    }
}

/// The front-end thread's loop.
fn run(
    source: SourceOutput,
    mut resampler: StreamResampler,
    mut pipeline: Pipeline,
    stop: &AtomicBool,
) {
    let SourceOutput {
        mut reader,
        events: capture_events,
        replacements,
        attention: _,
    } = source;
    let mut buf = vec![0.0f32; READ_CHUNK];
    let mut dropped_reported = 0;
    // Counters of rings already drained (a device reopened gets a fresh ring).
    let mut retired = RingCounts::default();
    loop {
        while let Ok(event) = capture_events.try_recv() {
            pipeline.send(FrontEndEvent::Capture(event));
        }
        let status = if stop.load(Ordering::Acquire) {
            ReadStatus::Closed
        } else {
            reader.read(&mut buf, IDLE_WAIT)
        };
        let result = match status {
            ReadStatus::Samples(n) => resampler.push(&buf[..n], &mut |run| pipeline.feed(run)),
            ReadStatus::Idle => Ok(()),
            ReadStatus::Closed => resampler.finish(&mut |run| pipeline.feed(run)),
        };
        if let Err(e) = result {
            // Cannot happen with a resampler planned at start; report rather than panic.
            pipeline.send(FrontEndEvent::Capture(CaptureEvent::Failed {
                error: e.to_string(),
            }));
        }
        if status == ReadStatus::Idle {
            if let Ok(next) = replacements.try_recv() {
                // The old stream is gone: take what is left in its ring, then move on.
                drain(&mut reader, &mut buf, &mut resampler, &mut pipeline);
                retired = retired.plus(reader.stats().counts());
                reader = next;
            }
        }
        let counts = retired.plus(reader.stats().counts());
        if counts.dropped > dropped_reported {
            tracing::warn!(
                dropped = counts.dropped - dropped_reported,
                "audio ring overflowed: samples dropped"
            );
            pipeline.send(FrontEndEvent::Overrun {
                dropped: counts.dropped - dropped_reported,
            });
            dropped_reported = counts.dropped;
        }
        if status == ReadStatus::Closed || pipeline.hung_up {
            break;
        }
    }
    while let Ok(event) = capture_events.try_recv() {
        pipeline.send(FrontEndEvent::Capture(event));
    }
    pipeline.finish(retired.plus(reader.stats().counts()));
}

/// Feeds whatever is still in `reader` without waiting.
fn drain(
    reader: &mut RingReader,
    buf: &mut [f32],
    resampler: &mut StreamResampler,
    pipeline: &mut Pipeline,
) {
    while let ReadStatus::Samples(n) = reader.read(buf, Duration::ZERO) {
        if resampler
            .push(&buf[..n], &mut |run| pipeline.feed(run))
            .is_err()
        {
            return;
        }
    }
}

/// Framing, classification, segmentation and windowing of 16 kHz audio.
struct Pipeline {
    classifier: FrameClassifier,
    segmenter: Segmenter,
    windower: Option<Windower>,
    frame_len: usize,
    /// 16 kHz samples waiting for a whole frame.
    pending: Vec<f32>,
    events: Sender<FrontEndEvent>,
    windows: Sender<CaptionWindow>,
    /// Our own handle on the windows queue, to drop its oldest entry when full.
    windows_rx: Receiver<CaptionWindow>,
    /// Wait for room instead ([`FrontEndConfig::every_window`]).
    every_window: bool,
    stats: FrontEndStats,
    /// The consumer is gone: stop.
    hung_up: bool,
    recorder: Option<Recording>,
    voice: VoiceMark,
    attention: AttentionKeeper,
}

/// How long attention stays close after the last loud frame: a pause inside a sentence
/// must not slow the audio of its next words.
const ATTENTION_HOLD_MS: u32 = 1_000;

/// Keeps the source's [`Attention`] close while anything louder than the room is heard or
/// an utterance runs, and relaxed once the room has been quiet for [`ATTENTION_HOLD_MS`].
struct AttentionKeeper {
    attention: Attention,
    hold_frames: u32,
    quiet_frames: u32,
}

impl AttentionKeeper {
    fn new(attention: Attention, frame_ms: u32) -> Self {
        AttentionKeeper {
            attention,
            hold_frames: ATTENTION_HOLD_MS / frame_ms.max(1),
            quiet_frames: u32::MAX,
        }
    }

    fn frame(&mut self, heard: bool) {
        self.quiet_frames = if heard {
            0
        } else {
            self.quiet_frames.saturating_add(1)
        };
        self.attention
            .set_close(self.quiet_frames < self.hold_frames);
    }
}

type Recording = hound::WavWriter<std::io::BufWriter<std::fs::File>>;

fn create_recording(path: &std::path::Path) -> Result<Recording, FrontEndError> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    hound::WavWriter::create(path, spec).map_err(|e| FrontEndError::Record {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}

impl Pipeline {
    fn feed(&mut self, mut samples: &[f32]) {
        self.record(samples);
        while !samples.is_empty() {
            let take = (self.frame_len - self.pending.len()).min(samples.len());
            self.pending.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.pending.len() == self.frame_len {
                let frame = std::mem::take(&mut self.pending);
                self.frame(&frame);
                self.pending = frame;
                self.pending.clear();
            }
        }
    }

    fn frame(&mut self, frame: &[f32]) {
        let verdict = self.classifier.classify(frame);
        self.stats.samples += frame.len() as u64;
        self.stats.frames += 1;
        self.stats.voiced_frames += u64::from(verdict.voiced);
        if verdict.voiced {
            self.voice.set(self.stats.samples);
        }
        self.attention
            .frame(verdict.loud || verdict.voiced || self.segmenter.in_speech());
        let mut segments = Vec::new();
        self.segmenter
            .push(frame, verdict.voiced, &mut |s| segments.push(s));
        for segment in segments {
            self.segment(segment);
        }
        if let Some(windower) = self.windower.as_mut() {
            let mut ready = Vec::new();
            windower.push(frame, verdict.voiced, &mut |w| ready.push(w));
            for window in ready {
                self.send_window(window);
            }
        }
    }

    fn segment(&mut self, segment: Segment) {
        match segment {
            Segment::Start { start, onset } => {
                self.send(FrontEndEvent::SpeechStart { start, onset })
            }
            Segment::Pause { utterance, stage } => {
                self.send(FrontEndEvent::SpeechPause { utterance, stage })
            }
            Segment::End(utterance) => {
                self.stats.utterances += 1;
                self.send(FrontEndEvent::SpeechEnd(utterance));
            }
        }
    }

    /// Appends to the recording; a write error ends the recording, not the front end.
    fn record(&mut self, samples: &[f32]) {
        let Some(recorder) = self.recorder.as_mut() else {
            return;
        };
        if let Err(e) = samples.iter().try_for_each(|&x| recorder.write_sample(x)) {
            tracing::warn!(error = %e, "recording stopped");
            self.recorder = None;
        }
    }

    /// Sends an event, waiting for room: speech events are never dropped.
    fn send(&mut self, event: FrontEndEvent) {
        if !self.hung_up && self.events.send(event).is_err() {
            self.hung_up = true;
        }
    }

    /// Sends a caption window; when the queue is full the oldest one gives way.
    fn send_window(&mut self, mut window: CaptionWindow) {
        if self.every_window {
            if !self.hung_up && self.windows.send(window).is_err() {
                self.hung_up = true;
            }
            return;
        }
        loop {
            match self.windows.try_send(window) {
                Ok(()) => return,
                Err(TrySendError::Full(w)) => {
                    if self.windows_rx.try_recv().is_ok() {
                        self.stats.windows_dropped += 1;
                        tracing::debug!("caption consumer behind: oldest window dropped");
                    }
                    window = w;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    /// End of stream: the partial frame is dropped (less than one frame of audio), speech
    /// in progress is closed, and the totals are reported.
    fn finish(mut self, ring: RingCounts) {
        let mut segments = Vec::new();
        self.segmenter.finish(&mut |s| segments.push(s));
        for segment in segments {
            self.segment(segment);
        }
        if let Some(windower) = self.windower.as_mut() {
            let mut ready = Vec::new();
            windower.finish(&mut |w| ready.push(w));
            for window in ready {
                self.send_window(window);
            }
        }
        if let Some(Err(e)) = self.recorder.take().map(hound::WavWriter::finalize) {
            tracing::warn!(error = %e, "recording not finalized");
        }
        self.stats.ring = ring;
        let stats = self.stats;
        self.send(FrontEndEvent::Finished(stats));
    }
}

/// The caption windows the live front end makes of 16 kHz audio held in memory: the same
/// frames, classifier and windower, but every window (no queue, nothing dropped), for
/// captioning a recording deterministically.
pub fn caption_windows(
    samples: &[f32],
    vad: VadConfig,
    windows: &WindowConfig,
) -> Result<Vec<CaptionWindow>, FrontEndError> {
    let mut stream = StreamWindows::new(vad, windows)?;
    let mut out = Vec::new();
    stream.push(samples, &mut |w| out.push(w));
    stream.finish(&mut |w| out.push(w));
    Ok(out)
}

/// The live front end's caption windows for 16 kHz audio that arrives in pieces of any
/// length (a network stream's chunks): the same frames, classifier and windower.
pub struct StreamWindows {
    classifier: FrameClassifier,
    windower: Windower,
    /// The start of a frame not yet complete.
    partial: Vec<f32>,
}

impl StreamWindows {
    pub fn new(vad: VadConfig, windows: &WindowConfig) -> Result<Self, FrontEndError> {
        Ok(StreamWindows {
            classifier: FrameClassifier::new(vad)?,
            windower: Windower::new(windows)?,
            partial: Vec::new(),
        })
    }

    /// Takes the next samples; emits a window whenever a step is complete.
    pub fn push(&mut self, samples: &[f32], emit: &mut impl FnMut(CaptionWindow)) {
        let frame_len = self.classifier.config().frame_len();
        self.partial.extend_from_slice(samples);
        let whole = self.partial.len() / frame_len * frame_len;
        for frame in self.partial[..whole].chunks_exact(frame_len) {
            let voiced = self.classifier.classify(frame).voiced;
            self.windower.push(frame, voiced, emit);
        }
        self.partial.drain(..whole);
    }

    /// The stream ended: the last, partial step as a window. As the live path, a last
    /// partial frame is dropped.
    pub fn finish(&mut self, emit: &mut impl FnMut(CaptionWindow)) {
        self.windower.finish(emit);
    }
}

/// Milliseconds on the audio clock for a 16 kHz sample position.
pub fn ms(sample: u64) -> u64 {
    sample / (u64::from(SAMPLE_RATE) / 1000)
}

impl FrontEndEvent {
    /// The event as one JSON object (a line of `voxd listen`'s output): `event` names it,
    /// times are milliseconds on the audio clock, sample positions are at 16 kHz.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            FrontEndEvent::SpeechStart { start, onset } => json!({
                "event": "speech_start", "start_ms": ms(*start), "onset_ms": ms(*onset),
                "start": start, "onset": onset,
            }),
            FrontEndEvent::SpeechPause {
                utterance: u,
                stage,
            } => json!({
                "event": "speech_pause", "start_ms": ms(u.start), "end_ms": ms(u.end),
                "voice_end_ms": ms(u.voice_end), "stage": stage.name(),
                "start": u.start, "end": u.end,
            }),
            FrontEndEvent::SpeechEnd(u) => json!({
                "event": "speech_end", "start_ms": ms(u.start), "end_ms": ms(u.end),
                "onset_ms": ms(u.onset), "duration_ms": ms(u.end - u.start), "cut": u.cut,
                "start": u.start, "end": u.end, "onset": u.onset,
            }),
            FrontEndEvent::Capture(c) => {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["event"] = json!("capture");
                v
            }
            FrontEndEvent::Overrun { dropped } => json!({"event": "overrun", "dropped": dropped}),
            FrontEndEvent::Finished(s) => json!({
                "event": "finished", "offered": s.ring.offered, "dropped": s.ring.dropped,
                "processed": s.ring.processed, "samples": s.samples, "audio_ms": ms(s.samples),
                "frames": s.frames, "voiced_frames": s.voiced_frames,
                "utterances": s.utterances, "windows_dropped": s.windows_dropped,
            }),
        }
    }
}

/// Where [`listen`] takes audio from.
#[derive(Debug)]
pub enum Source {
    /// A microphone.
    Device(CaptureOptions),
    /// A WAV file.
    Wav {
        /// The file.
        path: PathBuf,
        /// Real time or as fast as possible.
        pace: Pace,
    },
    /// Raw interleaved PCM on standard input.
    Stdin {
        /// Sample encoding.
        format: PcmFormat,
        /// Frames per second.
        rate: u32,
        /// Channels.
        channels: u16,
        /// Real time or as fast as possible.
        pace: Pace,
    },
}

/// Device ring capacity, in seconds of audio: room for the front end to fall behind briefly
/// (a slow consumer of utterances) before samples are dropped.
const DEVICE_RING_SECONDS: f32 = 4.0;

/// A source and its front end, running. Dropping it stops both.
pub struct Listening {
    /// The front end (events and windows).
    pub front_end: FrontEnd,
    /// What the source delivers.
    pub format: StreamFormat,
    /// The device, kept open while listening (none for files and pipes).
    _device: Option<DeviceCapture>,
    _stream: Option<StreamSource>,
}

/// Starts `source` and a front end on it. Opening errors (no such device, unsupported
/// configuration, unreadable WAV header, bad PCM parameters, bad settings) come back here.
pub fn listen(source: Source, mut config: FrontEndConfig) -> Result<Listening, FrontEndError> {
    config.every_window = match &source {
        Source::Device(_) => false,
        Source::Wav { pace, .. } | Source::Stdin { pace, .. } => *pace == Pace::Fast,
    };
    let (format, device, stream, output) = match source {
        Source::Device(options) => {
            let (device, output) = DeviceCapture::start(options, DEVICE_RING_SECONDS)?;
            (device.format(), Some(device), None, output)
        }
        Source::Wav { path, pace } => {
            let (source, output) = StreamSource::wav(&path, pace)?;
            (source.format(), None, Some(source), output)
        }
        Source::Stdin {
            format,
            rate,
            channels,
            pace,
        } => {
            let (source, output) =
                StreamSource::pcm(std::io::stdin(), format, rate, channels, pace)?;
            (source.format(), None, Some(source), output)
        }
    };
    let front_end = FrontEnd::start(output, format.rate, config)?;
    Ok(Listening {
        front_end,
        format,
        _device: device,
        _stream: stream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attention_is_close_from_the_first_loud_frame_until_a_second_of_quiet() {
        let attention = Attention::default();
        let mut keeper = AttentionKeeper::new(attention.clone(), 20);
        keeper.frame(false);
        assert!(!attention.is_close(), "a quiet start stays relaxed");
        keeper.frame(true);
        assert!(attention.is_close());
        for _ in 0..49 {
            keeper.frame(false);
        }
        assert!(
            attention.is_close(),
            "a pause under a second keeps it close"
        );
        keeper.frame(false);
        assert!(!attention.is_close(), "a second of quiet relaxes it");
        keeper.frame(true);
        assert!(attention.is_close());
    }
}
