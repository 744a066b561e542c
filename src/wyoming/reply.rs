//! The reply model's lane (`[llm] enabled`): a `transcript` that no intent matches, or the
//! question of `[llm] intent`, is answered by the local language model and sent back as
//! `handled` {text}. The answer is text for the client and nothing else: it is never run.
//!
//! The model is the daemon's (`daemon::reply::llm_answerer`), read on this lane's thread
//! as soon as the server starts, so `describe` never waits for it. One question is answered
//! at a time; [`QUESTION_QUEUE`] more may wait, and a further one is refused at once
//! (`busy`), as the Whisper model's queue refuses. The lane is its own: a reply takes
//! seconds, and transcripts must not wait behind it.
//!
//! Every question is answered on its own, without the conversation the daemon remembers
//! (`[llm] memory_turns`): a Wyoming `transcript` names no conversation, and the clients
//! sharing the server are different rooms and people.

use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::model::Refusal;
use crate::config::{LlmConfig, LlmLoad};
use crate::daemon::reply::{
    asking, llm_answerer, Answerer, ReplyOutcome, SharedAnswerer, QUESTION_QUEUE,
};

/// The reply model's settings for the server.
#[derive(Clone)]
pub struct ReplySettings {
    /// `[llm]`.
    pub llm: LlmConfig,
    /// Compute threads (`[llm] threads`, else `[model] threads`).
    pub threads: usize,
    /// The daemon's reply model, beside `voxd run` (`[wyoming] serve`): asked instead of
    /// a model of the server's own.
    pub shared: Option<SharedAnswerer>,
}

impl ReplySettings {
    /// Reads the model as the server starts (whatever `[llm] load` says: the server is a
    /// long-running service, and its first question should not wait for the file), with no
    /// memory across questions; or asks the daemon's, which remembers its conversation
    /// (`[llm] memory_turns`) across both.
    pub fn load(self) -> Result<Answerer, String> {
        if let Some(shared) = &self.shared {
            return Ok(asking(shared));
        }
        let llm = LlmConfig {
            load: LlmLoad::Start,
            memory_turns: 0,
            ..self.llm
        };
        llm_answerer(llm, self.threads).map_err(|e| e.to_string())
    }
}

struct Question {
    text: String,
    answer: Sender<Result<ReplyOutcome, String>>,
}

/// The clients' handle on the reply thread.
pub struct Replies {
    /// The intent whose `question` slot is asked (`[llm] intent`).
    pub intent: String,
    questions: Sender<Question>,
}

impl Replies {
    /// Starts the thread, which runs `load` first and then answers the questions in turn
    /// (those that came while it loaded too). A model that does not load is logged, and
    /// every question is then answered with that error.
    pub fn start(
        intent: String,
        load: impl FnOnce() -> Result<Answerer, String> + Send + 'static,
    ) -> std::io::Result<(Replies, JoinHandle<()>)> {
        let (questions, waiting) = crossbeam_channel::bounded::<Question>(QUESTION_QUEUE);
        let handle = thread::Builder::new()
            .name("voxd-wyoming-replies".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let mut answerer = load().map_err(|e| format!("the reply model did not load: {e}"));
                match &answerer {
                    Ok(_) => tracing::info!(
                        ms = started.elapsed().as_millis() as u64,
                        "wyoming: reply model ready"
                    ),
                    Err(e) => tracing::error!("wyoming: {e}"),
                }
                // A client that hung up meanwhile no longer wants the answer: sends may fail.
                for question in waiting {
                    let started = std::time::Instant::now();
                    let result = match &mut answerer {
                        Ok(answer) => answer(&question.text),
                        Err(e) => Err(e.clone()),
                    };
                    if let Ok(outcome) = &result {
                        tracing::info!(
                            tokens = outcome.tokens,
                            ms = started.elapsed().as_millis() as u64,
                            "wyoming: question answered"
                        );
                    }
                    let _ = question.answer.send(result);
                }
            })?;
        Ok((Replies { intent, questions }, handle))
    }

    /// Queues `text`; the answer arrives on the receiver.
    pub fn ask(&self, text: &str) -> Result<Receiver<Result<ReplyOutcome, String>>, Refusal> {
        let (answer, answered) = crossbeam_channel::bounded(1);
        let question = Question {
            text: text.to_string(),
            answer,
        };
        match self.questions.try_send(question) {
            Ok(()) => Ok(answered),
            Err(TrySendError::Full(_)) => Err(Refusal::Busy(QUESTION_QUEUE)),
            Err(TrySendError::Disconnected(_)) => Err(Refusal::Stopped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::reply::StopReason;

    fn shout(question: &str) -> Result<ReplyOutcome, String> {
        Ok(ReplyOutcome {
            text: question.to_uppercase(),
            tokens: 1,
            stopped: StopReason::Eos,
        })
    }

    /// While the model loads, the queue fills and the next question is refused at once;
    /// the waiting ones are answered once it has loaded.
    #[test]
    fn a_full_lane_refuses_at_once_and_the_waiting_questions_are_answered() {
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        let load = move || {
            let _ = gate.recv();
            Ok(Box::new(shout) as Answerer)
        };
        let (replies, thread) = Replies::start("Ask".into(), load).unwrap();
        let waiting: Vec<_> = ["one", "two"]
            .iter()
            .map(|q| replies.ask(q).unwrap())
            .collect();
        assert!(matches!(
            replies.ask("three"),
            Err(Refusal::Busy(QUESTION_QUEUE))
        ));
        drop(release);
        let answers: Vec<String> = waiting
            .into_iter()
            .map(|a| a.recv().unwrap().unwrap().text)
            .collect();
        assert_eq!(answers, ["ONE", "TWO"]);
        drop(replies);
        thread.join().unwrap();
    }

    #[test]
    fn a_model_that_does_not_load_answers_every_question_with_why() {
        let load = || Err("no such file: models/none.gguf".to_string());
        let (replies, thread) = Replies::start("Ask".into(), load).unwrap();
        for question in ["one", "two"] {
            let error = replies.ask(question).unwrap().recv().unwrap().unwrap_err();
            assert_eq!(
                error,
                "the reply model did not load: no such file: models/none.gguf"
            );
        }
        drop(replies);
        thread.join().unwrap();
    }
}
