//! Grammar-constrained decoding: which tokens may come next, and beam search inside them.
//!
//! [`TokenConstraint`] maps a grammar state to the tokens that continue some sentence, each
//! with the state it leads to. It finds them by walking the token trie and the grammar
//! together (a subtree is left as soon as its prefix continues no sentence) and remembers
//! the answer per state: decoding the same grammar again and again meets the same few
//! states, so after the first utterances a step costs a hash look-up.
//!
//! Tokens that read no word (punctuation, spaces, apostrophes) never move the grammar
//! forward, so the constraint allows them only after a word: otherwise a search forced
//! through audio that is no command could spell "..." forever and never end a sentence.
//! And a token ending in a separator is allowed only when a word or the end of the
//! sentence can follow it: "I," is a prefix of nothing even though "i" starts "increase".
//!
//! The grammar reads text as its normaliser does (case, apostrophes and most punctuation
//! do not matter), which is right for matching but lets a search forced through unclear
//! audio spell a word in ways no transcript ever would: "O'F'F'I'C'E", "iN", "TURN OFF".
//! Such spellings are the model's way to hedge, one cheap letter at a time, and they only
//! lead a beam away from the words it did not hear. So the constraint also keeps every
//! word in the shape of written English ([`WordShape`]): lower case or capitalised, and an
//! apostrophe only before a short ending ("kid's", "don't", "we'll").
//!
//! [`beam_search`] is Whisper's beam search restricted to those tokens. Scores are the
//! model's log-probabilities over the whole vocabulary (under the same suppression rules as
//! unconstrained decoding), so a constrained sentence's score can be compared with what the
//! model would have written freely; that comparison is what rejection rests on.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::grammar::normalize::normalize;
use crate::grammar::{Grammar, PrefixState};
use crate::util::trie::CharTrie;
use crate::whisper::decode::{apply_rules, log_sum_exp, DecodeOptions, TokenRules};
use crate::whisper::model::{branch_caches, CrossKv, KvCache, ModelError, Whisper};
use crate::whisper::tokenizer::Tokenizer;

/// Index of an interned grammar state.
pub type StateId = u32;

/// Above this many bytes of allowed tokens the memo starts again between searches: a state
/// inside a wildcard allows most of the vocabulary, so wildcard speech would otherwise grow
/// the memo by ~50 kB per new state without bound. The home grammars' warm-up fills about
/// 5 MiB.
const MAX_MEMO_BYTES: usize = 12 << 20;

/// What may follow a grammar state.
#[derive(Debug)]
pub struct Allowed {
    /// Tokens that continue some sentence, with the state after each.
    followers: Followers,
    /// Whether the text so far is a whole sentence (end-of-text may come next).
    pub complete: bool,
}

/// Allowed tokens with the state after each, in whichever of two layouts is smaller.
#[derive(Debug)]
enum Followers {
    /// (token, state) pairs sorted by token.
    Listed(Vec<(u32, StateId)>),
    /// Inside a wildcard most of the vocabulary is allowed, and leads to a handful of states
    /// (at most 21 with the home grammars): for each token up to the last allowed one, the
    /// index of its state in `states`, or [`NOT_ALLOWED`]. A byte per token instead of
    /// eight per allowed one: 3.3 of the 3.4 million pairs the home grammars' warm-up
    /// remembers are of such states.
    Dense {
        states: Vec<StateId>,
        index: Vec<u8>,
    },
}

/// A token's entry in [`Followers::Dense`] when it is not allowed.
const NOT_ALLOWED: u8 = u8::MAX;

impl Followers {
    /// From (token, state) pairs sorted by token, each token once.
    fn new(mut pairs: Vec<(u32, StateId)>) -> Self {
        pairs.shrink_to_fit();
        let Some(&(last, _)) = pairs.last() else {
            return Followers::Listed(pairs);
        };
        let mut states: Vec<StateId> = pairs.iter().map(|&(_, s)| s).collect();
        states.sort_unstable();
        states.dedup();
        states.shrink_to_fit();
        let listed_bytes = pairs.len() * std::mem::size_of::<(u32, StateId)>();
        let dense_bytes = last as usize + 1 + states.len() * std::mem::size_of::<StateId>();
        if states.len() >= NOT_ALLOWED as usize || dense_bytes >= listed_bytes {
            return Followers::Listed(pairs);
        }
        let mut index = vec![NOT_ALLOWED; last as usize + 1];
        for (token, state) in pairs {
            // `states` holds every state of `pairs`, fewer than NOT_ALLOWED of them.
            let at = states.binary_search(&state).unwrap_or_default();
            index[token as usize] = at as u8;
        }
        Followers::Dense { states, index }
    }

    fn bytes(&self) -> usize {
        match self {
            Followers::Listed(pairs) => pairs.len() * std::mem::size_of::<(u32, StateId)>(),
            Followers::Dense { states, index } => {
                index.len() + states.len() * std::mem::size_of::<StateId>()
            }
        }
    }
}

impl Allowed {
    /// The state after `token`, if it is allowed.
    pub fn next(&self, token: u32) -> Option<StateId> {
        match &self.followers {
            Followers::Listed(pairs) => pairs
                .binary_search_by_key(&token, |&(t, _)| t)
                .ok()
                .map(|i| pairs[i].1),
            Followers::Dense { states, index } => match index.get(token as usize) {
                Some(&at) if at != NOT_ALLOWED => Some(states[at as usize]),
                _ => None,
            },
        }
    }

