//! `voxd wyoming` against clients no one here wrote: the `wyoming` Python package's own
//! classes (`scripts/reference/wyoming_client.py`, in the reference `.venv/`) describe,
//! transcribe, recognise and handle; and against bad clients on raw sockets, each of which
//! gets an `error` event (where one can still be written) and a closed connection while the
//! server goes on serving everyone else. Discovery is browsed with Home Assistant's own
//! mDNS library (`scripts/reference/zeroconf_browse.py`), and `[llm]` answers come from the
//! real SmolLM2 model.

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use voxd::wyoming::event::{read_event, write_event, Event, MAX_HEADER_BYTES, MAX_PAYLOAD_BYTES};

use crate::common;
use crate::common::wyoming::{real_command, timers_grammar, Server, PATIENCE};

/// Every event the server sends until it closes the connection; fails if it does not
/// close it.
fn events_until_closed(stream: TcpStream) -> Vec<Event> {
    let mut reader = BufReader::new(stream);
    let mut events = Vec::new();
    loop {
        match read_event(&mut reader) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return events,
            Err(e) => panic!("the connection was not closed cleanly: {e} (after {events:?})"),
        }
    }
}

/// Sends `bytes` as a bad client would and expects one `error` event with `code`, whose
/// text contains `says`, then the end of the connection.
fn expect_error_and_close(server: &Server, bytes: &[u8], code: &str, says: &str) {
    let mut stream = server.connect();
    stream.write_all(bytes).unwrap();
    let events = events_until_closed(stream);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "error", "{events:?}");
    assert_eq!(events[0].text("code"), Some(code), "{events:?}");
    let text = events[0].text("text").unwrap_or_default();
    assert!(text.contains(says), "{text:?} does not say {says:?}");
    server.still_serves();
}

fn header(value: Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&value).unwrap();
    bytes.push(b'\n');
    bytes
}

