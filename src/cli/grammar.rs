//! `voxd grammar`: check grammar files, match text against them, print sample sentences.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

use voxd::grammar::{Grammar, Match};
use voxd::util::rng::Rng;

#[derive(Subcommand)]
pub enum GrammarCommand {
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

pub fn run(cmd: GrammarCommand) -> Result<()> {
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
