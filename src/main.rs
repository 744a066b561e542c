//! The `voxd` binary: parses the command line and hands each subcommand to its file in
//! `src/cli/`. Errors are printed here, each cause once.

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use cli::Settings;

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
    /// `run` and `wyoming`, the config's [run] log, else info].
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
    /// Run the daemon: listen, recognise commands and run their actions, show live
    /// captions; events as JSON lines (see the README's "Events"). SIGHUP or an edit to the
    /// config or a grammar reloads them; SIGINT/SIGTERM stop after the utterance in flight.
    Run(cli::run::RunArgs),
    /// Transcribe WAV files (any sample rate, channels and sample format).
    Transcribe(cli::transcribe::TranscribeArgs),
    /// Recognise voice commands in WAV files (one utterance each) with grammar-constrained
    /// decoding; print one JSON line per file ({"intent": null, "reason": ...} when refused).
    Recognize(cli::recognize::RecognizeArgs),
    /// Check voice-command grammars and match text against them.
    #[command(subcommand)]
    Grammar(cli::grammar::GrammarCommand),
    /// Ask the reply model one question; the answer is streamed to stdout.
    Ask(cli::ask::AskArgs),
    /// Talk to the reply model: a line in, the answer out, with a short memory.
    Chat(cli::chat::ChatArgs),
    /// Install, list, inspect and convert models.
    #[command(subcommand, visible_alias = "models")]
    Model(cli::model::ModelCommand),
    /// List audio input devices and the formats they support.
    Devices(cli::devices::DevicesArgs),
    /// Run the audio front end (capture, resampling, voice activity, segmentation) and print
    /// its events as JSON lines.
    #[command(after_help = cli::listen::LISTEN_EVENTS)]
    Listen(cli::listen::ListenArgs),
    /// Time the engine: encoder per window and audio context, decoder per token, end to end.
    Bench(cli::bench::BenchArgs),
    /// Check the setup (config, model, grammars, actions, microphone, notifications,
    /// service): one line per check, ok/warn/FAIL and what to do; exit status 1 on a FAIL.
    Doctor(cli::doctor::DoctorArgs),
    /// Serve speech to text, intents and actions over the Wyoming protocol (Home
    /// Assistant's speech services) on tcp://127.0.0.1:10300 or a Unix socket.
    #[command(after_help = cli::wyoming::WYOMING_HELP)]
    Wyoming(cli::wyoming::WyomingArgs),
    /// Start voxd at login: write the systemd user unit (Linux) or LaunchAgent (macOS).
    InstallService(cli::install_service::InstallServiceArgs),
}

fn main() {
    tune_malloc();
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    // Commands that need the settings file load it first; a file that cannot be read or
    // is wrong is exit status 2, before anything else happens.
    let settings = || match Settings::load(config) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("voxd: {e}");
            std::process::exit(2);
        }
    };
    let result = match cli.command {
        Command::Wyoming(args) => {
            let settings = settings();
            // A server says what it is doing by default, as the daemon does.
            init_logging(cli.log.as_deref().unwrap_or(&settings.config.run.log));
            cli::wyoming::run(args, &settings)
        }
        Command::Run(args) => {
            let settings = settings();
            // The daemon says what it is doing by default, at the config's level.
            init_logging(cli.log.as_deref().unwrap_or(&settings.config.run.log));
            cli::run::run(args, &settings)
        }
        command => {
            init_logging(cli.log.as_deref().unwrap_or("warn"));
            match command {
                Command::Run(_) | Command::Wyoming(_) => unreachable!("matched above"),
                Command::Transcribe(args) => cli::transcribe::run(args, &settings().config),
                Command::Recognize(args) => cli::recognize::run(args, &settings().config),
                Command::Grammar(cmd) => cli::grammar::run(cmd),
                Command::Ask(args) => cli::ask::run(args, &settings().config),
                Command::Chat(args) => cli::chat::run(args, &settings().config),
                Command::Model(cmd) => cli::model::run(cmd),
                Command::Devices(args) => cli::devices::run(args),
                Command::Listen(args) => cli::listen::run(args, &settings().config),
                Command::Bench(args) => cli::bench::run(args),
                Command::Doctor(args) => std::process::exit(cli::doctor::run(args, config)),
                Command::InstallService(args) => cli::install_service::run(args, config),
            }
        }
    };
    if let Err(e) = result {
        eprintln!("voxd: {}", cli::describe(&e));
        std::process::exit(1);
    }
}

/// Logs to standard error at `level` (VOXD_LOG wins).
fn init_logging(level: &str) {
    let filter = EnvFilter::try_from_env("VOXD_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// One arena for glibc's allocator, which keeps a running daemon's memory near what it
/// uses. glibc gives threads that allocate at once arenas of their own (up to eight per
/// core), and each arena keeps what its threads freed. With the model, front-end, caption
/// and compute threads that held 20-30 MiB more resident in a running daemon (base: 262 ->
/// 241 MiB, base q8_0: 204 -> 173 MiB with two arenas); one arena instead of two took
/// another 10 MiB off tiny.en's peak (`voxd run --wav jfk.wav`: 125-126 -> 115-118 MiB)
/// at the same speed (`voxd bench`): the threads allocate outside their hot loops, so they
/// hardly ever wait for the arena's lock.
///
/// Not set: a fixed mmap threshold. At 1 MiB the encoder's activations are mapped on their
/// own and given back after every run, which saved 15-20 MiB of a daemon's steady memory but
/// faulted ~30 MiB in again per 30 s window: the tiny.en encoder took 122 ms instead of 106.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
