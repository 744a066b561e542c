//! The LLM's tokenizer, built from a GGUF file's `tokenizer.*` metadata, encoding and decoding
//! as llama.cpp does.
//!
//! # The two vocabulary kinds
//!
//! - `tokenizer.ggml.model = "gpt2"`: byte-level BPE. Token texts spell bytes in GPT-2's
//!   byte-to-unicode alphabet (`Ġ` is a space). Text is first split into words by the
//!   pre-tokenizer that `tokenizer.ggml.pre` names (a fixed set of regular expressions per
//!   model family, applied one after another, each splitting the pieces of the previous one),
//!   then each word's bytes are merged pairwise, lowest rank first, by the ranked list
//!   `tokenizer.ggml.merges` ("left right" per entry). A word that ends as pieces which are
//!   not tokens falls back to one token per byte.
//! - `tokenizer.ggml.model = "llama"`: SentencePiece-style. Spaces are written `▁` (U+2581)
//!   and a space is put before the text (`tokenizer.ggml.add_space_prefix`, default on); the
//!   characters are merged pairwise, the pair that forms the token with the highest score
//!   (`tokenizer.ggml.scores`) first; characters left without a token are written as byte
//!   tokens `<0xNN>`.
//!
//! # Special tokens
//!
//! `tokenizer.ggml.token_type` marks tokens as normal, control (`<|im_start|>`), user-defined,
//! unknown, unused or byte. Before the text is split, control and unknown tokens are cut out
//! of it where their text occurs, longest first, when the caller asks for special tokens to be
//! parsed (a prompt built from a chat template); user-defined tokens are cut out always. When
//! decoding, control and unknown tokens give their text only if asked (`special`).
//!
//! Decoding is exact: the bytes of the tokens, concatenated. Unlike llama.cpp's
//! `llama_detokenize`, no "clean-up" of spaces before punctuation is done (SmolLM2's and
//! Qwen's pre-tokenizers turn it off anyway), so `decode(encode(x)) == x` for every text.
//! Attributes that llama.cpp gives some tokens by model name (strip spaces left or right of
//! a special token) are not reproduced: GGUF files do not carry them.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::path::PathBuf;

use super::gguf::{GgufError, GgufFile};
use crate::util::bpe::{self, byte_alphabet};
pub use crate::util::pretokenize::PreTokenizer;

/// SentencePiece's visible space.
const SPM_SPACE: char = '\u{2581}';

/// What can go wrong building a tokenizer from a file's metadata.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A key is missing or has the wrong type.
    #[error(transparent)]
    Metadata(#[from] GgufError),
    /// The tokenizer model is neither "gpt2" nor "llama".
    #[error("{}: tokenizer.ggml.model is {model:?}; voxd reads \"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece)", path.display())]
    UnsupportedModel { path: PathBuf, model: String },
    /// `tokenizer.ggml.pre` names a pre-tokenizer voxd does not implement.
    #[error("{}: tokenizer.ggml.pre is {name:?}, a pre-tokenizer voxd does not implement (it knows {known})", path.display())]
    UnsupportedPreTokenizer {
        path: PathBuf,
        name: String,
        known: String,
    },
    /// The vocabulary's contents contradict each other.
    #[error("{}: {key}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        key: &'static str,
        problem: String,
    },
}

/// How the vocabulary turns text into tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VocabKind {
    /// `gpt2`: byte-level BPE with ranked merges.
    BytePairs,
    /// `llama`: SentencePiece-style, score-ordered merges with byte fallback.
    SentencePiece,
}

/// A token's type, as `tokenizer.ggml.token_type` numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenType {
    Undefined,
    Normal,
    Unknown,
    Control,
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    fn from_id(id: i32) -> Option<Self> {
        Some(match id {
            0 => TokenType::Undefined,
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }
}

/// The ids of the tokens with a role, where the file names them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Beginning of sequence (`tokenizer.ggml.bos_token_id`).
    pub bos: Option<u32>,
    /// End of sequence (`tokenizer.ggml.eos_token_id`).
    pub eos: Option<u32>,
    /// End of turn (`tokenizer.ggml.eot_token_id`), where the file sets it.
    pub eot: Option<u32>,
    /// Unknown (`tokenizer.ggml.unknown_token_id`).
    pub unknown: Option<u32>,
    /// Padding (`tokenizer.ggml.padding_token_id`).
    pub padding: Option<u32>,
}

