//! Chat prompts: turning a conversation into the text a chat model was trained on.
//!
//! GGUF files carry their model's chat template as Jinja source (`tokenizer.chat_template`).
//! voxd does not run Jinja: it recognises the template family by its markers and renders
//! that family's format in code, as llama.cpp does when it cannot or need not run the
//! template.
//!
//! | family   | recognised by                                | a user turn                                              |
//! |----------|----------------------------------------------|----------------------------------------------------------|
//! | ChatML   | `<\|im_start\|>` (SmolLM2, Qwen)             | `<\|im_start\|>user\n{text}<\|im_end\|>\n`               |
//! | Llama 3  | `<\|start_header_id\|>` and `<\|end_header_id\|>` | `<\|start_header_id\|>user<\|end_header_id\|>\n\n{text}<\|eot_id\|>` |
//! | Llama 2  | `[INST]`                                     | `<s>[INST] {text} [/INST]` (system in a `<<SYS>>` block)  |
//! | plain    | anything else, or no template                | `User: {text}\n`                                         |
//!
//! The text starts without the model's BOS token: [`Tokenizer::encode_prompt`] adds it when
//! the model wants one, and parses the control tokens the text contains.
//!
//! Some ChatML templates put a default system message before a conversation that has none
//! (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"); when the
//! template spells that message as plain text it is found and used the same way.
//!
//! [`Tokenizer::encode_prompt`]: super::tokenizer::Tokenizer::encode_prompt

use super::gguf::{GgufError, GgufFile};
use super::tokenizer::Tokenizer;

/// The metadata key holding the model's chat template.
pub const CHAT_TEMPLATE_KEY: &str = "tokenizer.chat_template";

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name in the chat formats.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// The chat format families voxd renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateKind {
    ChatMl,
    Llama2,
    Llama3,
    Plain,
}

/// A model's chat format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatTemplate {
    kind: TemplateKind,
    default_system: Option<String>,
}

impl ChatTemplate {
    /// The format of the model in `file`, from `tokenizer.chat_template` (plain without one).
    pub fn from_gguf(file: &GgufFile) -> Result<Self, GgufError> {
        Ok(Self::detect(file.get_str_opt(CHAT_TEMPLATE_KEY)?))
    }

    /// The format a Jinja chat template belongs to.
    pub fn detect(template: Option<&str>) -> Self {
        let Some(source) = template else {
            return Self::new(TemplateKind::Plain);
        };
        if source.contains("<|start_header_id|>") && source.contains("<|end_header_id|>") {
            Self::new(TemplateKind::Llama3)
        } else if source.contains("<|im_start|>") {
            ChatTemplate {
                kind: TemplateKind::ChatMl,
                default_system: chatml_default_system(source),
            }
        } else if source.contains("[INST]") {
            Self::new(TemplateKind::Llama2)
        } else {
            Self::new(TemplateKind::Plain)
        }
    }

    /// A format without a default system message.
    pub fn new(kind: TemplateKind) -> Self {
        ChatTemplate {
            kind,
            default_system: None,
        }
    }

    /// The format family.
    pub fn kind(&self) -> TemplateKind {
        self.kind
    }

    /// The system message added to conversations that do not start with one.
    pub fn default_system(&self) -> Option<&str> {
        self.default_system.as_deref()
    }

