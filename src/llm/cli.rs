//! `voxd ask` and `voxd chat`: the reply model from the command line.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::assistant::{Assistant, AssistantConfig};
use super::generate::{Engine, Generated};
use super::sampling::SamplingConfig;
use crate::util::paths;

/// Options shared by `voxd ask` and `voxd chat`.
#[derive(Args, Clone, Debug)]
pub struct ModelOptions {
    /// The GGUF model [default: models/smollm2/model.gguf, then the user's models folder].
    #[arg(short, long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Compute threads.
    #[arg(short, long, default_value_t = 2, value_name = "N")]
    pub threads: usize,
    /// Context length in tokens (capped at the model's own).
    #[arg(long, default_value_t = 2048, value_name = "TOKENS")]
    pub context: usize,
    /// System prompt [default: the model's own].
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Longest reply, in tokens.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub max_tokens: usize,
    /// Longest reply, in seconds (prompt included).
    #[arg(long, value_name = "SECONDS", value_parser = super::generate::Limits::parse_seconds)]
    pub max_seconds: Option<f64>,
    /// Sampling temperature; 0 always picks the most likely token.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0: all).
    #[arg(long, default_value_t = 40, value_name = "K")]
    pub top_k: usize,
    /// Keep the most likely tokens whose probabilities add up to P.
    #[arg(long, default_value_t = 0.95, value_name = "P")]
    pub top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one.
    #[arg(long, default_value_t = 0.05, value_name = "P")]
    pub min_p: f32,
    /// Penalty for repeating one of the last 64 tokens (1: none).
    #[arg(long, default_value_t = 1.1)]
    pub repeat_penalty: f32,
    /// Random seed.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
}

/// `voxd ask`.
#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question.
    #[arg(value_name = "QUESTION")]
    pub question: String,
    #[command(flatten)]
    pub model: ModelOptions,
    /// Print one JSON object (reply, tokens, stop reason, speeds) instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

/// `voxd chat`.
#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelOptions,
    /// Exchanges the model remembers.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub memory: usize,
}

impl ModelOptions {
    fn assistant(&self, memory_turns: usize) -> anyhow::Result<Assistant> {
        let path = match &self.model {
            Some(p) => p.clone(),
            None => paths::default_llm_model()?,
        };
        tracing::info!("loading {}", path.display());
        let engine = Engine::load(&path, self.context, self.threads)?;
        let config = AssistantConfig {
            system_prompt: self.system.clone(),
            memory_turns,
            max_tokens: self.max_tokens,
            max_time: self.max_seconds.map(Duration::from_secs_f64),
            sampling: SamplingConfig {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                seed: self.seed,
                ..SamplingConfig::default()
            },
        };
        Ok(Assistant::new(engine, config)?)
    }
}

/// Answers one question: the reply streamed to stdout, or one JSON object.
pub fn ask(args: &AskArgs) -> anyhow::Result<()> {
    let mut assistant = args.model.assistant(0)?;
    let json = args.json;
    let mut stdout = std::io::stdout().lock();
    let reply = assistant.reply(&args.question, |piece| {
        if !json {
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
        }
        ControlFlow::Continue(())
    })?;
    if json {
        writeln!(stdout, "{}", reply_json(&reply))?;
    } else {
        writeln!(stdout)?;
    }
    Ok(())
}

/// A conversation on the terminal: a line in, the reply streamed out. `/reset` forgets the
/// conversation; an empty line or end of input ends it.
pub fn chat(args: &ChatArgs) -> anyhow::Result<()> {
    let mut assistant = args.model.assistant(args.memory)?;
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    eprintln!("voxd chat: type a message and press Enter; /reset forgets, an empty line ends");
    for line in stdin.lock().lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        if line == "/reset" {
            assistant.forget();
            eprintln!("(forgotten)");
            continue;
        }
        let reply = assistant.reply(line, |piece| {
            let _ = write!(stdout, "{piece}");
            let _ = stdout.flush();
            ControlFlow::Continue(())
        })?;
        writeln!(stdout)?;
        tracing::info!(
            tokens = reply.tokens.len(),
            stop = reply.stop.as_str(),
            "reply: {:.1} tokens/s",
            per_second(reply.tokens.len().saturating_sub(1), reply.generate_time)
        );
    }
    Ok(())
}

/// A reply and its speeds as JSON. Generation speed counts the tokens after the first (the
/// first comes out of the prompt's pass), as llama.cpp reports it.
pub fn reply_json(reply: &Generated) -> serde_json::Value {
    let run_prompt = reply.prompt_tokens - reply.reused_tokens;
    serde_json::json!({
        "text": reply.text,
        "tokens": reply.tokens,
        "stop": reply.stop.as_str(),
        "prompt_tokens": reply.prompt_tokens,
        "prompt_ms": reply.prompt_time.as_secs_f64() * 1e3,
        "generate_ms": reply.generate_time.as_secs_f64() * 1e3,
        "prompt_tok_s": per_second(run_prompt, reply.prompt_time),
        "generate_tok_s": per_second(reply.tokens.len().saturating_sub(1), reply.generate_time),
    })
}

fn per_second(n: usize, time: Duration) -> f64 {
    n as f64 / time.as_secs_f64().max(1e-9)
}
