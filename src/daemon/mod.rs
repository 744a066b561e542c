//! `voxd run`: the daemon. It wires the stages together and keeps them running.
//!
//! ```text
//! source ─► [front-end thread] ─► utterances, caption windows, capture events
//!                  │
//!   [control thread: run()]  signals (INT/TERM stop, HUP reload), file watch (reload)
//!        │ Job::Utterance (queue of 8; a full queue drops and reports, never blocks audio)
//!        │ newest caption window (one place; older ones are dropped and counted)
//!        ▼
//!   [recogniser thread: worker] owns the model ─► Outcome::{Event, Act}
//!        │
//!   [control thread] ─► ActionRunner (worker threads) ─► action events
//!                    ─► Replier (the `[llm] intent`'s questions; reply.rs) ─► reply events,
//!                       notifications, speech
//!                    ─► EventOutput: stdout (JSON or text), file, Unix socket
//! ```
//!
//! Shutdown (SIGINT/SIGTERM, or the end of a file source): the front end closes the speech
//! in progress, the recogniser finishes what is queued, accepted actions run to their end
//! or timeout, queued questions are answered (and spoken), then `stopped` is the last event.
//! A second signal exits at once.
//!
//! Reload (SIGHUP, or an edit to the config or a grammar file): `CommandSet::reload` builds
//! and checks the new set first; only a complete, valid set replaces the running one. The
//! grammar, the thresholds and the intents' actions take effect at once; other settings
//! (model, audio, action limits, outputs) need a restart, and the log says so.
//!
//! A server may share the model ([`GuestServer`]: the Wyoming server of `[wyoming] serve`):
//! its work is done on the recogniser thread after the microphone's utterances (see
//! `worker.rs`), and it is told of every reload that succeeds.

pub mod commands;
pub mod doctor;
pub mod event;
mod output;
pub mod remote;
pub mod reply;
mod socket;
pub mod speech;
mod wake;
mod watch;
mod worker;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, never, Receiver, Sender, TrySendError};

pub use event::Event;
pub use output::OutputOptions;
pub use reply::{Answerer, ReplyOptions, ReplyOutcome, StopReason};
pub use worker::{Engine, Guest};
// The Wyoming server binds its Unix socket as the events socket is bound.
pub(crate) use socket::bind_fresh;

