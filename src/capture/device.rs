//! Microphones through cpal: listing input devices, opening one at its native format, and
//! keeping it open through faults.
//!
//! The data callback only converts and downmixes into the ring ([`RingWriter::push_frames`]).
//! A supervisor thread owns the cpal stream: when the device reports a fatal error, or no
//! audio has arrived for [`CaptureOptions::stall_after`], it drops the stream, waits with
//! exponential back-off, and reopens the same device, or the default one if that is gone, at
//! the same sample rate (the front end's resampler is planned for it). Every step is reported
//! as a [`CaptureEvent`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample, StreamConfig, I24};
use crossbeam_channel::{bounded, Receiver, Sender};

use super::ring::{ring, RingReader, RingStats, RingWriter};
use super::{Attention, CaptureError, CaptureEvent, SourceOutput, StreamFormat};

/// Which input device to open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DeviceSelector {
    /// The host's default input device.
    #[default]
    Default,
    /// The device at this position in [`list_devices`]' order.
    Index(usize),
    /// The first device whose name or id contains this text (case-insensitive).
    Name(String),
}

impl DeviceSelector {
    /// Reads a `--device` value: a number is an index, anything else a name; `default` (or
    /// an empty value) is the default device.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("default") {
            DeviceSelector::Default
        } else if let Ok(index) = text.parse() {
            DeviceSelector::Index(index)
        } else {
            DeviceSelector::Name(text.to_string())
        }
    }
}

impl std::fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSelector::Default => write!(f, "the default input device"),
            DeviceSelector::Index(i) => write!(f, "input device #{i}"),
            DeviceSelector::Name(n) => write!(f, "input device \"{n}\""),
        }
    }
}

/// Which audio API opens the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptureBackend {
    /// The sound server's own API for the default device when a server answers (Linux),
    /// cpal for everything else. The default: an idle daemon costs a quarter of what it
    /// does through ALSA's PulseAudio plugin (README, Audio front end).
    #[default]
    Auto,
    /// The PulseAudio API (PulseAudio or PipeWire's PulseAudio service); Linux only.
    Pulse,
    /// cpal: ALSA on Linux, CoreAudio on macOS.
    Cpal,
}

impl CaptureBackend {
    /// The names `[audio] backend` takes.
    pub const NAMES: [&'static str; 3] = ["auto", "pulse", "cpal"];
}

/// An input device as `voxd devices` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceInfo {
    /// Position in the listing (what `--device N` selects).
    pub index: usize,
    /// Human-readable name.
    pub name: String,
    /// The host's identifier for it.
    pub id: String,
    /// Whether it is the host's default input.
    pub is_default: bool,
    /// Its default input format, if it reports one.
    pub default_config: Option<String>,
    /// Every supported input range, e.g. `F32 2 ch 8000-192000 Hz`.
    pub configs: Vec<String>,
}

