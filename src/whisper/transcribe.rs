//! Transcribing audio of any length: the long-form loop of the reference implementation.
//!
//! The audio's log-mel is cut into 30 s windows. Each window is encoded and decoded (with
//! temperature fallback when the result looks wrong); its timestamp tokens split it into
//! segments, and the next window starts at the last complete segment's end, so speech cut by
//! a window boundary is decoded again in the next window. The previous text is the prompt of
//! the next window. This follows faster-whisper's `generate_segments`, without its optional
//! word timestamps.

use std::io::Write;
use std::path::Path;

use flate2::write::ZlibEncoder;
use flate2::Compression;

pub use super::decode::Interrupt;
use super::decode::{non_speech_tokens, DecodeOptions, Decoded, TokenRules, WindowDecoder};
use super::load_model;
use super::mel::{log_mel_spectrogram, LogMel, MelFilters, CHUNK_FRAMES, HOP_LENGTH, N_FFT};
use super::model::{CrossKv, ModelError, Whisper};
use super::tokenizer::Tokenizer;
use super::weights::LoadError;
use crate::audio::SAMPLE_RATE;

/// Seconds per mel frame.
const FRAME_SECONDS: f32 = 0.01;
/// Seconds per timestamp token step (one encoder position).
const TIME_PRECISION: f32 = 0.02;
/// Mel frames per encoder position.
const INPUT_STRIDE: usize = 2;
/// Zero samples appended before the STFT, as faster-whisper does.
const PADDING_SAMPLES: usize = 160;
/// Shortened audio contexts never go below this many positions (2.56 s): much less and the
/// model loses the context it was trained with and starts to hallucinate.
pub const MIN_AUDIO_CTX: usize = 128;
/// Room left after the audio when the context is fitted to it (0.64 s).
const AUDIO_CTX_MARGIN: usize = 32;
/// -60 dBFS: quieter than any microphone's noise floor with someone speaking, louder than
/// digital silence and dithering.
pub const SILENCE_PEAK: f32 = 1e-3;

#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("unknown language `{0}` (use a code such as en, de, fr)")]
    Language(String),
    #[error("this model is English-only; it cannot transcribe `{0}`")]
    EnglishOnly(String),
    #[error("this model is English-only; it cannot translate")]
    TranslateEnglishOnly,
    #[error("interrupted: nobody waits for this decode any more")]
    Interrupted,
}

/// How much of the encoder's 30 s context to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCtx {
    /// All 1500 positions, as the reference implementation.
    Full,
    /// Sized to the window's audio, never below [`MIN_AUDIO_CTX`].
    Fit,
    /// A fixed number of positions (clamped to [`MIN_AUDIO_CTX`]..=1500).
    Fixed(usize),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Task {
    Transcribe,
    Translate,
}

/// [`TranscribeError::Interrupted`] once `interrupt` is raised.
fn interrupted(interrupt: &Interrupt) -> Result<(), TranscribeError> {
    if interrupt.raised() {
        return Err(TranscribeError::Interrupted);
    }
    Ok(())
}

/// Options of [`Transcriber::transcribe`], with faster-whisper's defaults.
#[derive(Clone, Debug)]
pub struct TranscribeOptions {
    /// A language code; `None` detects it (multilingual models) or means English.
    pub language: Option<String>,
    pub task: Task,
    pub beam_size: usize,
    pub best_of: usize,
    pub patience: f32,
    /// Tried in order while a result fails the checks below.
    pub temperatures: Vec<f32>,
    pub compression_ratio_threshold: Option<f32>,
    pub log_prob_threshold: Option<f32>,
    pub no_speech_threshold: Option<f32>,
    pub condition_on_previous_text: bool,
    pub prompt_reset_on_temperature: f32,
    pub initial_prompt: Option<String>,
    pub timestamps: bool,
    pub max_initial_timestamp: f32,
    pub suppress_blank: bool,
    pub audio_ctx: AudioCtx,
    /// Windows whose loudest sample is below this (linear, full scale = 1) are skipped as
    /// silence. The reference decodes them and Whisper then invents text ("You", "Thank
    /// you."); `None` restores that behaviour.
    pub silence_peak: Option<f32>,
    /// At most this many tokens are decoded per window (the context's limit otherwise): a
    /// caller that knows how much speech the audio can hold stops a repetition loop early.
    pub max_new_tokens: Option<usize>,
    /// Record where in the audio each token was heard ([`Continuation::frames`]), from the
    /// model's alignment heads; greedy and sampled decoding only.
    pub alignment: bool,
    /// Stops the decode early, with [`TranscribeError::Interrupted`].
    pub interrupt: Interrupt,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self {
            language: None,
            task: Task::Transcribe,
            beam_size: 5,
            best_of: 5,
            patience: 1.0,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: Some(2.4),
            log_prob_threshold: Some(-1.0),
            no_speech_threshold: Some(0.6),
            condition_on_previous_text: true,
            prompt_reset_on_temperature: 0.5,
            initial_prompt: None,
            timestamps: true,
            max_initial_timestamp: 1.0,
            suppress_blank: true,
            audio_ctx: AudioCtx::Full,
            silence_peak: Some(SILENCE_PEAK),
            max_new_tokens: None,
            alignment: false,
            interrupt: Interrupt::default(),
        }
    }
}

