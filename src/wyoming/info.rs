//! The `info` event: what this server offers, in the shape the `wyoming` package's `Info`
//! reads (every artifact has `name`, `attribution` {name, url}, `installed`,
//! `description` and `version`; models add `languages`).

use serde_json::{json, Value};

use super::model::ModelState;

/// The name `transcribe` gives to ask for grammar-constrained recognition of a command
/// instead of free transcription.
pub const COMMANDS_MODEL: &str = "voxd-commands";

/// The `handle` model that stands for the reply model (`[llm]`).
pub const REPLY_MODEL: &str = "voxd-reply";

const WHISPER_URL: &str = "https://github.com/openai/whisper";

/// What the server was started with, for its `info`.
#[derive(Clone)]
pub struct Offer {
    /// The Whisper model's name (its file or folder name).
    pub model_name: String,
    /// The reply model's file (folder and name), with `[llm] enabled`.
    pub reply_model: Option<String>,
    /// The language commands are spoken in.
    pub command_language: String,
    /// The model's languages as known before it is loaded: from a CTranslate2 folder's
    /// vocabulary, else the configured transcription language.
    pub early_languages: Vec<String>,
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

/// The `info` event's data for `offer`, with the model as `state` says. The model file is
/// there, so it is listed as installed while it loads too (Home Assistant offers only
/// installed models' languages), with the languages known before loading.
pub fn info(offer: &Offer, state: &ModelState) -> Value {
    let version = env!("CARGO_PKG_VERSION");
    let languages = state
        .languages
        .clone()
        .unwrap_or_else(|| offer.early_languages.clone());
    let mut asr_models = vec![json!({
        "name": offer.model_name,
        "attribution": attribution("OpenAI", WHISPER_URL),
        "installed": true,
        "description": format!("Whisper {}: free transcription", offer.model_name),
        "version": null,
        "languages": languages,
    })];
    let program = |name: &str, description: &str| {
        json!({
            "name": name,
            "attribution": voxd(),
            "installed": true,
            "description": description,
            "version": version,
        })
    };
    let model = |name: &str, description: &str| {
        let mut model = program(name, description);
        model["languages"] = json!([offer.command_language]);
        model
    };
    let commands = !offer.intents.is_empty();
    if commands {
        let description = format!(
            "Whisper {} constrained to the grammar's commands; the transcript is followed by \
             `intent` or `not-recognized`",
            offer.model_name
        );
        asr_models.push(model(COMMANDS_MODEL, &description));
    }
    let intent_models: Vec<Value> = offer
        .intents
        .iter()
        .map(|name| model(name, "an intent of the grammar"))
        .collect();
    let mut handle_models: Vec<Value> = offer
        .handled_intents
        .iter()
        .map(|name| model(name, "an intent whose action voxd runs"))
        .collect();
    if let Some(file) = &offer.reply_model {
        let description = format!(
            "the local language model {file}: answers what no intent matches (its text is \
             never run)"
        );
        handle_models.push(model(REPLY_MODEL, &description));
    }
    let mut asr = program("voxd", "offline speech to text with Whisper");
    asr["models"] = asr_models.into();
    // `transcript-chunk`s come while the audio arrives (`live.rs`).
    asr["supports_transcript_streaming"] = true.into();
    // voxd has no voice activity detection on this path: the client ends the audio.
    asr["requires_external_vad"] = true.into();
    let mut data = json!({ "asr": [asr], "tts": [], "handle": [], "intent": [], "wake": [],
                           "mic": [], "snd": [] });
    if commands {
        let mut intent = program("voxd-intents", "the grammar's intents, matched in text");
        intent["models"] = intent_models.into();
        data["intent"] = json!([intent]);
    }
    if commands || offer.reply_model.is_some() {
        let mut handle = program(
            "voxd-actions",
            "runs the matched intent's action; its notify text is the answer (with [llm], \
             the local language model answers what no intent matches)",
        );
        handle["models"] = handle_models.into();
        handle["supports_handled_streaming"] = false.into();
        // Actions are the user's own commands, which may switch things in the house.
        handle["supports_home_control"] = commands.into();
        data["handle"] = json!([handle]);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(intents: &[&str]) -> Offer {
        Offer {
            model_name: "tiny.en".into(),
            reply_model: None,
            command_language: "en".into(),
            early_languages: vec!["en".into()],
            intents: intents.iter().map(|s| s.to_string()).collect(),
            handled_intents: intents.iter().take(1).map(|s| s.to_string()).collect(),
        }
    }

    /// Every field the `wyoming` package's `Info.from_event` needs without a default.
    fn assert_artifact(value: &Value) {
        for key in ["name", "attribution", "installed", "description", "version"] {
            assert!(value.get(key).is_some(), "{key} missing in {value}");
        }
        assert!(
            value["attribution"]["name"].is_string() && value["attribution"]["url"].is_string()
        );
    }

    #[test]
    fn the_info_lists_the_models_languages_while_loading_and_after() {
        let loading = info(&offer(&["A", "B"]), &ModelState::default());
        assert_eq!(loading["asr"][0]["models"][0]["languages"], json!(["en"]));
        let state = ModelState {
            languages: Some(vec!["de".into(), "en".into()]),
        };
        let loaded = info(&offer(&["A", "B"]), &state);
        assert_eq!(
            loaded["asr"][0]["models"][0]["languages"],
            json!(["de", "en"])
        );
        for domain in ["asr", "intent", "handle"] {
            let program = &loaded[domain][0];
            assert_artifact(program);
            for model in program["models"].as_array().unwrap() {
                assert_artifact(model);
                assert!(model["languages"].is_array());
            }
        }
        assert_eq!(loaded["intent"][0]["models"].as_array().unwrap().len(), 2);
        assert_eq!(loaded["handle"][0]["models"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn without_a_grammar_only_speech_to_text_is_offered() {
        let data = info(&offer(&[]), &ModelState::default());
        assert_eq!(data["asr"][0]["models"].as_array().unwrap().len(), 1);
        assert_eq!(data["intent"], json!([]));
        assert_eq!(data["handle"], json!([]));
    }

    #[test]
    fn the_reply_model_is_a_handle_model_with_or_without_a_grammar() {
        for intents in [&[][..], &["A"][..]] {
            let with_replies = Offer {
                reply_model: Some("smollm2/model.gguf".into()),
                ..offer(intents)
            };
            let data = info(&with_replies, &ModelState::default());
            let models = data["handle"][0]["models"].as_array().unwrap();
            let last = models.last().unwrap();
            assert_artifact(last);
            assert_eq!(last["name"], REPLY_MODEL);
            assert_eq!(models.len(), intents.len() + 1);
            assert_eq!(
                data["handle"][0]["supports_home_control"],
                !intents.is_empty()
            );
        }
    }
}
