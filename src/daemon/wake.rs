//! The wake phrase's gate: with `[commands] wake` set, a command the recogniser accepted is
//! acted on only when the wake phrase came before it, in the same utterance or alone in the
//! utterance just before, or when it starts within `follow_up_ms` of the end of the last
//! command acted on (a conversation). Anything else is refused as `no_wake`.
//!
//! The recogniser finds the wake phrase as part of the sentence (the grammar lets every
//! sentence begin with it, and holds it alone as a sentence of its own); this gate only
//! keeps the state across utterances. Times are on the audio clock, so a file read as fast
//! as possible is judged as it would be at real time.

use crate::command::{Recognition, Rejection};

/// After the wake phrase alone, the next utterance is heard as a command only if it starts
/// within this long of the phrase's end: a person who says "hey computer" and waits for
/// the sound says the command within a few seconds, while a television's sentence minutes
/// later is no answer to it.
pub const WAKE_LISTEN_MS: u64 = 8000;

/// What the gate found in an utterance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// The wake phrase was said (`alone`: with no command after it in the utterance).
    Wake { alone: bool },
    /// Nothing to report.
    Nothing,
}

#[derive(Debug)]
pub struct WakeGate {
    /// None: no wake phrase, every command passes.
    follow_up_ms: Option<u64>,
    /// The end of the wake phrase said alone, while the next utterance has not come yet.
    waiting_since: Option<u64>,
    /// The end of the last command acted on.
    last_command_end: Option<u64>,
}

impl WakeGate {
    /// A gate for a grammar with a wake phrase (`wake`), or one that lets everything pass.
    pub fn new(wake: bool, follow_up_ms: u64) -> WakeGate {
        WakeGate {
            follow_up_ms: wake.then_some(follow_up_ms),
            waiting_since: None,
            last_command_end: None,
        }
    }

    /// New settings (a reload); a conversation going on goes on.
    pub fn configure(&mut self, wake: bool, follow_up_ms: u64) {
        self.follow_up_ms = wake.then_some(follow_up_ms);
    }