/// A tokenizer built from a GGUF file.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    kind: VocabKind,
    /// Token texts as stored in the file.
    texts: Vec<String>,
    types: Vec<TokenType>,
    /// What each token decodes to when special tokens are not rendered: empty for control,
    /// unknown and unused tokens.
    pieces: Vec<Vec<u8>>,
    by_text: HashMap<String, u32>,
    special: SpecialTokens,
    end_of_generation: Vec<u32>,
    add_bos: bool,
    add_space_prefix: bool,
    /// Tokens cut out of text before splitting, longest text first.
    specials_by_length: Vec<u32>,
    model: Model,
}

#[derive(Clone, Debug)]
enum Model {
    BytePairs(BytePairs),
    SentencePiece(SentencePiece),
}

/// Byte-level BPE: the pre-tokenizer, and the merges in the shared core.
#[derive(Clone, Debug)]
struct BytePairs {
    pre: PreTokenizer,
    merges: bpe::BytePairs,
}

/// SentencePiece state.
#[derive(Clone, Debug)]
struct SentencePiece {
    scores: Vec<f32>,
    /// `<0xNN>` tokens, else the token of the single character, for byte fallback (256
    /// entries).
    byte_tokens: Vec<Option<u32>>,
}

/// A piece of text between special tokens, or a special token.
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