    /// The allowed tokens with the state after each, by token.
    pub fn tokens(&self) -> impl Iterator<Item = (u32, StateId)> + '_ {
        let (listed, states, index): (&[(u32, StateId)], &[StateId], &[u8]) = match &self.followers
        {
            Followers::Listed(pairs) => (pairs, &[], &[]),
            Followers::Dense { states, index } => (&[], states, index),
        };
        let dense = index
            .iter()
            .enumerate()
            .filter(|&(_, &at)| at != NOT_ALLOWED)
            .map(|(token, &at)| (token as u32, states[at as usize]));
        listed.iter().copied().chain(dense)
    }

    /// Whether no token may follow.
    pub fn is_empty(&self) -> bool {
        self.tokens().next().is_none()
    }
}

/// A grammar state, whether the last token read a word, and the shape of the word being
/// written (see the module's notes).
type Key = (PrefixState, bool, WordShape);

/// Where the text stands inside a word, for the spelling rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WordShape {
    /// Not inside a word: anything may start one.
    Between,
    /// Inside a word: more lower-case letters and digits may follow.
    Word,
    /// Right after an apostrophe inside a word: an ending must follow ("'s", "n't", "'ll").
    Apostrophe,
    /// Inside an ending, expecting this letter ("'r" wants "e", "'l" wants "l").
    Expecting(char),
    /// At the end of a word's ending: only a separator may follow.
    Ended,
}

impl WordShape {
    /// The shape after `c`, or None when `c` cannot come here in a written word.
    fn next(self, c: char) -> Option<WordShape> {
        use WordShape::*;
        let letter = c.is_alphanumeric();
        match self {
            // An apostrophe is followed by its ending: a word left at "lowe'r" or "I'" is
            // how a forced search spells "lower" or "is" in pieces, never how Whisper
            // writes them.
            Apostrophe | Expecting(_) if !letter => None,
            _ if !letter && !is_apostrophe(c) => is_separator(c).then_some(Between),
            Between if letter => Some(Word),
            Word if letter => (!c.is_uppercase()).then_some(Word),
            Word => Some(Apostrophe),
            Apostrophe => match c {
                's' | 't' | 'd' | 'm' => Some(Ended),
                'r' | 'v' => Some(Expecting('e')),
                'l' => Some(Expecting('l')),
                _ => None,
            },
            Expecting(want) => (c == want).then_some(Ended),
            Between | Ended => None,
        }
    }
}

/// Characters written between words in a transcript. Others (quotes, brackets, accents
/// on their own) never belong in a spoken command and would only let a search stall.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '.' | '!' | '?' | ';' | ':' | '-' | '%' | '&')
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{02bc}')
}

/// A grammar compiled against a token vocabulary, with the memo of allowed tokens.
pub struct TokenConstraint {
    grammar: Grammar,
    trie: CharTrie,
    states: Vec<Key>,
    index: HashMap<Key, StateId>,
    allowed: Vec<Option<Arc<Allowed>>>,
    /// Bytes of allowed tokens in `allowed`, all states together.
    bytes: usize,
    /// States whose allowed tokens are being computed (the dead-end check recurses).
    computing: HashSet<StateId>,
}

impl TokenConstraint {
    pub fn new(grammar: Grammar, trie: CharTrie) -> Self {
        let mut constraint = TokenConstraint {
            grammar,
            trie,
            states: Vec::new(),
            index: HashMap::new(),
            allowed: Vec::new(),
            bytes: 0,
            computing: HashSet::new(),
        };
        constraint.reset();
        constraint
    }

    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// The state before any text.
    pub fn start(&self) -> StateId {
        0
    }

    /// Forgets every state but the start. Ids handed out before are invalid afterwards.
    /// Constrains to another grammar from now on (the token trie stays: it depends on the
    /// model only).
    pub fn set_grammar(&mut self, grammar: Grammar) {
        self.grammar = grammar;
        self.reset();
    }

    fn reset(&mut self) {
        self.states.clear();
        self.index.clear();
        self.allowed.clear();
        self.bytes = 0;
        self.intern((self.grammar.start(), false, WordShape::Between));
    }

    /// Starts a new decode, clearing the memo when it has grown too large. Call only
    /// between searches: it may invalidate state ids.
    pub fn prepare(&mut self) {
        if self.bytes > MAX_MEMO_BYTES {
            self.reset();
        }
    }

    fn intern(&mut self, state: Key) -> StateId {
        if let Some(&id) = self.index.get(&state) {
            return id;
        }
        let id = self.states.len() as StateId;
        self.states.push(state.clone());
        self.index.insert(state, id);
        self.allowed.push(None);
        id
    }

    /// Follows `tokens` from the start as far as the grammar allows them, computing the
    /// allowed tokens of every state on the way (and of the one reached).
    pub fn walk(&mut self, tokens: &[u32]) {
        let mut state = self.start();
        for &token in tokens {
            match self.allowed(state).next(token) {
                Some(next) => state = next,
                None => return,
            }
        }
        self.allowed(state);
    }

    /// The tokens allowed after `state`, computed once per state.
    pub fn allowed(&mut self, state: StateId) -> Arc<Allowed> {
        if let Some(known) = &self.allowed[state as usize] {
            return Arc::clone(known);
        }
        let (prefix, after_word, shape) = self.states[state as usize].clone();
        self.computing.insert(state);
        let mut found = Found::default();
        let walk = Walk {
            grammar: &self.grammar,
            trie: &self.trie,
            after_word,
        };
        walk.visit(CharTrie::ROOT, &prefix, shape, false, &mut found);
        let mut tokens: Vec<(u32, StateId)> = Vec::with_capacity(found.tokens.len());
        for (token, key, ends_in_word) in found.tokens {
            let next = self.intern(found.keys[key].clone());
            // After a word character the grammar is at a place some sentence goes on from;
            // after a separator the boundary it owes may fit nowhere.
            if ends_in_word || !self.is_dead_end(next) {
                tokens.push((token, next));
            }
        }
        self.computing.remove(&state);
        tokens.sort_unstable();
        let followers = Followers::new(tokens);
        self.bytes += followers.bytes();
        let allowed = Arc::new(Allowed {
            followers,
            complete: self.grammar.is_complete(&prefix),
        });
        self.allowed[state as usize] = Some(Arc::clone(&allowed));
        allowed
    }
}

