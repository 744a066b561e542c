//! `voxd ask`: one question to the reply model, the answer streamed to stdout. The model and
//! its settings are `[llm]` of the config; each flag overrides one key.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::Args;

use voxd::config::Config;
use voxd::llm::assistant::Assistant;
use voxd::llm::config::LlmConfig;
use voxd::llm::generate::{Generated, Limits};

/// The reply model's flags, shared with `voxd chat`: each one replaces its `[llm]` key.
#[derive(Args, Clone, Debug)]
pub struct LlmFlags {
    /// The GGUF model [default: [llm] model, else models/smollm2/model.gguf, then the
    /// user's models folder].
    #[arg(short, long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Compute threads [default: [llm] threads, else [model] threads, else one per core].
    #[arg(short, long, value_name = "N")]
    threads: Option<usize>,
    /// Context length in tokens, capped at the model's own [default: [llm] context].
    #[arg(long, value_name = "TOKENS")]
    context: Option<usize>,
    /// System prompt [default: [llm] system_prompt, else the model's own].
    #[arg(long, value_name = "TEXT")]
    system: Option<String>,
    /// Longest reply, in tokens [default: [llm] max_tokens].
    #[arg(long, value_name = "N")]
    max_tokens: Option<usize>,
    /// Longest reply, in seconds, prompt included [default: [llm] max_seconds].
    #[arg(long, value_name = "SECONDS", allow_hyphen_values = true,
          value_parser = Limits::parse_seconds)]
    max_seconds: Option<f64>,
    /// Sampling temperature; 0 always picks the most likely token [default: [llm]
    /// temperature].
    #[arg(long, allow_hyphen_values = true)]
    temperature: Option<f32>,
    /// Keep only the K most likely tokens, 0 for all [default: [llm] top_k].
    #[arg(long, value_name = "K")]
    top_k: Option<usize>,
    /// Keep the most likely tokens whose probabilities add up to P [default: [llm] top_p].
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    top_p: Option<f32>,
    /// Drop tokens less likely than this fraction of the most likely one [default: [llm]
    /// min_p].
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    min_p: Option<f32>,
    /// Penalty for repeating a token of the conversation, 1 for none [default: [llm]
    /// repeat_penalty].
    #[arg(long, allow_hyphen_values = true)]
    repeat_penalty: Option<f32>,
    /// Random seed [default: [llm] seed, else a new one each run].
    #[arg(long)]
    seed: Option<u64>,
}

impl LlmFlags {
    /// `[llm]` with the flags laid over it, checked as the config file's values are; an
    /// error names the flag.
    fn settings(&self, config: &Config, memory_turns: Option<usize>) -> Result<LlmConfig> {
        let mut llm = config.llm.clone();
        replace(&mut llm.memory_turns, memory_turns);
        replace(&mut llm.model, self.model.clone().map(Some));
        replace(&mut llm.context, self.context);
        replace(&mut llm.system_prompt, self.system.clone());
        replace(&mut llm.max_tokens, self.max_tokens);
        replace(&mut llm.max_seconds, self.max_seconds);
        replace(&mut llm.temperature, self.temperature);
        replace(&mut llm.top_k, self.top_k);
        replace(&mut llm.top_p, self.top_p);
        replace(&mut llm.min_p, self.min_p);
        replace(&mut llm.repeat_penalty, self.repeat_penalty);
        replace(&mut llm.seed, self.seed.map(Some));
        llm.validate().map_err(|(key, problem)| {
            let flag = match key {
                "system_prompt" => "system".to_string(),
                "memory_turns" => "memory".to_string(),
                key => key.replace('_', "-"),
            };
            anyhow!("--{flag}: {problem} (the flag, or [llm] {key} of the config)")
        })?;
        Ok(llm)
    }

    /// The model and a conversation that remembers `memory_turns` exchanges (None: as
    /// `[llm]` says).
    pub fn assistant(&self, config: &Config, memory_turns: Option<usize>) -> Result<Assistant> {
        let llm = self.settings(config, memory_turns)?;
        let threads = self.threads.unwrap_or_else(|| config.llm_threads());
        tracing::info!(model = ?llm.model_path().ok(), threads, "loading the reply model");
        Ok(Assistant::from_config(&llm, threads)?)
    }
}

fn replace<T>(field: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *field = value;
    }
}

#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question.
    #[arg(value_name = "QUESTION")]
    question: String,
    #[command(flatten)]
    llm: LlmFlags,
    /// Print one JSON object (reply, tokens, stop reason, speeds) instead of streaming text.
    #[arg(long)]
    json: bool,
}

/// Answers one question: the reply streamed to stdout, or one JSON object.
pub fn run(args: AskArgs, config: &Config) -> Result<()> {
    let mut assistant = args.llm.assistant(config, Some(0))?;
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

/// A reply and its speeds as JSON. Generation speed counts the tokens after the first (the
/// first comes out of the prompt's pass), as llama.cpp reports it.
fn reply_json(reply: &Generated) -> serde_json::Value {
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

pub fn per_second(n: usize, time: Duration) -> f64 {
    n as f64 / time.as_secs_f64().max(1e-9)
}
