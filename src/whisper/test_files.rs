//! Small model files written by the tests: a synthetic Whisper of any dimensions in the
//! CTranslate2 format, and whisper.cpp headers, to check what loading accepts and refuses.

use std::path::PathBuf;

use half::f16;

use super::mel::{LogMel, N_FREQS};
use super::model::Whisper;
use super::weights::{
    Conv1d, CrossAttention, DType, DecoderLayer, DecoderWeights, EncoderLayer, EncoderWeights,
    HParams, LayerNorm, Linear, LoadError, Matrix, Mlp, NamedTensor, SelfAttention, TensorData,
    TensorSource, WhisperWeights,
};
use super::{ct2, ggml};
use crate::kernels::quant::QuantType;

/// Dimensions small enough to write in a test and run at once.
fn small() -> HParams {
    HParams {
        n_vocab: 16,
        n_audio_ctx: 4,
        n_audio_state: 8,
        n_audio_head: 2,
        n_audio_layer: 1,
        n_text_ctx: 8,
        n_text_state: 8,
        n_text_head: 2,
        n_text_layer: 1,
        n_mels: 4,
    }
}

/// Deterministic values in [-0.5, 0.5), different for every `seed`.
fn values(seed: usize, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| ((i * 37 + seed * 101) % 97) as f32 / 97.0 - 0.5)
        .collect()
}

/// A model of any dimensions, even ones the loader must refuse; the decoder's matrices are
/// f16 as the loader keeps them.
fn synthetic(hp: HParams) -> WhisperWeights {
    let seed = std::cell::Cell::new(0);
    let next = |n: usize| {
        seed.set(seed.get() + 1);
        values(seed.get(), n)
    };
    let linear = |n_out: usize, n_in: usize, half: bool| {
        let w = next(n_out * n_in);
        Linear {
            weight: if half {
                Matrix::F16(w.into_iter().map(f16::from_f32).collect())
            } else {
                Matrix::F32(w)
            },
            bias: next(n_out),
            n_out,
            n_in,
        }
    };
    let norm = |w: usize| LayerNorm {
        gamma: vec![1.0; w],
        beta: vec![0.0; w],
    };
    // The decoder keeps its matrices in f16 (`half`), but for the cross-attention's keys
    // and values.
    let attention = |s: usize, half: bool| SelfAttention {
        ln: norm(s),
        qkv: linear(3 * s, s, half),
        out: linear(s, s, half),
    };
    let (sa, st) = (hp.n_audio_state, hp.n_text_state);
    let encoder_layers = (0..hp.n_audio_layer)
        .map(|_| EncoderLayer {
            attn: attention(sa, false),
            mlp: Mlp {
                ln: norm(sa),
                fc1: linear(4 * sa, sa, false),
                fc2: linear(sa, 4 * sa, false),
            },
        })
        .collect();
    let decoder_layers = (0..hp.n_text_layer)
        .map(|_| DecoderLayer {
            attn: attention(st, true),
            cross: CrossAttention {
                ln: norm(st),
                q: linear(st, st, true),
                kv: linear(2 * st, st, false),
                out: linear(st, st, true),
            },
            mlp: Mlp {
                ln: norm(st),
                fc1: linear(4 * st, st, true),
                fc2: linear(st, 4 * st, true),
            },
        })
        .collect();
    let conv = |n_out: usize, n_in: usize, seed: usize| {
        Conv1d::from_pytorch(
            TensorData::F32(values(seed, n_out * n_in * 3)),
            values(seed + 1, n_out),
            n_out,
            n_in,
        )
    };
    WhisperWeights {
        hparams: hp,
        encoder: EncoderWeights {
            conv1: conv(sa, hp.n_mels, 1000),
            conv2: conv(sa, sa, 2000),
            positions: Matrix::F32(values(3000, hp.n_audio_ctx * sa)),
            layers: encoder_layers,
            ln_post: norm(sa),
        },
        decoder: DecoderWeights {
            token_embedding: Matrix::F16(
                values(4000, hp.n_vocab * st)
                    .into_iter()
                    .map(f16::from_f32)
                    .collect(),
            ),
            positions: Matrix::F32(values(5000, hp.n_text_ctx * st)),
            layers: decoder_layers,
            ln: norm(st),
        },
    }
}

/// A CTranslate2 variable: name, shape, data type code, bytes.
type Variable = (String, Vec<usize>, u8, Vec<u8>);