impl TokenConstraint {
    /// A state nothing may follow and where no sentence is complete. A state met again
    /// while its own tokens are being found (a wildcard reads "a. b. c." forever) counts
    /// as alive: its walk is what is asking.
    fn is_dead_end(&mut self, state: StateId) -> bool {
        if self.computing.contains(&state) {
            return false;
        }
        let allowed = self.allowed(state);
        !allowed.complete && allowed.is_empty()
    }
}

/// What a walk found: each token's id, the state after it (an index into `keys`) and
/// whether it ends in a word character. Inside a wildcard tens of thousands of tokens lead
/// to a handful of states; each is kept once.
#[derive(Default)]
struct Found {
    tokens: Vec<(u32, usize, bool)>,
    keys: Vec<Key>,
    key_index: HashMap<Key, usize>,
}

impl Found {
    fn push(&mut self, token: u32, key: Key, ends_in_word: bool) {
        let at = match self.key_index.get(&key) {
            Some(&at) => at,
            None => {
                self.keys.push(key.clone());
                self.key_index.insert(key, self.keys.len() - 1);
                self.keys.len() - 1
            }
        };
        self.tokens.push((token, at, ends_in_word));
    }
}

/// One walk of the token trie from a grammar state.
struct Walk<'a> {
    grammar: &'a Grammar,
    trie: &'a CharTrie,
    /// Whether the token before read a word, which allows a token that reads none.
    after_word: bool,
}

impl Walk<'_> {
    /// Visits the trie below `node` while its text continues a sentence from `state` in
    /// well-shaped words, collecting each allowed token met on the way with the state after
    /// it. `has_word` says whether the text from the root to `node` reads a word character.
    fn visit(
        &self,
        node: u32,
        state: &PrefixState,
        shape: WordShape,
        has_word: bool,
        found: &mut Found,
    ) {
        let mut utf8 = [0u8; 4];
        for &(c, child) in self.trie.children(node) {
            let Some(shape) = shape.next(c) else {
                continue;
            };
            let Some(next) = self.grammar.advance(state, c.encode_utf8(&mut utf8)) else {
                continue;
            };
            let has_word = has_word || reads_word(c);
            if let Some(token) = self.trie.value(child) {
                if has_word || self.after_word {
                    found.push(token, (next.clone(), has_word, shape), reads_word(c));
                }
            }
            self.visit(child, &next, shape, has_word, found);
        }
    }
}

/// Whether a character is (or, like `%`, reads as) part of a word.
fn reads_word(c: char) -> bool {
    c.is_alphanumeric() || c == '%' || c == '&'
}

/// Settings of the constrained beam search.
#[derive(Clone)]
pub struct SearchOptions {
    pub beam_size: usize,
    /// The most tokens a sentence may have (wildcards could otherwise run on).
    pub max_tokens: usize,
    /// Which regular tokens write part of a word (`vocab::word_tokens`): the rest, with
    /// end-of-text, are how a text stops ([`Constrained::end_prob`]).
    pub word_tokens: Arc<[bool]>,
}

/// The best sentence the search found.
#[derive(Clone, Debug)]
pub struct Constrained {
    /// Text tokens, without end-of-text.
    pub tokens: Vec<u32>,
    /// Log-probability of the tokens and the end-of-text after them.
    pub sum_logprob: f32,
    /// How much the grammar overruled the model: over every step, the log-probability of
    /// the model's favourite token minus that of the token taken (nats, end-of-text
    /// included). Zero when the model would have written this sentence by itself.
    pub regret: f32,
    /// Each step's log-probability and regret, end-of-text last.
    pub steps: Vec<StepScore>,
    /// The model's probability that no more words follow the sentence's last word: at the
    /// step after it, the probability of end-of-text and of every token that writes no
    /// word (a full stop, a comma). Low when the model hears speech going on.
    pub end_prob: f32,
}

impl Constrained {
    /// The sentence's log-probability with its end charged as the likelier of its
    /// end-of-text and of the model writing no more words ([`Constrained::end_prob`]), so
    /// that a sentence is not charged for an end-of-text where the model would rather
    /// start the text over: what the rejection compares with the free transcript's
    /// log-probability (`reject::Evidence::ratio`).
    pub fn stopped_logprob(&self) -> f32 {
        let end = self.steps.last().map_or(0.0, |step| step.logprob);
        self.sum_logprob - end + end.max(self.end_prob.ln())
    }
}

/// The scores of one token of a sentence.
#[derive(Clone, Copy, Debug)]
pub struct StepScore {
    pub logprob: f32,
    pub regret: f32,
}

/// What the search saw of the utterance.
#[derive(Clone, Debug)]
pub struct SearchResult {
    /// Every sentence the search finished, likeliest first (by total log-probability);
    /// none when no sentence could be completed within `max_tokens`.
    pub finished: Vec<Constrained>,
    /// Probability of the no-speech token right after start-of-transcript.
    pub no_speech_prob: f32,
}

