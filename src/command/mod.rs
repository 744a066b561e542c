//! Voice commands: an utterance becomes a sentence of the grammar with its intent and slots,
//! or is refused.
//!
//! Stages, one file each:
//! - `vocab.rs`: the token texts as a character trie;
//! - `constrained.rs`: the tokens a grammar state allows (trie and grammar walked together,
//!   remembered per state) and beam search inside them;
//! - `reject.rs`: whether the utterance really is the sentence found.
//!
//! [`Recognizer::recognize`] encodes the utterance (the audio context fitted to it), decodes
//! it inside the grammar with beam search, takes one of the finished sentences ([`pick`]:
//! the likeliest the model heard, if about as likely as the likeliest; a search again
//! [`WIDER`] when none was heard), reads its intent and slots with [`Grammar::match_text`],
//! and lets `reject` judge it against what the model writes without the grammar: their
//! words, and their likelihoods.

mod config;
pub mod constrained;
pub mod reject;
pub mod vocab;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::audio::SAMPLE_RATE;
use crate::grammar::{Grammar, Match, SlotValue};
use crate::util::rng::Rng;
use crate::whisper::mel::CHUNK_FRAMES;
use crate::whisper::model::ModelError;
use crate::whisper::tokenizer::Tokenizer;
use crate::whisper::transcribe::{AudioCtx, TranscribeOptions, Transcriber, SILENCE_PEAK};
pub use config::CommandsConfig;
use constrained::{
    beam_search, capitalised, free_continuation, Constrained, FreeText, SearchOptions,
    TokenConstraint,
};
use reject::{by_letters, heard_otherwise, judge, word_gaps, word_mismatch, Evidence, Push};
pub use reject::{Rejection, Thresholds};
use vocab::{token_trie, word_tokens};

/// The longest utterance taken as a command: one 30 s decoding window.
const MAX_SECONDS: usize = 30;

#[derive(Debug, thiserror::Error)]
pub enum RecognizeError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the model has no token for the language `{0}`")]
    Language(String),
}

/// Settings of recognition.
#[derive(Clone, Debug, PartialEq)]
pub struct RecognizerOptions {
    /// Beam width of the constrained search.
    pub beam_size: usize,
    /// The most tokens a sentence may have; Whisper's own limit for one window's text.
    pub max_tokens: usize,
    /// Spoken language (multilingual models; English-only models ignore it).
    pub language: String,
    /// The encoder's audio context; fitted to the utterance by default.
    pub audio_ctx: AudioCtx,
    pub thresholds: Thresholds,
    /// Also transcribe refused speech freely ([`Recognition::heard`]), for replies to
    /// requests that are no command.
    pub transcribe_refused: bool,
}

impl Default for RecognizerOptions {
    fn default() -> Self {
        RecognizerOptions {
            beam_size: 5,
            max_tokens: 224,
            language: "en".to_string(),
            audio_ctx: AudioCtx::Fit,
            thresholds: Thresholds::default(),
            transcribe_refused: false,
        }
    }
}

/// The outcome for one utterance.
#[derive(Clone, Debug, Serialize)]
pub struct Recognition {
    /// The intent, None when refused.
    pub intent: Option<String>,
    /// Fixed and captured slots of an accepted sentence.
    pub slots: BTreeMap<String, SlotValue>,
    /// The best sentence of the grammar as decoded (also when refused; empty without one).
    pub text: String,
    /// Mean log-probability per token of that sentence (end-of-text included).
    pub score: f32,
    /// Free minus constrained log-probability, in nats (see `reject`).
    pub gap: f32,
    /// What the model wrote without the grammar (greedy; empty without a sentence).
    pub free_text: String,
    /// The share of the sentence's letters that differ between `text` and `free_text` (0 to
    /// 1; see `reject::word_mismatch`).
    pub mismatch: f32,
    /// How much less likely the model finds the sentence than `free_text`: the log of their
    /// likelihood ratio, in nats (`reject::Evidence::ratio`); None where that is no
    /// evidence (no speech likely, or words heard after the sentence).
    pub ratio: Option<f32>,
    /// What comparing the letters of `text` and `free_text` alone decides (None: the words
    /// are heard as written); a refusal there is overruled when `ratio` is small enough.
    pub by_letters: Option<Rejection>,
    pub no_speech_prob: f32,
    /// Why it was refused.
    pub reason: Option<Rejection>,
    /// The sentence found began with the grammar's wake phrase, or was the wake phrase
    /// alone (then `intent` is None and, when the model heard it clearly, `reason` too).
    pub wake: bool,
    /// The sentence token by token, end-of-text last.
    pub tokens: Vec<TokenScore>,
    /// The model's probability that no more words follow the sentence
    /// ([`constrained::Constrained::end_prob`]); 0 without a sentence.
    pub end_prob: f32,
    /// The grammar has longer sentences that begin with this one ([`Grammar::goes_on`]): a
    /// speaker who paused after it may not have finished.
    pub goes_on: bool,
    /// What was said, transcribed without the grammar: only for speech refused as a command
    /// whose words the model heard clearly, when the options ask for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heard: Option<String>,
    /// The language `heard` was transcribed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heard_language: Option<String>,
}

