//! The GGUF reader on the real SmolLM2 file: the facts of FORMATS.md, and every tensor and
//! metadata entry compared with llama.cpp's gguf-py reader (`scripts/reference/llm_reference.py`).

use std::collections::HashMap;

use serde_json::Value as Json;
use voxd::llm::gguf::{Array, GgmlType, GgufFile, Value, ValueType};

use crate::common::llm as llm_common;

fn open() -> GgufFile {
    GgufFile::open(&llm_common::smollm2()).expect("the SmolLM2 GGUF opens")
}

#[test]
fn smollm2_has_the_documented_shape() {
    let f = open();
    assert_eq!(f.version(), 3);
    assert_eq!(f.file_len(), 98_362_432);
    assert_eq!(f.alignment(), 32);
    assert!(
        f.metadata("general.alignment").is_none(),
        "alignment is the default"
    );
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(f.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(f.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(f.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(f.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(f.get_u32("llama.rope.dimension_count").unwrap(), 64);
    assert_eq!(f.get_u32("llama.context_length").unwrap(), 8192);
    assert_eq!(f.get_u32("llama.vocab_size").unwrap(), 49_152);
    assert_eq!(f.get_f32("llama.rope.freq_base").unwrap(), 100_000.0);
    assert_eq!(
        f.get_f32("llama.attention.layer_norm_rms_epsilon").unwrap(),
        1e-5
    );
    assert_eq!(f.get_str("general.license").unwrap(), "apache-2.0");

    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(f.get_str("tokenizer.ggml.pre").unwrap(), "smollm");
    let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(tokens.len(), 49_152);
    assert_eq!(
        &tokens[..3],
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    );
    assert_eq!(
        f.get_str_array("tokenizer.ggml.merges").unwrap().len(),
        48_900
    );
    assert_eq!(
        f.get_i32_array("tokenizer.ggml.token_type").unwrap().len(),
        49_152
    );
    assert_eq!(f.get_u32("tokenizer.ggml.bos_token_id").unwrap(), 1);
    assert_eq!(f.get_u32("tokenizer.ggml.eos_token_id").unwrap(), 2);
    assert!(!f.get_bool("tokenizer.ggml.add_bos_token").unwrap());
    assert!(f
        .get_str("tokenizer.chat_template")
        .unwrap()
        .contains("<|im_start|>"));

    let count = |ty: GgmlType| f.tensors().iter().filter(|t| t.ggml_type() == ty).count();
    assert_eq!(f.tensors().len(), 272);
    assert_eq!(count(GgmlType::Q4_1), 210);
    assert_eq!(count(GgmlType::F32), 61);
    assert_eq!(count(GgmlType::Q8_0), 1);
    assert!(f.tensors().iter().all(|t| t.ggml_type().is_supported()));

    let embd = f.tensor("token_embd.weight").unwrap();
    assert_eq!(embd.ggml_type(), GgmlType::Q8_0);
    assert_eq!(embd.dims(), [576, 49_152]);
    assert_eq!(embd.row_bytes(), 576 / 32 * 34);
    assert_eq!(f.tensor_bytes(embd).len() as u64, 49_152 * embd.row_bytes());
    assert!(
        f.tensor("output.weight").is_none(),
        "the output head is the embedding"
    );

    for b in 0..30 {
        let t = |name: &str| {
            let full = format!("blk.{b}.{name}.weight");
            f.tensor(&full)
                .unwrap_or_else(|| panic!("{full} is missing"))
                .clone()
        };
        assert_eq!(t("attn_q").dims(), [576, 576]);
        assert_eq!(t("attn_k").dims(), [576, 192]);
        assert_eq!(t("attn_v").dims(), [576, 192]);
        assert_eq!(t("attn_output").dims(), [576, 576]);
        assert_eq!(t("ffn_gate").dims(), [576, 1536]);
        assert_eq!(t("ffn_up").dims(), [576, 1536]);
        assert_eq!(t("ffn_down").dims(), [1536, 576]);
        assert_eq!(t("attn_norm").ggml_type(), GgmlType::F32);
        assert_eq!(t("ffn_norm").dims(), [576]);
        assert_eq!(t("attn_q").ggml_type(), GgmlType::Q4_1);
    }
    assert_eq!(f.tensor("output_norm.weight").unwrap().dims(), [576]);
}

#[test]
fn tensors_match_gguf_py() {
    let f = open();
    let path = llm_common::smollm2();
    let reference = llm_common::reference(&["tensors", path.to_str().unwrap()]);
    assert_eq!(reference["alignment"].as_u64(), Some(f.alignment()));
    assert_eq!(reference["data_offset"].as_u64(), Some(f.data_offset()));
    let expected = reference["tensors"].as_array().unwrap();
    assert_eq!(expected.len(), f.tensors().len());
    for (ours, theirs) in f.tensors().iter().zip(expected) {
        let name = theirs["name"].as_str().unwrap();
        assert_eq!(ours.name(), name);
        assert_eq!(
            ours.ggml_type().name(),
            theirs["type"].as_str().unwrap(),
            "{name}"
        );
        assert_eq!(
            u64::from(ours.ggml_type().id()),
            theirs["type_id"].as_u64().unwrap()
        );
        let dims: Vec<u64> = theirs["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(ours.dims(), dims.as_slice(), "{name}");
        assert_eq!(Some(ours.offset()), theirs["offset"].as_u64(), "{name}");
        assert_eq!(Some(ours.n_bytes()), theirs["n_bytes"].as_u64(), "{name}");
        assert_eq!(f.tensor_bytes(ours).len() as u64, ours.n_bytes());
    }
}

/// gguf-py's name for a value type.
fn gguf_py_name(ty: ValueType) -> &'static str {
    match ty {
        ValueType::U8 => "UINT8",
        ValueType::I8 => "INT8",
        ValueType::U16 => "UINT16",
        ValueType::I16 => "INT16",
        ValueType::U32 => "UINT32",
        ValueType::I32 => "INT32",
        ValueType::F32 => "FLOAT32",
        ValueType::Bool => "BOOL",
        ValueType::String => "STRING",
        ValueType::Array => "ARRAY",
        ValueType::U64 => "UINT64",
        ValueType::I64 => "INT64",
        ValueType::F64 => "FLOAT64",
    }
}

/// A scalar as gguf-py's JSON shows it.
fn scalar_json(value: &Value) -> Json {
    match value {
        Value::U8(v) => (*v).into(),
        Value::I8(v) => (*v).into(),
        Value::U16(v) => (*v).into(),
        Value::I16(v) => (*v).into(),
        Value::U32(v) => (*v).into(),
        Value::I32(v) => (*v).into(),
        Value::F32(v) => f64::from(*v).into(),
        Value::Bool(v) => (*v).into(),
        Value::String(v) => v.clone().into(),
        Value::U64(v) => (*v).into(),
        Value::I64(v) => (*v).into(),
        Value::F64(v) => (*v).into(),
        Value::Array(_) => unreachable!("arrays are compared by element"),
    }
}

/// The first eight elements of an array as JSON (the arrays of this model hold strings and
/// integers only).
fn head_json(array: &Array) -> Vec<Json> {
    match array {
        Array::String(v) => v.iter().take(8).map(|s| s.clone().into()).collect(),
        Array::I32(v) => v.iter().take(8).map(|&x| x.into()).collect(),
        other => panic!("unexpected array of {:?}", other.element_type()),
    }
}

#[test]
fn metadata_matches_gguf_py() {
    let f = open();
    let path = llm_common::smollm2();
    let reference = llm_common::reference(&["metadata", path.to_str().unwrap()]);
    let expected: HashMap<&str, &Json> = reference
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let ours: Vec<(&str, &Value)> = f.metadata_entries().collect();
    assert_eq!(ours.len(), expected.len());
    assert_eq!(ours.len(), 33);
    for (key, value) in ours {
        let theirs = expected
            .get(key)
            .unwrap_or_else(|| panic!("{key} not in gguf-py's metadata"));
        match value {
            Value::Array(array) => {
                assert_eq!(theirs["type"].as_str(), Some("array"), "{key}");
                assert_eq!(theirs["len"].as_u64(), Some(array.len() as u64), "{key}");
                let element = gguf_py_name(array.element_type());
                assert_eq!(theirs["element_type"].as_str(), Some(element), "{key}");
                assert_eq!(
                    theirs["head"].as_array().unwrap(),
                    &head_json(array),
                    "{key}"
                );
            }
            scalar => {
                let ty = gguf_py_name(scalar.value_type());
                assert_eq!(theirs["type"].as_str(), Some(ty), "{key}");
                assert_eq!(theirs["value"], scalar_json(scalar), "{key}");
            }
        }
    }
}