    /// Judges the recognition of the utterance `start_ms..end_ms`: a command the gate does
    /// not let through is refused in place (no intent, reason `no_wake`).
    pub fn judge(&mut self, result: &mut Recognition, start_ms: u64, end_ms: u64) -> Heard {
        let Some(follow_up_ms) = self.follow_up_ms else {
            return Heard::Nothing;
        };
        // Silence and noise between the wake phrase and the command do not count as the
        // utterance in between.
        let speech = !matches!(
            result.reason,
            Some(Rejection::Silence | Rejection::NoSpeech)
        );
        if !speech {
            return Heard::Nothing;
        }
        let waiting_since = self.waiting_since.take();
        let accepted = result.reason.is_none();
        let Some(_) = result.intent.as_ref().filter(|_| accepted) else {
            if accepted && result.wake {
                self.waiting_since = Some(end_ms);
                return Heard::Wake { alone: true };
            }
            return Heard::Nothing;
        };
        let invited = waiting_since.is_some_and(|at| start_ms.saturating_sub(at) <= WAKE_LISTEN_MS);
        let follows = self
            .last_command_end
            .is_some_and(|at| start_ms.saturating_sub(at) <= follow_up_ms);
        if result.wake || invited || follows {
            self.last_command_end = Some(end_ms);
            return if result.wake {
                Heard::Wake { alone: false }
            } else {
                Heard::Nothing
            };
        }
        result.intent = None;
        result.slots.clear();
        result.reason = Some(Rejection::NoWake);
        Heard::Nothing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(intent: Option<&str>, wake: bool, reason: Option<Rejection>) -> Recognition {
        Recognition {
            intent: intent.map(str::to_string),
            slots: Default::default(),
            text: String::new(),
            score: -0.1,
            gap: 0.0,
            free_text: String::new(),
            mismatch: 0.0,
            ratio: Some(0.0),
            by_letters: None,
            no_speech_prob: 0.0,
            reason,
            wake,
            tokens: Vec::new(),
            end_prob: 1.0,
            goes_on: false,
            heard: None,
            heard_language: None,
        }
    }

    fn command(wake: bool) -> Recognition {
        heard(Some("LightOn"), wake, None)
    }

    /// Runs `result` through the gate; the intent left (None: refused) and what was heard.
    fn judge(gate: &mut WakeGate, mut result: Recognition, at: u64) -> (Option<String>, Heard) {
        let heard = gate.judge(&mut result, at, at + 1000);
        if result.intent.is_none() && heard == Heard::Nothing {
            assert!(result.reason.is_some(), "a refusal says why");
        }
        (result.intent, heard)
    }

    #[test]
    fn without_a_wake_phrase_everything_passes() {
        let mut gate = WakeGate::new(false, 5000);
        assert_eq!(
            judge(&mut gate, command(false), 0),
            (Some("LightOn".into()), Heard::Nothing)
        );
    }

    #[test]
    fn a_command_needs_the_wake_phrase_or_a_conversation() {
        let mut gate = WakeGate::new(true, 5000);
        let mut refused = command(false);
        assert_eq!(gate.judge(&mut refused, 0, 1000), Heard::Nothing);
        assert_eq!(refused.reason, Some(Rejection::NoWake));
        assert_eq!(refused.intent, None);
        // With the phrase: taken, and the window opens at its end (3000).
        assert_eq!(
            judge(&mut gate, command(true), 2000),
            (Some("LightOn".into()), Heard::Wake { alone: false })
        );
        // 4000 ms after it: inside the window, which moves to this command's end (8000).
        assert_eq!(
            judge(&mut gate, command(false), 7000).0.as_deref(),
            Some("LightOn")
        );
        // Speech that is no command does not close the window...
        let chatter = heard(None, false, Some(Rejection::WordNotInGrammar));
        assert_eq!(judge(&mut gate, chatter, 9000), (None, Heard::Nothing));
        assert_eq!(
            judge(&mut gate, command(false), 13_000).0.as_deref(),
            Some("LightOn")
        );
        // ...but time does: 14 000 is the end, 19 001 is past it.
        assert_eq!(judge(&mut gate, command(false), 19_001).0, None);
    }

    #[test]
    fn the_wake_phrase_alone_lets_the_next_utterance_in() {
        let mut gate = WakeGate::new(true, 0);
        let alone = heard(None, true, None);
        assert_eq!(
            judge(&mut gate, alone.clone(), 0).1,
            Heard::Wake { alone: true }
        );
        // Silence between does not count as an utterance.
        let silence = heard(None, false, Some(Rejection::Silence));
        assert_eq!(judge(&mut gate, silence, 2000).0, None);
        assert_eq!(
            judge(&mut gate, command(false), 4000).0.as_deref(),
            Some("LightOn")
        );
        // Only the next one: follow_up_ms is 0 here.
        assert_eq!(judge(&mut gate, command(false), 7000).0, None);
        // Speech between the phrase and the command uses up the invitation.
        assert_eq!(
            judge(&mut gate, alone.clone(), 10_000).1,
            Heard::Wake { alone: true }
        );
        let chatter = heard(None, false, Some(Rejection::NotInGrammar));
        judge(&mut gate, chatter, 12_000);
        assert_eq!(judge(&mut gate, command(false), 14_000).0, None);
        // And the invitation lapses.
        judge(&mut gate, alone, 20_000);
        assert_eq!(
            judge(&mut gate, command(false), 21_000 + WAKE_LISTEN_MS + 1).0,
            None
        );
    }

    #[test]
    fn a_wake_phrase_heard_unclearly_is_no_wake() {
        let mut gate = WakeGate::new(true, 5000);
        let unclear = heard(None, true, Some(Rejection::WordNotInGrammar));
        assert_eq!(judge(&mut gate, unclear, 0), (None, Heard::Nothing));
        assert_eq!(judge(&mut gate, command(false), 2000).0, None);
        let refused_command = heard(None, true, Some(Rejection::MoreSpeech));
        assert_eq!(
            judge(&mut gate, refused_command, 4000),
            (None, Heard::Nothing)
        );
        assert_eq!(judge(&mut gate, command(false), 6000).0, None);
    }
}