/// One token of the decoded sentence and how it scored.
#[derive(Clone, Debug, Serialize)]
pub struct TokenScore {
    pub text: String,
    pub logprob: f32,
    /// The model's favourite token's log-probability minus this one's.
    pub regret: f32,
}

impl Recognition {
    /// A transcript someone else made (a speech-to-text server) read as a command: a
    /// sentence of `grammar` is accepted as it stands, since there is no audio here to
    /// judge it by; anything else is refused, as `no_speech` when the text is empty and
    /// `no_sentence` otherwise. `heard` keeps the transcript of a refusal when `keep_heard`
    /// (`transcribe_refused`: replies to requests that are no command).
    pub fn from_text(grammar: &Grammar, transcript: &str, keep_heard: bool) -> Recognition {
        let transcript = transcript.trim();
        if transcript.is_empty() {
            return Recognition::refused(Rejection::NoSpeech);
        }
        let found = grammar.match_text(transcript);
        let wake_alone = found.is_none() && grammar.is_wake_phrase(transcript);
        let reason = (found.is_none() && !wake_alone).then_some(Rejection::NoSentence);
        Recognition {
            intent: found.as_ref().map(|found| found.intent.clone()),
            slots: found.as_ref().map(Match::all_slots).unwrap_or_default(),
            // No score: the server does not say how sure it was.
            score: f32::NAN,
            gap: 0.0,
            mismatch: 0.0,
            ratio: None,
            by_letters: None,
            free_text: transcript.to_string(),
            reason,
            wake: wake_alone || found.is_some_and(|found| found.wake),
            heard: reason
                .filter(|_| keep_heard)
                .map(|_| transcript.to_string()),
            text: transcript.to_string(),
            ..Recognition::refused(Rejection::NoSentence)
        }
    }

    fn refused(reason: Rejection) -> Self {
        Recognition {
            intent: None,
            slots: BTreeMap::new(),
            text: String::new(),
            score: f32::NEG_INFINITY,
            gap: f32::INFINITY,
            free_text: String::new(),
            mismatch: 1.0,
            ratio: None,
            by_letters: None,
            no_speech_prob: 0.0,
            reason: Some(reason),
            wake: false,
            tokens: Vec::new(),
            end_prob: 0.0,
            goes_on: false,
            heard: None,
            heard_language: None,
        }
    }
}

/// A model and a grammar, ready to recognise commands.
pub struct Recognizer {
    transcriber: Transcriber,
    constraint: TokenConstraint,
    /// With a wake phrase: the grammar where the phrase alone is no sentence, searched
    /// again when the first search ends right after the phrase (see `recognize`).
    behind_wake: Option<TokenConstraint>,
    prompt: Vec<u32>,
    options: RecognizerOptions,
    /// `vocab::word_tokens` of the model.
    word_tokens: std::sync::Arc<[bool]>,
}

impl Recognizer {
    pub fn new(
        transcriber: Transcriber,
        grammar: Grammar,
        options: RecognizerOptions,
    ) -> Result<Self, RecognizeError> {
        let trie = token_trie(&transcriber.tokenizer, &transcriber.rules.suppress);
        let prompt = command_prompt(&transcriber, &options.language)?;
        let mut recognizer = Recognizer {
            behind_wake: behind_wake(&grammar, &trie),
            constraint: TokenConstraint::new(grammar, trie),
            word_tokens: word_tokens(&transcriber.tokenizer).into(),
            transcriber,
            prompt,
            options,
        };
        recognizer.warm_up();
        Ok(recognizer)
    }

