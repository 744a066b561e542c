//! One command as a child process: started from its argv (never a shell), in a process
//! group of its own, waited for up to its timeout, its group killed past it. The waiting
//! and killing serve the daemon's speech command too.

use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::env::PREFIX;
use super::event::{ActionEventKind, EventSink};
use super::output::{self, Stream};

/// A command ready to run: program, arguments and variables with the slots filled in.
#[derive(Debug)]
pub(super) struct Job {
    pub id: u64,
    pub intent: String,
    pub program: String,
    pub args: Vec<String>,
    pub variables: Vec<(String, String)>,
    pub timeout: Duration,
}

/// The longest pause between two looks at a running command: the precision of timeouts
/// and durations once a command has run for a while. Short commands are seen sooner.
const MAX_POLL: Duration = Duration::from_millis(20);

/// Runs `job` to its end and reports every step to `events`.
pub(super) fn run(job: &Job, working_dir: Option<&Path>, events: &EventSink) {
    let started = Instant::now();
    let mut child = match spawn(job, working_dir) {
        Ok(child) => child,
        Err(error) => {
            let error = start_error(&job.program, working_dir, &error);
            events.emit(
                job.id,
                &job.intent,
                ActionEventKind::FailedToStart { error },
            );
            return;
        }
    };
    events.emit(
        job.id,
        &job.intent,
        ActionEventKind::Started { pid: child.id() },
    );
    let command = format!("action {} ({})", job.id, job.intent);
    let mut logging = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        logging.push(output::log_in_background(
            stdout,
            Stream::Stdout,
            command.clone(),
        ));
    }
    if let Some(stderr) = child.stderr.take() {
        logging.push(output::log_in_background(stderr, Stream::Stderr, command));
    }
    let kind = match wait_until(&mut child, started + job.timeout) {
        Ok(Some(status)) => finished(status, started.elapsed()),
        Ok(None) => {
            kill_group(&mut child);
            ActionEventKind::TimedOut {
                timeout_ms: millis(job.timeout),
                duration_ms: millis(started.elapsed()),
            }
        }
        Err(error) => {
            kill_group(&mut child);
            ActionEventKind::WaitFailed {
                error: error.to_string(),
            }
        }
    };
    let deadline = Instant::now() + OUTPUT_GRACE;
    for stream in &logging {
        if !stream.wait(deadline) {
            tracing::debug!(
                action = job.id,
                "output still open after the command ended (a process it started holds it)"
            );
        }
    }
    events.emit(job.id, &job.intent, kind);
}

/// How long an ended command's output may take to reach the log before its end is
/// reported: reading what is left in a pipe takes microseconds; only a process the command
/// left running with the pipe open makes this wait in full.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

fn spawn(job: &Job, working_dir: Option<&Path>) -> io::Result<Child> {
    let mut command = Command::new(&job.program);
    command
        .args(&job.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so that a timeout also ends what the command started.
        .process_group(0);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(PREFIX) {
            command.env_remove(name);
        }
    }
    command.envs(job.variables.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = working_dir {
        command.current_dir(dir);
    }
    command.spawn()
}

/// A start failure as a user can act on it.
pub(crate) fn start_error(program: &str, working_dir: Option<&Path>, error: &io::Error) -> String {
    let hint = match error.kind() {
        io::ErrorKind::NotFound => match working_dir {
            Some(dir) if !dir.is_dir() => {
                format!(" (the working directory {} does not exist)", dir.display())
            }
            _ => " (give an absolute path, or a program on the daemon's PATH)".to_string(),
        },
        io::ErrorKind::PermissionDenied => " (is it executable?)".to_string(),
        _ => String::new(),
    };
    format!("cannot run `{program}`: {error}{hint}")
}

/// The exit status, or None when the deadline passed first.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// Kills the command's whole process group, then reaps the command. The command has not
/// been reaped before this, so its pid (the group id) cannot have been reused. The command
/// must have been started with `process_group(0)`.
pub(crate) fn kill_group(child: &mut Child) {
    let Ok(group) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill has no memory effects; a negative pid names the process group.
    if unsafe { libc::kill(-group, libc::SIGKILL) } != 0 {
        tracing::warn!(
            pid = group,
            "killing the command's process group: {}",
            io::Error::last_os_error()
        );
        let _ = child.kill();
    }
    if let Err(error) = child.wait() {
        tracing::warn!(pid = group, "reaping the killed command: {error}");
    }
}

fn finished(status: ExitStatus, duration: Duration) -> ActionEventKind {
    ActionEventKind::Finished {
        exit_code: status.code(),
        signal: status.signal(),
        duration_ms: millis(duration),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