/// Settings for opening a device.
#[derive(Clone, Debug)]
pub struct CaptureOptions {
    /// Which device.
    pub device: DeviceSelector,
    /// Which audio API opens it.
    pub backend: CaptureBackend,
    /// Sample rate to ask for; `None` takes the device's default.
    pub rate: Option<u32>,
    /// Channel count to ask for; `None` takes the device's default.
    pub channels: Option<u16>,
    /// Audio per driver period, ms; `None` lets the driver choose. Some drivers (ALSA's
    /// PulseAudio plugin) otherwise pick periods of a few ms and wake the capture thread
    /// hundreds of times a second.
    pub buffer_ms: Option<u32>,
    /// No audio for this long while running counts as a fault.
    pub stall_after: Duration,
    /// First retry delay after a fault; doubles up to [`CaptureOptions::max_backoff`].
    pub first_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        CaptureOptions {
            device: DeviceSelector::Default,
            backend: CaptureBackend::Auto,
            rate: None,
            channels: None,
            buffer_ms: Some(DEFAULT_BUFFER_MS),
            stall_after: Duration::from_secs(2),
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Default driver period: short enough for low latency, long enough that capture wakes up
/// only 50 times a second.
pub const DEFAULT_BUFFER_MS: u32 = 20;

/// Lists the host's input devices with their supported configurations.
pub fn list_devices() -> Result<Vec<DeviceInfo>, CaptureError> {
    // Probing opens every ALSA plugin, most of which complain on a machine without them.
    #[cfg(target_os = "linux")]
    let _quiet_alsa = alsa::Output::local_error_handler().ok();
    let host = cpal::default_host();
    let default_id = host.default_input_device().and_then(|d| d.id().ok());
    let devices = host
        .input_devices()
        .map_err(|e| CaptureError::Host(e.to_string()))?;
    Ok(devices
        .enumerate()
        .map(|(index, device)| {
            let id = device.id().ok();
            let configs = device
                .supported_input_configs()
                .map(|ranges| summarize(ranges.collect()))
                .unwrap_or_default();
            DeviceInfo {
                index,
                name: device_name(&device),
                is_default: id.is_some() && id == default_id,
                id: id.map(|i| i.to_string()).unwrap_or_default(),
                default_config: device.default_input_config().ok().map(|c| {
                    format!(
                        "{} {} ch {} Hz",
                        c.sample_format(),
                        c.channels(),
                        c.sample_rate()
                    )
                }),
                configs,
            }
        })
        .collect())
}

/// One line per usable sample format: its channel counts and rate range (ALSA plugins list
/// every channel count from 1 to 64 separately).
fn summarize(ranges: Vec<cpal::SupportedStreamConfigRange>) -> Vec<String> {
    let mut formats: Vec<SampleFormat> = Vec::new();
    for r in &ranges {
        if is_supported_format(r.sample_format()) && !formats.contains(&r.sample_format()) {
            formats.push(r.sample_format());
        }
    }
    formats
        .into_iter()
        .map(|format| {
            let of: Vec<_> = ranges
                .iter()
                .filter(|r| r.sample_format() == format)
                .collect();
            let ch_min = of.iter().map(|r| r.channels()).min().unwrap_or(0);
            let ch_max = of.iter().map(|r| r.channels()).max().unwrap_or(0);
            let lo = of.iter().map(|r| r.min_sample_rate()).min().unwrap_or(0);
            let hi = of.iter().map(|r| r.max_sample_rate()).max().unwrap_or(0);
            let channels = if ch_min == ch_max {
                format!("{ch_min}")
            } else {
                format!("{ch_min}-{ch_max}")
            };
            format!("{format} {channels} ch {lo}-{hi} Hz")
        })
        .collect()
}

fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .or_else(|_| device.id().map(|i| i.to_string()))
        .unwrap_or_else(|_| "unnamed device".to_string())
}

fn find_device(selector: &DeviceSelector) -> Result<cpal::Device, CaptureError> {
    let host = cpal::default_host();
    let not_found = || CaptureError::NoDevice(selector.to_string());
    match selector {
        DeviceSelector::Default => host.default_input_device().ok_or_else(not_found),
        DeviceSelector::Index(i) => host
            .input_devices()
            .map_err(|e| CaptureError::Host(e.to_string()))?
            .nth(*i)
            .ok_or_else(not_found),
        DeviceSelector::Name(name) => {
            let want = name.to_lowercase();
            host.input_devices()
                .map_err(|e| CaptureError::Host(e.to_string()))?
                .find(|d| {
                    let id = d.id().map(|i| i.to_string()).unwrap_or_default();
                    device_name(d).to_lowercase().contains(&want)
                        || id.to_lowercase().contains(&want)
                })
                .ok_or_else(not_found)
        }
    }
}

/// Picks the stream configuration: the requested rate/channels if the device supports them,
/// else its default; an unsupported request is an error listing what the device offers.
fn choose_config(
    device: &cpal::Device,
    rate: Option<u32>,
    channels: Option<u16>,
) -> Result<(StreamConfig, SampleFormat), CaptureError> {
    let default = device
        .default_input_config()
        .map_err(|e| CaptureError::Device(format!("{}: {e}", device_name(device))))?;
    if rate.is_none() && channels.is_none() {
        return Ok((default.config(), default.sample_format()));
    }
    let rate = rate.unwrap_or(default.sample_rate());
    let channels = channels.unwrap_or(default.channels());
    let ranges: Vec<_> = device
        .supported_input_configs()
        .map_err(|e| CaptureError::Device(format!("{}: {e}", device_name(device))))?
        .collect();
    let fits = |r: &&cpal::SupportedStreamConfigRange| {
        r.channels() == channels && r.contains_rate(rate) && is_supported_format(r.sample_format())
    };
    let best = ranges
        .iter()
        .filter(fits)
        .find(|r| r.sample_format() == default.sample_format())
        .or_else(|| ranges.iter().find(fits));
    match best {
        Some(range) => {
            let config = range.with_sample_rate(rate);
            Ok((config.config(), config.sample_format()))
        }
        None => Err(CaptureError::UnsupportedConfig {
            device: device_name(device),
            requested: format!("{channels} ch {rate} Hz"),
            supported: summarize(ranges).join(", "),
        }),
    }
}

fn is_supported_format(format: SampleFormat) -> bool {
    matches!(
        format,
        SampleFormat::I8
            | SampleFormat::I16
            | SampleFormat::I24
            | SampleFormat::I32
            | SampleFormat::U8
            | SampleFormat::U16
            | SampleFormat::F32
            | SampleFormat::F64
    )
}

/// Builds the input stream whose callback feeds `writer`; `fault` is raised by fatal errors.
fn build_stream(
    device: &cpal::Device,
    config: &StreamConfig,
    format: SampleFormat,
    writer: RingWriter,
    fault: Sender<String>,
) -> Result<cpal::Stream, CaptureError> {
    fn typed<T>(
        device: &cpal::Device,
        config: &StreamConfig,
        mut writer: RingWriter,
        fault: Sender<String>,
    ) -> Result<cpal::Stream, cpal::Error>
    where
        T: SizedSample,
        f32: FromSample<T>,
    {
        let channels = usize::from(config.channels);
        device.build_input_stream(
            *config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                writer.push_frames(data, channels, |s: T| s.to_sample::<f32>());
            },
            move |err: cpal::Error| {
                if is_fatal(&err) {
                    let _ = fault.try_send(err.to_string());
                }
            },
            None,
        )
    }
    let result = match format {
        SampleFormat::I8 => typed::<i8>(device, config, writer, fault),
        SampleFormat::I16 => typed::<i16>(device, config, writer, fault),
        SampleFormat::I24 => typed::<I24>(device, config, writer, fault),
        SampleFormat::I32 => typed::<i32>(device, config, writer, fault),
        SampleFormat::U8 => typed::<u8>(device, config, writer, fault),
        SampleFormat::U16 => typed::<u16>(device, config, writer, fault),
        SampleFormat::F32 => typed::<f32>(device, config, writer, fault),
        SampleFormat::F64 => typed::<f64>(device, config, writer, fault),
        other => {
            return Err(CaptureError::UnsupportedConfig {
                device: device_name(device),
                requested: format!("{other} samples"),
                supported: "8/16/24/32-bit integer, 8/16-bit unsigned, 32/64-bit float".into(),
            })
        }
    };
    let stream =
        result.map_err(|e| CaptureError::Device(format!("{}: {e}", device_name(device))))?;
    stream
        .play()
        .map_err(|e| CaptureError::Device(format!("{}: {e}", device_name(device))))?;
    Ok(stream)
}