    /// Computes the allowed tokens of the grammar states that sentences of every intent
    /// pass through, so that the first utterances do not pay for them. A state inside a
    /// wildcard allows most of the vocabulary and takes a walk of the whole token trie;
    /// paid during an utterance, those walks cost several hundred milliseconds.
    fn warm_up(&mut self) {
        const SAMPLES_PER_INTENT: usize = 12;
        let started = std::time::Instant::now();
        let mut rng = Rng::new(0);
        let grammar = self.constraint.grammar();
        let texts: Vec<String> = (0..grammar.intents().len())
            .flat_map(|intent| (0..SAMPLES_PER_INTENT).map(move |_| intent))
            .filter_map(|intent| grammar.sample(intent, &mut rng))
            .flat_map(|sample| [capitalised(&sample.text) + ".", sample.text])
            .collect();
        // Behind the wake phrase every sentence starts again from states of their own.
        let texts = match grammar.wake_phrase() {
            Some(wake) => {
                let wake = capitalised(wake);
                let behind: Vec<String> = texts.iter().map(|t| format!("{wake}, {t}")).collect();
                texts
                    .into_iter()
                    .chain(behind)
                    .chain([wake + "."])
                    .collect()
            }
            None => texts,
        };
        for text in texts {
            let tokens = self.transcriber.tokenizer.encode(&format!(" {text}"));
            self.constraint.walk(&tokens);
            if let Some(behind_wake) = &mut self.behind_wake {
                behind_wake.walk(&tokens);
            }
        }
        tracing::debug!(
            ms = started.elapsed().as_millis() as u64,
            "grammar constraint warmed up"
        );
    }

    pub fn grammar(&self) -> &Grammar {
        self.constraint.grammar()
    }

    /// Recognises the sentences of `grammar` from now on, with `options` (a reload). The
    /// language must be one the model knows, as at [`Recognizer::new`]; on an error the
    /// recogniser is left as it was.
    pub fn set_grammar(
        &mut self,
        grammar: Grammar,
        options: RecognizerOptions,
    ) -> Result<(), RecognizeError> {
        self.prompt = command_prompt(&self.transcriber, &options.language)?;
        self.options = options;
        let trie = token_trie(
            &self.transcriber.tokenizer,
            &self.transcriber.rules.suppress,
        );
        self.behind_wake = behind_wake(&grammar, &trie);
        self.constraint.set_grammar(grammar);
        self.warm_up();
        Ok(())
    }

    pub fn options(&self) -> &RecognizerOptions {
        &self.options
    }

    pub fn transcriber(&self) -> &Transcriber {
        &self.transcriber
    }