use crate::actions::{ActionError, ActionEvent, ActionRunner};
use crate::captions::{CaptionText, Captioner, SubtitleFormat, SubtitleWriter};
use crate::capture::Pace;
use crate::command::RecognizeError;
use crate::config::RunMode;
use crate::frontend::{
    self, ms, CaptionWindow, FrontEndConfig, FrontEndError, FrontEndEvent, FrontEndStats,
};
pub use commands::{CommandSet, LoadError, ReloadOutcome};
use event::ActionReport;
use output::EventOutput;
use reply::Replier;
use watch::FileWatch;
use worker::{Job, Outcome, Stage};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Recognize(#[from] RecognizeError),
    #[error(transparent)]
    FrontEnd(#[from] Box<FrontEndError>),
    #[error("cannot start the actions: {0}")]
    Actions(#[from] ActionError),
    #[error("events socket {}: {detail}", path.display())]
    Socket { path: PathBuf, detail: String },
    #[error("events file {}: {source}", path.display())]
    EventsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("subtitle file {}: {detail}", path.display())]
    Subtitles { path: PathBuf, detail: String },
    #[error("cannot handle signals: {0}")]
    Signals(std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error(
        "the audio front end stopped without finishing its stream (a bug: its panic is in \
         the log above); what it delivered before was handled"
    )]
    FrontEndLost,
}

/// Everything `voxd run` starts with.
pub struct RunOptions {
    pub mode: RunMode,
    /// The commands (None when the mode has no commands).
    pub commands: Option<CommandSet>,
    /// The model (with the command grammar when commands are on), not yet warm.
    pub engine: Engine,
    /// Shown in the `ready` event.
    pub model_name: String,
    pub source: frontend::Source,
    pub front_end: FrontEndConfig,
    pub output: OutputOptions,
    /// Live captions (None when the mode has none).
    pub captions: Option<Captioner>,
    /// Subtitle files the final captions are written to as they arrive.
    pub subtitles: Vec<PathBuf>,
    /// Reload when the config or a grammar file changes on disk (SIGHUP always reloads).
    pub watch_files: bool,
    /// Replies from the language model (None when `[llm]` is off).
    pub reply: Option<ReplyOptions>,
    /// A server sharing the model (`[wyoming] serve`).
    pub guest: Option<GuestServer>,
}

/// Told of every reload that succeeded (changed or not), with the command set in use.
pub type OnReload = Box<dyn FnMut(Option<&CommandSet>) + Send>;

/// A server beside the daemon that shares its model.
pub struct GuestServer {
    /// Its work for the model, done on the recogniser thread.
    pub work: Box<dyn Guest>,
    pub reloaded: OnReload,
}

/// Utterances waiting for the recogniser. Commands are a few seconds each: eight is half a
/// minute of speech the recogniser would be behind by.
const UTTERANCE_QUEUE: usize = 8;
/// How often the files are looked at.
const WATCH_INTERVAL: Duration = Duration::from_millis(500);
/// Action ids remembered to give their events the utterance's time.
const REMEMBERED_ACTIONS: usize = 256;

/// Runs until a signal or the end of the source; returns the front end's accounting.
pub fn run(options: RunOptions) -> Result<FrontEndStats, DaemonError> {
    let started = Instant::now();
    let mut output = EventOutput::open(&options.output, started)?;
    let signals = signals()?;
    let RunOptions {
        mode,
        commands,
        mut engine,
        model_name,
        source,
        front_end,
        watch_files,
        captions,
        subtitles,
        reply,
        guest,
        ..
    } = options;
    let (guest_work, guest_reloaded) = match guest {
        Some(GuestServer { work, reloaded }) => (Some(work), Some(reloaded)),
        None => (None, None),
    };
    let subtitles = subtitles
        .iter()
        .map(|path| open_subtitles(path))
        .collect::<Result<Vec<_>, _>>()?;
    let live = !matches!(
        source,
        frontend::Source::Wav {
            pace: Pace::Fast,
            ..
        } | frontend::Source::Stdin {
            pace: Pace::Fast,
            ..
        }
    );
    // The files as they are now, before the slow warm-up: an edit made while the model
    // warms up, or right after `ready`, is then seen as a change.
    let watch = commands
        .as_ref()
        .filter(|_| watch_files)
        .map(|c| FileWatch::new(c.files()));
    let runner = commands
        .as_ref()
        .map(|set| ActionRunner::start(set.actions().clone(), set.actions_config()))
        .transpose()?;
    let (runner, action_events) = match runner {
        Some((runner, events)) => (Some(runner), events),
        None => (None, never()),
    };
    if let Some(reply) = &reply {
        match &commands {
            // Replies still start: a reload may bring the intent.
            Some(set) => {
                if let Err(e) = reply::check_intent(set.grammar(), &reply.intent) {
                    tracing::warn!("[llm]: {e}");
                }
            }
            None => tracing::warn!(
                "[llm] is on, but questions are intents and the mode has no commands: nothing \
                 will be answered"
            ),
        }
    }
    let (replier, reply_events) = match reply.map(Replier::start).transpose()? {
        Some((replier, events)) => (Some(replier), events),
        None => (None, never()),
    };
    engine.warm_up();

    let (jobs, job_queue) = bounded(UTTERANCE_QUEUE);
    let (windows, window_queue) = bounded(1);
    let (outcomes_tx, outcomes) = bounded(64);
    let captions = captions
        .map(|c| if live { c } else { c.every_window() })
        .map(worker::Captions::new);
    let follow_up_ms = commands
        .as_ref()
        .map_or(0, |set| set.settings().follow_up_ms);
    let recogniser = worker::start(
        engine,
        follow_up_ms,
        captions,
        guest_work,
        job_queue,
        window_queue.clone(),
        outcomes_tx,
    )?;
    let listening = frontend::listen(source, front_end).map_err(Box::new)?;
    if live {
        // Told before the first utterance can come: the queue is empty now.
        let _ = jobs.try_send(Job::Voice(listening.front_end.voice()));
    }
    output.restart_clock();
    output.emit(&Event::Ready {
        mode: mode_name(mode),
        model: model_name,
        intents: commands.as_ref().map_or(0, |c| c.grammar().intents().len()),
        audio: listening.format.to_string(),
    });
    tracing::info!(format = %listening.format, "listening");

    let mut control = Control {
        output,
        commands,
        runner,
        watch,
        jobs: Some(jobs),
        windows: Some(windows),
        window_queue,
        outcome_queue: outcomes.clone(),
        action_ends: BTreeMap::new(),
        replier,
        guest_reloaded,
        utterances_dropped: 0,
        windows_dropped: 0,
        stopping: false,
        front_end_lost: false,
        live,
        captions: mode.captions(),
        subtitles,
    };
    let stats = control.run_loop(
        &listening.front_end,
        &outcomes,
        &action_events,
        &reply_events,
        &signals,
    );
    drop(listening);
    let _ = recogniser.join();
    control.finish_actions(&action_events);
    control.finish_replies(&reply_events);
    control.finish_subtitles();
    control.output.emit(&Event::Stopped {
        audio_ms: ms(stats.samples),
        utterances: stats.utterances,
        utterances_dropped: control.utterances_dropped,
        windows_dropped: control.windows_dropped + stats.windows_dropped,
    });
    if control.front_end_lost {
        return Err(DaemonError::FrontEndLost);
    }
    Ok(stats)
}

fn mode_name(mode: RunMode) -> &'static str {
    match mode {
        RunMode::Commands => "commands",
        RunMode::Captions => "captions",
        RunMode::Both => "commands and captions",
    }
}

