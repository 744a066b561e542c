//! The listener and one thread per client. A client's thread reads an event, answers it and
//! reads the next; what it holds is bounded (one event, one request's audio) and what it
//! asks of the model waits in the model's bounded queue or is refused.
//!
//! A client that breaks the protocol (a malformed or oversize event, audio outside an
//! audio stream, silence past the idle timeout) gets an `error` event when it can still be
//! written and is closed; one that stops reading is closed when a write blocks past the
//! write timeout. Either way only its own thread ends.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde_json::{json, Map, Value};

use super::audio::{AudioFormat, AudioStream};
use super::event::{read_event, write_event, Event, ProtocolError};
use super::info::{info, Offer, COMMANDS_MODEL};
use super::live::{Live, LiveSettings};
use super::model::{Answer, Model, Request};
use super::reply::Replies;
use super::WyomingError;
use crate::actions::{ActionRequest, ActionRunner, ActionSet};
use crate::config::{ListenUri, WyomingSection};
use crate::daemon::reply::asked;
use crate::grammar::{Grammar, SlotValue};

/// The grammar and its actions, when the server recognises commands.
pub struct Commands {
    pub grammar: Grammar,
    pub actions: ActionSet,
}

/// What a reload may change (`voxd run` with `[wyoming] serve`): each event reads it
/// once, so a request is served by the settings it began with.
pub struct Current {
    pub offer: Offer,
    pub commands: Option<Commands>,
    pub limits: WyomingSection,
}

/// What every client thread shares.
pub struct Shared {
    pub model: Model,
    /// Runs the intents' actions (with a grammar).
    pub runner: Option<Mutex<ActionRunner>>,
    /// The reply model, with `[llm] enabled`.
    pub replies: Option<Replies>,
    pub live: LiveSettings,
    current: RwLock<Arc<Current>>,
}

impl Shared {
    pub fn new(
        model: Model,
        runner: Option<ActionRunner>,
        replies: Option<Replies>,
        live: LiveSettings,
        current: Current,
    ) -> Shared {
        Shared {
            model,
            runner: runner.map(Mutex::new),
            replies,
            live,
            current: RwLock::new(Arc::new(current)),
        }
    }

    pub fn current(&self) -> Arc<Current> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Serves `current` to the events that come from now on; the runner takes `actions`.
    pub fn replace(&self, current: Current) {
        if let (Some(runner), Some(commands)) = (&self.runner, &current.commands) {
            runner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .replace_actions(commands.actions.clone());
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(current);
    }
}

/// A bound listener.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// Binds `uri`: a TCP address, or a Unix socket created private (0600).
    pub fn bind(uri: &ListenUri) -> Result<Listener, WyomingError> {
        let error = |detail: String| WyomingError::Bind {
            uri: uri.to_string(),
            detail,
        };
        match uri {
            ListenUri::Tcp { host, port } => TcpListener::bind((host.as_str(), *port))
                .map(Listener::Tcp)
                .map_err(|e| error(e.to_string())),
            ListenUri::Unix(path) => {
                crate::daemon::bind_fresh(path, "another server is listening there")
                    .map(|listener| Listener::Unix(listener, path.clone()))
                    .map_err(error)
            }
        }
    }

    /// Where it listens, with the port the system chose for port 0.
    pub fn address(&self) -> String {
        match self {
            Listener::Tcp(listener) => match listener.local_addr() {
                Ok(address) => format!("tcp://{address}"),
                Err(_) => "tcp://?".into(),
            },
            Listener::Unix(_, path) => format!("unix://{}", path.display()),
        }
    }

    /// The TCP address bound, with the port the system chose for port 0.
    pub fn tcp_address(&self) -> Option<std::net::SocketAddr> {
        match self {
            Listener::Tcp(listener) => listener.local_addr().ok(),
            Listener::Unix(..) => None,
        }
    }