    /// Recognises one utterance of 16 kHz mono audio (silence around the speech is fine).
    pub fn recognize(&mut self, samples: &[f32]) -> Result<Recognition, RecognizeError> {
        if samples.len() > MAX_SECONDS * SAMPLE_RATE as usize {
            return Ok(Recognition::refused(Rejection::TooLong));
        }
        if samples.iter().all(|s| s.abs() < SILENCE_PEAK) {
            return Ok(Recognition::refused(Rejection::Silence));
        }
        let t = &self.transcriber;
        let audio = {
            let mel = t.features(samples);
            let content = mel.n_frames.saturating_sub(1).min(CHUNK_FRAMES);
            let window = mel.window(0, content).window(0, CHUNK_FRAMES);
            t.encode_window(&window, content, self.options.audio_ctx)?
        };

        let (prompt, options) = (&self.prompt, &self.options);
        let search = SearchOptions {
            beam_size: options.beam_size,
            max_tokens: options.max_tokens.min(token_budget(samples.len())),
            word_tokens: self.word_tokens.clone(),
        };
        let wider = SearchOptions {
            beam_size: search.beam_size.max(1) * WIDER,
            ..search.clone()
        };
        let encoded = std::time::Instant::now();
        let cross = t.cross_kv(audio);
        // The sentence taken ([`pick`]) from the search, and when none was heard from one
        // [`WIDER`] too, with what the model writes freely from where the grammar first
        // overruled it (the rejection compares the two).
        let search_in = |constraint: &mut TokenConstraint, go_on: bool| {
            t.install(|| {
                let mut known: HashMap<Vec<u32>, FreeText> = HashMap::new();
                let mut free_after = |prefix: &[u32]| {
                    if let Some(free) = known.get(prefix) {
                        return Ok(free.clone());
                    }
                    let free = free_continuation(
                        &t.model,
                        &t.rules,
                        &t.tokenizer,
                        &cross,
                        prompt,
                        prefix,
                        search.max_tokens,
                        go_on,
                    )?;
                    known.insert(prefix.to_vec(), free.clone());
                    Ok(free)
                };
                let mut search_at = |opts: &SearchOptions| {
                    beam_search(
                        &t.model,
                        &t.rules,
                        &t.tokenizer,
                        &cross,
                        prompt,
                        constraint,
                        opts,
                    )
                };
                let first = search_at(&search)?;
                let no_speech_prob = first.no_speech_prob;
                let mut finished = first.finished;
                let picked = pick(&finished, no_speech_prob, &t.tokenizer, &mut free_after)?;
                if picked.heard || no_speech_prob > Thresholds::default().max_no_speech {
                    return Ok::<_, ModelError>(picked);
                }
                let again = search_at(&wider)?;
                tracing::debug!(
                    beam = wider.beam_size,
                    first = ?finished.first().map(|b| b.sum_logprob),
                    wider = ?again.finished.first().map(|b| b.sum_logprob),
                    "no sentence heard: searched again, wider"
                );
                finished.extend(again.finished);
                finished.sort_by(|a, b| b.sum_logprob.total_cmp(&a.sum_logprob));
                finished.dedup_by(|a, b| a.tokens == b.tokens);
                pick(&finished, no_speech_prob, &t.tokenizer, &mut free_after)
            })
        };
        let searched = search_in(&mut self.constraint, false)?;
        tracing::debug!(
            search_ms = encoded.elapsed().as_millis() as u64,
            "recognised"
        );
        let mut recognition = self.decide(searched);
        // Whisper often ends its text after a greeting ("Hey computer!") though a command
        // follows, most of all when the voice changes. When the phrase alone came out,
        // search again with the phrase required to go on, and take a command that the
        // rejection accepts.
        let wake_alone = recognition.wake && recognition.intent.is_none();
        if let (true, Some(behind_wake)) = (wake_alone, &mut self.behind_wake) {
            let again = search_in(behind_wake, true)?;
            let command = self.decide(again);
            tracing::debug!(
                text = command.text,
                free_text = command.free_text,
                mismatch = command.mismatch,
                reason = ?command.reason,
                "searched behind the wake phrase"
            );
            if command.intent.is_some() {
                recognition = command;
            }
        }
        if let Some((text, language)) = self.transcribe_refused(samples, &recognition) {
            recognition.heard = Some(text);
            recognition.heard_language = Some(language);
        }
        Ok(recognition)
    }

    /// Reads the sentence's intent and slots and judges it.
    fn decide(&self, searched: Searched) -> Recognition {
        let Searched {
            best,
            no_speech_prob,
            free_text,
            free_logprob,
            ..
        } = searched;
        let tokenizer = &self.transcriber.tokenizer;
        let text = best.as_ref().map(|c| sentence_text(tokenizer, c));
        let grammar = self.constraint.grammar();
        let found = text.as_deref().and_then(|text| grammar.match_text(text));
        // The wake phrase alone is a sentence of the search, though of no intent.
        let wake_alone =
            found.is_none() && text.as_deref().is_some_and(|t| grammar.is_wake_phrase(t));
        tracing::debug!(
            ?text,
            matched = found.is_some(),
            wake_alone,
            "best sentence"
        );
        let (Some(best), Some(text)) = (best, text) else {
            return Recognition {
                no_speech_prob,
                ..Recognition::refused(Rejection::NoSentence)
            };
        };
        if found.is_none() && !wake_alone {
            return Recognition {
                no_speech_prob,
                ..Recognition::refused(Rejection::NoSentence)
            };
        }
        let tokens = token_scores(tokenizer, &best);
        let evidence = evidence(
            &tokens,
            &best,
            &text,
            &free_text,
            free_logprob,
            no_speech_prob,
        );
        let reason = judge(&evidence, &self.options.thresholds);
        let by_letters = by_letters(&evidence, &self.options.thresholds);
        let accepted = found.as_ref().filter(|_| reason.is_none());
        let goes_on = grammar.goes_on(&text);
        Recognition {
            intent: accepted.map(|found| found.intent.clone()),
            slots: accepted.map(|found| found.all_slots()).unwrap_or_default(),
            text,
            score: evidence.avg_logprob(),
            gap: best.regret,
            free_text,
            mismatch: evidence.mismatch.sentence,
            ratio: evidence.ratio(),
            by_letters,
            no_speech_prob,
            reason,
            wake: wake_alone || found.is_some_and(|found| found.wake),
            tokens,
            end_prob: best.end_prob,
            goes_on,
            heard: None,
            heard_language: None,
        }
    }