/// The control thread's state.
struct Control {
    output: EventOutput,
    commands: Option<CommandSet>,
    runner: Option<ActionRunner>,
    watch: Option<FileWatch>,
    /// Closed (None) once the front end has finished: the recogniser then ends.
    jobs: Option<Sender<Job>>,
    windows: Option<Sender<CaptionWindow>>,
    /// Our end of the window queue, to take out a window nobody decoded yet.
    window_queue: Receiver<CaptionWindow>,
    /// The recogniser's outcomes, read while a fast file waits for the recogniser (which
    /// may itself wait for room to send an outcome).
    outcome_queue: Receiver<Outcome>,
    /// The utterance end of each recent action, by id.
    action_ends: BTreeMap<u64, u64>,
    /// Answers the questions (None when `[llm]` is off).
    replier: Option<Replier>,
    /// Tells the server sharing the model of each reload.
    guest_reloaded: Option<OnReload>,
    utterances_dropped: u64,
    windows_dropped: u64,
    stopping: bool,
    /// The front-end thread ended without finishing its stream (it panicked).
    front_end_lost: bool,
    /// The source runs at real time (a device, or a file paced like one).
    live: bool,
    /// Captions are on: utterances and speech starts go to the recogniser too.
    captions: bool,
    /// Subtitle files, written cue by cue.
    subtitles: Vec<(PathBuf, SubtitleWriter<BufWriter<File>>)>,
}

/// What woke the control loop.
enum Wake {
    FrontEnd(Option<FrontEndEvent>),
    Window(CaptionWindow),
    Outcome(Option<Outcome>),
    Action(ActionEvent),
    Reply(Event),
    Signal(i32),
    Tick,
}