fn entities(intent: &Value) -> Value {
    let mut pairs: Vec<(String, Value)> = intent["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e["value"].clone()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(pairs.into_iter().collect())
}

/// The events answering a real recording sent to the commands model.
fn command_from_audio(server: &Server, recording: &str) -> Vec<Value> {
    let recording = real_command(recording);
    let wav = recording.to_str().unwrap();
    server.client(&["transcribe", wav, "--name", "voxd-commands"])
}

/// Sends SIGTERM to the server.
fn terminate(server: &Server) {
    let pid = libc::pid_t::try_from(server.child.id()).unwrap();
    // SAFETY: kill only sends a signal, to the server this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

/// A `transcribe` answer: the live transcript first (`transcript-start`, chunks,
/// `transcript-stop`), then the transcript, in English. Returns the transcript's text and
/// the chunks joined.
fn live_transcript(events: &[Value]) -> (&str, String) {
    let kinds = kinds(events);
    let (last, streamed) = kinds.split_last().unwrap();
    assert_eq!(*last, "transcript", "{events:?}");
    assert_eq!(streamed.first(), Some(&"transcript-start"), "{events:?}");
    assert_eq!(streamed.last(), Some(&"transcript-stop"), "{events:?}");
    assert!(
        streamed[1..streamed.len() - 1]
            .iter()
            .all(|k| *k == "transcript-chunk"),
        "{events:?}"
    );
    let transcript = events.last().unwrap();
    assert_eq!(transcript["data"]["language"], "en");
    let joined = events
        .iter()
        .filter(|e| e["type"] == "transcript-chunk")
        .map(|e| e["data"]["text"].as_str().unwrap())
        .collect();
    (transcript["data"]["text"].as_str().unwrap(), joined)
}

// ---------------------------------------------------------------------------------------
// The `wyoming` package as the client.

#[test]
fn describe_gives_an_info_the_wyoming_package_parses() {
    let server = Server::start(None, true, "");
    let events = server.client(&["describe"]);
    assert_eq!(events.len(), 1, "{events:?}");
    let info = &events[0]["data"];
    let asr = &info["asr"][0];
    let models: Vec<&str> = asr["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["tiny.en", "voxd-commands"], "{info}");
    assert_eq!(asr["supports_transcript_streaming"], true, "{info}");
    assert_eq!(asr["models"][0]["languages"], json!(["en"]), "{info}");
    let intents: Vec<&str> = info["intent"][0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    // The grammar's own intents, in its order.
    let grammar = voxd::grammar::Grammar::load(&[timers_grammar()]).unwrap();
    let expected: Vec<&str> = grammar.intents().iter().map(|i| i.name.as_str()).collect();
    assert_eq!(intents, expected, "{info}");
    // Every timer intent has an action.
    let handled: Vec<&str> = info["handle"][0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(handled, expected, "{info}");
}

#[test]
fn transcribing_jfk_in_16_bit_chunks_gives_voxd_transcribes_text() {
    let server = Server::start(None, false, "");
    let events = server.client(&["transcribe", common::jfk().to_str().unwrap()]);
    let (served, joined) = live_transcript(&events);
    let (errors, words) = common::captions::word_errors(served, &joined);
    assert!(errors * 10 <= words, "{joined:?} against {served:?}");

    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("--config")
        .arg(server.dir.path().join("config.toml"))
        .args(["transcribe", "--json", "-t", "1", "--model"])
        .arg(common::model_dir("tiny.en"))
        .arg(common::jfk())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline = String::from_utf8(out.stdout).unwrap();
    let transcript: Value = offline
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["type"] == "transcript")
        .expect("a transcript line");
    assert_eq!(served, transcript["text"].as_str().unwrap());
    assert!(
        served.contains("ask not what your country can do for you"),
        "{served}"
    );
}

/// A minute of reading sent at real time: the live transcript's chunks come while the
/// audio still arrives, and joined they are the transcript's words.
#[test]
fn a_minute_streamed_at_real_time_gets_chunks_before_audio_stop() {
    let reading = common::repo().join("../shared/data/real/continuous/ljspeech_lj001.wav");
    assert!(reading.exists(), "{} is missing", reading.display());
    let server = Server::start(None, false, "");
    let events = server.client(&[
        "transcribe",
        reading.to_str().unwrap(),
        "--realtime",
        "--seconds",
        "60",
    ]);
    let (served, joined) = live_transcript(&events);
    let early: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "transcript-chunk" && e["after_stop"] == false)
        .map(|e| e["data"]["text"].as_str().unwrap())
        .collect();
    assert!(
        early.len() >= 2,
        "fewer than two chunks before audio-stop: {events:?}"
    );
    // The early chunks are the start of the transcript, and all of them its words, as far
    // as the live decoding heard the words as the whole-audio decoding did.
    let early_text = early.concat();
    let start: Vec<&str> = served
        .split_whitespace()
        .take(early_text.split_whitespace().count())
        .collect();
    let (errors, words) = common::captions::word_errors(&start.join(" "), &early_text);
    assert!(errors * 10 <= words, "{early_text:?} against {served:?}");
    let (errors, words) = common::captions::word_errors(served, &joined);
    assert!(errors * 10 <= words, "{joined:?} against {served:?}");
    assert!(
        served.starts_with("Printing, in the only sense"),
        "{served}"
    );
}

#[test]
fn commands_are_recognised_from_text_and_from_a_real_recording() {
    let server = Server::start(None, true, "");
    let expected = json!({"hours": 0, "minutes": 5, "seconds": 0});

    let events = server.client(&["recognize", "set a timer for 5 minutes"]);
    assert_eq!(events[0]["type"], "intent", "{events:?}");
    assert_eq!(events[0]["data"]["name"], "TimerStart");
    assert_eq!(entities(&events[0]["data"]), expected);

    let events = command_from_audio(&server, "stp_set_a_timer_for_5_minutes.wav");
    assert_eq!(kinds(&events), ["transcript", "intent"], "{events:?}");
    assert_eq!(events[1]["data"]["name"], "TimerStart");
    assert_eq!(entities(&events[1]["data"]), expected);

    let events = server.client(&["recognize", "what is the weather like in new york"]);
    assert_eq!(events[0]["type"], "not-recognized", "{events:?}");
}

#[test]
fn a_recording_that_is_no_command_is_not_recognised() {
    let server = Server::start(None, true, "");
    let events = command_from_audio(&server, "stp_what_s_the_weather_like_in_new_york.wav");
    assert_eq!(
        kinds(&events),
        ["transcript", "not-recognized"],
        "{events:?}"
    );
}

#[test]
fn transcripts_are_handled_by_the_intents_action_and_its_notify_text() {
    let server = Server::start(None, true, "");
    let events = server.client(&["handle", "set a timer for 1 hour and 10 minutes"]);
    assert_eq!(events[0]["type"], "handled", "{events:?}");
    assert_eq!(events[0]["data"]["text"], "Timer set for 1 h 10 min 0 s");
    let events = server.client(&["handle", "open the pod bay doors"]);
    assert_eq!(events[0]["type"], "not-handled", "{events:?}");
}

// ---------------------------------------------------------------------------------------
// Bad clients, on raw sockets.

#[test]
fn a_malformed_header_gets_an_error_and_is_closed() {
    let server = Server::start(None, false, "");
    expect_error_and_close(
        &server,
        b"this is not json\n",
        "bad-event",
        "not a JSON object",
    );
    expect_error_and_close(&server, b"{\"data\":{}}\n", "bad-event", "no `type`");
}

#[test]
fn a_header_over_a_mebibyte_gets_an_error_and_is_closed() {
    let server = Server::start(None, false, "");
    // One byte past the limit, and no newline: everything sent is read before the close.
    let bytes = vec![b'x'; MAX_HEADER_BYTES + 1];
    expect_error_and_close(&server, &bytes, "too-large", "longer than 1048576 bytes");
}

#[test]
fn lengths_over_the_limits_get_an_error_and_are_closed() {
    let server = Server::start(None, false, "");
    let too_long = header(json!({"type": "audio-chunk", "payload_length": MAX_PAYLOAD_BYTES + 1}));
    expect_error_and_close(&server, &too_long, "too-large", "`payload_length`");
    let negative = header(json!({"type": "describe", "data_length": -5}));
    expect_error_and_close(&server, &negative, "bad-event", "`data_length` = -5");
}

#[test]
fn lengths_that_lie_get_an_error_and_are_closed() {
    let server = Server::start(None, false, "");
    // Shorter than the data: the extra data read is cut-off JSON.
    let mut bytes = header(json!({"type": "recognize", "data_length": 5}));
    bytes.extend_from_slice(b"{\"tex");
    expect_error_and_close(&server, &bytes, "bad-event", "not a JSON object");
    // Longer than what comes: the client falls silent inside the event, and the idle
    // timeout ends it.
    let mut bytes = header(json!({"type": "audio-chunk", "payload_length": 1000}));
    bytes.extend_from_slice(&[0; 10]);
    expect_error_and_close(&server, &bytes, "timeout", "in its payload");
}

#[test]
fn audio_before_audio_start_gets_an_error_and_is_closed() {
    let server = Server::start(None, false, "");
    let chunk = |kind: &str| {
        let mut bytes = header(
            json!({"type": kind, "data": {"rate": 16000, "width": 2, "channels": 1},
                          "payload_length": 4}),
        );
        bytes.extend_from_slice(&[0; 4]);
        bytes
    };
    expect_error_and_close(
        &server,
        &chunk("audio-chunk"),
        "bad-event",
        "before audio-start",
    );
    let stop = header(json!({"type": "audio-stop"}));
    expect_error_and_close(&server, &stop, "bad-event", "before audio-start");
    // A format the server cannot take is refused at audio-start.
    let start = header(json!({"type": "audio-start",
                              "data": {"rate": 16000, "width": 1, "channels": 1}}));
    expect_error_and_close(&server, &start, "bad-event", "width 1");
}

#[test]
fn a_client_that_leaves_mid_stream_disturbs_nobody() {
    let server = Server::start(None, false, "");
    // Inside an audio stream, between events.
    let mut stream = server.connect();
    let start = json!({"rate": 16000, "width": 2, "channels": 1});
    write_event(&mut stream, &Event::new("transcribe", json!({}))).unwrap();
    write_event(&mut stream, &Event::new("audio-start", start.clone())).unwrap();
    let mut chunk = Event::new("audio-chunk", start);
    chunk.payload = vec![0; 3200];
    write_event(&mut stream, &chunk).unwrap();
    drop(stream);
    server.wait_for_log("left in the middle of its audio");
    // Inside an event: a payload cut short by the hang-up.
    let mut stream = server.connect();
    stream
        .write_all(&header(
            json!({"type": "audio-chunk", "payload_length": 100}),
        ))
        .unwrap();
    stream.write_all(&[0; 10]).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let events = events_until_closed(stream);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        events[0]
            .text("text")
            .unwrap()
            .contains("ended inside an event"),
        "{events:?}"
    );
    server.still_serves();
}

#[test]
fn a_client_that_stops_reading_is_closed_at_the_write_timeout() {
    let server = Server::start(None, true, "");
    let stream = server.connect();
    // Many requests whose answers (a few KiB of `info` each) are never read: the socket's
    // buffers fill and the server's write blocks until its timeout (500 ms here).
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut describe = Vec::new();
        write_event(&mut describe, &Event::new("describe", json!({}))).unwrap();
        for _ in 0..100_000 {
            if writer.write_all(&describe).is_err() {
                return;
            }
        }
    });
    server.wait_for_log("stopped reading or left");
    sender.join().unwrap();
    // The server closed the connection: reading what it wrote ends, in the end of the
    // stream or (with requests it never read) a reset, not in a wait.
    let mut reader = stream;
    let mut buffer = vec![0; 1 << 16];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the connection is still open: {e}"),
        }
    }
    server.still_serves();
}

