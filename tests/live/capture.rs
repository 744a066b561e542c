//! The real capture path, headless: a private PulseAudio server (scripts/env/vmic.sh) feeds
//! a virtual microphone, which voxd reads through the server's own API (the default) or
//! through cpal and ALSA's default device (`--backend cpal`). Each test runs `voxd listen`
//! against its own server, so they can run side by side.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use voxd::frontend::Utterance;

use crate::common;
use crate::common::segments::{check, segmentation_set, Command_};
use crate::common::vmic::VirtualMic;
use crate::turns;

/// `voxd listen` on the microphone's default device at 48 kHz stereo, through `backend`,
/// for `seconds`.
fn listen(mic: &VirtualMic, backend: &str, seconds: f64, save_audio: &Path) -> Listener {
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["listen", "--backend", backend])
        .args(["--rate", "48000", "--channels", "2", "--seconds"])
        .arg(seconds.to_string())
        .arg("--save-audio")
        .arg(save_audio)
        .envs(mic.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("voxd listen");
    let lines = common::line_reader(child.stdout.take().unwrap());
    Listener { child, lines }
}

struct Listener {
    child: Child,
    /// Its standard output: one JSON event a line.
    lines: mpsc::Receiver<String>,
}

impl Listener {
    /// Waits for an event with `event == name` (and `kind == kind`, if given); returns it
    /// and everything seen before it.
    fn wait_for(
        &self,
        name: &str,
        kind: Option<&str>,
        timeout: Duration,
    ) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {name} {kind:?} event within {timeout:?}; saw {seen:?}")
            });
            let event: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            let hit = event["event"] == name && kind.is_none_or(|k| event["kind"] == k);
            seen.push(event);
            if hit {
                return seen;
            }
        }
    }

    fn finish(mut self) -> Vec<serde_json::Value> {
        let events = self.wait_for("finished", None, Duration::from_secs(60));
        assert!(self.child.wait().unwrap().success(), "voxd listen failed");
        events
    }
}

fn utterances(events: &[serde_json::Value]) -> Vec<Utterance> {
    events
        .iter()
        .filter(|e| e["event"] == "speech_end")
        .map(|e| Utterance {
            start: e["start"].as_u64().unwrap(),
            end: e["end"].as_u64().unwrap(),
            onset: e["onset"].as_u64().unwrap(),
            voice_end: e["end"].as_u64().unwrap(),
            samples: Vec::new(),
            cut: e["cut"].as_bool().unwrap(),
            heard_to: e["end"].as_u64().unwrap(),
            lead_in: Vec::new(),
        })
        .collect()
}