impl Control {
    /// Until the front end has finished and the recogniser has sent its last outcome.
    fn run_loop(
        &mut self,
        fe: &frontend::FrontEnd,
        outcomes: &Receiver<Outcome>,
        actions: &Receiver<ActionEvent>,
        replies: &Receiver<Event>,
        signals: &Receiver<i32>,
    ) -> FrontEndStats {
        let mut stats = FrontEndStats::default();
        let mut fe_events = Some(fe.events().clone());
        let mut fe_windows = Some(fe.windows().clone());
        // Closed only if the reply thread died (a panic in the model): then never again.
        let mut reply_events = Some(replies.clone());
        let mut next_watch = Instant::now() + WATCH_INTERVAL;
        loop {
            let fe_rx = fe_events.as_ref().map_or_else(never, Clone::clone);
            let windows_rx = fe_windows.as_ref().map_or_else(never, Clone::clone);
            let replies_rx = reply_events.as_ref().map_or_else(never, Clone::clone);
            let timeout = next_watch.saturating_duration_since(Instant::now());
            let wake = crossbeam_channel::select! {
                recv(fe_rx) -> e => Wake::FrontEnd(e.ok()),
                recv(windows_rx) -> w => match w {
                    Ok(w) => Wake::Window(w),
                    Err(_) => {
                        fe_windows = None;
                        Wake::Tick
                    }
                },
                recv(outcomes) -> o => Wake::Outcome(o.ok()),
                recv(actions) -> a => match a {
                    Ok(a) => Wake::Action(a),
                    Err(_) => Wake::Tick,
                },
                recv(replies_rx) -> r => match r {
                    Ok(r) => Wake::Reply(r),
                    Err(_) => {
                        reply_events = None;
                        Wake::Tick
                    }
                },
                recv(signals) -> s => Wake::Signal(s.unwrap_or(libc::SIGTERM)),
                default(timeout) => Wake::Tick,
            };
            match wake {
                Wake::FrontEnd(Some(event)) => {
                    if let FrontEndEvent::Finished(s) = &event {
                        stats = *s;
                        fe_events = None;
                    }
                    self.front_end_event(event);
                }
                Wake::FrontEnd(None) => {
                    // The thread ended without `Finished`: it died.
                    self.front_end_lost = true;
                    fe_events = None;
                    self.jobs = None;
                    self.windows = None;
                }
                Wake::Window(w) => {
                    // A fast file: the events the front end sent before this window go to
                    // the recogniser before it, so that captions hear the stream in its
                    // order (the end of the stream waits for the window).
                    let mut finished = None;
                    while !self.live {
                        match fe_rx.try_recv() {
                            Ok(FrontEndEvent::Finished(s)) => {
                                finished = Some(s);
                                break;
                            }
                            Ok(event) => self.front_end_event(event),
                            Err(_) => break,
                        }
                    }
                    self.queue_window(w);
                    if let Some(s) = finished {
                        stats = s;
                        fe_events = None;
                        self.front_end_event(FrontEndEvent::Finished(s));
                    }
                }
                Wake::Outcome(Some(outcome)) => self.outcome(outcome),
                Wake::Outcome(None) => return stats,
                Wake::Action(a) => self.action_event(&a),
                Wake::Reply(event) => self.output.emit(&event),
                Wake::Signal(signal) => self.signal(signal, fe),
                Wake::Tick => {}
            }
            if Instant::now() >= next_watch {
                next_watch = Instant::now() + WATCH_INTERVAL;
                if self.watch.as_mut().is_some_and(FileWatch::poll) {
                    tracing::info!("a config or grammar file changed: reloading");
                    self.reload();
                }
            }
        }
    }

    fn front_end_event(&mut self, event: FrontEndEvent) {
        match event {
            FrontEndEvent::SpeechStart { start, onset } => {
                self.output.emit(&Event::SpeechStart {
                    start_ms: ms(start),
                    onset_ms: ms(onset),
                });
                if self.captions {
                    if let Some(jobs) = &self.jobs {
                        // One place is enough to matter: a start that does not fit only
                        // delays the first partial.
                        let _ = jobs.try_send(Job::SpeechStart(start));
                    }
                }
            }
            FrontEndEvent::SpeechEnd(u) => {
                self.output.emit(&Event::SpeechEnd {
                    start_ms: ms(u.start),
                    end_ms: ms(u.end),
                    cut: u.cut,
                });
                if self.commands.is_some() || self.captions {
                    self.queue_utterance(u, Stage::End);
                }
            }
            FrontEndEvent::SpeechPause { utterance, stage } => {
                if self.commands.is_some() {
                    self.queue_utterance(utterance, Stage::Pause(stage));
                }
            }
            FrontEndEvent::Capture(c) => self.output.emit(&Event::from(&c)),
            FrontEndEvent::Overrun { dropped } => self.output.emit(&Event::Overrun { dropped }),
            // Nothing more will come: let the recogniser finish and end.
            FrontEndEvent::Finished(_) => {
                self.jobs = None;
                self.windows = None;
            }
        }
    }

