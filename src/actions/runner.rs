//! The runner: decides at once whether a request runs (cooldown, free places), then hands
//! the command to a pool of worker threads and the notification to the notification thread.
//! The caller only ever takes a short lock and sends on non-blocking channels.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::action_set::{ActionSet, Command, IntentAction};
use super::config::ActionsConfig;
use super::env::action_variables;
use super::error::ActionError;
use super::event::{ActionEvent, ActionEventKind, EventSink};
use super::notify::Notifier;
use super::process::{self, Job};
use super::ActionRequest;

/// Runs the actions of matched intents without ever making the caller wait for them.
///
/// `max_concurrent` worker threads each run one command at a time; up to `queue` more
/// commands wait for a free worker, and a request that finds no place is refused. Places
/// are counted, not left to the channel's capacity: a worker between two commands is not
/// waiting on the channel, and an idle runner must never refuse. The
/// workers and the notification thread end when the runner is dropped, after the commands
/// already accepted (each bounded by its timeout).
#[derive(Debug)]
pub struct ActionRunner {
    actions: ActionSet,
    commands: Sender<Job>,
    /// Commands accepted and not yet finished: running or waiting.
    in_flight: Arc<AtomicUsize>,
    notifier: Option<Notifier>,
    /// When each intent was last accepted.
    last_accepted: Mutex<HashMap<String, Instant>>,
    events: EventSink,
    next_id: AtomicU64,
    max_concurrent: usize,
    queue: usize,
}

impl ActionRunner {
    /// Starts the worker threads (and the notification thread when notifications are on).
    /// Every outcome of every request arrives on the returned receiver.
    pub fn start(
        actions: ActionSet,
        config: &ActionsConfig,
    ) -> Result<(ActionRunner, Receiver<ActionEvent>), ActionError> {
        config.validate()?;
        config.check_working_dir()?;
        let (events, receiver) = EventSink::new();
        let places = config.max_concurrent + config.queue;
        let (commands, jobs) = crossbeam_channel::bounded(places);
        let in_flight = Arc::new(AtomicUsize::new(0));
        for number in 0..config.max_concurrent {
            let worker = Worker {
                jobs: jobs.clone(),
                in_flight: Arc::clone(&in_flight),
                working_dir: config.working_dir.clone(),
                events: events.clone(),
            };
            worker.start(number)?;
        }
        let notifier = if config.notifications {
            Some(Notifier::start(events.clone()).map_err(ActionError::Thread)?)
        } else {
            None
        };
        let runner = ActionRunner {
            actions,
            commands,
            in_flight,
            notifier,
            last_accepted: Mutex::new(HashMap::new()),
            events,
            next_id: AtomicU64::new(1),
            max_concurrent: config.max_concurrent,
            queue: config.queue,
        };
        Ok((runner, receiver))
    }

    /// Acts on a reloaded grammar's intents from now on. Commands already accepted run on
    /// as they were; the limits, working folder and notification switch stay as started.
    pub fn replace_actions(&mut self, actions: ActionSet) {
        self.actions = actions;
    }

    /// Starts the action of `request`'s intent, or reports why not; returns at once with the
    /// id its events carry, or None when the intent has no action.
    pub fn submit(&self, request: &ActionRequest) -> Option<u64> {
        let Some(action) = self.actions.get(&request.intent) else {
            tracing::debug!(intent = request.intent, "no action for this intent");
            return None;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if self.admit(id, request, action) {
            self.notify(id, request, action);
        }
        Some(id)
    }

    /// Checks the cooldown and queues the command; true when the request was accepted.
    /// The lock covers the check and the queueing, so two requests racing for the last
    /// place or within one cooldown cannot both get through.
    fn admit(&self, id: u64, request: &ActionRequest, action: &IntentAction) -> bool {
        let mut last_accepted = self
            .last_accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if let Some(&last) = last_accepted.get(&request.intent) {
            let since_last = now.duration_since(last);
            if since_last < action.cooldown {
                drop(last_accepted);
                self.report(id, request, cooldown_skip(action, since_last));
                return false;
            }
        }
        if let Some(command) = &action.command {
            if let Err(refusal) = self.queue_command(id, request, action, command) {
                drop(last_accepted);
                self.report(id, request, refusal);
                return false;
            }
        }
        last_accepted.insert(request.intent.clone(), now);
        true
    }

    fn queue_command(
        &self,
        id: u64,
        request: &ActionRequest,
        action: &IntentAction,
        command: &Command,
    ) -> Result<(), ActionEventKind> {
        let job = job(id, request, action, command)
            .map_err(|error| ActionEventKind::FailedToStart { error })?;
        let busy = ActionEventKind::RefusedBusy {
            max_concurrent: self.max_concurrent,
            queue: self.queue,
        };
        // Only `admit` adds, under its lock, so the count cannot pass the places between
        // this check and the increment; workers only subtract, after their command.
        if self.in_flight.load(Ordering::Acquire) >= self.max_concurrent + self.queue {
            return Err(busy);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.commands.try_send(job).map_err(|error| {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            match error {
                TrySendError::Full(_) => busy,
                TrySendError::Disconnected(_) => ActionEventKind::FailedToStart {
                    error: "the action threads have stopped".into(),
                },
            }
        })
    }

    fn notify(&self, id: u64, request: &ActionRequest, action: &IntentAction) {
        let (Some(notifier), Some(template)) = (&self.notifier, &action.notify) else {
            return;
        };
        match template.render(&request.slots) {
            Ok(text) => notifier.send(id, &request.intent, text),
            Err(missing) => self.report(
                id,
                request,
                ActionEventKind::NotifyFailed {
                    error: missing.to_string(),
                },
            ),
        }
    }

    fn report(&self, id: u64, request: &ActionRequest, kind: ActionEventKind) {
        self.events.emit(id, &request.intent, kind);
    }
}

fn cooldown_skip(action: &IntentAction, since_last: std::time::Duration) -> ActionEventKind {
    ActionEventKind::SkippedCooldown {
        cooldown_ms: u64::try_from(action.cooldown.as_millis()).unwrap_or(u64::MAX),
        since_last_ms: u64::try_from(since_last.as_millis()).unwrap_or(u64::MAX),
    }
}

/// The command with the request's slots filled in, or why it cannot run.
fn job(
    id: u64,
    request: &ActionRequest,
    action: &IntentAction,
    command: &Command,
) -> Result<Job, String> {
    let args = command
        .args
        .iter()
        .enumerate()
        .map(|(i, arg)| {
            let options_ended = command.end_of_options.is_some_and(|end| end < i);
            arg.render_argument(&request.slots, options_ended)
                .map_err(|e| format!("run argument {}: {e}", i + 1))
        })
        .collect::<Result<_, _>>()?;
    Ok(Job {
        id,
        intent: request.intent.clone(),
        program: command.program.clone(),
        args,
        variables: action_variables(&request.intent, &request.slots, request.text.as_deref()),
        timeout: action.timeout,
    })
}

/// One of the threads that run commands.
struct Worker {
    jobs: Receiver<Job>,
    in_flight: Arc<AtomicUsize>,
    working_dir: Option<PathBuf>,
    events: EventSink,
}

impl Worker {
    fn start(self, number: usize) -> Result<(), ActionError> {
        std::thread::Builder::new()
            .name(format!("voxd-action-{number}"))
            .spawn(move || {
                for job in &self.jobs {
                    process::run(&job, self.working_dir.as_deref(), &self.events);
                    self.in_flight.fetch_sub(1, Ordering::AcqRel);
                }
            })
            .map(drop)
            .map_err(ActionError::Thread)
    }
}
