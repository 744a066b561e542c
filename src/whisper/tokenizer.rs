//! Whisper byte-level BPE tokenizer and its special tokens.
//!
//! Whisper's vocabularies are GPT-2's byte-level BPE (English-only models) or its 50,257-token
//! multilingual sibling, followed by special tokens: end of text, start of transcript, one
//! token per language, the task and prompt markers, and 1,501 timestamps `<|0.00|>` to
//! `<|30.00|>` in steps of 20 ms.
//!
//! Encoding needs no merges list: these vocabularies number their tokens in merge order, so
//! BPE repeatedly merges the adjacent pair whose concatenation has the lowest token id (the
//! rank rule tiktoken uses; the merge loop is the one the reply model's tokenizer uses too,
//! [`crate::util::bpe`]). The tests check the result against the reference tokenizer.

use std::io;
use std::path::{Path, PathBuf};

use crate::util::bpe::{byte_alphabet, BytePairs, RankError};
use crate::util::pretokenize::PreTokenizer;

/// Language codes in the order of their tokens (`<|en|>` follows `<|startoftranscript|>`).
/// Models with 99 languages use the first 99; large-v3 adds Cantonese.
pub const LANGUAGES: [&str; 100] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
    "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
    "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
    "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
    "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su", "yue",
];

/// Number of timestamp tokens: 0.00 s to 30.00 s in steps of [`TIMESTAMP_STEP`].
pub const N_TIMESTAMPS: usize = 1501;
/// Seconds between consecutive timestamp tokens.
pub const TIMESTAMP_STEP: f32 = 0.02;

/// Regular (non-special) tokens in the English-only vocabulary; the multilingual one has one
/// more.
const N_REGULAR_ENGLISH: usize = 50_256;
/// Vocabulary size of the English-only models; the multilingual ones are larger.
const N_VOCAB_ENGLISH: usize = 51_864;
/// Special tokens other than languages and timestamps: end of text, start of transcript,
/// translate, transcribe, start of LM, start of previous, no speech, no timestamps.
const N_FIXED_SPECIALS: usize = 8;

/// What went wrong loading a vocabulary.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The vocabulary file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A line of the vocabulary file is not a token in GPT-2's byte-to-unicode form.
    #[error("{} line {line}: {detail}", path.display())]
    Garbled {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// An entry of a `vocabulary.json` is not a token in GPT-2's byte-to-unicode form, or the
    /// file is not a JSON list of strings.
    #[error("{} entry {index}: {detail}", path.display())]
    GarbledEntry {
        /// The file.
        path: PathBuf,
        /// 0-based position in the list (the token id).
        index: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// A special token Whisper needs is absent or out of place.
    #[error("{}: {detail}", path.display())]
    Specials {
        /// The file.
        path: PathBuf,
        /// Which token and what was expected.
        detail: String,
    },
    /// A whisper.cpp vocabulary whose size or tokens do not fit a Whisper model.
    #[error("ggml vocabulary: {0}")]
    Ggml(String),
}

/// Ids of Whisper's special tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `<|endoftext|>`; every id below it is a regular token.
    pub eot: u32,
    /// `<|startoftranscript|>`.
    pub sot: u32,
    /// `<|translate|>`.
    pub translate: u32,
    /// `<|transcribe|>`.
    pub transcribe: u32,
    /// `<|startoflm|>`.
    pub sot_lm: u32,
    /// `<|startofprev|>`.
    pub sot_prev: u32,
    /// `<|nospeech|>` (called `<|nocaptions|>` in older vocabularies).
    pub no_speech: u32,
    /// `<|notimestamps|>`.
    pub no_timestamps: u32,
    /// `<|0.00|>`; the timestamp for `k * 0.02` s is `timestamp_begin + k`.
    pub timestamp_begin: u32,
    /// Language codes and their token ids, in vocabulary order (Hebrew is "he" even where the
    /// vocabulary spells it `<|iw|>`).
    pub languages: Vec<(String, u32)>,
}