fn ct2_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u16 + 1).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// `model.bin` (binary version 6) holding `variables`.
fn ct2_file(variables: &[Variable]) -> Vec<u8> {
    ct2_file_with_aliases(variables, &[])
}

/// `model.bin` holding `variables` and `aliases` (alias, the variable it names).
fn ct2_file_with_aliases(variables: &[Variable], aliases: &[(&str, &str)]) -> Vec<u8> {
    let mut out = 6u32.to_le_bytes().to_vec();
    ct2_string(&mut out, "WhisperSpec");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(variables.len() as u32).to_le_bytes());
    for (name, shape, dtype, bytes) in variables {
        ct2_string(&mut out, name);
        out.push(shape.len() as u8);
        for &d in shape {
            out.extend_from_slice(&(d as u32).to_le_bytes());
        }
        out.push(*dtype);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (alias, target) in aliases {
        ct2_string(&mut out, alias);
        ct2_string(&mut out, target);
    }
    out
}

/// Every tensor of `weights` as CTranslate2 names and stores it (f32), with the head counts.
fn ct2_variables(weights: &WhisperWeights) -> Vec<Variable> {
    let mut variables = Vec::new();
    weights
        .for_each_tensor(&ct2::NAMES, |t: NamedTensor<'_>| {
            let bytes = t.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            variables.push((t.name, t.shape, 0, bytes));
            Ok::<(), ()>(())
        })
        .expect("collecting cannot fail");
    let hp = &weights.hparams;
    for (name, heads) in [
        ("encoder/num_heads", hp.n_audio_head),
        ("decoder/num_heads", hp.n_text_head),
    ] {
        // i16, as CTranslate2 writes them.
        let bytes = (heads as i16).to_le_bytes().to_vec();
        variables.push((name.to_string(), vec![], 2, bytes));
    }
    variables
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("voxd-test-files-{}-{what}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load_ct2(hp: HParams, what: &str) -> Result<WhisperWeights, LoadError> {
    let dir = Scratch::new(what);
    let path = dir.write("model.bin", &ct2_file(&ct2_variables(&synthetic(hp))));
    ct2::load_weights(&path)
}

/// Every tensor as (name, shape, values), for comparing two models.
fn listing(weights: &WhisperWeights) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut out = Vec::new();
    weights
        .for_each_tensor(&ct2::NAMES, |t| {
            out.push((t.name, t.shape, t.values.into_owned()));
            Ok::<(), ()>(())
        })
        .expect("collecting cannot fail");
    out
}

fn assert_refused(result: Result<WhisperWeights, LoadError>, wanted: &[&str]) {
    let err = match result {
        Ok(_) => panic!("a model that should be refused loaded (wanted {wanted:?})"),
        Err(e) => e.to_string(),
    };
    for w in wanted {
        assert!(err.contains(w), "error {err:?} does not say {w:?}");
    }
}

#[test]
fn a_small_ct2_model_loads_back_and_runs() {
    let hp = small();
    let written = synthetic(hp);
    let loaded = load_ct2(hp, "small").expect("a well-formed model loads");
    assert_eq!(loaded.hparams, hp);
    assert_eq!(listing(&loaded), listing(&written));

    let model = Whisper::new(loaded);
    let frames = 2 * hp.n_audio_ctx;
    let mel = LogMel {
        n_mels: hp.n_mels,
        n_frames: frames,
        data: values(7, hp.n_mels * frames),
    };
    let audio = model.encode(&mel, hp.n_audio_ctx).unwrap();
    assert_eq!(audio.len(), hp.n_audio_ctx * hp.n_audio_state);
    let cross = model.cross_kv(&audio);
    let mut cache = [model.new_cache()];
    let hidden = model.decode(&cross, &mut cache, &[&[1, 2, 3]]).unwrap();
    let logits = model.logits(&hidden);
    assert_eq!(logits.len(), 3 * hp.n_vocab);
    assert!(logits.iter().all(|v| v.is_finite()));

    // Asked where it listened, the decoder computes the same rows, and each row's average
    // of the chosen heads' cross-attention weights is a distribution over the audio.
    let mut cache = [model.new_cache()];
    let heads = [(0, 0), (hp.n_text_layer - 1, hp.n_text_head - 1)];
    let (same, listened) = model
        .decode_attending(&cross, &mut cache, &[&[1, 2, 3]], &heads)
        .unwrap();
    assert_eq!(same, hidden);
    assert_eq!(listened.len(), 3 * cross.n_audio());
    for row in listened.chunks_exact(cross.n_audio()) {
        let total: f32 = row.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        assert!(row.iter().all(|&w| (0.0..=1.0).contains(&w)));
    }
}

