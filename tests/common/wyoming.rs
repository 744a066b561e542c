//! A `voxd wyoming` server for the tests, and the reference Wyoming client
//! (`scripts/reference/wyoming_client.py`, the `wyoming` package's own classes) to talk to it.

use std::io::BufReader;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use voxd::wyoming::event::{read_event, write_event, Event};

use super::{model_dir, repo};

/// How long a test waits for something the server must do before it fails; generous, since
/// the tests share two cores.
pub const PATIENCE: Duration = Duration::from_secs(120);

pub fn python() -> PathBuf {
    python_with("wyoming")
}

/// The reference venv's Python, which must import `module`.
pub fn python_with(module: &str) -> PathBuf {
    let python = repo().join(".venv/bin/python");
    let found = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{} cannot import {module}: run scripts/setup.sh --reference",
        python.display()
    );
    python
}

pub fn timers_grammar() -> PathBuf {
    repo().join("grammars/timers.toml")
}

pub fn real_command(name: &str) -> PathBuf {
    let path = repo().join("../shared/data/real/commands").join(name);
    assert!(path.exists(), "{} is missing", path.display());
    path
}

/// The test config: no desktop notifications, short timeouts so the bad-client tests do
/// not wait long, English as the transcription language (what `info` lists while the model
/// loads).
pub fn config_text(wyoming: &str) -> String {
    format!(
        "[transcribe]\nlanguage = \"en\"\n[actions]\nnotifications = false\n\
         [wyoming]\nwrite_timeout_ms = 500\nidle_timeout_ms = 3000\n{wyoming}\n"
    )
}

/// Runs the reference client against the server at `uri` (`command URI rest…`); its
/// events, one JSON object each. A failure shows the server's `log`.
pub fn reference_client(uri: &str, args: &[&str], log: &Mutex<Vec<String>>) -> Vec<Value> {
    let (command, rest) = args.split_first().unwrap();
    let out = Command::new(python())
        .arg(repo().join("scripts/reference/wyoming_client.py"))
        .arg(command)
        .arg(uri)
        .args(rest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "wyoming_client.py {args:?}: {}\nserver log: {:?}",
        String::from_utf8_lossy(&out.stderr),
        log.lock().unwrap()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A `voxd wyoming` process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub uri: String,
    pub log: Arc<Mutex<Vec<String>>>,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server on a free port (`uri` None) or on `uri`, with the timers grammar
    /// when `grammar`, and `wyoming` added to the test config's `[wyoming]` section.
    pub fn start(uri: Option<&str>, grammar: bool, wyoming: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, config_text(wyoming)).unwrap();
        let model = model_dir("tiny.en");
        let mut command = Command::new(env!("CARGO_BIN_EXE_voxd"));
        command
            .arg("--config")
            .arg(&config)
            .args([
                "wyoming",
                "--uri",
                uri.unwrap_or("tcp://127.0.0.1:0"),
                "-t",
                "1",
            ])
            .arg("--model")
            .arg(&model);
        if grammar {
            command.arg("--grammar").arg(timers_grammar());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("VOXD_LOG", "info")
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = super::line_reader(child.stderr.take().unwrap());
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines {
                kept.lock().unwrap().push(line);
            }
        });
        let stdout = super::line_reader(child.stdout.take().unwrap());
        let line = stdout.recv_timeout(PATIENCE).unwrap_or_else(|e| {
            panic!("no `listening` line ({e}); log: {:?}", log.lock().unwrap())
        });
        let uri = line
            .strip_prefix("voxd wyoming: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server {
            child,
            uri,
            log,
            dir,
        }
    }

    pub fn connect(&self) -> TcpStream {
        let address = self.uri.strip_prefix("tcp://").expect("a TCP server");
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    /// Runs the reference client; its events, one JSON object each.
    pub fn client(&self, args: &[&str]) -> Vec<Value> {
        reference_client(&self.uri, args, &self.log)
    }

    /// A fresh client still gets its `info`: whatever an earlier client did, the server
    /// goes on serving.
    pub fn still_serves(&self) {
        let mut stream = self.connect();
        write_event(&mut stream, &Event::new("describe", json!({}))).unwrap();
        let event = read_event(&mut BufReader::new(stream)).unwrap().unwrap();
        assert_eq!(event.kind, "info");
    }

    /// Waits until a line of the server's log contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no log line with {needle:?}: {:?}",
            self.log.lock().unwrap()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