/// Whisper's tokenizer: token bytes by id, BPE ranks and the special tokens.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    /// Bytes of every token; for special tokens their textual form.
    tokens: Vec<Vec<u8>>,
    /// The regular tokens (ids below end-of-text), numbered in merge order.
    bpe: BytePairs,
    special: SpecialTokens,
}

impl Tokenizer {
    /// Loads the vocabulary of a CTranslate2 Whisper model directory: `vocabulary.txt`, one
    /// token per line in id order, in GPT-2's byte-to-unicode form, special and timestamp
    /// tokens included (the multilingual vocabulary has one empty regular token, id 50256: an
    /// empty line); or, where there is none, `vocabulary.json`, the same tokens as a JSON list
    /// (what CTranslate2's converters write since version 3).
    pub fn from_ct2_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let path = Self::ct2_vocabulary_file(dir);
        let raw = std::fs::read(&path).map_err(|source| TokenizerError::Io {
            path: path.clone(),
            source,
        })?;
        if path.extension().is_some_and(|e| e == "json") {
            Self::from_ct2_json(path, &raw)
        } else {
            Self::from_ct2_vocabulary(path, &raw)
        }
    }

    /// The vocabulary file [`Tokenizer::from_ct2_dir`] reads in `dir`.
    pub fn ct2_vocabulary_file(dir: &Path) -> PathBuf {
        let (txt, json) = (dir.join("vocabulary.txt"), dir.join("vocabulary.json"));
        if !txt.exists() && json.exists() {
            json
        } else {
            txt
        }
    }

    /// Parses the bytes of a `vocabulary.json` (a JSON list of the tokens in id order); `path`
    /// only names the file in errors.
    pub fn from_ct2_json(path: PathBuf, raw: &[u8]) -> Result<Self, TokenizerError> {
        let texts: Vec<String> =
            serde_json::from_slice(raw).map_err(|e| TokenizerError::GarbledEntry {
                path: path.clone(),
                index: 0,
                detail: format!("not a JSON list of token strings: {e}"),
            })?;
        let garbled = |id: usize, detail: String| TokenizerError::GarbledEntry {
            path: path.clone(),
            index: id,
            detail,
        };
        Self::from_token_texts(&path, texts.iter().map(String::as_str), garbled)
    }

    /// Parses the bytes of a `vocabulary.txt` as [`Tokenizer::from_ct2_dir`] does; `path`
    /// only names the file in errors.
    pub fn from_ct2_vocabulary(path: PathBuf, raw: &[u8]) -> Result<Self, TokenizerError> {
        let text = std::str::from_utf8(raw).map_err(|e| TokenizerError::Garbled {
            path: path.clone(),
            line: 1 + raw[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            detail: "not UTF-8 text".to_string(),
        })?;
        let mut lines: Vec<&str> = text.split('\n').collect();
        if lines.last() == Some(&"") {
            lines.pop();
        }
        let lines = lines
            .into_iter()
            .map(|line| line.strip_suffix('\r').unwrap_or(line));
        let garbled = |id: usize, detail: String| TokenizerError::Garbled {
            path: path.clone(),
            line: id + 1,
            detail,
        };
        Self::from_token_texts(&path, lines, garbled)
    }

    /// The tokenizer of the tokens' texts in id order (GPT-2's byte-to-unicode form); `garbled`
    /// says where token `id` is in the file.
    fn from_token_texts<'t>(
        path: &Path,
        texts: impl Iterator<Item = &'t str>,
        garbled: impl Fn(usize, String) -> TokenizerError,
    ) -> Result<Self, TokenizerError> {
        let alphabet = byte_alphabet();
        let tokens = texts
            .enumerate()
            .map(|(id, text)| {
                alphabet.decode(text).ok_or_else(|| {
                    garbled(
                        id,
                        format!("{text:?} is not in GPT-2's byte-to-unicode alphabet"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let special = find_specials(&tokens).map_err(|detail| TokenizerError::Specials {
            path: path.to_path_buf(),
            detail,
        })?;
        let bpe = regular_bpe(&tokens, special.eot)
            .map_err(|(id, e)| garbled(id as usize, e.to_string()))?;
        Ok(Self::assemble(tokens, bpe, special))
    }

    /// Builds the tokenizer of a whisper.cpp ggml file from its regular tokens (raw bytes, in
    /// id order) and the model's `n_vocab`, which implies the special tokens: 51864 for the
    /// English-only models, 51865 for the multilingual ones, 51866 for large-v3 (100
    /// languages). Entries past the regular vocabulary (50,256 tokens English-only, 50,257
    /// multilingual), which some converters write, are replaced by the implied specials, as
    /// whisper.cpp does.
    pub fn from_ggml_vocab(tokens: Vec<Vec<u8>>, n_vocab: usize) -> Result<Self, TokenizerError> {
        let multilingual = n_vocab > N_VOCAB_ENGLISH;
        let n_regular = N_REGULAR_ENGLISH + usize::from(multilingual);
        let n_languages = n_vocab
            .checked_sub(n_regular + N_FIXED_SPECIALS + N_TIMESTAMPS)
            .filter(|n| (1..=LANGUAGES.len()).contains(n))
            .ok_or_else(|| {
                TokenizerError::Ggml(format!(
                    "n_vocab {n_vocab} is not a Whisper vocabulary size (expected \
                     {N_VOCAB_ENGLISH} English-only, {} or {} multilingual)",
                    N_VOCAB_ENGLISH + 1,
                    N_VOCAB_ENGLISH + 2
                ))
            })?;
        if tokens.len() < n_regular || tokens.len() > n_vocab {
            return Err(TokenizerError::Ggml(format!(
                "{} tokens, expected {n_regular} regular tokens (up to {n_vocab} in all) for \
                 n_vocab {n_vocab}",
                tokens.len()
            )));
        }
        let mut tokens = tokens;
        tokens.truncate(n_regular);
        tokens.reserve(n_vocab - n_regular);
        let names = ["endoftext", "startoftranscript"]
            .into_iter()
            .chain(LANGUAGES[..n_languages].iter().copied())
            .chain([
                "translate",
                "transcribe",
                "startoflm",
                "startofprev",
                "nospeech",
                "notimestamps",
            ]);
        tokens.extend(names.map(|name| format!("<|{name}|>").into_bytes()));
        tokens.extend((0..N_TIMESTAMPS).map(|k| timestamp_text(k).into_bytes()));
        let special = find_specials(&tokens).map_err(TokenizerError::Ggml)?;
        let bpe = regular_bpe(&tokens, special.eot)
            .map_err(|(_, e)| TokenizerError::Ggml(e.to_string()))?;
        Ok(Self::assemble(tokens, bpe, special))
    }

    fn assemble(tokens: Vec<Vec<u8>>, bpe: BytePairs, special: SpecialTokens) -> Self {
        Tokenizer {
            tokens,
            bpe,
            special,
        }
    }

    /// Number of tokens, special and timestamp tokens included.
    pub fn n_vocab(&self) -> usize {
        self.tokens.len()
    }

    /// Whether this is a multilingual vocabulary (51,865 tokens or more).
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab() > N_VOCAB_ENGLISH
    }

    /// The special token ids.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// The bytes of token `id`; for special and timestamp tokens their textual form
    /// (`<|endoftext|>`, `<|1.24|>`). Empty for an id outside the vocabulary.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.tokens.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// The text of `ids`: the bytes of the regular tokens (ids below end-of-text) joined and
    /// read as UTF-8, invalid sequences replaced by U+FFFD. Special and timestamp tokens are
    /// skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .filter(|&&id| id < self.special.eot)
            .flat_map(|&id| self.token_bytes(id).iter().copied())
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Token ids of `text`: GPT-2's pre-tokenization, then byte-level BPE on each piece.
    /// Special-token strings in `text` are encoded as plain text.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for piece in self.pieces(text) {
            self.bpe.encode_word(piece.as_bytes(), &mut ids);
        }
        ids
    }

    /// Splits `text` into words by GPT-2's pattern, as Whisper's tokenizer does.
    fn pieces<'t>(&self, text: &'t str) -> Vec<&'t str> {
        PreTokenizer::Gpt2.split(text)
    }

    /// The token of a language code such as `"en"` or `"de"` (Hebrew: "he" or "iw").
    pub fn language_token(&self, code: &str) -> Option<u32> {
        let code = normalize_language(code);
        self.special
            .languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|&(_, id)| id)
    }

    /// The language code of a language token.
    pub fn language_code(&self, token: u32) -> Option<&str> {
        self.special
            .languages
            .iter()
            .find(|&&(_, id)| id == token)
            .map(|(code, _)| code.as_str())
    }

    /// The timestamp token nearest to `seconds`, clamped to 0..=30 s.
    pub fn timestamp_token(&self, seconds: f32) -> u32 {
        let step = (seconds / TIMESTAMP_STEP).round();
        let k = step.clamp(0.0, (N_TIMESTAMPS - 1) as f32) as u32;
        self.special.timestamp_begin + k
    }

    /// The time of a timestamp token, or `None` for any other token.
    pub fn timestamp_seconds(&self, token: u32) -> Option<f32> {
        let k = token.checked_sub(self.special.timestamp_begin)?;
        (token < self.tokens.len() as u32).then_some(k as f32 * TIMESTAMP_STEP)
    }
}