impl Tokenizer {
    /// Builds the tokenizer from `tokenizer.*` metadata.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, TokenizerError> {
        let path = file.path().to_path_buf();
        let invalid = |key: &'static str, problem: String| TokenizerError::Invalid {
            path: path.clone(),
            key,
            problem,
        };
        let kind = match file.get_str("tokenizer.ggml.model")? {
            "gpt2" => VocabKind::BytePairs,
            "llama" => VocabKind::SentencePiece,
            other => {
                return Err(TokenizerError::UnsupportedModel {
                    path,
                    model: other.to_string(),
                })
            }
        };
        let texts = file.get_str_array("tokenizer.ggml.tokens")?.to_vec();
        let n_vocab = texts.len();
        if n_vocab == 0 || u32::try_from(n_vocab).is_err() {
            return Err(invalid(
                "tokenizer.ggml.tokens",
                format!("{n_vocab} tokens, expected 1 to 2^32 - 1"),
            ));
        }
        let types = match file.get_i32_array_opt("tokenizer.ggml.token_type")? {
            None => vec![TokenType::Normal; n_vocab],
            Some(ids) if ids.len() == n_vocab => ids
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    TokenType::from_id(t).ok_or_else(|| {
                        invalid(
                            "tokenizer.ggml.token_type",
                            format!("token {i} has type {t}, expected 0..=6"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(ids) => {
                return Err(invalid(
                    "tokenizer.ggml.token_type",
                    format!("{} entries for {n_vocab} tokens", ids.len()),
                ))
            }
        };
        let mut by_text = HashMap::with_capacity(n_vocab);
        for (i, t) in texts.iter().enumerate() {
            if let Some(first) = by_text.insert(t.clone(), i as u32) {
                return Err(invalid(
                    "tokenizer.ggml.tokens",
                    format!("token {i} {t:?} repeats token {first}"),
                ));
            }
        }

        let token_id = |key: &'static str| -> Result<Option<u32>, TokenizerError> {
            match file.get_u32_opt(key)? {
                Some(id) if id as usize >= n_vocab => Err(invalid(
                    key,
                    format!("token id {id} is outside the vocabulary of {n_vocab}"),
                )),
                id => Ok(id),
            }
        };
        // SentencePiece vocabularies follow LLaMA's numbering when the file says nothing.
        let spm_default = |id: u32| (kind == VocabKind::SentencePiece).then_some(id);
        let special = SpecialTokens {
            bos: token_id("tokenizer.ggml.bos_token_id")?.or(spm_default(1)),
            eos: token_id("tokenizer.ggml.eos_token_id")?.or(spm_default(2)),
            eot: token_id("tokenizer.ggml.eot_token_id")?,
            unknown: token_id("tokenizer.ggml.unknown_token_id")?.or(spm_default(0)),
            padding: token_id("tokenizer.ggml.padding_token_id")?,
        };

        let pre = match kind {
            VocabKind::SentencePiece => None,
            VocabKind::BytePairs => Some(match file.get_str_opt("tokenizer.ggml.pre")? {
                None => PreTokenizer::Default,
                Some(name) => PreTokenizer::from_name(name).ok_or_else(|| {
                    TokenizerError::UnsupportedPreTokenizer {
                        path: path.clone(),
                        name: name.to_string(),
                        known: "default, gpt-2, smollm, llama3, qwen2 and their aliases"
                            .to_string(),
                    }
                })?,
            }),
        };
        let add_bos = match file.get_bool_opt("tokenizer.ggml.add_bos_token")? {
            Some(add) => add,
            None => kind == VocabKind::SentencePiece || pre == Some(PreTokenizer::Llama3),
        };
        if add_bos && special.bos.is_none() {
            return Err(invalid(
                "tokenizer.ggml.add_bos_token",
                "is set but the file names no BOS token".to_string(),
            ));
        }
        let add_space_prefix = file
            .get_bool_opt("tokenizer.ggml.add_space_prefix")?
            .unwrap_or(kind == VocabKind::SentencePiece);

        let (model, pieces) = match (kind, pre) {
            (VocabKind::BytePairs, Some(pre)) => {
                let merges = file.get_str_array("tokenizer.ggml.merges")?;
                let bpe = BytePairs::new(pre, &texts, merges)
                    .map_err(|problem| invalid("tokenizer.ggml.merges", problem))?;
                let pieces = bpe_pieces(&texts, &types);
                (Model::BytePairs(bpe), pieces)
            }
            _ => {
                let scores = match file.get_f32_array_opt("tokenizer.ggml.scores")? {
                    None => vec![0.0; n_vocab],
                    Some(s) if s.len() == n_vocab => s.to_vec(),
                    Some(s) => {
                        return Err(invalid(
                            "tokenizer.ggml.scores",
                            format!("{} scores for {n_vocab} tokens", s.len()),
                        ))
                    }
                };
                let pieces = spm_pieces(&texts, &types)
                    .map_err(|problem| invalid("tokenizer.ggml.tokens", problem))?;
                let byte_tokens = spm_byte_tokens(&by_text);
                (
                    Model::SentencePiece(SentencePiece {
                        scores,
                        byte_tokens,
                    }),
                    pieces,
                )
            }
        };

        let mut specials_by_length: Vec<u32> = (0..n_vocab as u32)
            .filter(|&id| {
                matches!(
                    types[id as usize],
                    TokenType::Control | TokenType::UserDefined | TokenType::Unknown
                ) && !texts[id as usize].is_empty()
            })
            .collect();
        specials_by_length.sort_by_key(|&id| Reverse(texts[id as usize].len()));

        // Generation ends at the end-of-sequence and end-of-turn tokens, and at the control
        // tokens chat templates close a turn with (llama.cpp finds these by their text too).
        const TURN_ENDS: [&str; 8] = [
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|end_of_text|>",
            "<EOT>",
            "<|eom_id|>",
        ];
        let mut end_of_generation: Vec<u32> = [special.eos, special.eot]
            .into_iter()
            .flatten()
            .chain(
                TURN_ENDS
                    .iter()
                    .filter_map(|t| by_text.get(*t).copied())
                    .filter(|&id| types[id as usize] == TokenType::Control),
            )
            .collect();
        end_of_generation.sort_unstable();
        end_of_generation.dedup();

        Ok(Tokenizer {
            kind,
            texts,
            types,
            pieces,
            by_text,
            special,
            end_of_generation,
            add_bos,
            add_space_prefix,
            specials_by_length,
            model,
        })
    }

    /// The vocabulary kind.
    pub fn kind(&self) -> VocabKind {
        self.kind
    }

    /// The pre-tokenizer of a byte-level BPE vocabulary.
    pub fn pre_tokenizer(&self) -> Option<PreTokenizer> {
        match &self.model {
            Model::BytePairs(bpe) => Some(bpe.pre),
            Model::SentencePiece(_) => None,
        }
    }

    /// The number of tokens.
    pub fn n_vocab(&self) -> usize {
        self.texts.len()
    }

    /// The ids of the tokens with a role.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// Whether prompts start with the BOS token (`tokenizer.ggml.add_bos_token`).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether generation stops at this token: EOS, EOT, or a control token that closes a
    /// turn (`<|im_end|>`, `<|eot_id|>`, `<|endoftext|>`, ...).
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.binary_search(&id).is_ok()
    }

    /// The end-of-generation tokens, sorted.
    pub fn end_of_generation(&self) -> &[u32] {
        &self.end_of_generation
    }

    /// A token's text as stored in the file (`Ġthe`, `▁the`, `<|im_start|>`).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(String::as_str)
    }

    /// A token's type.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// The token whose stored text is exactly `text` (e.g. `"<|im_end|>"`).
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.by_text.get(text).copied()
    }

    /// The bytes token `id` stands for. Control and unknown tokens give their text only when
    /// `special` is set; unused tokens and ids outside the vocabulary give nothing. A token
    /// may be part of a UTF-8 character.
    pub fn token_bytes(&self, id: u32, special: bool) -> &[u8] {
        let i = id as usize;
        match self.types.get(i) {
            Some(TokenType::Control | TokenType::Unknown) if special => self.texts[i].as_bytes(),
            Some(_) => &self.pieces[i],
            None => &[],
        }
    }

    /// The bytes of `ids`, concatenated. For a SentencePiece vocabulary that adds a space
    /// prefix, the space that prefix put before the first word is left out (as SentencePiece
    /// decodes); to decode as tokens arrive use [`StreamDecoder`], which does the same.
    pub fn decode_bytes(&self, ids: &[u32], special: bool) -> Vec<u8> {
        let mut decoder = StreamDecoder::new(self, special);
        let mut out = Vec::new();
        for &id in ids {
            out.extend_from_slice(decoder.next_bytes(id));
        }
        out
    }

    /// The text of `ids`; byte sequences that are not UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32], special: bool) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids, special)).into_owned()
    }

    /// The tokens of `text`, without BOS or EOS. With `parse_special`, the texts of control
    /// tokens in `text` become those tokens (for prompts built from a chat template); without,
    /// they are encoded as plain text. User-defined tokens are always recognised.
    pub fn encode(&self, text: &str, parse_special: bool) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut after_special = true;
        for fragment in self.fragments(text, parse_special) {
            match fragment {
                Fragment::Token(id) => {
                    ids.push(id);
                    after_special = true;
                }
                Fragment::Text(t) => {
                    match &self.model {
                        Model::BytePairs(bpe) => bpe.encode(t, &mut ids),
                        Model::SentencePiece(spm) => {
                            let prefix = self.add_space_prefix && after_special;
                            spm.encode(self, t, prefix, &mut ids)
                        }
                    }
                    after_special = false;
                }
            }
        }
        ids
    }

    /// A prompt's tokens: BOS first when the model wants it, special tokens parsed.
    pub fn encode_prompt(&self, text: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = self
            .special
            .bos
            .filter(|_| self.add_bos)
            .into_iter()
            .collect();
        ids.extend(self.encode(text, true));
        ids
    }

    /// Cuts the special tokens out of `text`, longest first.
    fn fragments<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut fragments = Vec::new();
        if !text.is_empty() {
            fragments.push(Fragment::Text(text));
        }
        for &id in &self.specials_by_length {
            let ty = self.types[id as usize];
            if !parse_special && ty != TokenType::UserDefined {
                continue;
            }
            let needle = self.texts[id as usize].as_str();
            if !fragments
                .iter()
                .any(|f| matches!(f, Fragment::Text(t) if t.contains(needle)))
            {
                continue;
            }
            let mut split = Vec::with_capacity(fragments.len() + 2);
            for fragment in fragments {
                let Fragment::Text(mut rest) = fragment else {
                    split.push(fragment);
                    continue;
                };
                while let Some(at) = rest.find(needle) {
                    if at > 0 {
                        split.push(Fragment::Text(&rest[..at]));
                    }
                    split.push(Fragment::Token(id));
                    rest = &rest[at + needle.len()..];
                }
                if !rest.is_empty() {
                    split.push(Fragment::Text(rest));
                }
            }
            fragments = split;
        }
        fragments
    }
}

