//! CTranslate2 `vocabulary.txt`: Whisper's tokenizer built from it, then a round trip of
//! text through the tokenizer.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use voxd::whisper::tokenizer::Tokenizer;

fuzz_target!(|data: &[u8]| {
    let Ok(tokenizer) = Tokenizer::from_ct2_vocabulary(PathBuf::from("vocabulary.txt"), data)
    else {
        return;
    };
    let ids = tokenizer.encode(" Turn on the kitchen lights, 20°C!");
    assert!(ids.iter().all(|&id| (id as usize) < tokenizer.n_vocab()));
    let _ = tokenizer.decode(&ids);
});