fn read_16k(path: &Path) -> Vec<f32> {
    voxd::audio::read_wav(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Σ a[i]·b[i + lag] over the samples both have (`lag` may be negative).
fn correlation(a: &[f32], b: &[f32], lag: i64) -> f32 {
    let (a, b) = if lag >= 0 {
        (a, b.get(lag as usize..).unwrap_or(&[]))
    } else {
        (a.get(lag.unsigned_abs() as usize..).unwrap_or(&[]), b)
    };
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn best_lag(a: &[f32], b: &[f32], lags: impl Iterator<Item = i64>) -> i64 {
    lags.max_by(|&x, &y| correlation(a, b, x).total_cmp(&correlation(a, b, y)))
        .expect("a lag to try")
}

/// Where `reference` starts inside `heard`, in samples (negative: the capture began after
/// the playback did, as a sound server that renders ahead can make it): coarse search on
/// 10 ms energy envelopes, then sample-exact refinement around the best coarse lag.
fn delay_of(reference: &[f32], heard: &[f32]) -> i64 {
    let envelope = |x: &[f32]| -> Vec<f32> {
        x.chunks(160)
            .map(|c| c.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect()
    };
    let (re, he) = (envelope(reference), envelope(heard));
    let max_lag = he.len().saturating_sub(re.len() / 2) as i64;
    let coarse = best_lag(&re, &he, -100..max_lag) * 160;
    let span = &reference[..reference.len().min(16000 * 20)];
    best_lag(span, heard, coarse - 320..=coarse + 320)
}

/// Where each command's stretch of `reference` sits in `heard`: searched within 100 ms of
/// `playback`, sample-exact, so that a little audio added or lost on the way to the
/// microphone between commands moves only the commands after it.
fn command_delays(
    reference: &[f32],
    heard: &[f32],
    commands: &[Command_],
    playback: i64,
) -> Vec<i64> {
    commands
        .iter()
        .map(|c| {
            let from = c.onset.saturating_sub(4_000) as usize;
            let to = ((c.offset + 4_000) as usize).min(reference.len());
            let lag = best_lag(
                &reference[from..to],
                heard,
                playback + from as i64 - 1_600..=playback + from as i64 + 1_600,
            );
            lag - from as i64
        })
        .collect()
}

/// Keeps what a failing run heard and reported, for a look afterwards; returns where.
fn keep_failed_run(name: &str, heard: &Path, events: &[serde_json::Value]) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capture-failures");
    let stem = dir.join(name.replace(' ', "_"));
    let kept = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::copy(heard, stem.with_extension("wav")))
        .and_then(|_| {
            std::fs::write(
                stem.with_extension("json"),
                serde_json::to_vec(events).unwrap(),
            )
        });
    match kept {
        Ok(()) => format!(
            "heard audio and events kept in {}.{{wav,json}}",
            stem.display()
        ),
        Err(e) => format!("heard audio not kept: {e}"),
    }
}

/// Spoken commands played into the virtual microphone at 48 kHz stereo, clean and in pink
/// noise at 20, 10 and 6 dB SNR, through cpal and through the sound server's API: each
/// command is one utterance that covers it. Each command is found in what was heard on its
/// own: under load the way to the microphone can move later audio by tens of ms, which one
/// offset for the whole recording took for utterances ending early.
#[test]
fn virtual_microphone_segments_commands() {
    let _turn = turns::shared();
    let set = segmentation_set();
    let duration = set.manifest["duration_s"].as_f64().unwrap();
    let versions = [
        ("pink20", "cpal"),
        ("pink10", "cpal"),
        ("pink6", "cpal"),
        ("clean", "cpal"),
        ("pink20", "pulse"),
        ("pink10", "pulse"),
        ("clean", "pulse"),
    ];
    let runs: Vec<_> = versions
        .iter()
        .map(|&(name, backend)| {
            let mic = VirtualMic::start();
            let heard = mic.dir.path().join("heard.wav");
            let listener = listen(&mic, backend, duration + 4.0, &heard);
            listener.wait_for("capture", Some("opened"), Duration::from_secs(20));
            let player = mic.play(&set.file(name, "48k_stereo"));
            (
                format!("{name} via {backend}"),
                mic,
                heard,
                listener,
                player,
            )
        })
        .collect();
    let mut failures = Vec::new();
    for (name, mic, heard, listener, mut player) in runs {
        let clean_name = name.split(' ').next().unwrap();
        assert!(player.wait().unwrap().success(), "{name}: playback failed");
        let events = listener.finish();
        let finished = events.last().unwrap();
        assert_eq!(finished["dropped"], 0, "{name}: {finished}");
        let reference = read_16k(&set.file(clean_name, "16k"));
        let heard_audio = read_16k(&heard);
        let playback = delay_of(&reference, &heard_audio);
        let delays = command_delays(&reference, &heard_audio, &set.commands, playback);
        let found = utterances(&events);
        let (problems, min_lead, min_tail) = check(&set.commands, &found, &delays);
        let (earliest, latest) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        println!(
            "{name} from the virtual microphone: playback began at {:.3} s, commands found \
             {:+.1} to {:+.1} ms from there; {} utterances for {} commands, smallest lead \
             {min_lead} ms, smallest tail {min_tail} ms",
            playback as f64 / 16000.0,
            (earliest - playback) as f64 / 16.0,
            (latest - playback) as f64 / 16.0,
            found.len(),
            set.commands.len()
        );
        if !problems.is_empty() {
            let kept = keep_failed_run(&name, &heard, &events);
            failures.push(format!("{name} ({kept}):\n{}", problems.join("\n")));
        }
        drop(mic);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The microphone's server goes away mid-stream and comes back: capture reports the loss,
/// retries, resumes on its own, and segments speech again, all in one `voxd listen`.
#[test]
fn a_vanished_server_is_reported_and_capture_resumes() {
    vanish_and_come_back("pulse");
}

/// The same through cpal and ALSA's PulseAudio plugin.
#[test]
fn a_vanished_device_is_reported_and_capture_resumes() {
    vanish_and_come_back("cpal");
}

fn vanish_and_come_back(backend: &str) {
    let _turn = turns::shared();
    let set = segmentation_set();
    let mic = VirtualMic::start();
    let heard = mic.dir.path().join("heard.wav");
    let listener = listen(&mic, backend, 40.0, &heard);
    listener.wait_for("capture", Some("opened"), Duration::from_secs(20));
    let wav = set.file("clean", "48k_stereo");

    let mut player = mic.play(&wav);
    let before = listener.wait_for("speech_end", None, Duration::from_secs(15));
    let _ = player.kill();
    let _ = player.wait();
    mic.vanish();
    let lost = listener.wait_for("capture", Some("lost"), Duration::from_secs(15));
    mic.come_back();
    let resumed = listener.wait_for("capture", Some("resumed"), Duration::from_secs(30));
    let mut player = mic.play(&wav);
    let after = listener.wait_for("speech_end", None, Duration::from_secs(20));
    let _ = player.kill();
    let _ = player.wait();
    let rest = listener.finish();
    println!(
        "{backend}: lost: {}\nresumed after: {:?}",
        lost.last().unwrap(),
        resumed
            .iter()
            .filter(|e| e["event"] == "capture")
            .collect::<Vec<_>>()
    );
    assert!(utterances(&before).len() == 1 && utterances(&after).len() == 1);
    assert!(resumed.iter().any(|e| e["kind"] == "retrying"));
    assert_eq!(rest.last().unwrap()["event"], "finished");
}

/// A configuration the device cannot give is a clear error listing what it can.
#[test]
fn an_unsupported_configuration_is_a_clear_error() {
    let _turn = turns::shared();
    let mic = VirtualMic::start();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["listen", "--channels", "200", "--seconds", "1"])
        .envs(mic.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not support 200 ch") && stderr.contains("it supports"),
        "{stderr}"
    );
}

/// The sound server's API opens its default source only: asking it for a device of
/// `voxd devices` says so and names the backend that can.
#[test]
fn the_sound_server_backend_refuses_a_numbered_device() {
    let _turn = turns::shared();
    let mic = VirtualMic::start();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["listen", "--backend", "pulse", "--device", "1"])
        .args(["--seconds", "1"])
        .envs(mic.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("input device #1") && stderr.contains("backend \"cpal\""),
        "{stderr}"
    );
}