    /// The prompt for `messages`; with `add_generation_prompt`, it ends where the assistant's
    /// reply begins.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> String {
        let default_system = self
            .default_system
            .as_deref()
            .filter(|_| messages.first().map(|m| m.role) != Some(Role::System))
            .map(Message::system);
        let messages: Vec<&Message> = default_system.iter().chain(messages).collect();
        let mut out = String::new();
        match self.kind {
            TemplateKind::ChatMl => {
                for m in &messages {
                    out += &format!("<|im_start|>{}\n{}<|im_end|>\n", m.role.as_str(), m.content);
                }
                if add_generation_prompt {
                    out += "<|im_start|>assistant\n";
                }
            }
            TemplateKind::Llama3 => {
                for m in &messages {
                    out += &format!(
                        "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.role.as_str(),
                        m.content.trim()
                    );
                }
                if add_generation_prompt {
                    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
                }
            }
            TemplateKind::Llama2 => render_llama2(&messages, &mut out),
            TemplateKind::Plain => {
                for m in &messages {
                    let name = match m.role {
                        Role::System => "System",
                        Role::User => "User",
                        Role::Assistant => "Assistant",
                    };
                    out += &format!("{name}: {}\n", m.content.trim());
                }
                if add_generation_prompt {
                    out += "Assistant:";
                }
            }
        }
        out
    }

    /// Texts that end the assistant's reply: where one appears in the generated text, the
    /// reply ends before it.
    pub fn stop_strings(&self) -> &'static [&'static str] {
        match self.kind {
            TemplateKind::ChatMl => &["<|im_end|>", "<|im_start|>"],
            TemplateKind::Llama3 => &["<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"],
            TemplateKind::Llama2 => &["</s>", "[INST]"],
            TemplateKind::Plain => &["\nUser:", "\nSystem:"],
        }
    }

    /// Tokens that end the reply: the tokenizer's end-of-generation tokens and every stop
    /// string that is a single control token of the vocabulary, sorted.
    pub fn stop_tokens(&self, tokenizer: &Tokenizer) -> Vec<u32> {
        let mut ids: Vec<u32> = tokenizer
            .end_of_generation()
            .iter()
            .copied()
            .chain(
                self.stop_strings()
                    .iter()
                    .filter_map(|s| tokenizer.token_id(s)),
            )
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Meta's Llama 2 chat format: every user turn is `<s>[INST] {text} [/INST]`, a system
/// message opens the user turn that follows it in a `<<SYS>>` block, an assistant turn is
/// ` {text} </s>`; texts are trimmed. The first `<s>` is left to the tokenizer (it adds BOS).
/// A prompt always ends where the assistant speaks, so it needs no generation prompt.
fn render_llama2(messages: &[&Message], out: &mut String) {
    let mut system: Option<&str> = None;
    let mut first_turn = true;
    for m in messages {
        match m.role {
            Role::System => system = Some(m.content.as_str()),
            Role::User => {
                let text = match system.take() {
                    Some(s) => format!("<<SYS>>\n{s}\n<</SYS>>\n\n{}", m.content),
                    None => m.content.clone(),
                };
                if !first_turn {
                    *out += "<s>";
                }
                first_turn = false;
                *out += &format!("[INST] {} [/INST]", text.trim());
            }
            Role::Assistant => *out += &format!(" {} </s>", m.content.trim()),
        }
    }
}

/// The default system message a ChatML template writes as a literal (between
/// `<|im_start|>system` and `<|im_end|>`, with no template code in it), if there is one.
fn chatml_default_system(source: &str) -> Option<String> {
    const OPEN: &str = "<|im_start|>system";
    let mut rest = source;
    while let Some(at) = rest.find(OPEN) {
        rest = &rest[at + OPEN.len()..];
        // The newline is a real one, or an escape inside a Jinja string literal.
        let body = rest.strip_prefix('\n').or_else(|| rest.strip_prefix("\\n"));
        let Some(body) = body else { continue };
        let Some(end) = body.find("<|im_end|>") else {
            continue;
        };
        let text = &body[..end];
        let is_literal = !["{{", "{%", "'", "\"", "+"]
            .iter()
            .any(|code| text.contains(code));
        if is_literal && !text.is_empty() {
            return Some(text.replace("\\n", "\n"));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    /// Qwen2.5's template writes the newline as an escape inside the string literal.
    const QWEN25_START: &str = "{%- if messages[0]['role'] == 'system' %}\n    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n{%- else %}\n    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n{%- endif %}";

    const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";

    const LLAMA2: &str = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

    fn conversation() -> Vec<Message> {
        vec![
            Message::system("Be brief."),
            Message::user("Hi! "),
            Message::assistant(" Hello."),
            Message::user("Lights?"),
        ]
    }

    #[test]
    fn templates_are_recognised_by_their_markers() {
        let smollm = ChatTemplate::detect(Some(SMOLLM2));
        assert_eq!(smollm.kind(), TemplateKind::ChatMl);
        assert_eq!(
            smollm.default_system(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        let qwen = ChatTemplate::detect(Some(QWEN25_START));
        assert_eq!(qwen.kind(), TemplateKind::ChatMl);
        assert_eq!(
            qwen.default_system(),
            Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        );
        let plain_chatml = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n'}}{% endfor %}";
        assert_eq!(
            ChatTemplate::detect(Some(plain_chatml)).default_system(),
            None
        );
        assert_eq!(
            ChatTemplate::detect(Some(LLAMA3)).kind(),
            TemplateKind::Llama3
        );
        assert_eq!(
            ChatTemplate::detect(Some(LLAMA2)).kind(),
            TemplateKind::Llama2
        );
        assert_eq!(
            ChatTemplate::detect(Some("{{ messages }}")).kind(),
            TemplateKind::Plain
        );
        assert_eq!(ChatTemplate::detect(None).kind(), TemplateKind::Plain);
    }

    #[test]
    fn chatml_adds_the_default_system_message_only_when_none_is_given() {
        let t = ChatTemplate::detect(Some(SMOLLM2));
        assert_eq!(
            t.render(&[Message::user("Hi")], true),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging \
             Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            t.render(&conversation(), false),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi! <|im_end|>\n\
             <|im_start|>assistant\n Hello.<|im_end|>\n<|im_start|>user\nLights?<|im_end|>\n"
        );
    }

    #[test]
    fn llama3_format() {
        let t = ChatTemplate::new(TemplateKind::Llama3);
        assert_eq!(
            t.render(&conversation(), true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>\
             <|start_header_id|>user<|end_header_id|>\n\nLights?<|eot_id|>\
             <|start_header_id|>assistant<|end_header_id|>\n\n"
        );
    }

    #[test]
    fn llama2_format() {
        let t = ChatTemplate::new(TemplateKind::Llama2);
        assert_eq!(
            t.render(&conversation(), true),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Lights? [/INST]"
        );
        assert_eq!(
            t.render(&[Message::user(" Hi ")], true),
            "[INST] Hi [/INST]"
        );
    }

    #[test]
    fn plain_format() {
        let t = ChatTemplate::new(TemplateKind::Plain);
        assert_eq!(
            t.render(&conversation(), true),
            "System: Be brief.\nUser: Hi!\nAssistant: Hello.\nUser: Lights?\nAssistant:"
        );
        assert!(t.stop_strings().contains(&"\nUser:"));
    }
}
