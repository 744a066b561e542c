//! Bad and odd input on the front end's file and pipe sources: clear errors or recovery,
//! never a panic.

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use voxd::capture::{CaptureEvent, Pace, PcmFormat, StreamSource};
use voxd::frontend::{
    listen, FrontEnd, FrontEndConfig, FrontEndError, FrontEndEvent, Source, VadConfig,
};

/// Runs a front end to the end; returns its events.
fn events_of(front_end: &FrontEnd) -> Vec<FrontEndEvent> {
    let mut events = Vec::new();
    for e in front_end.events().iter() {
        let done = matches!(e, FrontEndEvent::Finished(_));
        events.push(e);
        if done {
            break;
        }
    }
    events
}

fn wav_error(path: &Path) -> String {
    match listen(
        Source::Wav {
            path: path.to_path_buf(),
            pace: Pace::Fast,
        },
        FrontEndConfig::default(),
    ) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e.to_string(),
    }
}

fn tone_i16(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (((i as f32 * 0.07).sin() * 8000.0) as i16).to_le_bytes())
        .collect()
}

/// A RIFF/WAVE header for PCM data.
fn wav_bytes(
    format_tag: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    data: &[u8],
    data_len: u32,
) -> Vec<u8> {
    let block = channels * bits / 8;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&format_tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    v.extend_from_slice(&block.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn broken_wav_headers_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "text.wav",
            b"hello, this is not audio".to_vec(),
            "not a WAV file",
        ),
        (
            "short.wav",
            b"RIFF\x10\x00\x00\x00WAVEfm".to_vec(),
            "truncated",
        ),
        ("empty.wav", Vec::new(), "wav"),
        (
            "float64.wav",
            wav_bytes(3, 1, 16_000, 64, &[0; 64], 64),
            "unsupported",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let err = wav_error(&path);
        assert!(err.contains(name), "{name}: {err}");
        assert!(
            err.to_lowercase().contains(&expected.to_lowercase()),
            "{name}: {err}"
        );
    }
    let err = wav_error(&dir.path().join("missing.wav"));
    assert!(err.contains("missing.wav"), "{err}");
}

#[test]
fn a_wav_truncated_mid_data_delivers_what_it_has_then_reports() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.wav");
    // The header promises 2 s; the data holds 1 s and half a sample.
    let mut data = tone_i16(16_000);
    data.push(0x12);
    std::fs::write(&path, wav_bytes(1, 1, 16_000, 16, &data, 64_000)).unwrap();
    let listening = listen(
        Source::Wav {
            path,
            pace: Pace::Fast,
        },
        FrontEndConfig::default(),
    )
    .expect("the header is fine");
    let events = events_of(&listening.front_end);
    let failed = events.iter().find_map(|e| match e {
        FrontEndEvent::Capture(CaptureEvent::Failed { error }) => Some(error.clone()),
        _ => None,
    });
    let failed = failed.expect("a Failed report");
    assert!(
        failed.contains("cut.wav") && failed.contains("truncated"),
        "{failed}"
    );
    let FrontEndEvent::Finished(stats) = events.last().unwrap() else {
        panic!("ends with Finished")
    };
    assert_eq!(stats.ring.offered, 16_000);
    assert_eq!(stats.ring.dropped, 0);
}