#[derive(Clone)]
struct Beam {
    tokens: Vec<u32>,
    /// The words written, as the grammar reads them.
    words: String,
    state: StateId,
    sum_logprob: f32,
    regret: f32,
    steps: Vec<StepScore>,
    /// [`Constrained::end_prob`] after the beam's last word, once it completes a sentence.
    end_prob: f32,
    cache: KvCache,
}

/// A continuation of a beam.
#[derive(Clone)]
struct Candidate {
    score: f32,
    regret: f32,
    step: StepScore,
    beam: usize,
    token: u32,
    /// The grammar state after the token; None for end-of-text.
    state: Option<StateId>,
    /// The beam's [`Beam::end_prob`] after this token.
    end_prob: f32,
}

/// How much wider the first step is than the beam. The first word is where the model's
/// own ranking is least to be trusted: in noise the right first word can rank far below
/// words the grammar allows ("Lock" 7 nats under "The", "skip" 7 under "is"), while the
/// rest of the right sentence then costs little ("on the kitchen speaker" under 2 nats),
/// and the junk that beat it goes on to cost 40 nats more. Wider only at the start: one
/// step of 20 rows, not every step (README, *Command accuracy*).
const START_WIDER: usize = 4;

/// The most beams at one grammar state. Inside a wildcard every word leads to the same
/// state, and beams following the model's own transcript there ("Put some inter-shopping
/// list. Put some ...") would crowd out every sentence that ends.
const MAX_PER_STATE: usize = 2;

/// Whether a hypothesis that wrote `words` (as the grammar reads them) and reached `state`
/// gets a place beside the better ones already in `next`. One that wrote the same words as
/// a better one differs only in spelling or punctuation ("The" and " the", "is" and "is,"):
/// its futures are the same sentences, so the place goes to different words.
fn takes_place(next: &[Beam], state: StateId, words: &str) -> bool {
    !next.iter().any(|b| b.words == words)
        && next.iter().filter(|b| b.state == state).count() < MAX_PER_STATE
}

/// Decodes the audio in `cross` after `prompt` (which starts with start-of-transcript)
/// inside the grammar. Hypotheses, and the finished sentence picked, are ranked by their
/// total log-probability: they all explain the same audio, and the model's own end-of-text
/// probability already charges a sentence that stops early or runs on.
///
/// Every allowed token leads to a state some sentence continues from, but not always
/// through tokens the rules and the tokenizer's canonical spelling let through: in unclear
/// audio all beams can follow the model into such spellings ("I, the, a ...") and die there
/// before any sentence ends, and then there is no sentence. Which finished sentence to
/// take, and when to search again wider, is the recogniser's call (`Recognizer::recognize`):
/// it also knows which of them the model heard.
pub fn beam_search(
    model: &Whisper,
    rules: &TokenRules,
    tokenizer: &Tokenizer,
    cross: &CrossKv,
    prompt: &[u32],
    constraint: &mut TokenConstraint,
    opts: &SearchOptions,
) -> Result<SearchResult, ModelError> {
    constraint.prepare();
    let beam_size = opts.beam_size.max(1);
    let (cache, mut logits, no_speech_prob) = start(model, rules, cross, prompt)?;
    let mut beams = vec![Beam {
        tokens: Vec::new(),
        words: String::new(),
        state: constraint.start(),
        sum_logprob: 0.0,
        regret: 0.0,
        steps: Vec::new(),
        end_prob: 0.0,
        cache,
    }];
    let mut finished: Vec<Constrained> = Vec::new();
    let n_vocab = model.hparams().n_vocab;
    let decode_opts = DecodeOptions {
        timestamps: false,
        ..DecodeOptions::default()
    };
    loop {
        let width = if beams[0].tokens.is_empty() {
            beam_size * START_WIDER
        } else {
            beam_size
        };
        let mut candidates = Vec::new();
        for (b, beam) in beams.iter().enumerate() {
            let row = &mut logits[b * n_vocab..(b + 1) * n_vocab];
            apply_rules(row, &beam.tokens, rules, &decode_opts);
            let allowed = constraint.allowed(beam.state);
            let mut written = beam.tokens.clone();
            let canonical = |token: u32| {
                written.truncate(beam.tokens.len());
                if token != rules.eot {
                    written.push(token);
                }
                is_canonical(tokenizer, &written)
            };
            let ends = Ends {
                eot: rules.eot,
                word_tokens: &opts.word_tokens,
                tokenizer,
            };
            candidates.extend(beam_candidates(
                row, b, beam, &allowed, &ends, width, canonical,
            ));
        }
        tracing::trace!(
            beams = beams.len(),
            candidates = candidates.len(),
            states = ?beams.iter().map(|b| b.state).collect::<Vec<_>>(),
            tokens = ?beams.iter().map(|b| b.tokens.clone()).collect::<Vec<_>>(),
            scores = ?beams.iter().map(|b| b.sum_logprob).collect::<Vec<_>>(),
            "step"
        );
        candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
        // The next step's beams, without their caches yet, and each one's parent.
        let mut next: Vec<Beam> = Vec::new();
        let mut parents: Vec<usize> = Vec::new();
        for c in candidates {
            let parent = &beams[c.beam];
            match c.state {
                None => {
                    let mut steps = parent.steps.clone();
                    steps.push(c.step);
                    let sentence = Constrained {
                        tokens: parent.tokens.clone(),
                        sum_logprob: c.score,
                        regret: c.regret,
                        steps,
                        end_prob: c.end_prob,
                    };
                    finished.push(sentence);
                }
                // Unlike openai-whisper, a finished sentence ranked below the last live beam
                // is still considered: near-identical beams (differing in punctuation, or
                // caught in a repetition loop) would otherwise crowd out every ending.
                Some(_) if next.len() == width => {}
                Some(state) => {
                    let mut tokens = parent.tokens.clone();
                    tokens.push(c.token);
                    let words = normalize(&tokenizer.decode(&tokens));
                    if !takes_place(&next, state, &words) {
                        continue;
                    }
                    let mut steps = parent.steps.clone();
                    steps.push(c.step);
                    next.push(Beam {
                        tokens,
                        words,
                        state,
                        sum_logprob: c.score,
                        regret: c.regret,
                        steps,
                        end_prob: c.end_prob,
                        cache: KvCache::empty(),
                    });
                    parents.push(c.beam);
                }
            }
        }
        // The log-probability only falls as tokens are added: once the best finished
        // sentence is likelier than every live beam, nothing can overtake it.
        let best = finished
            .iter()
            .map(|f| f.sum_logprob)
            .max_by(f32::total_cmp);
        let live_best = next.iter().map(|h| h.sum_logprob).max_by(f32::total_cmp);
        let settled = match (best, live_best) {
            (_, None) => true,
            (Some(best), Some(live)) => best >= live,
            (None, Some(_)) => false,
        };
        if settled || next[0].tokens.len() >= opts.max_tokens {
            tracing::debug!(
                steps = next.first().map_or(0, |b| b.tokens.len()),
                states = constraint.states.len(),
                memo_bytes = constraint.bytes,
                "constrained search done"
            );
            finished.sort_by(|a, b| b.sum_logprob.total_cmp(&a.sum_logprob));
            return Ok(SearchResult {
                finished,
                no_speech_prob,
            });
        }
        let caches = branch_caches(beams.into_iter().map(|b| b.cache).collect(), &parents);
        beams = next;
        step(model, cross, &mut beams, caches, &mut logits)?;
    }
}