    /// Hands an utterance to the recogniser. From a live source it never waits (the front
    /// end must keep up with the microphone): a full queue means the recogniser is far
    /// behind, and the utterance is dropped, counted and reported. A file delivered as fast
    /// as it can be read waits instead, so every utterance in it is recognised.
    ///
    /// An utterance at a pause (speech may yet go on) is recognised early so that the
    /// answer is ready when the pause becomes the end, or to close it early; from a live
    /// source it is only worth the queue place when there is one, so a full queue drops it
    /// without a word. A fast file's pauses wait like its utterances, so that what closes
    /// early does not depend on how fast the recogniser is.
    fn queue_utterance(&mut self, utterance: frontend::Utterance, stage: Stage) {
        let Some(jobs) = &self.jobs else { return };
        let (start, end) = (ms(utterance.start), ms(utterance.end));
        let provisional = stage != Stage::End;
        let job = Job::Utterance { utterance, stage };
        if !self.live {
            let jobs = jobs.clone();
            self.send_waiting(&jobs, job);
            return;
        }
        if let Err(TrySendError::Full(_)) = jobs.try_send(job) {
            if provisional {
                return;
            }
            self.utterances_dropped += 1;
            let message = format!(
                "utterance {start}-{end} ms dropped: the recogniser is {UTTERANCE_QUEUE} \
                 utterances behind"
            );
            tracing::warn!("{message}");
            self.output.emit(&Event::Error { message });
        }
    }

    /// Offers the newest caption window; from a live source, one the recogniser has not
    /// started on yet is replaced (captions follow the present, not a backlog). A fast
    /// file's windows all wait their turn, as its utterances do.
    fn queue_window(&mut self, window: CaptionWindow) {
        let Some(windows) = &self.windows else { return };
        if !self.live {
            let windows = windows.clone();
            self.send_waiting(&windows, window);
            return;
        }
        if let Err(TrySendError::Full(window)) = windows.try_send(window) {
            if self.window_queue.try_recv().is_ok() {
                self.windows_dropped += 1;
            }
            let _ = windows.try_send(window);
        }
    }