#[test]
fn odd_sample_formats_are_read() {
    let dir = tempfile::tempdir().unwrap();
    for (bits, channels, rate) in [(8u16, 1u16, 8_000u32), (24, 2, 44_100), (32, 3, 22_050)] {
        let frames = rate as usize; // one second
        let sample_bytes = usize::from(bits / 8);
        let data: Vec<u8> = (0..frames * usize::from(channels) * sample_bytes)
            .map(|i| (i * 37 % 251) as u8)
            .collect();
        let path = dir.path().join(format!("odd-{bits}-{channels}-{rate}.wav"));
        std::fs::write(
            &path,
            wav_bytes(1, channels, rate, bits, &data, data.len() as u32),
        )
        .unwrap();
        let listening = listen(
            Source::Wav {
                path: path.clone(),
                pace: Pace::Fast,
            },
            FrontEndConfig::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let events = events_of(&listening.front_end);
        let FrontEndEvent::Finished(stats) = events.last().unwrap() else {
            panic!("ends with Finished")
        };
        assert_eq!(stats.ring.offered, frames as u64, "{}", path.display());
        assert!(
            stats.samples > 15_000,
            "{}: {} samples at 16 kHz",
            path.display(),
            stats.samples
        );
    }
}

fn pcm_front_end(
    bytes: Vec<u8>,
    format: PcmFormat,
    rate: u32,
    channels: u16,
) -> Result<Vec<FrontEndEvent>, String> {
    let (_source, output) =
        StreamSource::pcm(Cursor::new(bytes), format, rate, channels, Pace::Fast)
            .map_err(|e| e.to_string())?;
    let front_end =
        FrontEnd::start(output, rate, FrontEndConfig::default()).map_err(|e| e.to_string())?;
    Ok(events_of(&front_end))
}

#[test]
fn raw_pcm_of_every_format_and_bad_parameters() {
    for format in ["u8", "s16le", "s24le", "s32le", "f32le", "f64le"] {
        let format = PcmFormat::parse(format).unwrap();
        // 0.5 s of stereo 32 kHz, then half a frame and a partial sample that are dropped.
        let dangling = format.bytes() + usize::from(format.bytes() > 1);
        let bytes = vec![0u8; 16_000 * 2 * format.bytes() + dangling];
        let events = pcm_front_end(bytes, format, 32_000, 2).unwrap();
        let FrontEndEvent::Finished(stats) = events.last().unwrap() else {
            panic!("ends with Finished")
        };
        assert_eq!(stats.ring.offered, 16_000, "{format:?}");
    }
    let err = pcm_front_end(vec![0; 10], PcmFormat::S16Le, 0, 1).unwrap_err();
    assert!(err.contains("sample rate 0"), "{err}");
    let err = pcm_front_end(vec![0; 10], PcmFormat::S16Le, 16_000, 0).unwrap_err();
    assert!(err.contains("0 channels"), "{err}");
    let err = PcmFormat::parse("s17le").unwrap_err().to_string();
    assert!(err.contains("s17le") && err.contains("expected"), "{err}");
}

#[test]
fn bad_front_end_settings_are_refused_before_anything_runs() {
    let (_source, output) = StreamSource::pcm(
        Cursor::new(vec![0u8; 100]),
        PcmFormat::S16Le,
        16_000,
        1,
        Pace::Fast,
    )
    .unwrap();
    let config = FrontEndConfig {
        vad: VadConfig {
            frame_ms: 25,
            ..VadConfig::default()
        },
        ..FrontEndConfig::default()
    };
    let err = FrontEnd::start(output, 16_000, config)
        .err()
        .expect("refused");
    assert!(matches!(err, FrontEndError::Vad(_)), "{err}");
    assert!(err.to_string().contains("10, 20 or 30"), "{err}");
}

#[test]
fn the_cli_names_a_broken_file_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.wav");
    std::fs::write(&path, b"RIFF....WAVEjunk").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("listen")
        .arg("--wav")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("broken.wav"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args([
            "listen",
            "--stdin",
            "--rate",
            "16000",
            "--channels",
            "1",
            "--pcm-format",
            "mp3",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mp3") && stderr.contains("s16le"),
        "{stderr}"
    );
}

/// `voxd listen --help` explains every event it prints, one line each.
#[test]
fn listen_help_lists_every_event() {
    let utterance = voxd::frontend::Utterance {
        start: 0,
        end: 1,
        onset: 0,
        voice_end: 1,
        samples: vec![0.0],
        cut: false,
        heard_to: 1,
        lead_in: Vec::new(),
    };
    let events = [
        FrontEndEvent::SpeechStart { start: 0, onset: 0 },
        FrontEndEvent::SpeechPause {
            utterance: utterance.clone(),
            stage: voxd::frontend::PauseStage::Settled,
        },
        FrontEndEvent::SpeechEnd(utterance),
        FrontEndEvent::Capture(CaptureEvent::Failed {
            error: String::new(),
        }),
        FrontEndEvent::Overrun { dropped: 1 },
        FrontEndEvent::Finished(Default::default()),
    ];
    // `window` comes from the CLI itself (with --captions), not from a front-end event.
    let names: Vec<String> = events
        .iter()
        .map(|e| e.to_json()["event"].as_str().unwrap().to_string())
        .chain(["window".to_string()])
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["listen", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            !help
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{name} ")))
        })
        .collect();
    assert!(missing.is_empty(), "{missing:?} not explained in:\n{help}");
}