/// Decodes tokens one at a time, as a model generates them. A token can end inside a UTF-8
/// character; [`StreamDecoder::push`] returns only whole characters and keeps the rest for
/// the next token.
pub struct StreamDecoder<'t> {
    tokenizer: &'t Tokenizer,
    special: bool,
    /// Whether text has been produced yet (for the SentencePiece space prefix).
    started: bool,
    pending: Vec<u8>,
}

impl<'t> StreamDecoder<'t> {
    /// A decoder at the start of a text; `special` renders control tokens.
    pub fn new(tokenizer: &'t Tokenizer, special: bool) -> Self {
        StreamDecoder {
            tokenizer,
            special,
            started: false,
            pending: Vec::new(),
        }
    }

    /// The bytes of the next token, the space prefix removed from the first text.
    fn next_bytes(&mut self, id: u32) -> &'t [u8] {
        let mut bytes = self.tokenizer.token_bytes(id, self.special);
        if !self.started && !bytes.is_empty() {
            self.started = true;
            if self.tokenizer.add_space_prefix {
                bytes = bytes.strip_prefix(b" ").unwrap_or(bytes);
            }
        }
        bytes
    }

    /// Adds a token; returns the text that is now complete.
    pub fn push(&mut self, id: u32) -> String {
        let bytes = self.next_bytes(id);
        self.pending.extend_from_slice(bytes);
        let complete = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An incomplete character at the end waits; an invalid sequence is final.
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let rest = self.pending.split_off(complete);
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending = rest;
        text
    }

    /// Whatever is left (an incomplete character becomes U+FFFD).
    pub fn finish(self) -> String {
        String::from_utf8_lossy(&self.pending).into_owned()
    }
}