/// What the model writes freely for the audio in `cross`, given that it starts with
/// `prefix`: the prefix and then its own favourite token at each step (the same rules as the
/// search, no grammar), until end-of-text or `max_tokens` in all. Called with the part of
/// the constrained sentence the model would have written itself (every step at zero
/// regret), this is exactly its free greedy transcript, at the cost of the steps after.
///
/// It also stops where the text starts over: before a word that is the text's first word
/// again or the word just written. Decoding one short utterance without timestamps, Whisper
/// often repeats what it heard until the token limit ("Close the garage door. Close the
/// garage door. Close ..."; "next next next"); the repeat is the same speech, not more of
/// it, and would otherwise read as words after the command.
///
/// With `go_on`, the text may not end before a word follows `prefix` (punctuation is no
/// word): the search behind a wake phrase asks what the model hears after the phrase, where
/// its own favourite was to stop ("Hey computer!").
#[allow(clippy::too_many_arguments)]
pub fn free_continuation(
    model: &Whisper,
    rules: &TokenRules,
    tokenizer: &Tokenizer,
    cross: &CrossKv,
    prompt: &[u32],
    prefix: &[u32],
    max_tokens: usize,
    go_on: bool,
) -> Result<FreeText, ModelError> {
    let decode_opts = DecodeOptions {
        timestamps: false,
        ..DecodeOptions::default()
    };
    let mut caches = [model.new_cache()];
    let input: Vec<u32> = prompt.iter().chain(prefix).copied().collect();
    let hidden = model.decode(cross, &mut caches, &[&input])?;
    let s = model.hparams().n_text_state;
    let mut logits = model.logits(&hidden[hidden.len() - s..]);
    let mut tokens = prefix.to_vec();
    // Log-probability of each token written after the prefix, and of the text's end
    // (nothing when the text starts over or runs into the token limit).
    let mut logprobs: Vec<f32> = Vec::new();
    let mut end_logprob = 0.0;
    while tokens.len() < max_tokens {
        apply_rules(&mut logits, &tokens, rules, &decode_opts);
        let silent = || {
            !tokens[prefix.len()..]
                .iter()
                .any(|&t| starts_word(tokenizer, t))
        };
        if go_on && silent() {
            logits[rules.eot as usize] = f32::NEG_INFINITY;
        }
        let favourite = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(rules.eot, |(token, _)| token as u32);
        let lse = log_sum_exp(&logits);
        let ends = favourite == rules.eot || starts_word(tokenizer, favourite);
        if ends && tokens.len() > prefix.len() {
            if let Some(start) = repeated_word(tokenizer, &tokens) {
                // Writing the text again is the model's way of saying no more: the end
                // costs nothing, and the repeated word is no part of the text.
                let start = start.max(prefix.len());
                tokens.truncate(start);
                logprobs.truncate(start - prefix.len());
                break;
            }
        }
        if favourite == rules.eot {
            end_logprob = logits[favourite as usize] - lse;
            break;
        }
        logprobs.push(logits[favourite as usize] - lse);
        tokens.push(favourite);
        let hidden = model.decode(cross, &mut caches, &[&[favourite]])?;
        model.logits_into(&hidden, &mut logits);
    }
    Ok(FreeText {
        tokens,
        logprob: logprobs.iter().sum::<f32>() + end_logprob,
    })
}

/// What the model writes without the grammar after a prefix ([`free_continuation`]).
#[derive(Clone, Debug, PartialEq)]
pub struct FreeText {
    /// The prefix and the tokens written after it.
    pub tokens: Vec<u32>,
    /// Log-probability of the tokens after the prefix and of the text's end-of-text (nothing
    /// where the model starts the text over or the token limit stops it).
    pub logprob: f32,
}

