//! A conversation with the model: the chat prompt, a short memory, and the reply.
//!
//! Every question is rendered with the model's chat template after the system prompt and the
//! last few exchanges, so "and in Spanish?" can follow "how do you say thank you". Old
//! exchanges are dropped first when the prompt and the longest reply would not fit the
//! context. The prompt of one turn begins with the previous turn's, so the engine reuses the
//! cache for it and only the new part is run.

use std::ops::ControlFlow;
use std::time::Duration;

use super::chat::{ChatTemplate, Message};
use super::config::LlmConfig;
use super::generate::{Engine, GenerateError, Generated, Limits};
use super::gguf::GgufError;
use super::sampling::{Sampler, SamplingConfig};

/// How the assistant answers; [`super::config::LlmConfig::assistant_config`] makes one from
/// `[llm]` and its defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct AssistantConfig {
    /// The system prompt; `None` uses the model's own default (if its template has one).
    pub system_prompt: Option<String>,
    /// Exchanges (question and answer) remembered.
    pub memory_turns: usize,
    pub max_tokens: usize,
    pub max_time: Option<Duration>,
    pub sampling: SamplingConfig,
}

/// The model, its chat template and the conversation so far.
pub struct Assistant {
    engine: Engine,
    template: ChatTemplate,
    config: AssistantConfig,
    /// (question, answer) of the latest exchanges, oldest first.
    memory: Vec<(String, String)>,
}

impl Assistant {
    /// The model and settings of `[llm]`, computing on `threads` threads.
    pub fn from_config(llm: &LlmConfig, threads: usize) -> Result<Self, GenerateError> {
        let engine = Engine::load(&llm.model_path()?, llm.context, threads)?;
        Ok(Assistant::new(engine, llm.assistant_config())?)
    }

    pub fn new(engine: Engine, config: AssistantConfig) -> Result<Self, GgufError> {
        let template = ChatTemplate::from_gguf(engine.model().file())?;
        Ok(Assistant {
            engine,
            template,
            config,
            memory: Vec::new(),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Forgets the conversation.
    pub fn forget(&mut self) {
        self.memory.clear();
    }

    /// Answers `question`, streaming the answer's text to `on_text`, and remembers the
    /// exchange.
    pub fn reply(
        &mut self,
        question: &str,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generated, GenerateError> {
        let prompt = self.prompt(question);
        let limits = Limits {
            max_tokens: self.config.max_tokens,
            max_time: self.config.max_time,
            stop_strings: self
                .template
                .stop_strings()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            stop_tokens: self.template.stop_tokens(self.engine.tokenizer()),
        };
        let mut sampler = Sampler::new(self.config.sampling.clone());
        let answer = self
            .engine
            .generate(&prompt, &mut sampler, &limits, on_text)?;
        self.memory
            .push((question.to_string(), answer.text.trim().to_string()));
        let excess = self.memory.len().saturating_sub(self.config.memory_turns);
        self.memory.drain(..excess);
        Ok(answer)
    }

    /// The prompt's tokens for `question` after as much of the memory as fits.
    fn prompt(&mut self, question: &str) -> Vec<u32> {
        let room = self.engine.context().saturating_sub(self.config.max_tokens);
        loop {
            let tokens = self
                .engine
                .tokenizer()
                .encode_prompt(&self.template.render(&self.messages(question), true));
            if tokens.len() <= room || self.memory.is_empty() {
                return tokens;
            }
            self.memory.remove(0);
        }
    }

    fn messages(&self, question: &str) -> Vec<Message> {
        let system = self.config.system_prompt.iter().map(Message::system);
        let exchanges = self
            .memory
            .iter()
            .flat_map(|(q, a)| [Message::user(q), Message::assistant(a)]);
        system
            .chain(exchanges)
            .chain([Message::user(question)])
            .collect()
    }
}
