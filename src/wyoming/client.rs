//! A Wyoming speech-to-text client: how `voxd run` with `[model] remote` has another
//! machine's server (a `voxd wyoming`, or wyoming-faster-whisper) transcribe an utterance.
//!
//! One connection per utterance, as Home Assistant does: `transcribe`, `audio-start`, the
//! audio as 16-bit chunks, `audio-stop`, then events are read until the `transcript`
//! (streamed `transcript-chunk`s and anything else on the way are skipped, as the protocol
//! says). Servers close the connection after their answer, and a fresh one also means a
//! server restarted between two utterances needs nothing to be noticed.

use std::io::{self, BufReader};
use std::time::{Duration, Instant};

use serde_json::json;

use super::event::{read_event, write_event, Event};
use super::server::Connection;
use crate::audio::SAMPLE_RATE;
use crate::config::{ListenUri, Stream};
use crate::daemon::remote::SpeechService;

/// How long connecting may take: a server on the local network answers in milliseconds,
/// and a machine that is off should not hold the utterance long before the retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the server may take from `audio-stop` to its transcript (or between two of
/// its events). Whisper on a slow board takes seconds per command; a minute is a server
/// that is stuck.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Audio per `audio-chunk`: 100 ms, the size Wyoming's own satellites send.
const CHUNK_SAMPLES: usize = SAMPLE_RATE as usize / 10;

/// A Wyoming speech-to-text server at `uri`.
pub struct WyomingClient {
    uri: ListenUri,
}

impl WyomingClient {
    pub fn new(uri: ListenUri) -> WyomingClient {
        WyomingClient { uri }
    }

    fn connect(&self) -> io::Result<Connection> {
        let stream = match self.uri.connect(CONNECT_TIMEOUT)? {
            Stream::Tcp(stream) => {
                stream.set_nodelay(true)?;
                Connection::Tcp(stream)
            }
            Stream::Unix(stream) => Connection::Unix(stream),
        };
        stream.set_timeouts(ANSWER_TIMEOUT, ANSWER_TIMEOUT)?;
        Ok(stream)
    }

    fn request(&self, samples: &[f32], language: &str) -> Result<String, String> {
        let mut stream = self.connect().map_err(|e| format!("cannot connect: {e}"))?;
        let format = json!({ "rate": SAMPLE_RATE, "width": 2, "channels": 1 });
        let mut send = |event: Event| {
            write_event(&mut stream, &event).map_err(|e| format!("cannot send the audio: {e}"))
        };
        send(Event::new("transcribe", json!({ "language": language })))?;
        send(Event::new("audio-start", format.clone()))?;
        for chunk in samples.chunks(CHUNK_SAMPLES) {
            let mut event = Event::new("audio-chunk", format.clone());
            event.payload = pcm16(chunk);
            send(event)?;
        }
        send(Event::new("audio-stop", json!({})))?;
        let stopped = Instant::now();
        let mut reader = BufReader::new(stream);
        loop {
            let event = match read_event(&mut reader) {
                Ok(Some(event)) => event,
                Ok(None) => {
                    return Err("the server closed the connection without a transcript".into())
                }
                Err(e) => {
                    return Err(format!(
                        "no transcript {:.1} s after the audio: {e}",
                        stopped.elapsed().as_secs_f32()
                    ))
                }
            };
            match event.kind.as_str() {
                "transcript" => return Ok(event.text("text").unwrap_or_default().to_string()),
                "error" => {
                    return Err(format!(
                        "the server refused: {} ({})",
                        event.text("text").unwrap_or("no reason given"),
                        event.text("code").unwrap_or("no code")
                    ))
                }
                _ => {}
            }
        }
    }
}

impl SpeechService for WyomingClient {
    fn address(&self) -> String {
        self.uri.to_string()
    }

    fn transcribe(&mut self, samples: &[f32], language: &str) -> Result<String, String> {
        self.request(samples, language)
    }
}

/// 16-bit little-endian PCM, as every Wyoming server takes.
fn pcm16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16).to_le_bytes())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_become_clamped_16_bit_pcm() {
        assert_eq!(
            pcm16(&[0.0, 1.0, -1.0, 2.0]),
            [0, 0, 255, 127, 1, 128, 255, 127]
        );
    }

    #[test]
    fn a_server_that_is_not_there_is_an_error_naming_it() {
        // A port just freed: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut client = WyomingClient::new(ListenUri::Tcp {
            host: "127.0.0.1".into(),
            port,
        });
        let error = client.transcribe(&[0.0; 1600], "en").unwrap_err();
        assert!(error.starts_with("cannot connect: "), "{error}");
        assert_eq!(client.address(), format!("tcp://127.0.0.1:{port}"));
    }
}