    /// The free transcription of refused speech and its language, when asked for: not for
    /// silence, noise, or audio too long to be one request, and not when Whisper says there
    /// is no speech.
    fn transcribe_refused(
        &self,
        samples: &[f32],
        result: &Recognition,
    ) -> Option<(String, String)> {
        let heard_words = matches!(
            result.reason,
            Some(
                Rejection::NoSentence
                    | Rejection::NotInGrammar
                    | Rejection::WordNotInGrammar
                    | Rejection::MoreSpeech
                    | Rejection::Unlikely
            )
        );
        if !self.options.transcribe_refused || !heard_words {
            return None;
        }
        let options = TranscribeOptions {
            language: Some(self.options.language.clone()),
            ..TranscribeOptions::default()
        };
        match self.transcriber.transcribe(samples, &options, |_| {}) {
            Ok(transcript) => {
                let speech = transcript
                    .segments
                    .iter()
                    .filter(|s| s.no_speech_prob < NO_SPEECH_FOR_REPLIES)
                    .map(|s| s.text.as_str())
                    .collect::<String>();
                let text = speech.trim().to_string();
                (!text.is_empty()).then_some((text, transcript.language))
            }
            Err(e) => {
                tracing::warn!("transcribing a refused utterance: {e}");
                None
            }
        }
    }
}

/// How much wider the second search is. A beam search can lose the sentence said at its
/// first words, where the model's ranking is least to be trusted: then its beams all die
/// before a sentence ends, or the junk that beat it finishes ("turn on. All of the lights
/// in the hall." for "is fan on" in noise, 28 nats less likely than the sentence said). A
/// search that found a sentence the model heard ([`pick`]) gains nothing from a wider one,
/// so only the others pay for one.
const WIDER: usize = 4;

/// How much less likely (nats) than the likeliest finished sentence one the model heard
/// may be and still be taken in its place ([`pick`]): measured, the right sentences taken
/// so were 0.1 to 0.25 nats less likely, the wrong ones 0.7 and more (README, *Command
/// accuracy*).
const HEARD_WITHIN: f32 = 0.5;

/// The sentence taken from a search, and what the model writes freely after the part of
/// it the model would have written itself.
struct Searched {
    /// None when the search finished no sentence.
    best: Option<Constrained>,
    no_speech_prob: f32,
    free_text: String,
    free_logprob: f32,
    /// The model heard the sentence's words ([`pick`]).
    heard: bool,
}

/// Of the finished sentences (likeliest first), the likeliest one whose words the model
/// heard (no [`heard_otherwise`]: the letters of the free transcript accept it, or its
/// likelihood ratio overrules them) among those at most [`HEARD_WITHIN`] less likely than
/// the likeliest; else the likeliest. The likeliest sentence is the search's answer, but
/// in noise it can be a short one the model heard nothing of ("continue" for "is fan on",
/// free "is stand on", 0.2 nats likelier than "is fan on"): of sentences the model finds
/// about as likely, a listener takes the one they heard.
///
/// Heard or not is judged at the default thresholds, not the configured ones: which
/// sentence recognition returns must not depend on the acceptance limits, which
/// `bench_commands.py` sweeps offline over one run (README, *Command accuracy*).
/// `free_after` is the model's free text after a prefix (`free_continuation`).
fn pick(
    finished: &[Constrained],
    no_speech_prob: f32,
    tokenizer: &Tokenizer,
    mut free_after: impl FnMut(&[u32]) -> Result<FreeText, ModelError>,
) -> Result<Searched, ModelError> {
    let thresholds = Thresholds::default();
    let mut likeliest: Option<Searched> = None;
    let close = finished.first().map(|f| f.sum_logprob - HEARD_WITHIN);
    let candidates = finished
        .iter()
        .take_while(|f| close.is_some_and(|close| f.sum_logprob >= close));
    for sentence in candidates {
        // Up to its first regret the sentence is what the model writes freely.
        let agreed = sentence
            .steps
            .iter()
            .take_while(|s| s.regret <= 0.0)
            .count();
        let (free_text, free_logprob) = if agreed > sentence.tokens.len() {
            (sentence_text(tokenizer, sentence), sentence.sum_logprob)
        } else {
            let rest = free_after(&sentence.tokens[..agreed])?;
            let agreed_logprob: f32 = sentence.steps[..agreed].iter().map(|s| s.logprob).sum();
            let text = tokenizer.decode(&rest.tokens).trim().to_string();
            (text, agreed_logprob + rest.logprob)
        };
        let evidence = evidence(
            &token_scores(tokenizer, sentence),
            sentence,
            &sentence_text(tokenizer, sentence),
            &free_text,
            free_logprob,
            no_speech_prob,
        );
        let heard = heard_otherwise(&evidence, &thresholds).is_none();
        let searched = Searched {
            best: Some(sentence.clone()),
            no_speech_prob,
            free_text,
            free_logprob,
            heard,
        };
        if heard {
            return Ok(searched);
        }
        likeliest.get_or_insert(searched);
    }
    Ok(likeliest.unwrap_or(Searched {
        best: None,
        no_speech_prob,
        free_text: String::new(),
        free_logprob: 0.0,
        heard: false,
    }))
}