fn starts_word(tokenizer: &Tokenizer, token: u32) -> bool {
    let text = tokenizer.decode(&[token]);
    text.starts_with(' ') && text.chars().any(char::is_alphanumeric)
}

/// When the last complete word of `written` is its first word again or the word before it,
/// the index of the token where that word starts.
fn repeated_word(tokenizer: &Tokenizer, written: &[u32]) -> Option<usize> {
    let start = written
        .iter()
        .rposition(|&t| starts_word(tokenizer, t))
        .filter(|&i| i > 0)?;
    let before = normalize(&tokenizer.decode(&written[..start]));
    let last = normalize(&tokenizer.decode(&written[start..]));
    let words: Vec<&str> = before.split(' ').filter(|w| !w.is_empty()).collect();
    let repeats = !last.is_empty()
        && (words.first() == Some(&last.as_str()) || words.last() == Some(&last.as_str()));
    repeats.then_some(start)
}

/// Whether `tokens` are the tokens the tokenizer itself gives their text. Whisper learnt
/// to write text in exactly those tokens, so another split of the same word (" T" + "urn"
/// for " Turn", " sk" + "i" + "p" for " skip") is never what it heard: it is a search
/// following a likely first piece of a different word and completing it with whatever
/// the grammar allows.
fn is_canonical(tokenizer: &Tokenizer, tokens: &[u32]) -> bool {
    tokenizer.encode(&tokenizer.decode(tokens)) == tokens
}

/// How a text ends: the end-of-text token, and which tokens write words.
struct Ends<'a> {
    eot: u32,
    word_tokens: &'a [bool],
    tokenizer: &'a Tokenizer,
}

impl Ends<'_> {
    fn writes_word(&self, token: u32) -> bool {
        self.word_tokens
            .get(token as usize)
            .copied()
            .unwrap_or(false)
    }

    /// The probability that the text `written` says no more after its last word: that the
    /// next token is end-of-text, punctuation or spaces, or starts the text over. Decoding
    /// one short utterance without timestamps, Whisper often repeats it ("Turn on the
    /// kitchen lights turn on the ..."): the repeat is the same speech, not more of it
    /// (`free_continuation` stops there too).
    fn stop_probability(&self, logits: &[f32], lse: f32, written: &[u32]) -> f32 {
        let p = |token: u32| (logits[token as usize] - lse).exp();
        let stops = logits
            .iter()
            .zip(self.word_tokens)
            .filter(|(_, &word)| !word)
            .map(|(&logit, _)| (logit - lse).exp())
            .sum::<f32>();
        let repeats: f32 = self.repeats(written).into_iter().map(p).sum();
        stops + p(self.eot) + repeats
    }

    /// The first token of the text's first word or of its last word written again, with
    /// or without a leading space or capital.
    fn repeats(&self, written: &[u32]) -> Vec<u32> {
        let mut tokens = Vec::new();
        for &token in [written.first(), written.last()].into_iter().flatten() {
            let text = self.tokenizer.decode(&[token]);
            let lower = text.trim().to_lowercase();
            let capital = capitalised(&lower);
            for form in [format!(" {lower}"), format!(" {capital}"), capital, lower] {
                if let Some(&first) = self.tokenizer.encode(&form).first() {
                    if self.writes_word(first) {
                        tokens.push(first);
                    }
                }
            }
        }
        tokens.sort_unstable();
        tokens.dedup();
        tokens
    }
}

/// `text` with its first letter in upper case, as Whisper starts a sentence.
pub(crate) fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The best `beam_size + 1` allowed continuations of one beam.
fn beam_candidates(
    logits: &[f32],
    b: usize,
    beam: &Beam,
    allowed: &Allowed,
    ends: &Ends,
    beam_size: usize,
    mut canonical: impl FnMut(u32) -> bool,
) -> Vec<Candidate> {
    let lse = log_sum_exp(logits);
    let favourite = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let eot = ends.eot;
    // Right after the word that completes a sentence: how likely the text stops here.
    // Punctuation after it keeps the value (it moves the grammar nowhere).
    let last_wrote_word = beam.tokens.last().is_some_and(|&t| ends.writes_word(t));
    let end_prob = if allowed.complete && last_wrote_word {
        ends.stop_probability(logits, lse, &beam.tokens)
    } else if last_wrote_word {
        0.0
    } else {
        beam.end_prob
    };
    let candidate = |token: u32, state: Option<StateId>| Candidate {
        score: beam.sum_logprob + logits[token as usize] - lse,
        regret: beam.regret + favourite - logits[token as usize],
        step: StepScore {
            logprob: logits[token as usize] - lse,
            regret: favourite - logits[token as usize],
        },
        beam: b,
        token,
        state,
        end_prob,
    };
    // Within one beam a candidate's score only grows with its token's logit, so the ranking
    // runs on (token, next state) pairs and full candidates are made for the chosen few:
    // inside a wildcard the whole vocabulary is allowed, and a candidate per token was
    // megabytes.
    let mut out: Vec<(u32, Option<StateId>)> = allowed
        .tokens()
        .map(|(token, state)| (token, Some(state)))
        .collect();
    if allowed.complete {
        out.push((eot, None));
    }
    // Best first; the canonical check (an encode of the sentence) runs only until enough
    // are found. Inside a wildcard most of the vocabulary is allowed, so only the best few
    // are sorted unless most of those fail the check.
    let keep = beam_size + 1;
    let logit = |&(token, _): &(u32, Option<StateId>)| logits[token as usize];
    let by_logit =
        |a: &(u32, Option<StateId>), b: &(u32, Option<StateId>)| logit(b).total_cmp(&logit(a));
    let window = (4 * keep).min(out.len());
    if window < out.len() {
        out.select_nth_unstable_by(window, by_logit);
    }
    out[..window].sort_unstable_by(by_logit);
    let mut chosen: Vec<Candidate> = Vec::with_capacity(keep);
    let mut take_from = |part: &[(u32, Option<StateId>)], chosen: &mut Vec<Candidate>| {
        let fits = part
            .iter()
            .filter(|&pair| logit(pair) > f32::NEG_INFINITY && canonical(pair.0))
            .map(|&(token, state)| candidate(token, state));
        chosen.extend(fits.take(keep - chosen.len()));
    };
    take_from(&out[..window], &mut chosen);
    if chosen.len() < keep && window < out.len() {
        out[window..].sort_unstable_by(by_logit);
        take_from(&out[window..], &mut chosen);
    }
    chosen
}