/// Errors after which the stream delivers nothing more; the rest (overruns, reroutes,
/// refused real-time priority) leave it running.
fn is_fatal(err: &cpal::Error) -> bool {
    !matches!(
        err.kind(),
        cpal::ErrorKind::Xrun | cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied
    )
}

/// An open device and its supervisor; dropping it (or [`DeviceCapture::stop`]) closes it.
pub struct DeviceCapture {
    stop: Arc<AtomicBool>,
    supervisor: Option<JoinHandle<()>>,
    format: StreamFormat,
}

impl DeviceCapture {
    /// Opens the device now (so a bad device or configuration is an error here), then keeps
    /// it open from a supervisor thread. Each stream gets a ring of `ring_seconds` of audio.
    pub fn start(
        options: CaptureOptions,
        ring_seconds: f32,
    ) -> Result<(Self, SourceOutput), CaptureError> {
        let (opened_tx, opened_rx) = bounded(1);
        let (events_tx, events) = bounded(64);
        let (readers_tx, replacements) = bounded(4);
        let stop = Arc::new(AtomicBool::new(false));
        let attention = Attention::default();
        let supervisor = Supervisor {
            options,
            #[cfg(all(target_os = "linux", feature = "pulse"))]
            attention: attention.clone(),
            ring_seconds,
            events: events_tx,
            readers: readers_tx,
            stop: stop.clone(),
        };
        let handle = thread::Builder::new()
            .name("voxd-capture".into())
            .spawn(move || supervisor.run(opened_tx))
            .map_err(|e| CaptureError::Device(format!("cannot start capture thread: {e}")))?;
        match opened_rx.recv() {
            Ok(Ok((format, reader))) => Ok((
                DeviceCapture {
                    stop,
                    supervisor: Some(handle),
                    format,
                },
                SourceOutput {
                    reader,
                    events,
                    replacements,
                    attention,
                },
            )),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(e)
            }
            Err(_) => {
                let _ = handle.join();
                Err(CaptureError::Device(
                    "capture thread ended while opening".into(),
                ))
            }
        }
    }

    /// The format the device delivers.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// Closes the stream and waits for the supervisor.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.supervisor.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for DeviceCapture {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The thread that owns the cpal stream.
