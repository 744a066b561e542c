//! SmolLM2's tokenizer against llama.cpp's (xllamacpp's server, through
//! `scripts/reference/llm_reference.py tokenize`) on the corpus in `tests/fixtures/llm/`: the same ids with
//! and without special tokens parsed, and decoding back to the text.

use voxd::llm::gguf::GgufFile;
use voxd::llm::tokenizer::{PreTokenizer, StreamDecoder, Tokenizer, VocabKind};

use crate::common::llm as llm_common;

const CORPUS: &str = "tests/fixtures/llm/tokenizer_corpus.json";

fn tokenizer() -> Tokenizer {
    let file = GgufFile::open(&llm_common::smollm2()).expect("the SmolLM2 GGUF opens");
    Tokenizer::from_gguf(&file).expect("its tokenizer builds")
}

#[test]
fn smollm2_tokenizer_matches_llama_cpp() {
    let t = tokenizer();
    assert_eq!(t.kind(), VocabKind::BytePairs);
    assert_eq!(t.pre_tokenizer(), Some(PreTokenizer::Smollm));
    assert_eq!(t.n_vocab(), 49_152);
    assert_eq!(t.special().bos, Some(1));
    assert_eq!(t.special().eos, Some(2));
    assert!(!t.add_bos());
    assert_eq!(t.token_id("<|im_end|>"), Some(2));
    assert!(t.is_end_of_generation(2) && t.is_end_of_generation(0));
    assert!(!t.is_end_of_generation(1));

    let model = llm_common::smollm2();
    let reference = llm_common::reference(&["tokenize", model.to_str().unwrap(), CORPUS]);
    let cases = reference.as_array().expect("a list of cases");
    let corpus: Vec<String> = serde_json::from_str(
        &std::fs::read_to_string(crate::common::repo().join(CORPUS)).expect("the corpus reads"),
    )
    .expect("the corpus is a JSON list of strings");
    assert_eq!(cases.len(), corpus.len());
    assert!(cases.len() >= 30);

    let mut failures = Vec::new();
    for (case, text) in cases.iter().zip(&corpus) {
        assert_eq!(case["text"].as_str(), Some(text.as_str()));
        let expected = llm_common::ids(&case["ids"]);
        let expected_special = llm_common::ids(&case["ids_special"]);
        let ours = t.encode(text, false);
        let ours_special = t.encode(text, true);
        if ours != expected {
            failures.push(format!("{text:?}: ours {ours:?}, llama.cpp {expected:?}"));
        }
        if ours_special != expected_special {
            failures.push(format!(
                "{text:?} (special): ours {ours_special:?}, llama.cpp {expected_special:?}"
            ));
        }
        assert_eq!(case["detokenized"].as_str(), Some(text.as_str()));
        assert_eq!(&t.decode(&ours, false), text, "round trip");
        assert_eq!(&t.decode(&ours_special, true), text, "round trip (special)");
        let mut stream = StreamDecoder::new(&t, true);
        let streamed: String = ours_special.iter().map(|&id| stream.push(id)).collect();
        assert_eq!(streamed + &stream.finish(), *text, "streamed");
    }
    assert!(
        failures.is_empty(),
        "{} of {} encodings differ from llama.cpp:\n{}",
        failures.len(),
        2 * cases.len(),
        failures.join("\n")
    );
}