/// Hebrew is `<|iw|>` (its pre-1989 code) in some vocabularies; openai-whisper calls it "he".
fn normalize_language(code: &str) -> &str {
    if code == "iw" {
        "he"
    } else {
        code
    }
}

fn timestamp_text(k: usize) -> String {
    format!("<|{}.{:02}|>", k / 50, (k % 50) * 2)
}

/// The BPE of the regular tokens (ids below `eot`), which must be distinct and include every
/// single byte; on failure, the token id to blame (`eot` for a missing byte) and why.
fn regular_bpe(tokens: &[Vec<u8>], eot: u32) -> Result<BytePairs, (u32, RankError)> {
    BytePairs::from_ranked_tokens(&tokens[..eot as usize]).map_err(|e| match e {
        RankError::Repeated { id, .. } => (id, e),
        RankError::MissingByte { .. } => (eot, e),
    })
}

/// Finds the special tokens by their text and checks Whisper's layout: end of text, start of
/// transcript, the languages, translate, transcribe, start of LM, start of previous, no
/// speech, no timestamps, then the 1,501 timestamps to the end of the vocabulary.
fn find_specials(tokens: &[Vec<u8>]) -> Result<SpecialTokens, String> {
    let find = |names: &[&str]| -> Result<u32, String> {
        tokens
            .iter()
            .position(|t| names.iter().any(|n| t.as_slice() == n.as_bytes()))
            .map(|i| i as u32)
            .ok_or_else(|| format!("no {} token", names.join(" or ")))
    };
    let eot = find(&["<|endoftext|>"])?;
    let sot = find(&["<|startoftranscript|>"])?;
    let translate = find(&["<|translate|>"])?;
    let timestamp_begin = find(&["<|0.00|>"])?;
    let languages: Vec<(String, u32)> = (sot + 1..translate)
        .map(|id| {
            let text = &tokens[id as usize];
            text.strip_prefix(b"<|")
                .and_then(|t| t.strip_suffix(b"|>"))
                .and_then(|code| std::str::from_utf8(code).ok())
                .filter(|code| (2..=3).contains(&code.len()))
                .map(|code| (normalize_language(code).to_string(), id))
                .ok_or_else(|| {
                    format!(
                        "token {id} {:?} between <|startoftranscript|> and <|translate|> is not \
                         a language token <|xx|>",
                        String::from_utf8_lossy(text)
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let special = SpecialTokens {
        eot,
        sot,
        translate,
        transcribe: find(&["<|transcribe|>"])?,
        sot_lm: find(&["<|startoflm|>"])?,
        sot_prev: find(&["<|startofprev|>"])?,
        no_speech: find(&["<|nospeech|>", "<|nocaptions|>"])?,
        no_timestamps: find(&["<|notimestamps|>"])?,
        timestamp_begin,
        languages,
    };
    let tail = [
        special.translate,
        special.transcribe,
        special.sot_lm,
        special.sot_prev,
        special.no_speech,
        special.no_timestamps,
        special.timestamp_begin,
    ];
    let in_order = sot == eot + 1
        && !special.languages.is_empty()
        && tail.windows(2).all(|w| w[0] + 1 == w[1]);
    if !in_order {
        return Err(format!(
            "special tokens out of Whisper's order (endoftext {eot}, startoftranscript {sot}, \
             {} languages, translate {}, transcribe {}, startoflm {}, startofprev {}, nospeech \
             {}, notimestamps {}, 0.00 {}): expected consecutive ids",
            special.languages.len(),
            special.translate,
            special.transcribe,
            special.sot_lm,
            special.sot_prev,
            special.no_speech,
            special.no_timestamps,
            special.timestamp_begin
        ));
    }
    let expected_len = timestamp_begin as usize + N_TIMESTAMPS;
    if tokens.len() != expected_len {
        return Err(format!(
            "{} tokens, expected {expected_len} ({N_TIMESTAMPS} timestamps from <|0.00|> at \
             {timestamp_begin})",
            tokens.len()
        ));
    }
    if let Some(k) = (0..N_TIMESTAMPS)
        .find(|&k| tokens[timestamp_begin as usize + k] != timestamp_text(k).as_bytes())
    {
        return Err(format!(
            "token {} is {:?}, expected {}",
            timestamp_begin as usize + k,
            String::from_utf8_lossy(&tokens[timestamp_begin as usize + k]),
            timestamp_text(k)
        ));
    }
    Ok(special)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn model_dir(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(name);
        assert!(
            dir.join("vocabulary.txt").is_file(),
            "{} is missing: install the models with `voxd models fetch` (or scripts/setup.sh in a checkout)",
            dir.display()
        );
        dir
    }

    fn load(name: &str) -> Tokenizer {
        Tokenizer::from_ct2_dir(&model_dir(name)).unwrap()
    }

    #[derive(Deserialize)]
    struct Expected {
        openai_whisper: Vec<Vec<u32>>,
        faster_whisper: Vec<Vec<u32>>,
    }

    #[derive(Deserialize)]
    struct TokenFixture {
        texts: Vec<String>,
        models: HashMap<String, Expected>,
    }

    fn fixture() -> TokenFixture {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/features/tokens.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// A scratch directory removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("voxd-tokenizer-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn encodes_like_openai_whisper() {
        let fixture = fixture();
        for (name, expected) in &fixture.models {
            let tok = load(name);
            for (text, want) in fixture.texts.iter().zip(&expected.openai_whisper) {
                assert_eq!(&tok.encode(text), want, "{name}: {text:?}");
            }
        }
    }

    /// faster-whisper agrees except where its multilingual tokenizer.json, which lacks the
    /// merge "Ġ t" (id 256), cannot build tokens that start with " t".
    #[test]
    fn encodes_like_faster_whisper_but_for_its_missing_merge() {
        let fixture = fixture();
        for (name, expected) in &fixture.models {
            let tok = load(name);
            for (text, want) in fixture.texts.iter().zip(&expected.faster_whisper) {
                let got = tok.encode(text);
                if name == "base" && text.contains(" t") {
                    assert_ne!(&got, want, "{name}: {text:?}");
                    assert_eq!(tok.decode(want), *text);
                } else {
                    assert_eq!(&got, want, "{name}: {text:?}");
                }
            }
        }
    }

    #[test]
    fn decode_inverts_encode() {
        let extra = [
            "Ask not what your country can do for you.",
            "  \t\n mixed   whitespace \u{3000}ideographic",
            "a\u{0301} combining, ﬁ ligature, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
            "<|endoftext|> stays text",
        ];
        for name in ["tiny.en", "base"] {
            let tok = load(name);
            for text in fixture().texts.iter().map(String::as_str).chain(extra) {
                assert_eq!(tok.decode(&tok.encode(text)), text, "{name}");
            }
        }
    }

    #[test]
    fn pre_tokenizer_follows_gpt2() {
        let tok = load("tiny.en");
        let cases: [(&str, &[&str]); 6] = [
            ("Hello world", &["Hello", " world"]),
            ("a  b", &["a", " ", " b"]),
            ("x \n\ny", &["x", " \n", "\n", "y"]),
            ("end  ", &["end", "  "]),
            ("they'll 'RE", &["they", "'ll", " '", "RE"]),
            ("12ab!?", &["12", "ab", "!?"]),
        ];
        for (text, want) in cases {
            assert_eq!(tok.pieces(text), want, "{text:?}");
        }
    }

    #[test]
    fn special_tokens_of_both_models() {
        let en = load("tiny.en");
        assert_eq!((en.n_vocab(), en.is_multilingual()), (51_864, false));
        let s = en.special();
        assert_eq!(
            [
                s.eot,
                s.sot,
                s.translate,
                s.transcribe,
                s.sot_lm,
                s.sot_prev
            ],
            [50_256, 50_257, 50_357, 50_358, 50_359, 50_360]
        );
        assert_eq!(
            [s.no_speech, s.no_timestamps, s.timestamp_begin],
            [50_361, 50_362, 50_363]
        );
        assert_eq!(s.languages.len(), 99);

        let multi = load("base");
        assert_eq!((multi.n_vocab(), multi.is_multilingual()), (51_865, true));
        let s = multi.special();
        assert_eq!(
            [
                s.eot,
                s.sot,
                s.translate,
                s.transcribe,
                s.sot_lm,
                s.sot_prev
            ],
            [50_257, 50_258, 50_358, 50_359, 50_360, 50_361]
        );
        assert_eq!(
            [s.no_speech, s.no_timestamps, s.timestamp_begin],
            [50_362, 50_363, 50_364]
        );
        let codes: Vec<&str> = s.languages.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(codes, LANGUAGES[..99]);

        assert_eq!(multi.language_token("en"), Some(50_259));
        assert_eq!(multi.language_token("de"), Some(50_261));
        assert_eq!(multi.language_token("xx"), None);
        assert_eq!(multi.language_code(50_261), Some("de"));
        assert_eq!(multi.language_code(50_000), None);
        assert_eq!(en.language_token("en"), Some(50_258));
        // tiny.en spells Hebrew <|iw|>, base <|he|>: both answer to either code.
        assert_eq!(en.language_token("he"), Some(50_278));
        assert_eq!(en.language_token("iw"), Some(50_278));
        assert_eq!(multi.language_token("iw"), Some(50_279));
        assert_eq!(multi.language_code(50_279), Some("he"));

        assert_eq!(multi.token_bytes(50_257), b"<|endoftext|>");
        assert_eq!(multi.token_bytes(50_364 + 62), b"<|1.24|>");
        assert_eq!(multi.token_bytes(51_864), b"<|30.00|>");
        assert_eq!(multi.token_bytes(60_000), b"");
        assert_eq!(multi.token_bytes(50_256), b"");
        assert_eq!(en.token_bytes(50_256), b"<|endoftext|>");
    }

    #[test]
    fn timestamps() {
        let tok = load("base");
        let begin = tok.special().timestamp_begin;
        assert_eq!(tok.timestamp_token(0.0), begin);
        assert_eq!(tok.timestamp_token(1.24), begin + 62);
        assert_eq!(tok.timestamp_token(1.249), begin + 62);
        assert_eq!(tok.timestamp_token(99.0), begin + 1500);
        assert_eq!(tok.timestamp_token(-3.0), begin);
        assert_eq!(tok.timestamp_token(f32::NAN), begin);
        assert_eq!(
            tok.timestamp_seconds(begin + 62),
            Some(62.0 * TIMESTAMP_STEP)
        );
        assert_eq!(tok.timestamp_seconds(begin - 1), None);
        assert_eq!(tok.timestamp_seconds(begin + 1501), None);
    }

    #[test]
    fn decode_skips_specials_and_replaces_broken_utf8() {
        let tok = load("base");
        let s = tok.special().clone();
        let mut ids = vec![
            s.sot,
            tok.language_token("en").unwrap(),
            s.transcribe,
            s.timestamp_begin,
        ];
        ids.extend(tok.encode(" Hello"));
        ids.extend([s.timestamp_begin + 50, s.eot, 99_999]);
        assert_eq!(tok.decode(&ids), " Hello");
        // "é" is the two bytes C3 A9; the first alone is not UTF-8.
        let byte_c3 = tok.bpe.token(&[0xc3]).unwrap();
        let byte_a9 = tok.bpe.token(&[0xa9]).unwrap();
        assert_eq!(tok.decode(&[byte_c3, byte_a9]), "é");
        assert_eq!(tok.decode(&[byte_c3]), "\u{fffd}");
    }

    #[test]
    fn ggml_vocab_implies_the_specials() {
        for name in ["tiny.en", "base"] {
            let ct2 = load(name);
            let regular: Vec<Vec<u8>> = (0..ct2.special().eot)
                .map(|id| ct2.token_bytes(id).to_vec())
                .collect();
            let ggml = Tokenizer::from_ggml_vocab(regular.clone(), ct2.n_vocab()).unwrap();
            let mut want = ct2.special().clone();
            let mut got = ggml.special().clone();
            want.no_speech = 0;
            got.no_speech = 0;
            assert_eq!(got, want, "{name}");
            assert_eq!(ggml.special().no_speech, ct2.special().no_speech);
            assert_eq!(ggml.is_multilingual(), ct2.is_multilingual());
            let text = "Turn on the kitchen lights, it's 7:30!";
            assert_eq!(ggml.encode(text), ct2.encode(text));
            assert_eq!(
                ggml.token_bytes(ct2.special().timestamp_begin + 1),
                b"<|0.02|>"
            );
        }
        // large-v3: 100 languages, Cantonese last.
        let base = load("base");
        let regular: Vec<Vec<u8>> = (0..50_257)
            .map(|id| base.token_bytes(id).to_vec())
            .collect();
        let v3 = Tokenizer::from_ggml_vocab(regular.clone(), 51_866).unwrap();
        let s = v3.special();
        assert_eq!(
            (s.eot, s.sot, s.translate, s.timestamp_begin),
            (50_257, 50_258, 50_359, 50_365)
        );
        assert_eq!(v3.language_token("yue"), Some(50_358));
        assert_eq!(v3.n_vocab(), 51_866);

        let err = Tokenizer::from_ggml_vocab(regular.clone(), 51_000).unwrap_err();
        assert!(err.to_string().contains("51000"), "{err}");
        let err = Tokenizer::from_ggml_vocab(regular[..100].to_vec(), 51_865).unwrap_err();
        assert!(err.to_string().contains("100 tokens"), "{err}");
        let mut dup = regular;
        dup[500] = dup[400].clone();
        let err = Tokenizer::from_ggml_vocab(dup, 51_865).unwrap_err();
        assert!(err.to_string().contains("token 500"), "{err}");
    }

    /// CTranslate2's newer converters write the tokens as a JSON list, `vocabulary.json`: the
    /// same tokenizer, read where there is no `vocabulary.txt`; a bad entry is named by its
    /// position, a file that is no list of strings by its name.
    #[test]
    fn vocabulary_json_reads_like_vocabulary_txt() {
        let real = std::fs::read_to_string(model_dir("tiny.en").join("vocabulary.txt")).unwrap();
        let mut tokens: Vec<&str> = real.lines().collect();
        let dir = TempDir::new();
        let write = |tokens: &[&str]| {
            let json = serde_json::to_string(tokens).unwrap();
            std::fs::write(dir.0.join("vocabulary.json"), json).unwrap();
        };
        write(&tokens);
        assert_eq!(
            Tokenizer::ct2_vocabulary_file(&dir.0),
            dir.0.join("vocabulary.json")
        );
        let from_json = Tokenizer::from_ct2_dir(&dir.0).unwrap();
        let from_txt = load("tiny.en");
        assert_eq!(from_json.tokens, from_txt.tokens);
        assert_eq!(from_json.special(), from_txt.special());
        let text = "Ask not what your country can do for you.";
        assert_eq!(from_json.encode(text), from_txt.encode(text));

        tokens[1234] = "caf€";
        write(&tokens);
        let err = Tokenizer::from_ct2_dir(&dir.0).unwrap_err().to_string();
        assert!(
            err.contains("vocabulary.json entry 1234") && err.contains("caf€"),
            "{err}"
        );
        std::fs::write(dir.0.join("vocabulary.json"), "{\"not\": \"a list\"}").unwrap();
        let err = Tokenizer::from_ct2_dir(&dir.0).unwrap_err().to_string();
        assert!(
            err.contains("vocabulary.json") && err.contains("not a JSON list"),
            "{err}"
        );
    }

    #[test]
    fn bad_vocabulary_files_name_the_file() {
        let real = std::fs::read_to_string(model_dir("tiny.en").join("vocabulary.txt")).unwrap();
        let lines: Vec<&str> = real.lines().collect();
        let dir = TempDir::new();
        let check = |content: &[u8], what: &str| {
            let sub = dir.0.join(what);
            std::fs::create_dir_all(&sub).unwrap();
            std::fs::write(sub.join("vocabulary.txt"), content).unwrap();
            let err = Tokenizer::from_ct2_dir(&sub).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("{what}/vocabulary.txt")),
                "{what}: {msg}"
            );
            err
        };

        let err = Tokenizer::from_ct2_dir(&dir.0.join("nowhere")).unwrap_err();
        assert!(matches!(err, TokenizerError::Io { .. }), "{err}");
        assert!(err.to_string().contains("nowhere/vocabulary.txt"), "{err}");

        let truncated = lines[..50_000].join("\n");
        let err = check(truncated.as_bytes(), "truncated");
        assert!(err.to_string().contains("<|endoftext|>"), "{err}");

        let mut foreign = lines.clone();
        foreign[1234] = "caf€";
        let err = check(foreign.join("\n").as_bytes(), "foreign");
        assert!(err.to_string().contains("line 1235"), "{err}");

        let mut binary = real.as_bytes().to_vec();
        binary[100] = 0xff;
        let err = check(&binary, "binary");
        assert!(matches!(err, TokenizerError::Garbled { .. }), "{err}");

        let mut swapped = lines.clone();
        swapped.swap(50_357, 50_358);
        let err = check(swapped.join("\n").as_bytes(), "swapped");
        assert!(matches!(err, TokenizerError::Specials { .. }), "{err}");
        let mut moved = lines.clone();
        moved.swap(50_359, 50_360);
        let err = check(moved.join("\n").as_bytes(), "moved");
        assert!(err.to_string().contains("order"), "{err}");

        let mut repeated = lines.clone();
        repeated[300] = repeated[200];
        let err = check(repeated.join("\n").as_bytes(), "repeated");
        assert!(err.to_string().contains("line 301"), "{err}");

        let short = lines[..lines.len() - 1].join("\n");
        let err = check(short.as_bytes(), "short");
        assert!(err.to_string().contains("1501 timestamps"), "{err}");
    }

    #[test]
    fn long_pieces_encode() {
        let tok = load("base");
        let long = "x".repeat(5_000);
        let ids = tok.encode(&long);
        assert!(ids.len() < 5_000);
        assert_eq!(tok.decode(&ids), long);
    }
}