/// The decoded bytes of BPE tokens: normal tokens through the byte alphabet, user-defined
/// tokens as written, nothing for the others (control tokens are rendered on request).
fn bpe_pieces(texts: &[String], types: &[TokenType]) -> Vec<Vec<u8>> {
    let alphabet = byte_alphabet();
    texts
        .iter()
        .zip(types)
        .map(|(text, ty)| match ty {
            // A character outside the alphabet cannot come from the byte-level encoder; it
            // is kept as its own UTF-8 rather than dropped.
            TokenType::Normal => text
                .chars()
                .flat_map(|c| match alphabet.byte_of(c) {
                    Some(b) => vec![b],
                    None => c.to_string().into_bytes(),
                })
                .collect(),
            TokenType::UserDefined => text.as_bytes().to_vec(),
            _ => Vec::new(),
        })
        .collect()
}

/// The decoded bytes of SentencePiece tokens: `▁` is a space, byte tokens are their byte.
fn spm_pieces(texts: &[String], types: &[TokenType]) -> Result<Vec<Vec<u8>>, String> {
    texts
        .iter()
        .zip(types)
        .enumerate()
        .map(|(i, (text, ty))| match ty {
            TokenType::Normal => Ok(text.replace(SPM_SPACE, " ").into_bytes()),
            TokenType::UserDefined => Ok(text.as_bytes().to_vec()),
            TokenType::Byte => parse_byte_token(text)
                .map(|b| vec![b])
                .ok_or_else(|| format!("token {i} {text:?} has the byte type but is not <0xNN>")),
            _ => Ok(Vec::new()),
        })
        .collect()
}

fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    (hex.len() == 2)
        .then(|| u8::from_str_radix(hex, 16).ok())
        .flatten()
}

/// For each byte, the `<0xNN>` token, else the token that is that single (ASCII) character.
fn spm_byte_tokens(by_text: &HashMap<String, u32>) -> Vec<Option<u32>> {
    (0..=255u8)
        .map(|b| {
            by_text
                .get(&format!("<0x{b:02X}>"))
                .or_else(|| {
                    b.is_ascii()
                        .then(|| by_text.get(&char::from(b).to_string()))
                        .flatten()
                })
                .copied()
        })
        .collect()
}

impl BytePairs {
    fn new(pre: PreTokenizer, texts: &[String], merges: &[String]) -> Result<Self, String> {
        let alphabet = byte_alphabet();
        // Tokens spelled outside the alphabet (some special tokens) can never be the result of
        // merging bytes; they are reached through the special-token pass only.
        let tokens: Vec<Option<Vec<u8>>> = texts.iter().map(|t| alphabet.decode(t)).collect();
        let pairs = merges
            .iter()
            .enumerate()
            .map(|(rank, merge)| {
                // The separator is the first space after the first character ("Ġ Ġ" has a
                // left side that is itself a space in the alphabet's spelling of it, never a
                // real one).
                let split = merge
                    .char_indices()
                    .skip(1)
                    .find(|&(_, c)| c == ' ')
                    .map(|(i, _)| (&merge[..i], &merge[i + 1..]));
                let Some((left, right)) = split else {
                    return Err(format!(
                        "merge #{rank} {merge:?} is not two parts separated by a space"
                    ));
                };
                alphabet
                    .decode(left)
                    .zip(alphabet.decode(right))
                    .ok_or_else(|| {
                        format!("merge #{rank} {merge:?} is not spelled in GPT-2's byte alphabet")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BytePairs {
            pre,
            merges: bpe::BytePairs::from_merges(&tokens, pairs),
        })
    }

    fn encode(&self, text: &str, out: &mut Vec<u32>) {
        for word in self.pre.split(text) {
            self.encode_word(word.as_bytes(), out);
        }
    }

    fn encode_word(&self, word: &[u8], out: &mut Vec<u32>) {
        if self.pre.ignores_merges() {
            if let Some(id) = self.merges.token(word) {
                out.push(id);
                return;
            }
        }
        self.merges.encode_word(word, out);
    }
}

impl SentencePiece {
    /// Encodes one text fragment: spaces become `▁`, then characters merge pairwise, the pair
    /// forming the highest-scoring token first (leftmost among equals).
    fn encode(&self, tokenizer: &Tokenizer, text: &str, space_prefix: bool, out: &mut Vec<u32>) {
        let mut escaped = String::with_capacity(text.len() + 3);
        if space_prefix {
            escaped.push(SPM_SPACE);
        }
        escaped.extend(text.chars().map(|c| if c == ' ' { SPM_SPACE } else { c }));

        // Symbols are byte ranges of `escaped`; neighbours are always adjacent in it, so a
        // pair's text is one slice.
        let bounds: Vec<usize> = escaped
            .char_indices()
            .map(|(i, _)| i)
            .chain([escaped.len()])
            .collect();
        let n = bounds.len() - 1;
        let start: Vec<usize> = bounds[..n].to_vec();
        let mut end: Vec<usize> = bounds[1..].to_vec();
        let mut next: Vec<usize> = (1..=n).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; n];
        let mut heap = BinaryHeap::new();
        let candidate = |start: &[usize], end: &[usize], left: usize, right: usize| {
            let text = &escaped[start[left]..end[right]];
            tokenizer.by_text.get(text).map(|&id| SpmPair {
                score: self.scores[id as usize],
                left,
                right,
                len: end[right] - start[left],
            })
        };
        heap.extend((1..n).filter_map(|i| candidate(&start, &end, i - 1, i)));
        while let Some(pair) = heap.pop() {
            let (left, right) = (pair.left, pair.right);
            let current = alive[left]
                && alive[right]
                && next[left] == right
                && end[right] - start[left] == pair.len;
            if !current {
                continue;
            }
            end[left] = end[right];
            alive[right] = false;
            next[left] = next[right];
            if next[right] < n {
                prev[next[right]] = left;
            }
            if prev[left] < n {
                heap.extend(candidate(&start, &end, prev[left], left));
            }
            if next[left] < n {
                heap.extend(candidate(&start, &end, left, next[left]));
            }
        }
        for i in (0..n).filter(|&i| alive[i]) {
            let piece = &escaped[start[i]..end[i]];
            match tokenizer.by_text.get(piece) {
                Some(&id) => out.push(id),
                None => out.extend(
                    piece
                        .bytes()
                        .filter_map(|b| self.byte_tokens[b as usize].or(tokenizer.special.unknown)),
                ),
            }
        }
    }
}

/// A SentencePiece merge candidate: the highest score first, then the leftmost.
#[derive(Debug)]
struct SpmPair {
    score: f32,
    left: usize,
    right: usize,
    len: usize,
}

impl Ord for SpmPair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
    }
}

