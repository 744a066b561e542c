//! SmolLM2's chat prompts against the model's own Jinja template as llama.cpp renders it
//! (xllamacpp's server, through `scripts/reference/llm_reference.py chat`), on the conversations in
//! `tests/fixtures/llm/chat_conversations.json`.

use voxd::llm::chat::{ChatTemplate, Message, Role, TemplateKind};
use voxd::llm::gguf::GgufFile;
use voxd::llm::tokenizer::Tokenizer;

use crate::common::llm as llm_common;

const CONVERSATIONS: &str = "tests/fixtures/llm/chat_conversations.json";

fn role(name: &str) -> Role {
    match name {
        "system" => Role::System,
        "user" => Role::User,
        "assistant" => Role::Assistant,
        other => panic!("unknown role {other} in {CONVERSATIONS}"),
    }
}

#[test]
fn smollm2_prompts_match_its_template() {
    let file = GgufFile::open(&llm_common::smollm2()).expect("the SmolLM2 GGUF opens");
    let template = ChatTemplate::from_gguf(&file).unwrap();
    assert_eq!(template.kind(), TemplateKind::ChatMl);
    assert_eq!(
        template.default_system(),
        Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    );
    let tokenizer = Tokenizer::from_gguf(&file).unwrap();
    let stops = template.stop_tokens(&tokenizer);
    assert!(stops.contains(&2), "<|im_end|> ends a reply: {stops:?}");
    assert!(stops.contains(&1) && stops.contains(&0), "{stops:?}");

    let model = llm_common::smollm2();
    let reference = llm_common::reference(&["chat", model.to_str().unwrap(), CONVERSATIONS]);
    let expected = reference.as_array().expect("a list of prompts");
    let conversations: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::common::repo().join(CONVERSATIONS)).unwrap(),
    )
    .unwrap();
    let conversations = conversations.as_array().unwrap();
    assert_eq!(expected.len(), conversations.len());
    assert!(conversations.len() >= 5);
    for (conversation, theirs) in conversations.iter().zip(expected) {
        let messages: Vec<Message> = conversation["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                Message::new(
                    role(m["role"].as_str().unwrap()),
                    m["content"].as_str().unwrap(),
                )
            })
            .collect();
        let add_generation_prompt = conversation["add_generation_prompt"].as_bool().unwrap();
        let ours = template.render(&messages, add_generation_prompt);
        assert_eq!(ours, theirs["prompt"].as_str().unwrap(), "{messages:?}");
        // The prompt's control tokens are parsed: each turn starts with <|im_start|>.
        let ids = tokenizer.encode_prompt(&ours);
        let turns = messages.len()
            + usize::from(messages[0].role != Role::System)
            + usize::from(add_generation_prompt);
        assert_eq!(ids.iter().filter(|&&id| id == 1).count(), turns);
    }
}

/// A conversation with the real model: each turn's prompt holds the remembered exchanges, so
/// the engine reuses the cache for everything before the new question; with a memory of one
/// exchange, the oldest is forgotten.
#[test]
fn a_conversation_remembers_its_last_exchanges_and_reuses_the_cache() {
    use voxd::llm::assistant::{Assistant, AssistantConfig};
    use voxd::llm::generate::Engine;
    use voxd::llm::sampling::SamplingConfig;

    let engine = Engine::load(&llm_common::smollm2(), 1024, 2).unwrap();
    let mut assistant = Assistant::new(
        engine,
        AssistantConfig {
            memory_turns: 1,
            max_tokens: 16,
            sampling: SamplingConfig::greedy(),
            ..voxd::llm::config::LlmConfig::default().assistant_config()
        },
    )
    .unwrap();
    let quiet = |_: &str| std::ops::ControlFlow::Continue(());
    let first = assistant.reply("My name is Anna.", quiet).unwrap();
    let second = assistant.reply("What is my name?", quiet).unwrap();
    // The second prompt begins with the first prompt and its answer.
    assert!(
        second.reused_tokens >= first.prompt_tokens,
        "reused {} of the first prompt's {}",
        second.reused_tokens,
        first.prompt_tokens
    );
    assert!(second.prompt_tokens > first.prompt_tokens + first.tokens.len());
    // Memory of one exchange: the third prompt holds the second exchange only, so it is
    // shorter than it would be with both.
    let third = assistant.reply("Thank you.", quiet).unwrap();
    assert!(
        third.prompt_tokens < second.prompt_tokens + second.tokens.len() + 8,
        "{} tokens: the first exchange was not forgotten",
        third.prompt_tokens
    );
}

/// A prompt run in parts (a cached prefix, then the rest, as a conversation's next turn or
/// the Wyoming server's next question runs it) gives exactly the numbers of the whole prompt
/// in one batch: each row's attention and products depend on that row alone, not on which
/// rows share its batch. Otherwise a reused prefix would change greedy replies wherever two
/// tokens are nearly tied. The next token's logits after every split tried, bit for bit
/// (they depend on every earlier row through its keys and values).
#[test]
fn a_prompt_run_after_a_cached_prefix_gives_the_numbers_of_one_batch() {
    use voxd::llm::model::Llama;

    let path = llm_common::smollm2();
    let model = Llama::load(&path).unwrap();
    let file = GgufFile::open(&path).unwrap();
    let tokenizer = Tokenizer::from_gguf(&file).unwrap();
    let template = ChatTemplate::from_gguf(&file).unwrap();
    let messages = [
        Message::system(
            "You are a helpful assistant in a smart home. Answer in one short sentence.",
        ),
        Message::user("What is the capital of France, and how many people live there?"),
    ];
    let prompt = tokenizer.encode_prompt(&template.render(&messages, true));
    assert!(prompt.len() > 40, "{} tokens", prompt.len());
    let next = |parts: &[&[u32]]| {
        let mut cache = model.new_cache(256);
        let mut logits = Vec::new();
        for part in parts {
            logits = model.forward(part, &mut cache, false).unwrap();
        }
        logits
    };
    let whole = next(&[&prompt]);
    let n = prompt.len();
    for split in [1, 5, 9, 17, n / 2, n - 9, n - 2, n - 1] {
        let parts = next(&[&prompt[..split], &prompt[split..]]);
        assert!(
            whole
                .iter()
                .zip(&parts)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "split at {split} of {n}: the next token's logits differ"
        );
    }
}