    fn accept(&self) -> io::Result<Connection> {
        Ok(match self {
            Listener::Tcp(listener) => {
                let stream = listener.accept()?.0;
                // Each event is written whole; Nagle's algorithm would hold the second of
                // two quick events (the last transcript chunk, then the transcript) until
                // the client's delayed acknowledgement, up to 40 ms later.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("wyoming: TCP_NODELAY not set: {e}");
                }
                Connection::Tcp(stream)
            }
            Listener::Unix(listener, _) => Connection::Unix(listener.accept()?.0),
        })
    }

    /// Serves every client that connects, each on a thread of its own; returns only when
    /// accepting fails for good.
    pub fn serve(&self, shared: &Arc<Shared>) {
        let active = Arc::new(AtomicUsize::new(0));
        let refusals = refuser();
        loop {
            match self.accept() {
                Ok(connection) => admit(connection, shared, &active, &refusals),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("wyoming: accept failed: {e}");
                    thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// A connection, a client's to this server or this machine's to another server.
pub(super) enum Connection {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Connection {
    fn try_clone(&self) -> io::Result<Connection> {
        Ok(match self {
            Connection::Tcp(s) => Connection::Tcp(s.try_clone()?),
            Connection::Unix(s) => Connection::Unix(s.try_clone()?),
        })
    }

    pub(super) fn set_timeouts(&self, read: Duration, write: Duration) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s
                .set_read_timeout(Some(read))
                .and_then(|()| s.set_write_timeout(Some(write))),
            Connection::Unix(s) => s
                .set_read_timeout(Some(read))
                .and_then(|()| s.set_write_timeout(Some(write))),
        }
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = match self {
            Connection::Tcp(s) => s.shutdown(how),
            Connection::Unix(s) => s.shutdown(how),
        };
    }

    /// Closes after a last event without a reset destroying it: a socket closed while
    /// input waits unread sends a reset, and the peer may then lose what it had not read
    /// yet. So the write side is closed first (the peer reads the event, then the end),
    /// and what the peer still sends is read and dropped until it closes too, for at most
    /// [`LINGER`] and [`LINGER_BYTES`].
    fn close_after_last_event(mut self) {
        self.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER;
        let _ = self.set_timeouts(LINGER / 10, LINGER);
        let mut buf = [0u8; 8192];
        let mut left = LINGER_BYTES;
        while left > 0 && Instant::now() < deadline {
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => left = left.saturating_sub(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
        self.shutdown(Shutdown::Both);
    }

    fn peer(&self) -> String {
        match self {
            Connection::Tcp(s) => s
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| "?".into()),
            Connection::Unix(_) => "unix client".into(),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.read(buf),
            Connection::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.write(buf),
            Connection::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.flush(),
            Connection::Unix(s) => s.flush(),
        }
    }
}

/// Counts a client in for as long as it lives.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long a closed connection's input is still read and dropped (see
/// `Connection::close_after_last_event`), and how much of it at most.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

/// Refused connections waiting to be told so; one more is closed at once.
const REFUSALS_WAITING: usize = 8;

/// The thread that tells over-limit connections that every place is taken, one at a
/// time: telling lingers (see `Connection::close_after_last_event`), and accepting must
/// not wait for it.
fn refuser() -> Sender<(Connection, Event)> {
    let (refusals, waiting) = crossbeam_channel::bounded::<(Connection, Event)>(REFUSALS_WAITING);
    let spawned = thread::Builder::new()
        .name("voxd-wyoming-refuser".into())
        .spawn(move || {
            for (mut connection, error) in waiting {
                // It may already be gone; the error is only a courtesy.
                let _ = write_event(&mut connection, &error);
                connection.close_after_last_event();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("wyoming: cannot start the thread that refuses clients: {e}");
    }
    refusals
}

/// Serves `connection` on a thread of its own, or tells it that every place is taken.
fn admit(
    connection: Connection,
    shared: &Arc<Shared>,
    active: &Arc<AtomicUsize>,
    refusals: &Sender<(Connection, Event)>,
) {
    let current = shared.current();
    let limits = &current.limits;
    let timeouts = connection.set_timeouts(
        Duration::from_millis(limits.idle_timeout_ms),
        Duration::from_millis(limits.write_timeout_ms),
    );
    if let Err(e) = timeouts {
        tracing::warn!("wyoming: cannot serve a client: {e}");
        return;
    }
    // Only this thread adds, so the count cannot pass the limit between check and add.
    if active.load(Ordering::Acquire) >= limits.max_clients {
        tracing::warn!(
            "wyoming: {} clients are connected, the most served at once; another was refused",
            limits.max_clients
        );
        let text = format!(
            "busy: {} clients are connected, the most this server takes",
            limits.max_clients
        );
        // When the refuser has a queue already, this one is closed unanswered: far more
        // clients than places are knocking at once.
        let _ = refusals.try_send((connection, error_event(&text, "busy")));
        return;
    }
    active.fetch_add(1, Ordering::AcqRel);
    let place = Place(Arc::clone(active));
    let shared = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name("voxd-wyoming-client".into())
        .spawn(move || {
            let peer = connection.peer();
            tracing::info!(peer, "wyoming client connected");
            match Client::new(connection, &shared) {
                Ok(client) => client.run(&peer),
                Err(e) => tracing::warn!(peer, "wyoming: cannot serve a client: {e}"),
            }
            // The place is free before anyone is told the client is gone.
            drop(place);
            tracing::info!(peer, "wyoming client gone");
        });
    if let Err(e) = spawned {
        tracing::warn!("wyoming: cannot start a client's thread: {e}");
    }
}

fn error_event(text: &str, code: &str) -> Event {
    Event::new("error", json!({ "text": text, "code": code }))
}

/// How handling one event ended.
enum Next {
    Continue,
    /// The client broke the protocol: tell it why and close.
    Close {
        text: String,
        code: &'static str,
    },
    /// Writing failed: the client is gone or stopped reading.
    Gone(io::Error),
}

/// What the next audio stream is for.
#[derive(Clone)]
enum Purpose {
    Transcribe { language: Option<String> },
    Commands,
}

/// One connected client and its session.
struct Client<'a> {
    reader: BufReader<Connection>,
    writer: Connection,
    shared: &'a Shared,
    /// Set by `transcribe`, taken by `audio-start`.
    purpose: Option<Purpose>,
    audio: Option<Audio>,
}

/// The audio stream in progress.
struct Audio {
    purpose: Purpose,
    stream: AudioStream,
    /// Free transcription's live transcript.
    live: Option<Live>,
}

impl<'a> Client<'a> {
    fn new(connection: Connection, shared: &'a Shared) -> io::Result<Client<'a>> {
        Ok(Client {
            reader: BufReader::new(connection.try_clone()?),
            writer: connection,
            shared,
            purpose: None,
            audio: None,
        })
    }

    /// Serves the client until it leaves or is closed.
    fn run(mut self, peer: &str) {
        loop {
            let next = match read_event(&mut self.reader) {
                Ok(Some(event)) => self.handle(event),
                Ok(None) if self.audio.is_some() => {
                    tracing::warn!(peer, "wyoming client left in the middle of its audio");
                    break;
                }
                Ok(None) => break,
                Err(ProtocolError::Io(e)) => {
                    tracing::warn!(peer, "wyoming client: read failed: {e}");
                    break;
                }
                Err(e) => Next::Close {
                    text: e.to_string(),
                    code: e.code(),
                },
            };
            match next {
                Next::Continue => {}
                Next::Close { text, code } => {
                    tracing::warn!(peer, "wyoming client closed: {text}");
                    // It may already be gone; the error is only a courtesy.
                    let _ = write_event(&mut self.writer, &error_event(&text, code));
                    self.writer.close_after_last_event();
                    return;
                }
                Next::Gone(e) => {
                    tracing::warn!(peer, "wyoming client stopped reading or left: {e}");
                    break;
                }
            }
        }
        self.writer.shutdown(Shutdown::Both);
    }

    fn send(&mut self, kind: &str, data: Value) -> Next {
        match write_event(&mut self.writer, &Event::new(kind, data)) {
            Ok(()) => Next::Continue,
            Err(e) => Next::Gone(e),
        }
    }

    /// An error the client can recover from: reported, the connection stays.
    fn refuse(&mut self, text: &str, code: &str) -> Next {
        match write_event(&mut self.writer, &error_event(text, code)) {
            Ok(()) => Next::Continue,
            Err(e) => Next::Gone(e),
        }
    }

    fn handle(&mut self, event: Event) -> Next {
        let shared = self.shared;
        match event.kind.as_str() {
            "describe" => self.send("info", info(&shared.current().offer, &shared.model.state())),
            "ping" => self.send("pong", json!({ "text": event.data.get("text") })),
            "transcribe" => self.transcribe(&event.data),
            "audio-start" => self.audio_start(&event.data),
            "audio-chunk" => self.audio_chunk(&event),
            "audio-stop" => self.audio_stop(),
            "recognize" => self.recognize(&event.data),
            "transcript" => self.handle_transcript(&event.data),
            "intent" => self.handle_intent(&event.data),
            other => {
                tracing::debug!(event = other, "wyoming: event ignored");
                Next::Continue
            }
        }
    }

    fn transcribe(&mut self, data: &Map<String, Value>) -> Next {
        let language = data.get("language").and_then(Value::as_str);
        self.purpose = Some(match data.get("name").and_then(Value::as_str) {
            Some(COMMANDS_MODEL) if self.shared.current().commands.is_none() => {
                return self.refuse(
                    "no grammar is loaded: start voxd wyoming with --grammar or set \
                     [commands] grammars",
                    "no-grammar",
                )
            }
            Some(COMMANDS_MODEL) => Purpose::Commands,
            _ => Purpose::Transcribe {
                language: language.map(str::to_string),
            },
        });
        Next::Continue
    }

    fn audio_start(&mut self, data: &Map<String, Value>) -> Next {
        if self.audio.is_some() {
            return close("audio-start inside an audio stream (no audio-stop before it)");
        }
        let format = match AudioFormat::from_data(data) {
            Ok(format) => format,
            Err(problem) => return close(&format!("audio-start: {problem}")),
        };
        let max_audio_s = self.shared.current().limits.max_audio_s;
        let stream = match AudioStream::new(format, max_audio_s) {
            Ok(stream) => stream,
            Err(problem) => return close(&format!("audio-start: {problem}")),
        };
        // Audio without `transcribe` is transcribed, as other Wyoming servers do.
        let purpose = self
            .purpose
            .take()
            .unwrap_or(Purpose::Transcribe { language: None });
        let live = match &purpose {
            Purpose::Transcribe { language } => {
                match Live::new(&self.shared.live, language.clone()) {
                    Ok(live) => Some(live),
                    Err(problem) => {
                        tracing::warn!("wyoming: no live transcript: {problem}");
                        None
                    }
                }
            }
            Purpose::Commands => None,
        };
        self.audio = Some(Audio {
            purpose,
            stream,
            live,
        });
        Next::Continue
    }

    fn audio_chunk(&mut self, event: &Event) -> Next {
        let Some(audio) = self.audio.as_mut() else {
            return close("audio-chunk before audio-start");
        };
        let pushed = AudioFormat::from_data(&event.data)
            .and_then(|format| audio.stream.push(format, &event.payload));
        if let Err(problem) = pushed {
            return close(&format!("audio-chunk: {problem}"));
        }
        let events = match &mut audio.live {
            Some(live) => live.hear(audio.stream.samples(), &self.shared.model),
            None => Vec::new(),
        };
        self.send_all(&events)
    }

    fn send_all(&mut self, events: &[Event]) -> Next {
        for event in events {
            if let Err(e) = write_event(&mut self.writer, event) {
                return Next::Gone(e);
            }
        }
        Next::Continue
    }

    fn audio_stop(&mut self) -> Next {
        let Some(Audio {
            purpose,
            stream,
            live,
        }) = self.audio.take()
        else {
            return close("audio-stop before audio-start");
        };
        let samples = match stream.finish() {
            Ok(samples) => samples,
            Err(problem) => return close(&format!("audio-stop: {problem}")),
        };
        if let Some(live) = &live {
            live.stop_decoding();
        }
        let request = match purpose.clone() {
            Purpose::Transcribe { language } => Request::Transcribe { samples, language },
            Purpose::Commands => Request::Recognize { samples },
        };
        let answer = match self.shared.model.submit(request) {
            Ok(answer) => answer,
            Err(refusal) => return self.refuse(&refusal.to_string(), "busy"),
        };
        let answer = match answer.recv() {
            Ok(Ok(answer)) => answer,
            Ok(Err(problem)) => return self.refuse(&problem, "model"),
            Err(_) => return self.refuse("the model thread has stopped", "model"),
        };
        match answer {
            Answer::Transcript { text, language } => {
                if let Some(live) = live {
                    if let Next::Gone(e) = self.send_all(&live.finish(&text)) {
                        return Next::Gone(e);
                    }
                }
                self.send("transcript", json!({ "text": text, "language": language }))
            }
            Answer::Recognition(recognition) => {
                let language = self.shared.current().offer.command_language.clone();
                let heard = match (&recognition.intent, &recognition.heard) {
                    (Some(_), _) => recognition.text.clone(),
                    (None, Some(heard)) => heard.clone(),
                    (None, None) => String::new(),
                };
                if let Next::Gone(e) =
                    self.send("transcript", json!({ "text": heard, "language": language }))
                {
                    return Next::Gone(e);
                }
                match &recognition.intent {
                    Some(name) => self.send(
                        "intent",
                        intent_data(name, &recognition.slots, &recognition.text),
                    ),
                    None => {
                        let reason = recognition
                            .reason
                            .as_ref()
                            .and_then(|r| serde_json::to_value(r).ok());
                        self.send("not-recognized", json!({ "text": heard, "reason": reason }))
                    }
                }
            }
        }
    }

    fn recognize(&mut self, data: &Map<String, Value>) -> Next {
        let Some(text) = data.get("text").and_then(Value::as_str) else {
            return self.refuse("recognize: `text` is missing or not a string", "bad-event");
        };
        let current = self.shared.current();
        let Some(commands) = &current.commands else {
            return self.refuse("no grammar is loaded", "no-grammar");
        };
        match commands.grammar.match_text(text) {
            Some(found) => self.send(
                "intent",
                intent_data(&found.intent, &found.all_slots(), text),
            ),
            None => self.send("not-recognized", json!({ "text": text })),
        }
    }

    /// `transcript` to handle: its text matched against the grammar, then acted on; with
    /// `[llm]`, text no intent matches is the reply model's question.
    fn handle_transcript(&mut self, data: &Map<String, Value>) -> Next {
        let Some(text) = data.get("text").and_then(Value::as_str) else {
            return self.refuse("transcript: `text` is missing or not a string", "bad-event");
        };
        let current = self.shared.current();
        let commands = current.commands.as_ref();
        if let Some(found) = commands.and_then(|c| c.grammar.match_text(text)) {
            return self.act(&ActionRequest::from_match(&found));
        }
        let question = text.trim();
        match (&self.shared.replies, commands) {
            (Some(replies), _) if !question.is_empty() => self.answer(replies, question),
            (_, None) => self.send("not-handled", json!({ "text": "no grammar is loaded" })),
            (_, Some(_)) => self.send(
                "not-handled",
                json!({ "text": format!("no command of the grammar matches {text:?}") }),
            ),
        }
    }

    /// The reply model's answer to `question`, as `handled`: text for the client, never
    /// run. A full lane refuses at once (`busy`), as a full model queue does.
    fn answer(&mut self, replies: &Replies, question: &str) -> Next {
        let answer = match replies.ask(question) {
            Ok(answer) => answer,
            Err(refusal) => return self.refuse(&refusal.to_string(), "busy"),
        };
        match answer.recv() {
            Ok(Ok(reply)) if reply.text.is_empty() => self.send(
                "not-handled",
                json!({ "text": "the reply model gave an empty answer" }),
            ),
            Ok(Ok(reply)) => self.send("handled", json!({ "text": reply.text })),
            Ok(Err(problem)) => self.refuse(&problem, "model"),
            Err(_) => self.refuse("the reply thread has stopped", "model"),
        }
    }

    /// `intent` to handle: the grammar's intent by name, its fixed slots under the
    /// entities.
    fn handle_intent(&mut self, data: &Map<String, Value>) -> Next {
        let Some(name) = data.get("name").and_then(Value::as_str) else {
            return self.refuse("intent: `name` is missing or not a string", "bad-event");
        };
        let current = self.shared.current();
        let Some(commands) = &current.commands else {
            return self.send("not-handled", json!({ "text": "no grammar is loaded" }));
        };
        let Some(intent) = commands.grammar.intents().iter().find(|i| i.name == name) else {
            return self.send(
                "not-handled",
                json!({ "text": format!("the grammar has no intent {name:?}") }),
            );
        };
        let mut slots = intent.fixed_slots.clone();
        let entities = data.get("entities").and_then(Value::as_array);
        for entity in entities.into_iter().flatten() {
            if let (Some(name), Some(value)) = (
                entity.get("name").and_then(Value::as_str),
                entity.get("value").and_then(slot_value),
            ) {
                slots.insert(name.to_string(), value);
            }
        }
        self.act(&ActionRequest {
            intent: name.to_string(),
            slots,
            text: data.get("text").and_then(Value::as_str).map(str::to_string),
        })
    }

    /// Starts the request's action; its `notify` text is the answer, or for the question
    /// of `[llm] intent` the reply model's.
    fn act(&mut self, request: &ActionRequest) -> Next {
        let shared = self.shared;
        let current = shared.current();
        let (Some(commands), Some(runner)) = (&current.commands, &shared.runner) else {
            return self.send("not-handled", json!({ "text": "no grammar is loaded" }));
        };
        let has_action = commands.actions.has_action(&request.intent);
        if has_action {
            // The runner reports what becomes of the command (started, refused, failed)
            // in its events and the log; the answer does not wait for the command.
            runner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .submit(request);
        }
        let asking = shared.replies.as_ref().and_then(|replies| {
            (replies.intent == request.intent)
                .then(|| asked(&request.slots))
                .flatten()
                .map(|question| (replies, question))
        });
        if let Some((replies, question)) = asking {
            return self.answer(replies, &question);
        }
        if !has_action {
            let text = format!("the intent {} has no action", request.intent);
            return self.send("not-handled", json!({ "text": text }));
        }
        match commands
            .actions
            .notify_text(&request.intent, &request.slots)
        {
            Some(Ok(text)) => self.send("handled", json!({ "text": text })),
            Some(Err(problem)) => {
                tracing::warn!(intent = request.intent, "notify text: {problem}");
                self.send("handled", json!({}))
            }
            None => self.send("handled", json!({})),
        }
    }
}

fn close(text: &str) -> Next {
    Next::Close {
        text: text.to_string(),
        code: "bad-event",
    }
}

/// The `intent` event's data: the name, every slot as an entity, the text.
fn intent_data(
    name: &str,
    slots: &std::collections::BTreeMap<String, SlotValue>,
    text: &str,
) -> Value {
    let entities: Vec<Value> = slots
        .iter()
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect();
    json!({ "name": name, "entities": entities, "text": text })
}

/// A slot value from an entity's JSON value: numbers stay numbers.
fn slot_value(value: &Value) -> Option<SlotValue> {
    match value {
        Value::String(text) => Some(SlotValue::Text(text.clone())),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => SlotValue::Integer(i),
            None => SlotValue::Float(n.as_f64()?),
        }),
        Value::Bool(b) => Some(SlotValue::Text(b.to_string())),
        _ => None,
    }
}
