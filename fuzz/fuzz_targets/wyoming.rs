//! What the Wyoming server reads from a client: events one after another (`read_event`, as
//! a client's thread reads its socket), and the audio events' formats and payloads through
//! an `AudioStream`, as the server takes them, up to the stream's 16 kHz samples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxd::wyoming::audio::{AudioFormat, AudioStream};
use voxd::wyoming::event::read_event;

/// The longest audio one request may send here: the server's limit is larger, but the
/// check is the same code, and short streams keep each input fast.
const MAX_SECONDS: u32 = 2;

fuzz_target!(|data: &[u8]| {
    let mut reader = data;
    let mut stream: Option<AudioStream> = None;
    while let Ok(Some(event)) = read_event(&mut reader) {
        match event.kind.as_str() {
            "audio-start" => {
                stream = AudioFormat::from_data(&event.data)
                    .and_then(|format| AudioStream::new(format, MAX_SECONDS))
                    .ok();
            }
            "audio-chunk" => {
                let pushed = match (stream.as_mut(), AudioFormat::from_data(&event.data)) {
                    (Some(stream), Ok(format)) => stream.push(format, &event.payload),
                    _ => Err(String::new()),
                };
                // The server closes a client whose chunk it cannot take.
                if pushed.is_err() {
                    stream = None;
                }
            }
            "audio-stop" => {
                if let Some(stream) = stream.take() {
                    let _ = stream.finish();
                }
            }
            _ => {}
        }
    }
});
