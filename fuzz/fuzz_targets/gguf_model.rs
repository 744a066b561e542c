//! GGUF models: the LLaMA loader (`Llama::from_gguf`: hyper-parameters and every tensor's
//! name, type and shape), the tokenizer and the chat template built from the metadata, and
//! one forward step over the loaded weights (the quantized kernels read the file's blocks).
#![no_main]

use libfuzzer_sys::fuzz_target;
use voxd::llm::chat::ChatTemplate;
use voxd::llm::gguf::GgufFile;
use voxd::llm::model::Llama;
use voxd::llm::tokenizer::Tokenizer;

/// Text with words, digits, punctuation, accents and a special-token look-alike, so that the
/// pre-tokenizer and merges see each kind.
const TEXT: &str = "Turn on the lights at 7:30, s'il vous plaît! <|im_start|>user\n";

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else {
        return;
    };
    if let Ok(tokenizer) = Tokenizer::from_gguf(&file) {
        let ids = tokenizer.encode_prompt(TEXT);
        assert!(ids.iter().all(|&id| (id as usize) < tokenizer.n_vocab()));
        let _ = tokenizer.decode(&ids, true);
    }
    let _ = ChatTemplate::from_gguf(&file);
    let Ok(model) = Llama::from_gguf(file) else {
        return;
    };
    let tokens: Vec<u32> = (0..model.hyper().n_vocab.min(2) as u32).collect();
    let mut cache = model.new_cache(tokens.len());
    let logits = model
        .forward(&tokens, &mut cache, false)
        .expect("tokens inside the vocabulary fit a cache of their length");
    assert_eq!(logits.len(), model.hyper().n_vocab);
});