    /// Sends to the recogniser, waiting for room (a fast file), and handles its outcomes
    /// meanwhile: it may be waiting for room to send one.
    fn send_waiting<T>(&mut self, to: &Sender<T>, mut item: T) {
        loop {
            match to.try_send(item) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(back)) => item = back,
            }
            if let Ok(outcome) = self.outcome_queue.recv_timeout(Duration::from_millis(5)) {
                self.outcome(outcome);
            }
        }
    }

    fn outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Event(event) => {
                if let Event::Final {
                    text,
                    start_ms,
                    end_ms,
                    words,
                    ..
                } = &event
                {
                    self.write_subtitle(CaptionText {
                        text: text.clone(),
                        start_ms: *start_ms,
                        end_ms: *end_ms,
                        words: words.clone(),
                    });
                }
                self.output.emit(&event);
                self.ask(&event);
            }
            Outcome::Act { request, end_ms } => {
                let Some(runner) = &self.runner else { return };
                if let Some(id) = runner.submit(&request) {
                    self.action_ends.insert(id, end_ms);
                    while self.action_ends.len() > REMEMBERED_ACTIONS {
                        self.action_ends.pop_first();
                    }
                }
            }
        }
    }

    /// Hands the question `event` asks, if any, to the replier. From a live source it never
    /// waits: a full queue refuses the newest question (an `error` event). A file read as
    /// fast as possible waits, so every question in it is answered.
    fn ask(&mut self, event: &Event) {
        let Some(replier) = &self.replier else { return };
        let Some(request) = replier.question_in(event) else {
            return;
        };
        let (start, end) = (request.start_ms, request.end_ms);
        let asked = if self.live {
            replier.try_ask(request)
        } else {
            replier.ask(request)
        };
        if let Err(refused) = asked {
            let message = format!("the question at {start}-{end} ms is not answered: {refused}");
            tracing::warn!("{message}");
            self.output.emit(&Event::Error { message });
        }
    }

    fn action_event(&mut self, event: &ActionEvent) {
        let end_ms = self.action_ends.get(&event.id).copied().unwrap_or_default();
        self.output.emit(&Event::Action {
            end_ms,
            action: ActionReport::new(event),
        });
    }

    fn signal(&mut self, signal: i32, fe: &frontend::FrontEnd) {
        match signal {
            libc::SIGHUP => {
                tracing::info!("SIGHUP: reloading");
                self.reload();
            }
            _ if self.stopping => {
                tracing::warn!("second stop signal: exiting now");
                std::process::exit(128 + signal);
            }
            _ => {
                tracing::info!(signal, "stopping: finishing the utterance in flight");
                self.stopping = true;
                fe.request_stop();
            }
        }
    }

    /// Reads the config and grammar files again; a set that fails keeps the old one.
    fn reload(&mut self) {
        let Some(set) = &mut self.commands else {
            // No commands to read again; the server beside may still have settings to.
            if let Some(reloaded) = &mut self.guest_reloaded {
                reloaded(None);
            }
            return;
        };
        let before = set.actions_config().clone();
        let event = match set.reload() {
            Ok(ReloadOutcome::Unchanged) => Event::Reload {
                outcome: "unchanged",
                error: None,
            },
            Ok(ReloadOutcome::Replaced) => {
                if let Some(runner) = &mut self.runner {
                    runner.replace_actions(set.actions().clone());
                }
                if *set.actions_config() != before {
                    tracing::warn!(
                        "[actions] limits, working folder and notifications take effect after \
                         a restart"
                    );
                }
                let job = Job::Grammar {
                    grammar: Box::new(set.grammar().clone()),
                    options: set.recognizer_options().clone(),
                    follow_up_ms: set.settings().follow_up_ms,
                };
                if let Some(jobs) = &self.jobs {
                    // Blocking is right here: a reload is rare, and the grammar must not be
                    // lost behind a full queue.
                    let _ = jobs.send(job);
                }
                tracing::info!(intents = set.grammar().intents().len(), "commands reloaded");
                Event::Reload {
                    outcome: "replaced",
                    error: None,
                }
            }
            Err(e) => {
                tracing::error!("reload failed, the previous commands stay in use: {e}");
                Event::Reload {
                    outcome: "failed",
                    error: Some(e.to_string()),
                }
            }
        };
        if let (Some(reloaded), Event::Reload { error: None, .. }) =
            (&mut self.guest_reloaded, &event)
        {
            reloaded(self.commands.as_ref());
        }
        // The set may now name other grammar files.
        if let (Some(watch), Some(set)) = (&mut self.watch, &self.commands) {
            *watch = FileWatch::new(set.files());
        }
        self.output.emit(&event);
    }

    /// Adds a final caption to the subtitle files.
    fn write_subtitle(&mut self, text: CaptionText) {
        self.each_subtitle_file(|writer| writer.push(&text));
    }

    /// Writes the last cue of each subtitle file.
    fn finish_subtitles(&mut self) {
        self.each_subtitle_file(SubtitleWriter::finish);
    }

    /// Applies `write` to every subtitle file; a file that fails is reported and dropped,
    /// the captions go on.
    fn each_subtitle_file(
        &mut self,
        mut write: impl FnMut(&mut SubtitleWriter<BufWriter<File>>) -> std::io::Result<()>,
    ) {
        for (path, mut writer) in std::mem::take(&mut self.subtitles) {
            match write(&mut writer) {
                Ok(()) => self.subtitles.push((path, writer)),
                Err(e) => {
                    let message = format!("cannot write subtitles to {}: {e}", path.display());
                    tracing::error!("{message}; stopped writing there");
                    self.output.emit(&Event::Error { message });
                }
            }
        }
    }

    /// Lets the accepted actions finish (each within its timeout) and reports them.
    fn finish_actions(&mut self, actions: &Receiver<ActionEvent>) {
        // Without a runner `actions` is `never()`, which would wait forever.
        if self.runner.take().is_none() {
            return;
        }
        for event in actions.iter() {
            self.action_event(&event);
        }
    }

    /// Answers the questions still queued and reports them.
    fn finish_replies(&mut self, replies: &Receiver<Event>) {
        if let Some(replier) = self.replier.take() {
            replier.finish(replies, |event| self.output.emit(&event));
        }
    }
}

/// Creates a subtitle file; its format comes from its extension.
fn open_subtitles(
    path: &std::path::Path,
) -> Result<(PathBuf, SubtitleWriter<BufWriter<File>>), DaemonError> {
    let format = SubtitleFormat::from_path(path).ok_or_else(|| DaemonError::Subtitles {
        path: path.to_path_buf(),
        detail: "expected a .vtt or .srt file name".into(),
    })?;
    let writer = SubtitleWriter::create(path, format).map_err(|e| DaemonError::Subtitles {
        path: path.to_path_buf(),
        detail: e.source.to_string(),
    })?;
    Ok((path.to_path_buf(), writer))
}

/// SIGINT, SIGTERM and SIGHUP as messages to the control thread.
fn signals() -> Result<Receiver<i32>, DaemonError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(DaemonError::Signals)?;
    let (tx, rx) = bounded(8);
    std::thread::Builder::new()
        .name("voxd-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    return;
                }
            }
        })
        .map_err(DaemonError::Thread)?;
    Ok(rx)
}