#[test]
fn unknown_events_are_ignored() {
    let server = Server::start(None, false, "");
    let mut stream = server.connect();
    let mut unknown = Event::new("voxd-test-unknown", json!({"x": 1}));
    unknown.payload = vec![1, 2, 3];
    write_event(&mut stream, &unknown).unwrap();
    write_event(&mut stream, &Event::new("describe", json!({}))).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let kinds: Vec<String> = events_until_closed(stream)
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["info"]);
}

#[test]
fn a_client_over_the_limit_gets_an_error_and_the_others_are_served() {
    let server = Server::start(None, false, "max_clients = 1");
    let mut first = server.connect();
    write_event(&mut first, &Event::new("describe", json!({}))).unwrap();
    let mut first_reader = BufReader::new(first.try_clone().unwrap());
    assert_eq!(read_event(&mut first_reader).unwrap().unwrap().kind, "info");

    let events = events_until_closed(server.connect());
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].text("code"), Some("busy"), "{events:?}");

    // One that talks before it listens is told too, not reset: a socket closed with input
    // unread sends a reset, which can destroy the error before the client reads it.
    let mut eager = server.connect();
    for _ in 0..100 {
        write_event(&mut eager, &Event::new("describe", json!({}))).unwrap();
    }
    // Time for the server to answer and close before this client reads anything.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let events = events_until_closed(eager);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].text("code"), Some("busy"), "{events:?}");

    // The first client is still served, and its place is free once it leaves.
    write_event(&mut first, &Event::new("describe", json!({}))).unwrap();
    assert_eq!(read_event(&mut first_reader).unwrap().unwrap().kind, "info");
    drop((first, first_reader));
    server.wait_for_log("wyoming client gone");
    server.still_serves();
}