/// A sentence's text as decoded.
fn sentence_text(tokenizer: &Tokenizer, best: &Constrained) -> String {
    tokenizer.decode(&best.tokens).trim().to_string()
}

/// The sentence token by token, end-of-text last.
fn token_scores(tokenizer: &Tokenizer, best: &Constrained) -> Vec<TokenScore> {
    best.tokens
        .iter()
        .map(|&token| tokenizer.decode(&[token]))
        .chain(["<|endoftext|>".to_string()])
        .zip(&best.steps)
        .map(|(text, step)| TokenScore {
            text,
            logprob: step.logprob,
            regret: step.regret,
        })
        .collect()
}

/// What the decodes measured of the sentence `best` (`text`, its `tokens`) against the
/// free transcript.
fn evidence(
    tokens: &[TokenScore],
    best: &Constrained,
    text: &str,
    free_text: &str,
    free_logprob: f32,
    no_speech_prob: f32,
) -> Evidence {
    let (end, words) = tokens.split_last().expect("a sentence ends in end-of-text");
    let word_gaps = word_gaps(words.iter().map(|t| (t.text.as_str(), t.regret)));
    // Stopping costs what the model's probability of writing no more words says, so that a
    // sentence is not charged for an end-of-text where the model would rather start the
    // text over (the free transcript stops there at no cost).
    let stop_logprob = end.logprob.max(best.end_prob.ln());
    Evidence {
        push: Push {
            word: word_gaps.into_iter().fold(0.0, f32::max),
            end: end.regret,
            sentence: best.regret,
        },
        mismatch: word_mismatch(text, free_text),
        stopped_logprob: best.sum_logprob - end.logprob + stop_logprob,
        free_logprob,
        sentence_logprob: best.sum_logprob,
        sentence_tokens: best.tokens.len() + 1,
        no_speech_prob,
    }
}

/// The constraint of `grammar` without its wake phrase alone, when it has a wake phrase.
fn behind_wake(grammar: &Grammar, trie: &crate::util::trie::CharTrie) -> Option<TokenConstraint> {
    grammar
        .wake_phrase()
        .map(|_| TokenConstraint::new(grammar.without_wake_alone(), trie.clone()))
}

/// Segments of refused speech more likely than this to be no speech are not passed on as a
/// request (Whisper writes "Thank you." and the like over noise).
const NO_SPEECH_FOR_REPLIES: f32 = 0.5;

/// The most tokens `n_samples` of audio can hold: even fast speech stays under four tokens
/// a second, so six a second (plus a few for punctuation) never cuts a real sentence short,
/// while a search that has wandered into a repetition loop stops early.
fn token_budget(n_samples: usize) -> usize {
    const PER_SECOND: usize = 6;
    const EXTRA: usize = 8;
    EXTRA + PER_SECOND * n_samples.div_ceil(SAMPLE_RATE as usize)
}

/// The start of a command's transcript: no timestamps, English unless told otherwise.
fn command_prompt(t: &Transcriber, language: &str) -> Result<Vec<u32>, RecognizeError> {
    let sp = t.tokenizer.special();
    if !t.tokenizer.is_multilingual() {
        return Ok(vec![sp.sot, sp.no_timestamps]);
    }
    let lang = t
        .tokenizer
        .language_token(language)
        .ok_or_else(|| RecognizeError::Language(language.to_string()))?;
    Ok(vec![sp.sot, lang, sp.transcribe, sp.no_timestamps])
}