struct Supervisor {
    options: CaptureOptions,
    /// Passed to every sound-server stream it opens.
    #[cfg(all(target_os = "linux", feature = "pulse"))]
    attention: Attention,
    ring_seconds: f32,
    events: Sender<CaptureEvent>,
    readers: Sender<RingReader>,
    stop: Arc<AtomicBool>,
}

/// How often the supervisor looks at the stream.
const POLL: Duration = Duration::from_millis(100);

/// An open stream and the counters of the ring it fills.
struct Running {
    /// A cpal or sound-server stream: it runs until dropped.
    stream: Box<dyn Send>,
    stats: Arc<RingStats>,
}

type Opened = Result<(StreamFormat, RingReader), CaptureError>;

impl Supervisor {
    fn run(self, opened: Sender<Opened>) {
        let (fault_tx, fault_rx) = bounded(8);
        let (mut running, format) = match self.open(&self.options.device, None, fault_tx.clone()) {
            Ok((running, format, name, reader)) => {
                let _ = self.events.send(CaptureEvent::Opened {
                    device: name,
                    format,
                });
                let _ = opened.send(Ok((format, reader)));
                (Some(running), format)
            }
            Err(e) => {
                let _ = opened.send(Err(e));
                return;
            }
        };
        let mut attempt = 0u32;
        while !self.stop.load(Ordering::Acquire) {
            if let Some(current) = running.as_ref() {
                if let Some(reason) = self.watch(current, &fault_rx) {
                    let _ = self.events.send(CaptureEvent::Lost { reason });
                    if let Some(dead) = running.take() {
                        abandon(dead);
                    }
                }
                continue;
            }
            attempt += 1;
            let delay = self.backoff(attempt);
            let _ = self.events.send(CaptureEvent::Retrying {
                attempt,
                delay_ms: delay.as_millis() as u64,
            });
            if !self.sleep(delay) {
                break;
            }
            while fault_rx.try_recv().is_ok() {}
            match self.reopen(format, fault_tx.clone()) {
                Ok((r, name, reader)) => {
                    attempt = 0;
                    running = Some(r);
                    let _ = self.readers.send(reader);
                    let _ = self.events.send(CaptureEvent::Resumed { device: name });
                }
                Err(e) => {
                    let _ = self.events.send(CaptureEvent::Lost {
                        reason: e.to_string(),
                    });
                }
            }
        }
        if let Some(r) = running {
            abandon(r);
        }
    }