#[test]
fn a_ct2_model_of_width_zero_is_refused() {
    let hp = HParams {
        n_audio_state: 0,
        n_text_state: 0,
        ..small()
    };
    assert_refused(load_ct2(hp, "width0"), &["model.bin", "n_audio_state is 0"]);
}

#[test]
fn a_ct2_decoder_narrower_than_its_encoder_is_refused() {
    let hp = HParams {
        n_text_state: 4,
        ..small()
    };
    assert_refused(
        load_ct2(hp, "narrow"),
        &["n_text_state is 4", "n_audio_state 8"],
    );
}

#[test]
fn a_ct2_model_with_a_head_count_beyond_its_width_is_refused() {
    let hp = HParams {
        n_text_head: 16,
        ..small()
    };
    assert_refused(load_ct2(hp, "heads"), &["n_text_head is 16", "1..=8"]);
}

#[test]
fn a_ct2_variable_too_large_to_address_is_refused() {
    // 2^31 · 2^31 · 4 values of 4 bytes: the byte count wraps to 0 in 64 bits, which an
    // unchecked product would take for the 0 bytes stored.
    let huge = (
        "encoder/conv1/weight".to_string(),
        vec![1 << 31, 1 << 31, 4],
        0,
        vec![],
    );
    let dir = Scratch::new("huge");
    let path = dir.write("model.bin", &ct2_file(&[huge]));
    assert_refused(
        ct2::load_weights(&path),
        &["model.bin", "encoder/conv1/weight", "too large"],
    );
}

/// A whisper.cpp file: the header with `dims` (n_vocab ... n_mels), one f32 mel filter,
/// no vocabulary, then `tensors` (name, dimensions innermost first) without data.
fn ggml_file(dims: [usize; 10], tensors: &[(&str, &[usize])]) -> Vec<u8> {
    let mut out = ggml::MAGIC.to_le_bytes().to_vec();
    let i32s = |out: &mut Vec<u8>, vs: &[usize]| {
        for &v in vs {
            out.extend_from_slice(&(v as i32).to_le_bytes());
        }
    };
    i32s(&mut out, &dims);
    i32s(&mut out, &[1, 1, N_FREQS]); // ftype, filter count and length
    out.extend(std::iter::repeat_n(0u8, N_FREQS * 4));
    i32s(&mut out, &[0]); // vocabulary size
    for (name, shape) in tensors {
        i32s(&mut out, &[shape.len(), name.len(), 0]);
        i32s(&mut out, shape);
        out.extend_from_slice(name.as_bytes());
    }
    out
}

fn dims_of(hp: HParams) -> [usize; 10] {
    hp.in_header_order().map(|(_, v)| v)
}

