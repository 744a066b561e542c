//! Spoken test audio: espeak-ng's voice, 16 kHz mono f32, with silence around each text.

use std::path::Path;
use std::process::Command;

/// `texts` spoken one after the other, each followed by `gap` seconds of silence (and one
/// second before the first, the front end's warm-up).
pub fn espeak(texts: &[&str], gap: f32, scratch: &Path) -> Vec<f32> {
    let mut samples = silence(1.0);
    for (i, text) in texts.iter().enumerate() {
        let raw = scratch.join(format!("espeak{i}.wav"));
        let status = Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&raw)
            .arg(text)
            .status()
            .expect("espeak-ng runs (scripts/setup.sh installs it)");
        assert!(status.success(), "espeak-ng failed on {text:?}");
        samples.extend(voxd::audio::read_wav(&raw).unwrap());
        samples.extend(silence(gap));
    }
    samples
}

/// `text` spoken by espeak-ng without the silence around it, scaled to `peak`.
pub fn say(text: &str, peak: f32, scratch: &Path) -> Vec<f32> {
    let spoken = espeak(&[text], 0.0, scratch);
    let first = spoken.iter().position(|x| x.abs() > 1e-4).unwrap_or(0);
    let last = spoken.iter().rposition(|x| x.abs() > 1e-4).unwrap_or(0);
    levelled(spoken[first..=last].to_vec(), peak)
}

/// `samples` scaled so that their peak is `peak`.
pub fn levelled(mut samples: Vec<f32>, peak: f32) -> Vec<f32> {
    let max = samples.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(max > 0.0, "a silent piece of test speech");
    samples.iter_mut().for_each(|x| *x *= peak / max);
    samples
}

pub fn silence(seconds: f32) -> Vec<f32> {
    vec![0.0; (16_000.0 * seconds) as usize]
}

/// `samples` as a 16 kHz mono float WAV.
pub fn write_wav(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for &x in samples {
        wav.write_sample(x).unwrap();
    }
    wav.finalize().unwrap();
}