impl PartialOrd for SpmPair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for SpmPair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for SpmPair {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::gguf::{Array, Value};
    use crate::llm::test_gguf::GgufWriter;

    /// The alphabet spelling of a byte string.
    fn spell(bytes: &[u8]) -> String {
        let alphabet = byte_alphabet();
        bytes.iter().map(|&b| alphabet.char_of(b)).collect()
    }

    /// A byte-level vocabulary: two control tokens, one user-defined token, the 256 bytes,
    /// then merged tokens. Returns the file and a lookup from token text to id.
    fn bpe_file(pre: &str) -> GgufFile {
        let mut tokens = vec![
            "<|endoftext|>".to_string(),
            "<|im_start|>".to_string(),
            "<tool>".to_string(),
        ];
        let mut types = vec![3, 3, 4];
        for b in 0..=255u8 {
            tokens.push(spell(&[b]));
            types.push(1);
        }
        for t in ["he", "Ġt", "Ġthe", "ll", "hell", "hello", "xyz", "hel"] {
            tokens.push(t.to_string());
            types.push(1);
        }
        let merges = [
            "h e", "Ġ t", "Ġt he", "l l", "he ll", "hell o", "x y", "xy z",
        ];
        let mut w = GgufWriter::new(3);
        w.kv("tokenizer.ggml.model", Value::String("gpt2".into()))
            .kv("tokenizer.ggml.pre", Value::String(pre.into()))
            .kv("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)))
            .kv("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
            .kv(
                "tokenizer.ggml.merges",
                Value::Array(Array::String(
                    merges.iter().map(|m| m.to_string()).collect(),
                )),
            )
            .kv("tokenizer.ggml.bos_token_id", Value::U32(1))
            .kv("tokenizer.ggml.eos_token_id", Value::U32(0))
            .kv("tokenizer.ggml.add_bos_token", Value::Bool(false));
        GgufFile::from_bytes("bpe.gguf", w.build()).unwrap()
    }

    fn ids_of(t: &Tokenizer, texts: &[&str]) -> Vec<u32> {
        texts
            .iter()
            .map(|s| t.token_id(s).unwrap_or_else(|| panic!("no token {s:?}")))
            .collect()
    }

    #[test]
    fn byte_pairs_merge_by_rank_and_fall_back_to_bytes() {
        let t = Tokenizer::from_gguf(&bpe_file("smollm")).unwrap();
        assert_eq!(t.kind(), VocabKind::BytePairs);
        assert_eq!(t.pre_tokenizer(), Some(PreTokenizer::Smollm));
        let text = "the hello xyz xy the";
        let ids = t.encode(text, false);
        // "xy" is a merge result but not a token: its bytes are written instead.
        let expected = ids_of(
            &t,
            &["t", "he", "Ġ", "hello", "Ġ", "xyz", "Ġ", "x", "y", "Ġthe"],
        );
        assert_eq!(ids, expected);
        assert_eq!(t.decode(&ids, false), text);
        // Without merges for them, "hel" is "he" + "l" even though "hel" is a token...
        assert_eq!(t.encode("hel", false), ids_of(&t, &["he", "l"]));
        // ...except for Llama 3, which takes a word that is a token as it is.
        let llama3 = Tokenizer::from_gguf(&bpe_file("llama3")).unwrap();
        assert_eq!(llama3.encode("hel", false), ids_of(&t, &["hel"]));
    }

    #[test]
    fn special_tokens_are_parsed_only_when_asked() {
        let t = Tokenizer::from_gguf(&bpe_file("smollm")).unwrap();
        let text = "<|im_start|>the<tool>he<|endoftext|>";
        let parsed = t.encode(text, true);
        let mut expected = vec![1];
        expected.extend(ids_of(&t, &["t", "he"]));
        expected.push(2);
        expected.extend(ids_of(&t, &["he"]));
        expected.push(0);
        assert_eq!(parsed, expected);
        // User-defined tokens are recognised either way; control tokens become plain text.
        let plain = t.encode(text, false);
        assert!(plain.contains(&2) && !plain.contains(&0) && !plain.contains(&1));
        assert_eq!(t.decode(&plain, false), text);
        // Control tokens decode to nothing unless asked.
        assert_eq!(t.decode(&parsed, false), "the<tool>he");
        assert_eq!(t.decode(&parsed, true), text);
        assert!(t.is_end_of_generation(0));
        assert!(!t.is_end_of_generation(1));
        assert_eq!(
            t.encode_prompt("he"),
            ids_of(&t, &["he"]),
            "add_bos is false"
        );
        assert!(t.encode("", true).is_empty());
    }

    #[test]
    fn utf8_split_across_tokens_streams_whole_characters() {
        let t = Tokenizer::from_gguf(&bpe_file("smollm")).unwrap();
        let text = "é日😀x";
        let ids = t.encode(text, false);
        assert_eq!(
            ids.len(),
            text.len(),
            "one token per byte in this vocabulary"
        );
        assert_eq!(t.decode_bytes(&ids[..1], false), [0xC3]);
        let mut stream = StreamDecoder::new(&t, false);
        let chunks: Vec<String> = ids.iter().map(|&id| stream.push(id)).collect();
        assert_eq!(chunks.concat() + &stream.finish(), text);
        assert_eq!(chunks[0], "", "half of é waits");
        assert_eq!(chunks[1], "é");
        let mut stream = StreamDecoder::new(&t, false);
        stream.push(ids[0]);
        assert_eq!(stream.finish(), "\u{FFFD}");
    }

    #[test]
    fn bad_vocabularies_are_refused_with_the_key() {
        let build = |edit: &dyn Fn(&mut GgufWriter)| {
            let mut w = GgufWriter::new(3);
            w.kv(
                "tokenizer.ggml.tokens",
                Value::Array(Array::String(vec!["a".into(), "b".into()])),
            );
            edit(&mut w);
            let file = GgufFile::from_bytes("bad.gguf", w.build()).unwrap();
            Tokenizer::from_gguf(&file).unwrap_err().to_string()
        };
        let err = build(&|w| {
            w.kv("tokenizer.ggml.model", Value::String("bert".into()));
        });
        assert!(
            err.contains("bad.gguf") && err.contains("\"bert\""),
            "{err}"
        );
        let err = build(&|w| {
            w.kv("tokenizer.ggml.model", Value::String("gpt2".into()))
                .kv("tokenizer.ggml.pre", Value::String("deepseek-v3".into()));
        });
        assert!(
            err.contains("\"deepseek-v3\"") && err.contains("smollm"),
            "{err}"
        );
        let err = build(&|w| {
            w.kv("tokenizer.ggml.model", Value::String("gpt2".into()))
                .kv("tokenizer.ggml.pre", Value::String("gpt-2".into()));
        });
        assert!(
            err.contains("tokenizer.ggml.merges") && err.contains("missing"),
            "{err}"
        );
        let err = build(&|w| {
            w.kv("tokenizer.ggml.model", Value::String("gpt2".into()))
                .kv(
                    "tokenizer.ggml.merges",
                    Value::Array(Array::String(vec!["ab".into()])),
                );
        });
        assert!(err.contains("merge #0") && err.contains("space"), "{err}");
        let err = build(&|w| {
            w.kv("tokenizer.ggml.model", Value::String("llama".into()))
                .kv("tokenizer.ggml.eos_token_id", Value::U32(7));
        });
        assert!(
            err.contains("eos_token_id") && err.contains("outside the vocabulary"),
            "{err}"
        );
        let err = build(&|w| {
            w.kv("tokenizer.ggml.model", Value::String("llama".into()))
                .kv(
                    "tokenizer.ggml.token_type",
                    Value::Array(Array::I32(vec![1])),
                );
        });
        assert!(err.contains("1 entries for 2 tokens"), "{err}");
        let err = build(&|w| {
            w.kv("tokenizer.ggml.model", Value::String("llama".into()))
                .kv(
                    "tokenizer.ggml.token_type",
                    Value::Array(Array::I32(vec![1, 9])),
                );
        });
        assert!(err.contains("token 1 has type 9"), "{err}");
    }

    /// A SentencePiece vocabulary: unknown, BOS, EOS, the 256 byte tokens, then pieces with
    /// scores chosen so the merge order can be worked out by hand (see the test).
    fn spm_tokenizer() -> Tokenizer {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut types = vec![2, 3, 3];
        let mut scores = vec![0.0, 0.0, 0.0];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
            scores.push(0.0);
        }
        let pieces: [(&str, f32); 17] = [
            ("▁", -1.0),
            ("h", -1.0),
            ("e", -1.0),
            ("l", -1.0),
            ("o", -1.0),
            ("w", -1.0),
            ("r", -1.0),
            ("d", -1.0),
            ("▁h", -2.0),
            ("▁w", -2.5),
            ("ll", -3.0),
            ("or", -3.5),
            ("▁he", -4.0),
            ("ld", -4.5),
            ("llo", -5.0),
            ("▁wor", -5.5),
            ("▁hello", -6.0),
        ];
        for (piece, score) in pieces.into_iter().chain([("▁world", -7.0)]) {
            tokens.push(piece.to_string());
            types.push(1);
            scores.push(score);
        }
        let mut w = GgufWriter::new(3);
        w.kv("tokenizer.ggml.model", Value::String("llama".into()))
            .kv("tokenizer.ggml.tokens", Value::Array(Array::String(tokens)))
            .kv("tokenizer.ggml.token_type", Value::Array(Array::I32(types)))
            .kv("tokenizer.ggml.scores", Value::Array(Array::F32(scores)));
        Tokenizer::from_gguf(&GgufFile::from_bytes("spm.gguf", w.build()).unwrap()).unwrap()
    }

    #[test]
    fn sentencepiece_merges_by_score() {
        let t = spm_tokenizer();
        assert_eq!(t.kind(), VocabKind::SentencePiece);
        assert_eq!(t.special().bos, Some(1), "LLaMA's numbering by default");
        assert_eq!(t.special().unknown, Some(0));
        assert!(t.add_bos());
        // "▁hello▁world": ▁h (-2), ▁w (-2.5), ll (-3), or (-3.5), ▁he (-4), ld (-4.5),
        // llo (-5), ▁wor (-5.5), ▁hello (-6), ▁world (-7): two tokens.
        let ids = t.encode("hello world", false);
        assert_eq!(ids, ids_of(&t, &["▁hello", "▁world"]));
        assert_eq!(t.decode(&ids, false), "hello world");
        let prompt = t.encode_prompt("hello world");
        assert_eq!(prompt[0], 1);
        assert_eq!(t.decode(&prompt, false), "hello world");
        assert_eq!(t.decode(&prompt, true), "<s> hello world");
    }

    #[test]
    fn sentencepiece_ties_go_left_and_unknown_characters_become_bytes() {
        let t = spm_tokenizer();
        // "▁lll": both (l, l) pairs score -3; the left one merges, the rest cannot.
        assert_eq!(t.encode("lll", false), ids_of(&t, &["▁", "ll", "l"]));
        // "é" and "i" have no piece: their UTF-8 bytes are written as byte tokens.
        let ids = t.encode("hé hi", false);
        assert_eq!(ids, ids_of(&t, &["▁h", "<0xC3>", "<0xA9>", "▁h", "<0x69>"]));
        assert_eq!(t.decode(&ids, false), "hé hi");
        // After a special token the next text gets the space prefix again.
        let ids = t.encode("<s>hello", true);
        assert_eq!(ids, ids_of(&t, &["<s>", "▁hello"]));
        assert_eq!(t.encode("", false), Vec::<u32>::new());
    }
}
