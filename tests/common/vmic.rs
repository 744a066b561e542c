//! A private PulseAudio server with a virtual microphone (scripts/env/vmic.sh), for tests that
//! speak into cpal's real capture path. Stopped when dropped.

use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct VirtualMic {
    pub dir: tempfile::TempDir,
    /// PULSE_SERVER and friends: a program run with them captures from the microphone.
    pub env: Vec<(String, String)>,
}

impl VirtualMic {
    pub fn start() -> Self {
        let mut mic = VirtualMic {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        };
        mic.script("start");
        let env = std::fs::read_to_string(mic.dir.path().join("env")).unwrap();
        mic.env = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        mic
    }

    pub fn script(&self, verb: &str) {
        let status = Command::new(super::repo().join("scripts/env/vmic.sh"))
            .arg(verb)
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .status()
            .expect("run scripts/env/vmic.sh");
        assert!(status.success(), "scripts/env/vmic.sh {verb} failed");
    }

    /// Stops the server: to its clients the microphone vanishes, as when the sound server
    /// dies or a USB microphone is pulled out.
    pub fn vanish(&self) {
        self.script("stop");
    }

    /// Starts the server again in the same folder, so the same variables reach it: the
    /// microphone is back.
    pub fn come_back(&self) {
        self.script("start");
    }

    /// Starts playing `wav` into the microphone (real time); the child ends with the file.
    pub fn play(&self, wav: &Path) -> Child {
        assert!(wav.exists(), "{} is missing", wav.display());
        Command::new(super::repo().join("scripts/env/vmic.sh"))
            .arg("play")
            .arg(self.dir.path())
            .arg(wav)
            .stdout(Stdio::null())
            .spawn()
            .expect("play")
    }

    /// Plays `wav` to its end.
    pub fn say(&self, wav: &Path) {
        let status = self.play(wav).wait().unwrap();
        assert!(status.success(), "playing {} failed", wav.display());
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        self.script("stop");
    }
}
