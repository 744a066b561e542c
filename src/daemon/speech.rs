//! The speech command (`[llm] speak`): a program that speaks a reply. The text goes to its
//! stdin, never to its command line (DESIGN.md decision 5): whatever the model wrote, quotes,
//! `;`, `$()` and newlines included, is data for the program and never a word of its argv.
//!
//! It runs as an action's command does (`actions::process`): from its argv, never through a
//! shell, in a process group of its own that is killed past the timeout, its stdout and
//! stderr in the log.

use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::actions::output::{self, Stream};
use crate::actions::process::{kill_group, start_error, wait_until};

/// How to speak a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeechCommand {
    /// The program and its arguments; never empty (`LlmConfig` checks it at load).
    pub argv: Vec<String>,
    /// Where it runs, as actions do (`[actions] working_dir`); None: the daemon's folder.
    pub working_dir: Option<PathBuf>,
    /// How long one reply may take to speak.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("the speech command is empty")]
    Empty,
    #[error("{0}")]
    Start(String),
    #[error("cannot start a thread to write the reply to `{program}`: {source}")]
    Thread {
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("`{program}` was still speaking after {timeout_ms} ms: its process group was killed")]
    TimedOut { program: String, timeout_ms: u128 },
    #[error("`{program}` failed: {status}")]
    Failed { program: String, status: ExitStatus },
    #[error("waiting for `{program}`: {source}")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
}

impl SpeechCommand {
    /// Speaks `text`: starts the program, writes `text` to its stdin and closes it, and waits
    /// for the program to end, at most the timeout. `reply` numbers the log lines. Returns
    /// how long the speaking took.
    pub fn speak(&self, text: &str, reply: u64) -> Result<Duration, SpeechError> {
        let (program, args) = self.argv.split_first().ok_or(SpeechError::Empty)?;
        let started = Instant::now();
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so that a timeout also ends what the program started
            // (a speech synthesiser that hands the audio to a player, say).
            .process_group(0);
        if let Some(dir) = &self.working_dir {
            command.current_dir(dir);
        }
        let mut child = command.spawn().map_err(|error| {
            SpeechError::Start(start_error(program, self.working_dir.as_deref(), &error))
        })?;
        let name = format!("the speech of reply {reply} (`{program}`)");
        if let Some(stdout) = child.stdout.take() {
            output::log_in_background(stdout, Stream::Stdout, name.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            output::log_in_background(stderr, Stream::Stderr, name.clone());
        }
        // Written from a thread of its own: a program that does not read its stdin would
        // otherwise hold this thread on a full pipe past the timeout. The write ends, with
        // EPIPE, once the program is gone; dropping the pipe closes it, which is the end of
        // the text for the program. Not joined, as the output readers are not.
        if let Some(mut stdin) = child.stdin.take() {
            let text = text.to_owned();
            let writer = std::thread::Builder::new()
                .name("voxd-speech-stdin".into())
                .spawn(move || {
                    if let Err(error) = stdin.write_all(text.as_bytes()) {
                        tracing::warn!("writing the reply to the stdin of {name}: {error}");
                    }
                });
            if let Err(source) = writer {
                kill_group(&mut child);
                return Err(SpeechError::Thread {
                    program: program.clone(),
                    source,
                });
            }
        }
        match wait_until(&mut child, started + self.timeout) {
            Ok(Some(status)) if status.success() => Ok(started.elapsed()),
            Ok(Some(status)) => Err(SpeechError::Failed {
                program: program.clone(),
                status,
            }),
            Ok(None) => {
                kill_group(&mut child);
                Err(SpeechError::TimedOut {
                    program: program.clone(),
                    timeout_ms: self.timeout.as_millis(),
                })
            }
            Err(source) => {
                kill_group(&mut child);
                Err(SpeechError::Wait {
                    program: program.clone(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use super::*;

    /// A program that records its stdin and its argv (NUL-separated) in `dir`.
    fn recorder(dir: &Path) -> PathBuf {
        let script = dir.join("record.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\n\
             dir=$(dirname \"$0\")\n\
             cat > \"$dir/stdin\"\n\
             printf '%s\\0' \"$0\" \"$@\" > \"$dir/argv\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn command(argv: &[&str], timeout: Duration) -> SpeechCommand {
        SpeechCommand {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            working_dir: None,
            timeout,
        }
    }

    #[test]
    fn the_text_goes_to_stdin_exactly_and_never_to_argv() {
        let dir = tempfile::tempdir().unwrap();
        let script = recorder(dir.path());
        let text = "It's \"42\"; rm -rf $HOME $(touch pwned) `touch pwned2` & echo hi\n\
                    second line | cat > /tmp/x\n\n'quoted' \\ end";
        let speech = command(
            &[script.to_str().unwrap(), "--voice", "en"],
            Duration::from_secs(10),
        );
        speech.speak(text, 1).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("stdin")).unwrap(),
            text.as_bytes()
        );
        let argv = std::fs::read(dir.path().join("argv")).unwrap();
        let argv: Vec<&[u8]> = argv.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
        assert_eq!(
            argv,
            [script.to_str().unwrap().as_bytes(), b"--voice", b"en"],
            "the program's argv is the configured one, nothing of the text"
        );
        // Nothing in the text was run by a shell.
        for file in ["pwned", "pwned2"] {
            assert!(!dir.path().join(file).exists());
            assert!(!Path::new(file).exists());
        }
    }

    #[test]
    fn a_long_text_is_written_whole() {
        // Larger than a pipe's buffer: the writer thread keeps feeding the program.
        let dir = tempfile::tempdir().unwrap();
        let script = recorder(dir.path());
        let text = "word ".repeat(100_000);
        command(&[script.to_str().unwrap()], Duration::from_secs(10))
            .speak(&text, 2)
            .unwrap();
        let written = std::fs::read_to_string(dir.path().join("stdin")).unwrap();
        assert_eq!(written.len(), text.len());
    }

    #[test]
    fn a_failing_or_missing_program_is_an_error_naming_it() {
        let err = command(&["false"], Duration::from_secs(10))
            .speak("hello", 3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`false` failed"), "{err}");
        let err = command(&["surely-no-such-speaker-voxd"], Duration::from_secs(10))
            .speak("hello", 4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("surely-no-such-speaker-voxd") && err.contains("PATH"),
            "{err}"
        );
    }

    #[test]
    fn past_the_timeout_the_program_and_its_children_are_killed() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("slow.sh");
        // A child that would outlive the program unless its group is killed, and a stdin
        // that is never read.
        std::fs::write(
            &script,
            "#!/bin/sh\n(sleep 1; touch \"$(dirname \"$0\")/survived\") &\nsleep 30\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = Instant::now();
        let err = command(&[script.to_str().unwrap()], Duration::from_millis(300))
            .speak(&"never read ".repeat(20_000), 5)
            .unwrap_err();
        assert!(
            matches!(
                err,
                SpeechError::TimedOut {
                    timeout_ms: 300,
                    ..
                }
            ),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!dir.path().join("survived").exists());
    }
}