    /// Waits while the stream runs; returns why it should be restarted, if it should.
    fn watch(&self, running: &Running, faults: &Receiver<String>) -> Option<String> {
        let mut last_offered = running.stats.counts().offered;
        let mut last_progress = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            if let Ok(reason) = faults.recv_timeout(POLL) {
                return Some(reason);
            }
            let offered = running.stats.counts().offered;
            if offered != last_offered {
                last_offered = offered;
                last_progress = Instant::now();
            } else if last_progress.elapsed() >= self.options.stall_after {
                return Some(format!(
                    "no audio from the device for {} ms",
                    self.options.stall_after.as_millis()
                ));
            }
        }
        None
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        (self.options.first_backoff * factor).min(self.options.max_backoff)
    }

    /// Sleeps for `delay` unless asked to stop; `false` means stop.
    fn sleep(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            thread::sleep(POLL.min(until.saturating_duration_since(Instant::now())));
        }
        !self.stop.load(Ordering::Acquire)
    }

    /// Reopens the configured device, else the default one, at the original rate.
    fn reopen(
        &self,
        format: StreamFormat,
        fault: Sender<String>,
    ) -> Result<(Running, String, RingReader), CaptureError> {
        let mut candidates = vec![self.options.device.clone()];
        if self.options.device != DeviceSelector::Default {
            candidates.push(DeviceSelector::Default);
        }
        let mut last = CaptureError::NoDevice(self.options.device.to_string());
        for selector in &candidates {
            match self.open(selector, Some(format), fault.clone()) {
                Ok((running, _, name, reader)) => return Ok((running, name, reader)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Opens `selector` with a fresh ring; with `same_as`, at that rate and channel count.
    fn open(
        &self,
        selector: &DeviceSelector,
        same_as: Option<StreamFormat>,
        fault: Sender<String>,
    ) -> Result<(Running, StreamFormat, String, RingReader), CaptureError> {
        let (rate, channels) = match same_as {
            Some(f) => (Some(f.rate), Some(f.channels)),
            None => (self.options.rate, self.options.channels),
        };
        if let Some(opened) = self.open_sound_server(selector, rate, channels, fault.clone())? {
            return Ok(opened);
        }
        self.open_cpal(selector, rate, channels, fault)
    }

    /// The ring for a stream of `format`.
    fn ring_for(&self, format: StreamFormat) -> (RingWriter, RingReader) {
        ring((format.rate as f32 * self.ring_seconds) as usize)
    }

    /// Opens the sound server's default source when the backend asks for it; `None` when
    /// the device is cpal's to open (the backend says so, or `auto` finds no server).
    #[cfg(all(target_os = "linux", feature = "pulse"))]
    fn open_sound_server(
        &self,
        selector: &DeviceSelector,
        rate: Option<u32>,
        channels: Option<u16>,
        fault: Sender<String>,
    ) -> Result<Option<(Running, StreamFormat, String, RingReader)>, CaptureError> {
        match (self.options.backend, selector) {
            (CaptureBackend::Cpal, _)
            | (CaptureBackend::Auto, DeviceSelector::Index(_) | DeviceSelector::Name(_)) => {
                return Ok(None)
            }
            (CaptureBackend::Pulse, DeviceSelector::Index(_) | DeviceSelector::Name(_)) => {
                return Err(CaptureError::Device(format!(
                    "{selector}: backend \"pulse\" captures the sound server's default source \
                     (choose it with the server's tools, e.g. `pactl set-default-source`); \
                     backend \"cpal\" opens the devices `voxd devices` lists"
                )))
            }
            (CaptureBackend::Auto | CaptureBackend::Pulse, DeviceSelector::Default) => {}
        }
        // The ring is sized for the rate asked for; the server converts to it.
        let asked = StreamFormat {
            rate: rate.unwrap_or(super::pulse::DEFAULT_RATE),
            channels: channels.unwrap_or(super::pulse::DEFAULT_CHANNELS),
        };
        let (writer, reader) = self.ring_for(asked);
        let stats = writer.stats();
        let pace = super::pulse::Pace {
            buffer_ms: self.options.buffer_ms,
            attention: self.attention.clone(),
        };
        match super::pulse::open(asked, pace, writer, fault) {
            Ok(stream) => {
                tracing::info!(
                    rate = asked.rate,
                    channels = asked.channels,
                    "capturing from the sound server's default source"
                );
                let running = Running {
                    stream: Box::new(stream),
                    stats,
                };
                Ok(Some((running, asked, SOUND_SERVER_SOURCE.into(), reader)))
            }
            Err(e) if self.options.backend == CaptureBackend::Auto => {
                tracing::debug!(error = %e, "no sound server; capturing through cpal");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Without sound-server support only cpal opens devices; asking for the server is an
    /// error that says why.
    #[cfg(not(all(target_os = "linux", feature = "pulse")))]
    fn open_sound_server(
        &self,
        _selector: &DeviceSelector,
        _rate: Option<u32>,
        _channels: Option<u16>,
        _fault: Sender<String>,
    ) -> Result<Option<(Running, StreamFormat, String, RingReader)>, CaptureError> {
        match self.options.backend {
            CaptureBackend::Pulse => Err(CaptureError::Host(
                "backend \"pulse\": this voxd was built without PulseAudio support (Linux, \
                 cargo feature `pulse`)"
                    .into(),
            )),
            CaptureBackend::Auto | CaptureBackend::Cpal => Ok(None),
        }
    }

    /// Opens `selector` through cpal.
    fn open_cpal(
        &self,
        selector: &DeviceSelector,
        rate: Option<u32>,
        channels: Option<u16>,
        fault: Sender<String>,
    ) -> Result<(Running, StreamFormat, String, RingReader), CaptureError> {
        let device = find_device(selector)?;
        let (mut config, sample_format) = choose_config(&device, rate, channels)?;
        if let Some(ms) = self.options.buffer_ms {
            let frames = (u64::from(config.sample_rate) * u64::from(ms) / 1000).max(1);
            config.buffer_size = cpal::BufferSize::Fixed(frames as u32);
        }
        let format = StreamFormat {
            rate: config.sample_rate,
            channels: config.channels,
        };
        let (writer, reader) = self.ring_for(format);
        let stats = writer.stats();
        let stream = build_stream(&device, &config, sample_format, writer, fault)?;
        tracing::info!(
            device = %device_name(&device),
            rate = format.rate,
            channels = format.channels,
            format = %sample_format,
            "capturing"
        );
        let running = Running {
            stream: Box::new(stream),
            stats,
        };
        Ok((running, format, device_name(&device), reader))
    }
}

/// The device name events carry for the sound server's default source.
#[cfg(all(target_os = "linux", feature = "pulse"))]
const SOUND_SERVER_SOURCE: &str = "default source (sound server)";

/// Closes a stream on a thread of its own: a driver whose server died can block in the
/// close for a long time, and capture must go on meanwhile.
fn abandon(running: Running) {
    let Running { stream, .. } = running;
    let closer = thread::Builder::new()
        .name("voxd-close-stream".into())
        .spawn(move || drop(stream));
    if let Err(e) = closer {
        tracing::warn!(error = %e, "cannot start a thread to close the old stream; leaking it");
    }
}