/// Runs the prompt: its cache, the logits after it, and the no-speech probability read at
/// start-of-transcript (the prompt's first token).
fn start(
    model: &Whisper,
    rules: &TokenRules,
    cross: &CrossKv,
    prompt: &[u32],
) -> Result<(KvCache, Vec<f32>, f32), ModelError> {
    let s = model.hparams().n_text_state;
    let mut caches = [model.new_cache()];
    let hidden = model.decode(cross, &mut caches, &[prompt])?;
    let rows = [&hidden[..s], &hidden[hidden.len() - s..]].concat();
    let logits = model.logits(&rows);
    let n_vocab = model.hparams().n_vocab;
    let (at_sot, after) = logits.split_at(n_vocab);
    let no_speech_prob = match rules.no_speech {
        Some(token) => (at_sot[token as usize] - log_sum_exp(at_sot)).exp(),
        None => 0.0,
    };
    let [cache] = caches;
    // Every beam continues the prompt: one copy of its keys and values serves them all.
    Ok((cache.shared(), after.to_vec(), no_speech_prob))
}

/// Runs the decoder one token further on every beam, with `caches` (beam by beam) for
/// their caches; the logits rows, beam by beam, into `logits`.
fn step(
    model: &Whisper,
    cross: &CrossKv,
    beams: &mut [Beam],
    mut caches: Vec<KvCache>,
    logits: &mut Vec<f32>,
) -> Result<(), ModelError> {
    let last: Vec<[u32; 1]> = beams
        .iter()
        .map(|h| [*h.tokens.last().unwrap_or(&0)])
        .collect();
    let inputs: Vec<&[u32]> = last.iter().map(|t| t.as_slice()).collect();
    let hidden = model.decode(cross, &mut caches, &inputs)?;
    for (beam, cache) in beams.iter_mut().zip(caches) {
        beam.cache = cache;
    }
    model.logits_into(&hidden, logits);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRAMMAR: &str = r#"
[intents.LightOn]
sentences = ["turn on [the] {room} light[s]", "lights on"]

[intents.Volume]
sentences = ["volume {level} [percent]"]

[lists.room]
values = ["kitchen", { in = "bed room", out = "bedroom" }, "living room"]

[lists.level]
range = { from = 0, to = 100, step = 10 }
"#;

    fn grammar() -> Grammar {
        Grammar::from_texts([("test.toml".into(), GRAMMAR.to_string())]).unwrap()
    }

    /// A small vocabulary with the kinds of pieces Whisper writes: leading spaces, capitals,
    /// parts of words, digits, punctuation, and words outside the grammar.
    const TOKENS: &[&str] = &[
        " turn",
        "Turn",
        " on",
        " On",
        "on",
        " the",
        " The",
        " kitchen",
        " kit",
        "chen",
        " k",
        "itchen",
        " bed",
        "room",
        " bedroom",
        " living",
        " Living",
        " light",
        "light",
        "s",
        " lights",
        " Lights",
        ".",
        ",",
        "!",
        " ",
        " volume",
        "Volume",
        " 50",
        "50",
        " 5",
        "0",
        " fifty",
        " percent",
        "%",
        " hello",
        " world",
        " off",
        " of",
        "f",
        " t",
        "urn",
        "-",
        " ten",
        " one",
        " hundred",
        " 100",
        "1",
        "00",
        "'",
        " kitchens",
    ];

    fn constraint() -> TokenConstraint {
        let trie = CharTrie::from_entries(TOKENS.iter().zip(0..)).unwrap();
        TokenConstraint::new(grammar(), trie)
    }

    /// The shape after a whole piece of text, None when one of its characters breaks it.
    fn shape_after(shape: WordShape, text: &str) -> Option<WordShape> {
        text.chars().try_fold(shape, WordShape::next)
    }

    /// Every token `advance` accepts after `state`, found by trying them all: tokens
    /// without a word only after a token with one, words in their written shapes, and a
    /// token ending in a separator only when something may follow it.
    fn brute_force(
        grammar: &Grammar,
        state: &PrefixState,
        after_word: bool,
        shape: WordShape,
    ) -> Vec<u32> {
        (0..TOKENS.len() as u32)
            .filter(|&t| {
                let text = TOKENS[t as usize];
                let has_word = text.chars().any(reads_word);
                let Some(next_shape) = shape_after(shape, text) else {
                    return false;
                };
                let Some(next) = grammar.advance(state, text) else {
                    return false;
                };
                let ends_in_word = text.chars().last().is_some_and(reads_word);
                (after_word || has_word)
                    && (ends_in_word
                        || grammar.is_complete(&next)
                        || !brute_force(grammar, &next, has_word, next_shape).is_empty())
            })
            .collect()
    }

    #[test]
    fn words_keep_a_written_shape() {
        let ok = |text: &str| shape_after(WordShape::Between, text).is_some();
        for good in [
            "turn", "Turn", " kitchen", "kid's", "don't", "we'll", "kids'", "21", "50%",
        ] {
            assert!(ok(good), "{good:?}");
        }
        for bad in [
            "TURN",
            "iN",
            "O'F'F",
            "o'f'f",
            "kid'sss",
            "'s",
            "offi'ce",
            "a\"b",
            "e´",
            "lowe'r volume",
            "Time'r.",
            "I', the",
        ] {
            assert!(!ok(bad), "{bad:?}");
        }
    }

    fn beam(words: &str, state: StateId) -> Beam {
        Beam {
            tokens: Vec::new(),
            words: words.to_string(),
            state,
            sum_logprob: 0.0,
            regret: 0.0,
            steps: Vec::new(),
            end_prob: 0.0,
            cache: KvCache::empty(),
        }
    }

    #[test]
    fn a_place_goes_to_other_words_and_few_share_a_state() {
        let next = [beam("turn on", 3), beam("put some", 7)];
        // "Turn on," after "Turn on": the same words, whatever state the comma left.
        assert!(!takes_place(&next, 4, "turn on"));
        assert!(takes_place(&next, 4, "turn off"));
        // Other words in the same wildcard state, up to MAX_PER_STATE beams there.
        assert!(takes_place(&next, 7, "put something"));
        let full = [beam("put some", 7), beam("put something", 7)];
        assert!(!takes_place(&full, 7, "put some inter"));
    }

    #[test]
    fn allowed_tokens_equal_brute_force_over_the_vocabulary() {
        let mut c = constraint();
        let g = grammar();
        let prefixes = [
            vec![],
            vec![" turn"],
            vec!["Turn", " on"],
            vec![" turn", " on", " the", " k"],
            vec![" turn", " on", " kit", "chen", " light"],
            vec![" turn", " on", " kitchen", " lights", "."],
            vec!["Volume", " 5"],
            vec![" volume", " fifty", " percent"],
            vec![" volume", " one", " hundred"],
        ];
        for prefix in prefixes {
            let mut id = c.start();
            let mut state = g.start();
            let mut after_word = false;
            let mut shape = WordShape::Between;
            for piece in &prefix {
                let token = TOKENS.iter().position(|t| t == piece).unwrap() as u32;
                let allowed = c.allowed(id);
                let next = allowed
                    .next(token)
                    .unwrap_or_else(|| panic!("{piece:?} not allowed after {prefix:?}"));
                id = next;
                state = g.advance(&state, piece).unwrap();
                after_word = piece.chars().any(reads_word);
                shape = shape_after(shape, piece).unwrap();
            }
            let allowed = c.allowed(id);
            let got: Vec<u32> = allowed.tokens().map(|(t, _)| t).collect();
            assert_eq!(
                got,
                brute_force(&g, &state, after_word, shape),
                "after {prefix:?}"
            );
            assert_eq!(allowed.complete, g.is_complete(&state), "after {prefix:?}");
        }
    }

    #[test]
    fn both_layouts_of_allowed_tokens_answer_alike() {
        // Many tokens to a few states (a wildcard's) are stored dense, a few listed.
        let wide: Vec<(u32, StateId)> = (0..5000)
            .filter(|t| t % 7 != 3)
            .map(|t| (t, t % 5 + 10))
            .collect();
        let narrow = vec![(3, 1), (900, 2), (40_000, 1)];
        for pairs in [wide, narrow] {
            let followers = Followers::new(pairs.clone());
            assert_eq!(
                matches!(followers, Followers::Dense { .. }),
                pairs.len() > 3,
                "layout of {} pairs",
                pairs.len()
            );
            let allowed = Allowed {
                followers,
                complete: false,
            };
            assert_eq!(allowed.tokens().collect::<Vec<_>>(), pairs);
            for token in 0..45_000 {
                let want = pairs.iter().find(|p| p.0 == token).map(|p| p.1);
                assert_eq!(allowed.next(token), want, "token {token}");
            }
        }
    }

    #[test]
    fn states_are_remembered() {
        let mut c = constraint();
        let first = c.allowed(c.start());
        let again = c.allowed(c.start());
        assert!(Arc::ptr_eq(&first, &again));
        let n = c.states.len();
        c.allowed(c.start());
        assert_eq!(c.states.len(), n);
    }

    #[test]
    fn punctuation_comes_only_after_a_word() {
        let mut c = constraint();
        let token = |piece: &str| TOKENS.iter().position(|t| *t == piece).unwrap() as u32;
        let start = c.allowed(c.start());
        assert!(start.next(token(".")).is_none());
        let after_on = c.allowed(c.start()).next(token(" lights")).unwrap();
        let after_on = c.allowed(after_on).next(token(" on")).unwrap();
        let after_dot = c.allowed(after_on).next(token(".")).unwrap();
        let allowed = c.allowed(after_dot);
        assert!(allowed.complete);
        assert!(allowed.next(token(",")).is_none());
    }

    #[test]
    fn trailing_punctuation_keeps_a_sentence_complete() {
        let mut c = constraint();
        let mut id = c.start();
        for piece in [" lights", " on", "."] {
            let token = TOKENS.iter().position(|t| *t == piece).unwrap() as u32;
            id = c.allowed(id).next(token).unwrap();
        }
        assert!(c.allowed(id).complete);
    }
}
