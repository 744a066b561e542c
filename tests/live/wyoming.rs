//! `voxd wyoming`'s live transcript: a minute of real reading streamed at real time by the
//! `wyoming` package's own client gets `transcript-chunk` events while the audio still
//! arrives, then `transcript-stop` and the `transcript`.

use serde_json::Value;

use crate::common::captions::word_errors;
use crate::common::repo;
use crate::common::wyoming::Server;
use crate::turns;

/// The length: a minute of speech, streamed as a satellite would.
const SECONDS: &str = "60";

#[test]
fn a_minute_streamed_at_real_time_gets_transcript_chunks_before_audio_stop() {
    // The server decodes on one thread: light enough to run beside the other light tests.
    let _turn = turns::shared();
    let reading = repo().join("../shared/data/real/continuous/ljspeech_lj001.wav");
    assert!(reading.exists(), "{} is missing", reading.display());
    let server = Server::start(None, false, "");
    let events = server.client(&[
        "transcribe",
        reading.to_str().unwrap(),
        "--realtime",
        "--seconds",
        SECONDS,
    ]);
    let shown = events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"transcript-start"), "{shown}");
    assert_eq!(kinds.last(), Some(&"transcript"), "{shown}");
    assert_eq!(kinds[kinds.len() - 2], "transcript-stop", "{shown}");
    let chunks: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "transcript-chunk")
        .collect();
    let early = chunks.iter().filter(|e| e["after_stop"] == false).count();
    // Finals come a few seconds behind the voice: most of a minute is streamed early.
    assert!(
        early * 2 >= chunks.len() && early >= 3,
        "{early} of {} chunks before audio-stop:\n{shown}",
        chunks.len()
    );
    let joined: String = chunks
        .iter()
        .map(|e| e["data"]["text"].as_str().unwrap())
        .collect();
    let transcript = events.last().unwrap()["data"]["text"].as_str().unwrap();
    let (errors, words) = word_errors(transcript, &joined);
    assert!(
        errors * 10 <= words,
        "{errors} word errors in {words}: {joined:?} against {transcript:?}"
    );
}
