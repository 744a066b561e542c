//! The `info` event: what this server offers, in the shape the `wyoming` package's `Info`
//! reads (every artifact has `name`, `attribution` {name, url}, `installed`,
//! `description` and `version`; models add `languages`).

use serde_json::{json, Value};

use super::model::ModelState;

/// The name `transcribe` gives to ask for grammar-constrained recognition of a command
/// instead of free transcription.
pub const COMMANDS_MODEL: &str = "voxd-commands";

const WHISPER_URL: &str = "https://github.com/openai/whisper";

/// What the server was started with, for its `info`.
pub struct Offer {
    /// The Whisper model's name (its file or folder name).
    pub model_name: String,
    /// The language commands are spoken in, and the configured transcription language:
    /// listed while the model loads, before its own languages are known.
    pub command_language: String,
    pub transcribe_language: Option<String>,
    /// The grammar's intents (none: no grammar, no intent or handle program).
    pub intents: Vec<String>,
    /// The intents that have an action.
    pub handled_intents: Vec<String>,
}

fn attribution(name: &str, url: &str) -> Value {
    json!({ "name": name, "url": url })
}

fn voxd() -> Value {
    attribution("voxd", "")
}

/// The `info` event's data for `offer`, with the model as `state` says (while it loads it
/// is listed as not installed, with the configured language).
pub fn info(offer: &Offer, state: &ModelState) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let installed = state.languages.is_some();
    let languages = state.languages.clone().unwrap_or_else(|| {
        offer
            .transcribe_language
            .iter()
            .cloned()
            .collect::<Vec<_>>()
    });
    let mut asr_models = vec![json!({
        "name": offer.model_name,
        "attribution": attribution("OpenAI", WHISPER_URL),
        "installed": installed,
        "description": format!("Whisper {}: free transcription", offer.model_name),
        "version": null,
        "languages": languages,
    })];
    let commands = !offer.intents.is_empty();
    if commands {
        asr_models.push(json!({
            "name": COMMANDS_MODEL,
            "attribution": voxd(),
            "installed": installed,
            "description": format!(
                "Whisper {} constrained to the grammar's commands; the transcript is \
                 followed by `intent` or `not-recognized`",
                offer.model_name
            ),
            "version": version,
            "languages": [offer.command_language],
        }));
    }
    let model = |name: &str, description: &str| {
        json!({
            "name": name,
            "attribution": voxd(),
            "installed": true,
            "description": description,
            "version": version,
            "languages": [offer.command_language],
        })
    };
    let intent_models: Vec<Value> = offer
        .intents
        .iter()
        .map(|name| model(name, "an intent of the grammar"))
        .collect();
    let handle_models: Vec<Value> = offer
        .handled_intents
        .iter()
        .map(|name| model(name, "an intent whose action voxd runs"))
        .collect();
    let program = |name: &str, description: &str| {
        json!({
            "name": name,
            "attribution": voxd(),
            "installed": true,
            "description": description,
            "version": version,
        })
    };
    let mut asr = program("voxd", "offline speech to text with Whisper");
    asr["models"] = asr_models.into();
    asr["supports_transcript_streaming"] = false.into();
    // voxd has no voice activity detection on this path: the client ends the audio.
    asr["requires_external_vad"] = true.into();
    let mut data = json!({ "asr": [asr], "tts": [], "handle": [], "intent": [], "wake": [],
                           "mic": [], "snd": [] });
    if commands {
        let mut intent = program("voxd-intents", "the grammar's intents, matched in text");
        intent["models"] = intent_models.into();
        let mut handle = program(
            "voxd-actions",
            "runs the matched intent's action; its notify text is the answer",
        );
        handle["models"] = handle_models.into();
        handle["supports_handled_streaming"] = false.into();
        // Actions are the user's own commands, which may switch things in the house.
        handle["supports_home_control"] = true.into();
        data["intent"] = json!([intent]);
        data["handle"] = json!([handle]);
    }
    data
}