fn load_ggml(bytes: &[u8], what: &str) -> Result<(), String> {
    let dir = Scratch::new(what);
    let path = dir.write("ggml-model.bin", bytes);
    ggml::load(&path).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn ggml_headers_with_zero_or_absurd_dimensions_are_refused() {
    let cases = [
        (
            HParams {
                n_audio_state: 0,
                ..small()
            },
            "n_audio_state is 0",
        ),
        (
            HParams {
                n_text_layer: 0,
                ..small()
            },
            "n_text_layer is 0",
        ),
        (
            HParams {
                n_mels: 5000,
                ..small()
            },
            "n_mels is 5000",
        ),
        (
            HParams {
                n_text_ctx: 1,
                ..small()
            },
            "n_text_ctx is 1",
        ),
        (
            HParams {
                n_audio_head: 3,
                ..small()
            },
            "n_audio_head is 3",
        ),
    ];
    for (hp, wanted) in cases {
        let err = load_ggml(&ggml_file(dims_of(hp), &[]), "dims").unwrap_err();
        assert!(err.contains(wanted), "{hp:?}: {err}");
        assert!(err.contains("ggml-model.bin"), "{err}");
    }
}

#[test]
fn a_ggml_tensor_too_large_to_address_is_refused() {
    // Innermost first: 2^8 · 2^28 · 2^28 f32 values, whose byte count wraps to 0.
    let bytes = ggml_file(
        dims_of(small()),
        &[("encoder.conv1.weight", &[1 << 8, 1 << 28, 1 << 28])],
    );
    let dir = Scratch::new("ggml-huge");
    let path = dir.write("ggml-model.bin", &bytes);
    let err = match ggml::GgmlFile::open(&path) {
        Ok(_) => panic!("a tensor whose size wraps was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("encoder.conv1.weight") && err.contains("too large"),
        "{err}"
    );
}

// ------------------------------------------------------------------ int8 CTranslate2 models

/// CTranslate2's int8 quantization of a weight (its converter's `model_spec.py`): for each
/// output row (the first dimension, the others flattened) scale = 127 / max|w| (127 for an
/// all-zero row), q = w · scale rounded to the nearest integer, ties to even.
fn ct2_int8(values: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let mut quantized = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(rows);
    for row in values.chunks_exact(values.len() / rows) {
        let amax = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = if amax == 0.0 { 127.0 } else { 127.0 / amax };
        quantized.extend(row.iter().map(|&v| (v * scale).round_ties_even() as i8));
        scales.push(scale);
    }
    (quantized, scales)
}

fn int8_variable(name: &str, shape: Vec<usize>, q: &[i8]) -> Variable {
    (
        name.to_string(),
        shape,
        1,
        q.iter().map(|&v| v as u8).collect(),
    )
}

fn f32_variable(name: &str, values: &[f32]) -> Variable {
    let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    (name.to_string(), vec![values.len()], 0, bytes)
}

/// What voxd makes of an int8 weight: Q8_0 with the step rounded to f16 for a matrix whose
/// rows are whole blocks, else f32 with the step as it is.
fn int8_loaded(q: &[i8], scales: &[f32], shape: &[usize]) -> Vec<f32> {
    let as_blocks = shape.len() == 2 && shape[1].is_multiple_of(32);
    let cols = q.len() / scales.len();
    q.chunks_exact(cols)
        .zip(scales)
        .flat_map(|(row, &scale)| {
            let step = if as_blocks {
                f16::from_f32(1.0 / scale).to_f32()
            } else {
                1.0 / scale
            };
            row.iter().map(move |&v| f32::from(v) * step)
        })
        .collect()
}

/// A model quantized as `--quantization int8` does (every variable named `.../weight`: the
/// linear layers, the convolutions and the token embedding) loads with each weight at its
/// dequantized values, the matrices as Q8_0, and runs.
#[test]
fn an_int8_ct2_model_loads_at_its_dequantized_values() {
    // Width 32: the matrices' rows are whole Q8_0 blocks; the convolutions' are not (4 · 3
    // and 32 · 3 values), so they take the f32 path.
    let hp = HParams {
        n_audio_state: 32,
        n_text_state: 32,
        ..small()
    };
    let written = synthetic(hp);
    let mut variables = Vec::new();
    let mut expected = Vec::new();
    for (name, shape, values) in listing(&written) {
        if name.ends_with("/weight") {
            let (q, scales) = ct2_int8(&values, shape[0]);
            expected.push((
                name.clone(),
                shape.clone(),
                int8_loaded(&q, &scales, &shape),
            ));
            variables.push(f32_variable(&format!("{name}_scale"), &scales));
            variables.push(int8_variable(&name, shape, &q));
        } else {
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            variables.push((name.clone(), shape.clone(), 0, bytes));
            expected.push((name, shape, values));
        }
    }
    variables.extend(
        ct2_variables(&written)
            .into_iter()
            .filter(|(name, ..)| name.ends_with("num_heads")),
    );
    let dir = Scratch::new("int8");
    let path = dir.write("model.bin", &ct2_file(&variables));
    let loaded = ct2::load_weights(&path).expect("an int8 model loads");
    assert_eq!(listing(&loaded), expected);
    let decoder = &loaded.decoder;
    assert_eq!(decoder.token_embedding.format(), QuantType::Q8_0);
    assert_eq!(decoder.layers[0].mlp.fc1.weight.format(), QuantType::Q8_0);
    assert_eq!(
        loaded.encoder.layers[0].attn.qkv.weight.format(),
        QuantType::Q8_0
    );

    let model = Whisper::new(loaded);
    let mel = LogMel {
        n_mels: hp.n_mels,
        n_frames: 2 * hp.n_audio_ctx,
        data: values(7, hp.n_mels * 2 * hp.n_audio_ctx),
    };
    let audio = model.encode(&mel, hp.n_audio_ctx).unwrap();
    let cross = model.cross_kv(&audio);
    let hidden = model
        .decode(&cross, &mut [model.new_cache()], &[&[1, 2, 3]])
        .unwrap();
    assert!(model.logits(&hidden).iter().all(|v| v.is_finite()));
}

/// Hand-made int8 variables: a matrix of two rows of 32 with scales 4 and 0.5 (steps 0.25
/// and 2, exact in f16) reads as Q8_0 of exactly q / scale, directly and through an alias,
/// and is taken (as the weights are built) the same; a convolution's weight with f16 scales
/// reads as f32.
#[test]
fn int8_ct2_variables_dequantize_by_their_row_scales() {
    let q: Vec<i8> = (0..64).map(|i| [-128, -7, 0, 1, 5, 127][i % 6]).collect();
    let half_scales: Vec<u8> = [4.0f32, 0.5]
        .iter()
        .flat_map(|&s| f16::from_f32(s).to_le_bytes())
        .collect();
    let variables = [
        int8_variable("m/weight", vec![2, 32], &q),
        f32_variable("m/weight_scale", &[4.0, 0.5]),
        int8_variable("c/weight", vec![2, 2, 3], &q[..12]),
        ("c/weight_scale".to_string(), vec![2], 4, half_scales),
    ];
    let file = ct2_file_with_aliases(&variables, &[("p/weight", "m/weight")]);
    let mut file = ct2::Ct2File::from_bytes("int8.bin", file).unwrap();
    let dequantized = |q: &[i8], row_len: usize| -> Vec<f32> {
        q.iter()
            .enumerate()
            .map(|(i, &v)| f32::from(v) / [4.0, 0.5][i / row_len])
            .collect()
    };
    for name in ["m/weight", "p/weight"] {
        let m = file.tensor(name).unwrap();
        assert_eq!(m.dtype(), DType::Blocks(QuantType::Q8_0), "{name}");
        assert_eq!(m.shape, [2, 32]);
        assert_eq!(m.to_f32(), dequantized(&q, 32), "{name}");
    }
    let c = file.tensor("c/weight").unwrap();
    assert_eq!((c.dtype(), &c.shape[..]), (DType::F32, &[2, 2, 3][..]));
    assert_eq!(c.to_f32(), dequantized(&q[..12], 6));
    let taken = file.take("p/weight").unwrap();
    assert_eq!(taken.dtype(), DType::Blocks(QuantType::Q8_0));
    assert_eq!(taken.to_f32(), dequantized(&q, 32));
    assert!(file.tensor("m/weight").is_err(), "a taken weight stays");
}

/// An int8 weight whose scales are missing, of the wrong shape, type or value, and weight
/// types voxd does not read, are refused naming the variable.
#[test]
fn int8_ct2_weights_without_usable_scales_are_refused() {
    let q = [3i8; 64];
    let weight = || int8_variable("m/weight", vec![2, 32], &q);
    let cases: [(Vec<Variable>, &[&str]); 6] = [
        (vec![weight()], &["m/weight_scale", "missing"]),
        (
            vec![weight(), f32_variable("m/weight_scale", &[1.0, 2.0, 3.0])],
            &["m/weight_scale", "[2]", "[3]"],
        ),
        (
            vec![weight(), f32_variable("m/weight_scale", &[1.0, 0.0])],
            &["m/weight_scale", "row 1", "positive finite"],
        ),
        (
            vec![weight(), int8_variable("m/weight_scale", vec![2], &[1, 1])],
            &["m/weight_scale", "float32 or float16"],
        ),
        (
            vec![
                int8_variable("m/weight", vec![], &[3]),
                f32_variable("m/weight_scale", &[1.0]),
            ],
            &["m/weight", "scalar"],
        ),
        (
            vec![("m/weight".to_string(), vec![2], 2, vec![0; 4])],
            &["m/weight", "int16"],
        ),
    ];
    for (variables, wanted) in cases {
        let file = ct2::Ct2File::from_bytes("bad.bin", ct2_file(&variables)).unwrap();
        let err = match file.tensor("m/weight") {
            Ok(t) => panic!("int8 weight read as {:?} (wanted {wanted:?})", t.dtype()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("bad.bin"), "{err}");
        for w in wanted {
            assert!(err.contains(w), "error {err:?} does not say {w:?}");
        }
    }
}
