//! `voxd chat`: talk to the reply model on the terminal, a line in and the answer out, with
//! the short memory `[llm]` gives it (or `--memory`).

use std::io::{BufRead, Write};
use std::ops::ControlFlow;

use anyhow::Result;
use clap::Args;

use super::ask::{per_second, LlmFlags};
use voxd::config::Config;

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    llm: LlmFlags,
    /// Exchanges the model remembers [default: [llm] memory_turns].
    #[arg(long, value_name = "N")]
    memory: Option<usize>,
}

/// A conversation on the terminal: a line in, the reply streamed out. `/reset` forgets the
/// conversation; an empty line or end of input ends it.
pub fn run(args: ChatArgs, config: &Config) -> Result<()> {
    let mut assistant = args.llm.assistant(config, args.memory)?;
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