/// A piece of transcript with its time span.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Segment {
    /// Seconds from the start of the audio.
    pub start: f32,
    pub end: f32,
    pub text: String,
    pub tokens: Vec<u32>,
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
    pub temperature: f32,
    pub compression_ratio: f32,
}

/// The result of transcribing one piece of audio.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Transcript {
    pub language: String,
    pub segments: Vec<Segment>,
}

impl Transcript {
    pub fn text(&self) -> String {
        self.segments.iter().map(|s| s.text.as_str()).collect()
    }
}

/// What [`Transcriber::continue_window`] decoded after the window's forced tokens.
#[derive(Clone, Debug)]
pub struct Continuation {
    /// Closed segments (times from the window's start; tokens include their timestamps).
    pub segments: Vec<Segment>,
    /// Text after the last closed segment that no end timestamp closed (the audio ended
    /// mid-sentence, or the token limit did).
    pub open: Option<Segment>,
    /// The temperature the decode settled at (above `prompt_reset_on_temperature`, the
    /// long-form loop stops using the text as a prompt).
    pub temperature: f32,
    /// With [`TranscribeOptions::alignment`]: for each forced token and then each token of
    /// the segments and the open text, the audio position (20 ms steps from the window's
    /// start) the decoder listened to most as it wrote it. Empty otherwise.
    pub frames: Vec<u32>,
}

/// A loaded model with its tokenizer, decoding rules and compute threads.
pub struct Transcriber {
    pub model: Whisper,
    pub tokenizer: Tokenizer,
    pub rules: TokenRules,
    pub filters: MelFilters,
    /// The decoder's (layer, head) pairs whose cross-attention follows the speech: the
    /// model's own list (CTranslate2's `config.json`), or else every head of the later half
    /// of the layers.
    pub alignment_heads: Vec<(usize, usize)>,
    pool: rayon::ThreadPool,
}

/// A decoded window with what the fallback loop measured of it.
struct WindowResult {
    decoded: Decoded,
    temperature: f32,
    compression_ratio: f32,
}