#[test]
fn a_unix_socket_is_private_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wyoming.sock");
    let uri = format!("unix://{}", path.display());
    let mut server = Server::start(Some(&uri), true, "");
    assert_eq!(server.uri, uri);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let events = server.client(&["recognize", "cancel the timer"]);
    assert_eq!(events[0]["data"]["name"], "TimerCancel", "{events:?}");
    // SIGTERM stops the server, which removes its socket file.
    terminate(&server);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!Path::new(&path).exists());
}

// ---------------------------------------------------------------------------------------
// Discovery: Home Assistant's own mDNS library as the browser.

#[test]
fn zeroconf_advertises_the_bound_port_to_home_assistants_browser_and_withdraws_it() {
    // A name of this run's own: other runs may advertise on the same network meanwhile.
    let name = format!("voxd-test-{}", std::process::id());
    let mut server = Server::start(
        Some("tcp://0.0.0.0:0"),
        false,
        &format!("zeroconf = true\nzeroconf_name = \"{name}\""),
    );
    let port: u16 = server.uri.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let mut browser = Command::new(common::wyoming::python_with("zeroconf"))
        .arg(common::repo().join("scripts/reference/zeroconf_browse.py"))
        .arg(&name)
        .args(["--timeout", "60"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = common::line_reader(browser.stdout.take().unwrap());
    let found: Value = serde_json::from_str(&lines.recv_timeout(PATIENCE).unwrap_or_else(|e| {
        panic!(
            "the browser found nothing ({e}); server log: {:?}",
            server.log.lock().unwrap()
        )
    }))
    .unwrap();
    assert_eq!(found["event"], "found", "{found}");
    assert_eq!(
        found["name"],
        format!("{name}._wyoming._tcp.local."),
        "{found}"
    );
    assert_eq!(found["port"], port, "{found}");
    // What Home Assistant would do next: connect to an advertised address and describe.
    let address = found["addresses"][0].as_str().expect("an address");
    let stream = TcpStream::connect((address, port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    write_event(&mut writer, &Event::new("describe", json!({}))).unwrap();
    let event = read_event(&mut BufReader::new(stream)).unwrap().unwrap();
    assert_eq!(event.kind, "info");
    // At SIGTERM the server withdraws the advertisement before it exits.
    terminate(&server);
    let removed = lines.recv_timeout(PATIENCE).expect("no removal seen");
    assert!(removed.contains("\"removed\""), "{removed}");
    assert!(server.child.wait().unwrap().success());
    assert!(browser.wait().unwrap().success());
    server.wait_for_log("mDNS advertisement withdrawn");
}

/// `voxd wyoming` with `--zeroconf` and `args`: it must fail, saying `says`.
fn zeroconf_refused(args: &[&str], says: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["wyoming", "--zeroconf", "kitchen", "-t", "1", "--model"])
        .arg(common::model_dir("tiny.en"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(says), "{stderr}");
}

#[test]
fn zeroconf_refuses_what_other_machines_cannot_reach() {
    let dir = tempfile::tempdir().unwrap();
    let socket = format!("unix://{}", dir.path().join("w.sock").display());
    zeroconf_refused(&["--uri", &socket], "a Unix socket has none");
    zeroconf_refused(
        &["--uri", "tcp://127.0.0.1:0"],
        "127.0.0.1 is reachable from this machine only",
    );
}

// ---------------------------------------------------------------------------------------
// Replies from the local language model (`[llm]`), through `handle`.

/// The `[wyoming]` lines (for [`Server::start`]) and then the sections of a server with the
/// timers and ask grammars and the real SmolLM2 reply model, sampling greedily (so `voxd
/// ask` with the same config gives the same text).
fn replies_config(max_tokens: usize) -> String {
    let repo = common::repo();
    let model = repo.join("models/smollm2/model.gguf");
    assert!(
        model.is_file(),
        "{} is missing: voxd models fetch smollm2",
        model.display()
    );
    format!(
        "[commands]\ngrammars = [{:?}, {:?}]\n\
         [llm]\nenabled = true\nmodel = {:?}\ntemperature = 0\nmax_tokens = {max_tokens}\n",
        timers_grammar().display().to_string(),
        repo.join("grammars/ask.toml").display().to_string(),
        model.display().to_string(),
    )
}

/// What `voxd ask` answers `question` with the server's config.
fn voxd_ask(server: &Server, question: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("--config")
        .arg(server.dir.path().join("config.toml"))
        .args(["ask", "--json", question])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    answer["text"].as_str().unwrap().trim().to_string()
}

#[test]
fn what_no_intent_matches_is_answered_by_the_reply_model_as_voxd_ask_answers() {
    let server = Server::start(None, false, &replies_config(32));
    let info = &server.client(&["describe"])[0]["data"];
    let handled: Vec<&str> = info["handle"][0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(handled.last(), Some(&"voxd-reply"), "{info}");

    // No intent matches: the whole text is the question. Each question is answered on its
    // own (no memory across questions), and the prompt's prefix cached from the question
    // before computes what a fresh prompt does (causal attention is batch-invariant), so each
    // equals `voxd ask`'s answer alone, bit for bit, not only by luck of no near-tie.
    for question in ["What is the capital of France?", "Name a color of the sky."] {
        let events = server.client(&["handle", question]);
        assert_eq!(kinds(&events), ["handled"], "{events:?}");
        let answer = events[0]["data"]["text"].as_str().unwrap();
        assert!(!answer.is_empty());
        assert_eq!(answer, voxd_ask(&server, question), "{question}");
    }
    // The ask intent: its question slot is the question.
    let events = server.client(&["handle", "hey computer how many legs does a spider have"]);
    assert_eq!(kinds(&events), ["handled"], "{events:?}");
    assert_eq!(
        events[0]["data"]["text"].as_str().unwrap(),
        voxd_ask(&server, "how many legs does a spider have")
    );
    // A command is still the command's.
    let events = server.client(&["handle", "set a timer for 2 minutes"]);
    assert_eq!(events[0]["data"]["text"], "Timer set for 0 h 2 min 0 s");
}

/// Questions from many clients at once: the reply model answers one while two wait, the
/// rest get a `busy` error at once; nobody is left waiting, and the server serves on.
#[test]
fn a_flood_of_questions_gets_busy_errors_not_a_hang() {
    let server = Server::start(None, false, &replies_config(128));
    // Ten questions within a millisecond or so; one reply of up to 128 tokens takes far
    // longer, so at most three are taken.
    let clients: Vec<TcpStream> = (0..10).map(|_| server.connect()).collect();
    for (n, client) in clients.iter().enumerate() {
        let question = json!({ "text": format!("Tell me a long story about the number {n}.") });
        write_event(&mut &*client, &Event::new("transcript", question)).unwrap();
    }
    let answers: Vec<Event> = clients
        .into_iter()
        .map(|client| read_event(&mut BufReader::new(client)).unwrap().unwrap())
        .collect();
    let handled = answers.iter().filter(|e| e.kind == "handled").count();
    let busy = answers
        .iter()
        .filter(|e| e.kind == "error" && e.text("code") == Some("busy"))
        .count();
    assert_eq!(handled + busy, answers.len(), "{answers:?}");
    assert!(handled >= 1 && busy >= 1, "{answers:?}");
    // Refused questions were refused, not lost in a queue: asked again alone, one is
    // answered.
    let events = server.client(&["handle", "What is the capital of France?"]);
    assert_eq!(kinds(&events), ["handled"], "{events:?}");
    server.still_serves();
}

// ---------------------------------------------------------------------------------------
// `voxd run` with `[wyoming] serve`: the daemon's model serves the clients too.

/// `voxd run` serving Wyoming on a Unix socket, its microphone a real recording written
/// to standard input (16 kHz mono 16-bit, taken at real time); killed when dropped.
struct Serving {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    events: std::sync::mpsc::Receiver<String>,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    uri: String,
    socket: std::path::PathBuf,
    config: std::path::PathBuf,
    dir: tempfile::TempDir,
}

impl Serving {
    /// With the timers grammar and `more` (sections) in the config.
    fn start(more: &str) -> Serving {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("wyoming.sock");
        let uri = format!("unix://{}", socket.display());
        let config = dir.path().join("config.toml");
        let text = common::wyoming::config_text(&format!("serve = true\nuri = {uri:?}"))
            + &format!(
                "[model]\npath = {:?}\nthreads = 1\n{}",
                common::model_dir("tiny.en"),
                if more.is_empty() {
                    format!("[commands]\ngrammars = [{:?}]\n", timers_grammar())
                } else {
                    more.to_string()
                }
            );
        std::fs::write(&config, text).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_voxd"))
            .arg("--config")
            .arg(&config)
            .args(["run", "--mode", "commands", "--stdin", "--rate", "16000"])
            .args([
                "--channels",
                "1",
                "--realtime",
                "--stdout",
                "json",
                "--no-watch",
            ])
            .env("VOXD_LOG", "info")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = common::line_reader(child.stderr.take().unwrap());
        let kept = std::sync::Arc::clone(&log);
        std::thread::spawn(move || lines.iter().for_each(|l| kept.lock().unwrap().push(l)));
        let events = common::line_reader(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        Serving {
            child,
            stdin,
            events,
            log,
            uri,
            socket,
            config,
            dir,
        }
    }

    /// The next daemon event of kind `event`; fails after [`PATIENCE`].
    fn event(&self, event: &str) -> Value {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.events.recv_timeout(left).unwrap_or_else(|e| {
                panic!(
                    "no `{event}` event ({e}); log: {:?}",
                    self.log.lock().unwrap()
                )
            });
            let value: Value = serde_json::from_str(&line).unwrap();
            if value["event"] == event {
                return value;
            }
        }
    }

    fn client(&self, args: &[&str]) -> Vec<Value> {
        common::wyoming::reference_client(&self.uri, args, &self.log)
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill only sends a signal, to the daemon this test started.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 16-bit little-endian samples of `seconds` of silence, `recording`, and silence again.
fn spoken(recording: &Path, seconds: usize) -> Vec<u8> {
    let silence = vec![0.0f32; 16_000 * seconds];
    let speech = voxd::audio::read_wav(recording).unwrap();
    [&silence[..], &speech, &silence]
        .concat()
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect()
}

/// One process, one model: `voxd run` hears a command from its microphone and acts on it
/// while a client of the `wyoming` package gets an `info` it parses and jfk.wav
/// transcribed as `voxd transcribe` transcribes it. A reload gives the server the new
/// grammar (and says that a new address needs a restart); a broken one keeps the old
/// settings; SIGTERM stops both and removes the socket.
#[test]
fn voxd_run_serves_wyoming_on_its_own_model_beside_the_microphone() {
    let mut run = Serving::start("");
    run.event("ready");
    let audio = spoken(&real_command("stp_set_a_timer_for_5_minutes.wav"), 2);
    let mut stdin = run.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&audio).unwrap();
        // Kept open: the microphone goes on (silently) until the daemon is stopped.
        stdin
    });

    let info = &run.client(&["describe"])[0]["data"];
    let models: Vec<&str> = info["asr"][0]["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(models, ["tiny.en", "voxd-commands"], "{info}");
    let grammar = voxd::grammar::Grammar::load(&[timers_grammar()]).unwrap();
    assert_eq!(
        info["intent"][0]["models"].as_array().unwrap().len(),
        grammar.intents().len(),
        "{info}"
    );

    let events = run.client(&["transcribe", common::jfk().to_str().unwrap()]);
    let (served, _) = live_transcript(&events);
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("--config")
        .arg(&run.config)
        .args(["transcribe", "--json"])
        .arg(common::jfk())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline: Value = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["type"] == "transcript")
        .expect("a transcript line");
    assert_eq!(served, offline["text"].as_str().unwrap());

    // The microphone's command, recognised by the same model.
    let intent = run.event("intent");
    assert_eq!(intent["intent"], "TimerStart", "{intent}");
    let stdin = writer.join().unwrap();
    // One model was loaded, the daemon's: the server loads none of its own.
    let loads = run
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("model loaded"))
        .count();
    assert_eq!(loads, 1, "{:?}", run.log.lock().unwrap());

    // A reload: another grammar and another address.
    let hello = run.dir.path().join("hello.toml");
    std::fs::write(&hello, "[intents.Hello]\nsentences = [\"say hello\"]\n").unwrap();
    let moved = run.dir.path().join("elsewhere.sock");
    let config = std::fs::read_to_string(&run.config)
        .unwrap()
        .replace(&format!("{:?}", timers_grammar()), &format!("{hello:?}"))
        .replace(&run.uri, &format!("unix://{}", moved.display()));
    std::fs::write(&run.config, &config).unwrap();
    run.signal(libc::SIGHUP);
    assert_eq!(run.event("reload")["outcome"], "replaced");
    let events = run.client(&["recognize", "say hello"]);
    assert_eq!(events[0]["data"]["name"], "Hello", "{events:?}");
    let info = &run.client(&["describe"])[0]["data"];
    assert_eq!(info["intent"][0]["models"][0]["name"], "Hello", "{info}");
    assert!(!moved.exists());
    assert!(run
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("take effect after a restart") && l.contains("uri")));

    // A broken reload keeps what runs.
    std::fs::write(
        &run.config,
        config.replace("serve = true", "serve = true\nmax_clients = 0"),
    )
    .unwrap();
    run.signal(libc::SIGHUP);
    assert_eq!(run.event("reload")["outcome"], "failed");
    let events = run.client(&["recognize", "say hello"]);
    assert_eq!(events[0]["data"]["name"], "Hello", "{events:?}");

    run.signal(libc::SIGTERM);
    run.event("stopped");
    let status = run.child.wait().unwrap();
    assert!(status.success(), "{status}: {:?}", run.log.lock().unwrap());
    assert!(!run.socket.exists());
    drop(stdin);
}

/// Beside the daemon, a question no intent matches is answered by the daemon's reply
/// model: the first one (nothing remembered yet) as `voxd ask` answers it.
#[test]
fn voxd_run_serving_answers_questions_with_the_daemons_reply_model() {
    let run = Serving::start(&replies_config(32));
    run.event("ready");
    let info = &run.client(&["describe"])[0]["data"];
    let handled = info["handle"][0]["models"].as_array().unwrap();
    assert_eq!(handled.last().unwrap()["name"], "voxd-reply", "{info}");
    let question = "What is the capital of France?";
    let events = run.client(&["handle", question]);
    assert_eq!(kinds(&events), ["handled"], "{events:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("--config")
        .arg(&run.config)
        .args(["ask", "--json", question])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        events[0]["data"]["text"],
        asked["text"].as_str().unwrap().trim()
    );
    // A command is still the command's.
    let events = run.client(&["handle", "set a timer for 2 minutes"]);
    assert_eq!(events[0]["data"]["text"], "Timer set for 0 h 2 min 0 s");
}

/// `[wyoming] serve` needs the model here: with a remote server, `voxd run` refuses to
/// start and names the flag.
#[test]
fn serving_with_a_remote_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, common::wyoming::config_text("serve = true")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("--config")
        .arg(&config)
        .args(["run", "--remote", "tcp://127.0.0.1:9", "--wav"])
        .arg(common::jfk())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--remote") && stderr.contains("serve = true"),
        "{stderr}"
    );
}