impl Transcriber {
    /// Loads a CTranslate2 directory or a whisper.cpp ggml file and sets up `threads`
    /// compute threads (0 = one per core).
    pub fn load(path: &Path, threads: usize) -> Result<Self, LoadError> {
        let loaded = load_model(path)?;
        let non_speech = match &loaded.ct2_config {
            Some(cfg) if !cfg.suppress_ids.is_empty() => cfg.suppress_ids.clone(),
            _ => non_speech_tokens(&loaded.tokenizer),
        };
        let rules = TokenRules::new(&loaded.tokenizer, &non_speech);
        let hp = loaded.weights.hparams;
        let alignment_heads = match &loaded.ct2_config {
            Some(cfg) if !cfg.alignment_heads.is_empty() => cfg.alignment_heads.clone(),
            _ => (hp.n_text_layer / 2..hp.n_text_layer)
                .flat_map(|l| (0..hp.n_text_head).map(move |h| (l, h)))
                .collect(),
        };
        let n_mels = loaded.weights.hparams.n_mels;
        let filters = loaded
            .mel_filters
            .unwrap_or_else(|| MelFilters::slaney(n_mels, N_FFT, SAMPLE_RATE));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| LoadError::Format {
                path: path.to_path_buf(),
                message: format!("cannot start {threads} compute threads: {e}"),
            })?;
        Ok(Self {
            model: Whisper::new(loaded.weights),
            tokenizer: loaded.tokenizer,
            rules,
            filters,
            alignment_heads,
            pool,
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` on this transcriber's compute threads.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// The log-mel of 16 kHz audio, as the reference computes it for transcription.
    pub fn features(&self, samples: &[f32]) -> LogMel {
        self.install(|| log_mel_spectrogram(samples, &self.filters, PADDING_SAMPLES))
    }

    /// Encodes one 30 s window of features; `content_frames` is how many of its frames hold
    /// audio (used when the context is fitted to it).
    pub fn encode_window(
        &self,
        window: &LogMel,
        content_frames: usize,
        audio_ctx: AudioCtx,
    ) -> Result<Vec<f32>, ModelError> {
        let max = self.model.hparams().n_audio_ctx;
        let n_ctx = match audio_ctx {
            AudioCtx::Full => max,
            AudioCtx::Fit => content_frames.div_ceil(INPUT_STRIDE) + AUDIO_CTX_MARGIN,
            AudioCtx::Fixed(n) => n,
        }
        .clamp(MIN_AUDIO_CTX.min(max), max);
        self.install(|| self.model.encode(window, n_ctx))
    }

    /// The most likely language of encoded audio, with its probability.
    pub fn detect_language(&self, audio: &[f32]) -> Result<(String, f32), ModelError> {
        let sp = self.tokenizer.special();
        if !self.tokenizer.is_multilingual() || sp.languages.is_empty() {
            return Ok(("en".to_string(), 1.0));
        }
        self.install(|| {
            let cross = self.model.cross_kv(audio);
            let mut cache = [self.model.new_cache()];
            let hidden = self.model.decode(&cross, &mut cache, &[&[sp.sot]])?;
            let logits = self.model.logits(&hidden);
            let max = sp
                .languages
                .iter()
                .map(|(_, t)| logits[*t as usize])
                .fold(f32::NEG_INFINITY, f32::max);
            let total: f32 = sp
                .languages
                .iter()
                .map(|(_, t)| (logits[*t as usize] - max).exp())
                .sum();
            let (code, token) = sp
                .languages
                .iter()
                .max_by(|a, b| logits[a.1 as usize].total_cmp(&logits[b.1 as usize]))
                .expect("languages is not empty");
            Ok((code.clone(), (logits[*token as usize] - max).exp() / total))
        })
    }

    /// The start-of-transcript sequence: sot, then language and task on multilingual models.
    fn sot_sequence(&self, language: &str, task: &Task) -> Result<Vec<u32>, TranscribeError> {
        let sp = self.tokenizer.special();
        if !self.tokenizer.is_multilingual() {
            if language != "en" {
                return Err(TranscribeError::EnglishOnly(language.to_string()));
            }
            if *task == Task::Translate {
                return Err(TranscribeError::TranslateEnglishOnly);
            }
            return Ok(vec![sp.sot]);
        }
        let lang = self
            .tokenizer
            .language_token(language)
            .ok_or_else(|| TranscribeError::Language(language.to_string()))?;
        let task = match task {
            Task::Transcribe => sp.transcribe,
            Task::Translate => sp.translate,
        };
        Ok(vec![sp.sot, lang, task])
    }

    /// Transcribes 16 kHz mono audio, calling `on_segment` as each segment is final.
    pub fn transcribe(
        &self,
        samples: &[f32],
        opts: &TranscribeOptions,
        mut on_segment: impl FnMut(&Segment),
    ) -> Result<Transcript, TranscribeError> {
        let mel = self.features(samples);
        let content_frames = mel.n_frames.saturating_sub(1);

        let mut all_tokens: Vec<u32> = Vec::new();
        if let Some(prompt) = &opts.initial_prompt {
            all_tokens.extend(self.tokenizer.encode(&format!(" {}", prompt.trim())));
        }
        let mut prompt_reset_since = 0;
        let mut language = opts.language.clone();
        let mut segments = Vec::new();
        let mut seek = 0;
        while seek < content_frames {
            interrupted(&opts.interrupt)?;
            let time_offset = seek as f32 * FRAME_SECONDS;
            let segment_size = CHUNK_FRAMES.min(content_frames - seek);
            if let Some(floor) = opts.silence_peak {
                let span = &samples[(seek * HOP_LENGTH).min(samples.len())
                    ..((seek + segment_size) * HOP_LENGTH).min(samples.len())];
                if span.iter().all(|s| s.abs() < floor) {
                    seek += segment_size;
                    continue;
                }
            }
            // Frames past the content are zeros in the log-mel domain, as the reference pads.
            let window = mel.window(seek, segment_size).window(0, CHUNK_FRAMES);
            let audio = self.encode_window(&window, segment_size, opts.audio_ctx)?;
            let lang = match &language {
                Some(l) => l.clone(),
                None => self.detect_language(&audio)?.0,
            };
            language = Some(lang.clone());

            let cross = self.cross_kv(audio);
            let (prompt, sot_index) =
                self.window_prompt(&all_tokens[prompt_reset_since..], &lang, opts)?;
            let result = self.decode_with_fallback(&cross, &prompt, sot_index, &[], opts)?;
            let decoded = &result.decoded;
            if silent(decoded, opts) {
                seek += segment_size;
                continue;
            }

            let (pieces, next_seek) = self.split_by_timestamps(&decoded.tokens, seek, segment_size);
            seek = next_seek;
            for (start, end, tokens) in pieces {
                let text = self.tokenizer.decode(&tokens);
                let (start, end) = (time_offset + start, time_offset + end);
                if start == end || text.trim().is_empty() {
                    continue;
                }
                all_tokens.extend_from_slice(&tokens);
                let segment = Segment {
                    start,
                    end,
                    text,
                    tokens,
                    avg_logprob: decoded.avg_logprob,
                    no_speech_prob: decoded.no_speech_prob,
                    temperature: result.temperature,
                    compression_ratio: result.compression_ratio,
                };
                on_segment(&segment);
                segments.push(segment);
            }
            if !opts.condition_on_previous_text
                || result.temperature > opts.prompt_reset_on_temperature
            {
                prompt_reset_since = all_tokens.len();
            }
        }
        Ok(Transcript {
            language: language.unwrap_or_else(|| "en".to_string()),
            segments,
        })
    }

    /// Decodes one window of a growing stream again, as the long-form loop decodes a
    /// window: `samples` start at the window's start (at most 30 s of them), `previous` is
    /// the text before the window (the prompt), and `forced` the tokens already decoded in
    /// this window, timestamps included, ending with a closed segment. Returns what follows
    /// them, with times from the window's start. Live captions use this for their finals:
    /// the decoder then hears a sentence in the audio and text around it that the offline
    /// transcription gives it, not alone.
    pub fn continue_window(
        &self,
        samples: &[f32],
        previous: &[u32],
        forced: &[u32],
        opts: &TranscribeOptions,
    ) -> Result<Continuation, TranscribeError> {
        interrupted(&opts.interrupt)?;
        let audio = {
            let mel = self.features(samples);
            let content_frames = mel.n_frames.saturating_sub(1).min(CHUNK_FRAMES);
            let window = mel.window(0, content_frames).window(0, CHUNK_FRAMES);
            self.encode_window(&window, content_frames, opts.audio_ctx)?
        };
        let language = match &opts.language {
            Some(l) => l.clone(),
            None => self.detect_language(&audio)?.0,
        };
        let cross = self.cross_kv(audio);
        let (prompt, sot_index) = self.window_prompt(previous, &language, opts)?;
        let result = self.decode_with_fallback(&cross, &prompt, sot_index, forced, opts)?;
        let mut continuation = Continuation {
            segments: Vec::new(),
            open: None,
            temperature: result.temperature,
            frames: result.decoded.frames.clone(),
        };
        if silent(&result.decoded, opts) {
            return Ok(continuation);
        }
        let segment = |start: f32, end: f32, tokens: &[u32]| Segment {
            start,
            end,
            text: self.tokenizer.decode(tokens),
            tokens: tokens.to_vec(),
            avg_logprob: result.decoded.avg_logprob,
            no_speech_prob: result.decoded.no_speech_prob,
            temperature: result.temperature,
            compression_ratio: result.compression_ratio,
        };
        let tb = self.tokenizer.special().timestamp_begin;
        let seconds = |t: u32| (t - tb) as f32 * TIME_PRECISION;
        let tokens = &result.decoded.tokens;
        // After a closed segment come pairs: a start timestamp, text, an end timestamp.
        let mut at = 0;
        while at < tokens.len() {
            let start = if tokens[at] >= tb {
                seconds(tokens[at])
            } else {
                0.0
            };
            let close = (at + 1..tokens.len()).find(|&i| tokens[i] >= tb);
            match close {
                Some(end) => {
                    let piece = segment(start, seconds(tokens[end]), &tokens[at..=end]);
                    continuation.segments.push(piece);
                    at = end + 1;
                }
                None => {
                    let end = samples.len() as f32 / SAMPLE_RATE as f32;
                    continuation.open = Some(segment(start, end, &tokens[at..]));
                    break;
                }
            }
        }
        Ok(continuation)
    }

    /// The decoder's prompt for a window: the end of the previous text (at most half the
    /// text context, after sot_prev), then the start-of-transcript sequence. Returns it and
    /// where its start-of-transcript is.
    fn window_prompt(
        &self,
        previous: &[u32],
        language: &str,
        opts: &TranscribeOptions,
    ) -> Result<(Vec<u32>, usize), TranscribeError> {
        let sp = self.tokenizer.special();
        let mut prompt = Vec::new();
        if !previous.is_empty() {
            let keep = previous_text_budget(self.model.hparams().n_text_ctx);
            prompt.push(sp.sot_prev);
            prompt.extend_from_slice(&previous[previous.len().saturating_sub(keep)..]);
        }
        let sot_index = prompt.len();
        prompt.extend(self.sot_sequence(language, &opts.task)?);
        if !opts.timestamps {
            prompt.push(sp.no_timestamps);
        }
        Ok((prompt, sot_index))
    }

    /// The cross-attention keys and values of encoded audio, which is freed here: the
    /// decoder reads only these, and the features (2.2 MiB at 30 s for tiny.en, 2.9 for
    /// base) would otherwise stay through the decode, as would the log-mel window.
    pub fn cross_kv(&self, audio: Vec<f32>) -> CrossKv {
        self.install(|| self.model.cross_kv(&audio))
    }

    /// Decodes a window at the first temperature whose result passes the checks, or keeps
    /// the best of all attempts. `forced` are tokens the window already holds (see
    /// [`WindowDecoder::decode`]); the checks read them with the new ones.
    fn decode_with_fallback(
        &self,
        cross: &CrossKv,
        prompt: &[u32],
        sot_index: usize,
        forced: &[u32],
        opts: &TranscribeOptions,
    ) -> Result<WindowResult, TranscribeError> {
        let decoder = WindowDecoder {
            model: &self.model,
            rules: &self.rules,
            cross,
            alignment: if opts.alignment {
                &self.alignment_heads
            } else {
                &[]
            },
        };
        let mut attempts: Vec<(WindowResult, bool)> = Vec::new();
        let temperatures = if opts.temperatures.is_empty() {
            &[0.0][..]
        } else {
            &opts.temperatures[..]
        };
        for &temperature in temperatures {
            interrupted(&opts.interrupt)?;
            let dopts = DecodeOptions {
                beam_size: opts.beam_size,
                best_of: opts.best_of,
                patience: opts.patience,
                temperature,
                timestamps: opts.timestamps,
                max_initial_timestamp_index: Some(
                    (opts.max_initial_timestamp / TIME_PRECISION).round() as u32,
                ),
                suppress_blank: opts.suppress_blank,
                max_length: opts
                    .max_new_tokens
                    .map_or(usize::MAX, |n| prompt.len() + forced.len() + n)
                    .min(self.model.hparams().n_text_ctx),
                seed: 0x5eed ^ (temperature.to_bits() as u64),
                interrupt: opts.interrupt.clone(),
            };
            let decoded = self.install(|| decoder.decode(prompt, sot_index, forced, &dopts))?;
            // An interrupted decode stopped early: what it holds is not a result.
            interrupted(&opts.interrupt)?;
            let text = self.tokenizer.decode(&[forced, &decoded.tokens].concat());
            let compression_ratio = compression_ratio(text.trim());
            let too_repetitive = opts
                .compression_ratio_threshold
                .is_some_and(|t| compression_ratio > t);
            let too_unlikely = opts
                .log_prob_threshold
                .is_some_and(|t| decoded.avg_logprob < t);
            let silence = too_unlikely
                && opts
                    .no_speech_threshold
                    .is_some_and(|t| decoded.no_speech_prob > t);
            let result = WindowResult {
                decoded,
                temperature,
                compression_ratio,
            };
            if silence || !(too_repetitive || too_unlikely) {
                return Ok(result);
            }
            attempts.push((result, !too_repetitive));
        }
        // Every temperature failed: prefer results that were not repetitive, then the most
        // likely; report the last temperature, which decides whether the prompt is reset.
        let last_temperature = *temperatures.last().expect("not empty");
        let any_fluent = attempts.iter().any(|(_, fluent)| *fluent);
        let mut best = attempts
            .into_iter()
            .filter(|(_, fluent)| *fluent || !any_fluent)
            .map(|(r, _)| r)
            .max_by(|a, b| a.decoded.avg_logprob.total_cmp(&b.decoded.avg_logprob))
            .expect("at least one attempt");
        best.temperature = last_temperature;
        Ok(best)
    }

    /// Splits a window's tokens at its timestamp pairs into (start s, end s, text tokens),
    /// and returns where the next window starts (in mel frames).
    fn split_by_timestamps(
        &self,
        tokens: &[u32],
        seek: usize,
        segment_size: usize,
    ) -> (Vec<(f32, f32, Vec<u32>)>, usize) {
        let tb = self.tokenizer.special().timestamp_begin;
        let is_ts = |t: u32| t >= tb;
        let ts_seconds = |t: u32| (t - tb) as f32 * TIME_PRECISION;
        let n = tokens.len();
        let single_timestamp_ending = n >= 2 && !is_ts(tokens[n - 2]) && is_ts(tokens[n - 1]);
        let mut slices: Vec<usize> = (1..n)
            .filter(|&i| is_ts(tokens[i]) && is_ts(tokens[i - 1]))
            .collect();
        if slices.is_empty() {
            let duration = match tokens.iter().rev().find(|&&t| is_ts(t)) {
                Some(&t) if t != tb => ts_seconds(t),
                _ => segment_size as f32 * FRAME_SECONDS,
            };
            return (vec![(0.0, duration, tokens.to_vec())], seek + segment_size);
        }
        if single_timestamp_ending {
            slices.push(n);
        }
        let mut pieces = Vec::new();
        let mut last = 0;
        for &cut in &slices {
            let piece = &tokens[last..cut];
            pieces.push((
                ts_seconds(piece[0]),
                ts_seconds(piece[piece.len() - 1]),
                piece.to_vec(),
            ));
            last = cut;
        }
        let next = if single_timestamp_ending {
            seek + segment_size
        } else {
            seek + (tokens[last - 1] - tb) as usize * INPUT_STRIDE
        };
        (pieces, next)
    }
}

/// The long-form loop's no-speech rule: the model calls the window silent and is not
/// confident of the text it wrote.
fn silent(decoded: &Decoded, opts: &TranscribeOptions) -> bool {
    let confident = opts
        .log_prob_threshold
        .is_some_and(|lp| decoded.avg_logprob > lp);
    opts.no_speech_threshold
        .is_some_and(|t| decoded.no_speech_prob > t && !confident)
}

/// How well the text compresses: very repetitive text (a decoding loop) compresses well.
pub fn compression_ratio(text: &str) -> f32 {
    if text.is_empty() {
        return 0.0;
    }
    let mut enc = ZlibEncoder::new(Vec::new(), Compression::default());
    let compressed = enc
        .write_all(text.as_bytes())
        .and_then(|_| enc.finish())
        .map(|v| v.len())
        .unwrap_or(text.len());
    text.len() as f32 / compressed as f32
}

/// Tokens of earlier text a window's prompt keeps: half the text context less the
/// `sot_prev` token, as the reference does; none when the context is too small for any (a
/// broken model's 0 or 1 must not wrap around).
fn previous_text_budget(n_text_ctx: usize) -> usize {
    (n_text_ctx / 2).saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_previous_text_budget_never_wraps_around() {
        assert_eq!(previous_text_budget(448), 223);
        assert_eq!(previous_text_budget(4), 1);
        for tiny in [0, 1, 2, 3] {
            assert_eq!(previous_text_budget(tiny), 0, "n_text_ctx {tiny}");
        }
    }
}
