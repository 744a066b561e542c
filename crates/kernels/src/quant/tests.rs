//! Tests of the quantized formats and products: the scalar path against f64 arithmetic on the
//! dequantized weights, and every SIMD path against the scalar one (integer sums exactly, f32
//! results to 1e-5 of the sum of the terms' magnitudes).

use super::super::test_util::{simd_backends, RandomVec, Rng};
use super::*;

/// How block scales are drawn.
#[derive(Clone, Copy, Debug)]
enum Scales {
    /// Random, about the size of real weights' scales.
    Typical,
    Zero,
    /// The smallest f16 subnormal.
    Tiny,
    /// Near the top of the f16 range.
    Large,
    /// 1 (and small integer offsets), so every product and sum is an exact integer.
    Unit,
}

fn put_f16(bytes: &mut [u8], at: usize, v: f32) {
    bytes[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// `rows × cols` random weights of type `ty`. `fill`, if given, replaces every quantized
/// value byte (nibbles, ql/qh, q) while the scales stay random.
fn random_matrix(
    rng: &mut Rng,
    ty: QuantType,
    rows: usize,
    cols: usize,
    scales: Scales,
    fill: Option<u8>,
) -> Vec<u8> {
    let len = rows * ty.row_bytes(cols).unwrap();
    let mut data: Vec<u8> = (0..len)
        .map(|_| (rng.signed_f32() * 128.0 + 128.0) as u8)
        .collect();
    let scale = |rng: &mut Rng| match scales {
        Scales::Typical => rng.signed_f32() * 0.05,
        Scales::Zero => 0.0,
        Scales::Tiny => 6e-8,
        Scales::Large => 30000.0 * rng.signed_f32().signum(),
        Scales::Unit => 1.0,
    };
    let offset = |rng: &mut Rng, d: f32| match scales {
        Scales::Unit => (rng.signed_f32() * 8.0).round(),
        Scales::Large => rng.signed_f32() * 2.0 * d, // within f16's range
        _ => rng.signed_f32() * 8.0 * d,
    };
    for block in data.chunks_exact_mut(ty.block_bytes()) {
        let quants = match ty {
            QuantType::F32 => {
                let v = scale(rng) * rng.signed_f32() * 20.0;
                block.copy_from_slice(&v.to_le_bytes());
                continue;
            }
            QuantType::F16 => {
                put_f16(block, 0, scale(rng) * rng.signed_f32() * 20.0);
                continue;
            }
            QuantType::Q8_0 | QuantType::Q4_0 | QuantType::Q5_0 => {
                put_f16(block, 0, scale(rng));
                2..block.len()
            }
            QuantType::Q4_1 | QuantType::Q5_1 => {
                let d = scale(rng);
                put_f16(block, 0, d);
                put_f16(block, 2, offset(rng, d));
                4..block.len()
            }
            QuantType::Q4_K => {
                let d = scale(rng);
                put_f16(block, 0, d);
                put_f16(block, 2, d.abs());
                16..block.len()
            }
            QuantType::Q6_K => {
                put_f16(block, 208, scale(rng));
                0..192
            }
        };
        if let Some(byte) = fill {
            block[quants].fill(byte);
        }
    }
    data
}

fn dequantize(w: QMatRef) -> Vec<f32> {
    let mut out = vec![0.0; w.rows() * w.cols()];
    for (r, row) in out.chunks_exact_mut(w.cols()).enumerate() {
        get_row(w, r, row);
    }
    out
}

/// The weights with their offsets (Q4_1's `m`, Q4_K's `dmin`) set to zero.
fn without_offsets(ty: QuantType, data: &[u8]) -> Vec<u8> {
    let mut data = data.to_vec();
    if matches!(ty, QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4_K) {
        for block in data.chunks_exact_mut(ty.block_bytes()) {
            put_f16(block, 2, 0.0);
        }
    }
    data
}

/// For each output, Σ over the terms' magnitudes, |d·s·q·x| + |offset·x|: the scale that
/// f32 rounding errors are relative to.
fn magnitudes(w: QMatRef, x: &[f32]) -> Vec<f64> {
    let full = dequantize(w);
    let scaled = without_offsets(w.ty(), w.data());
    let scaled = dequantize(QMatRef::new(w.ty(), w.rows(), w.cols(), &scaled).unwrap());
    let k = w.cols();
    let mut out = Vec::new();
    for xr in x.chunks_exact(k) {
        for j in 0..w.rows() {
            let (f, s) = (&full[j * k..(j + 1) * k], &scaled[j * k..(j + 1) * k]);
            let m: f64 = (0..k)
                .map(|i| (s[i].abs() as f64 + (f[i] - s[i]).abs() as f64) * xr[i].abs() as f64)
                .sum();
            out.push(m);
        }
    }
    out
}

fn product(be: Backend, w: QMatRef, x: &[f32]) -> Vec<f32> {
    let mut out = vec![f32::NAN; x.len() / w.cols() * w.rows()];
    be.matmul_q(w, x, &mut out);
    out
}

/// Asserts `|got - want| ≤ 1e-5 · magnitude` for each output.
#[track_caller]
fn assert_agree(got: &[f32], want: &[f32], magnitude: &[f64], what: &str) {
    for (i, ((&g, &w), &m)) in got.iter().zip(want).zip(magnitude).enumerate() {
        let err = (g as f64 - w as f64).abs();
        assert!(
            err <= 1e-5 * m && g.is_finite(),
            "{what}: output {i}: got {g}, want {w}, err {err}, magnitude {m}"
        );
    }
}

fn two_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(f)
}

const QUANTIZED: [QuantType; 7] = [
    QuantType::Q8_0,
    QuantType::Q4_0,
    QuantType::Q4_1,
    QuantType::Q5_0,
    QuantType::Q5_1,
    QuantType::Q4_K,
    QuantType::Q6_K,
];

#[test]
fn matrix_shapes_are_checked() {
    let data = vec![0u8; 2 * 144];
    assert!(QMatRef::new(QuantType::Q4_K, 2, 256, &data).is_ok());
    assert_eq!(
        QMatRef::new(QuantType::Q4_K, 2, 255, &data).unwrap_err(),
        QuantError::RaggedRow {
            ty: QuantType::Q4_K,
            cols: 255,
            block: 256
        }
    );
    assert_eq!(
        QMatRef::new(QuantType::Q4_K, 3, 256, &data).unwrap_err(),
        QuantError::DataLength {
            ty: QuantType::Q4_K,
            rows: 3,
            cols: 256,
            expected: 432,
            got: 288
        }
    );
    assert!(matches!(
        QMatRef::new(QuantType::Q8_0, usize::MAX, 32, &data),
        Err(QuantError::TooLarge { .. })
    ));
    assert!(matches!(
        QMatRef::new(QuantType::F32, 0, 0, &[]),
        Err(QuantError::NoColumns { .. })
    ));
    assert_eq!(QuantType::Q6_K.row_bytes(512), Some(420));
}

#[test]
fn ggml_ids_round_trip() {
    for ty in QuantType::ALL {
        assert_eq!(QuantType::from_ggml_id(ty.ggml_id()), Some(ty));
    }
    assert_eq!(QuantType::from_ggml_id(13), None); // Q5_K
    assert_eq!(QuantType::from_name("q5_1"), Some(QuantType::Q5_1));
    assert_eq!(QuantType::from_name("q5_k"), None);
}

#[test]
fn activation_quantization_follows_its_definition() {
    let mut rng = Rng::new(31);
    for format in [ActFormat::Q8_0, ActFormat::Q8_K] {
        let block = format.block_len();
        let cols = 3 * block;
        let mut x = rng.vec(2 * cols, 3.0);
        x[block..2 * block].fill(0.0); // an all-zero block
        x[2 * block + 5] = -1e4; // one value far above the rest
        x[cols + 1] = 1e-30;
        let acts = QuantizedActs::new(format, &x, cols);
        for (b, xb) in x.chunks_exact(block).enumerate() {
            let qs = &acts.qs[b * block..(b + 1) * block];
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let d = acts.d[b];
            assert_eq!(d, amax / 127.0, "block {b}");
            for (&q, &v) in qs.iter().zip(xb) {
                assert!((-127..=127).contains(&q));
                let err = (q as f32 * d - v).abs();
                assert!(err <= 0.5 * d * (1.0 + 1e-6), "block {b}: {v} → {q}·{d}");
                if v.abs() == amax && amax > 0.0 {
                    assert_eq!(q.unsigned_abs(), 127);
                }
            }
            for (s, q) in acts.sums[b * block / SUM_LEN..]
                .iter()
                .zip(qs.chunks_exact(SUM_LEN))
            {
                assert_eq!(*s as i32, q.iter().map(|&q| q as i32).sum::<i32>());
            }
            let total: i32 = qs.iter().map(|&q| q as i32).sum();
            assert_eq!(acts.scaled_sums[b], d * total as f32);
        }
        assert!(acts.qs[block..2 * block].iter().all(|&q| q == 0));
        assert_eq!(acts.d[1], 0.0);
    }
}

#[test]
fn scalar_products_match_f64_on_dequantized_weights() {
    let mut rng = Rng::new(32);
    for ty in QuantType::ALL {
        let (rows, cols, n) = (5, 2 * 256, 3);
        let data = random_matrix(&mut rng, ty, rows, cols, Scales::Typical, None);
        let w = QMatRef::new(ty, rows, cols, &data).unwrap();
        let x = rng.vec(n * cols, 1.0);
        let got = product(Backend::SCALAR, w, &x);
        let weights = dequantize(w);
        let magnitude = magnitudes(w, &x);
        for r in 0..n {
            for j in 0..rows {
                let (wj, xr) = (&weights[j * cols..][..cols], &x[r * cols..][..cols]);
                let exact: f64 = wj.iter().zip(xr).map(|(&a, &b)| a as f64 * b as f64).sum();
                // Activations are rounded to half a step of their block: max|x| / 254.
                let act_block = ty.act_format().map_or(1, |f| f.block_len());
                let rounding: f64 = (0..cols)
                    .map(|i| {
                        let blk = &xr[i / act_block * act_block..][..act_block];
                        let amax = blk.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                        wj[i].abs() as f64 * amax as f64 / 254.0
                    })
                    .sum();
                let quantized = ty.act_format().is_some();
                let bound = if quantized { rounding * 1.001 } else { 0.0 };
                let bound = bound + 1e-5 * magnitude[r * rows + j];
                let err = (got[r * rows + j] as f64 - exact).abs();
                assert!(err <= bound, "{ty:?} ({r}, {j}): err {err} > {bound}");
            }
        }
    }
}

#[test]
fn unpacked_products_match_f64_on_dequantized_weights() {
    let mut rng = Rng::new(35);
    two_threads(|| {
        for ty in QuantType::ALL {
            // 300 rows: more than one slab of the f32 GEMM, the last one partial.
            for (rows, cols, n) in [(3, 256, 1), (300, 512, 40)] {
                let data = random_matrix(&mut rng, ty, rows, cols, Scales::Typical, None);
                let w = QMatRef::new(ty, rows, cols, &data).unwrap();
                let x = rng.vec(n * cols, 1.0);
                let bias = rng.vec(rows, 1.0);
                let mut got = vec![f32::NAN; n * rows];
                matmul_q_unpacked(w, &x, Some(&bias), &mut got);
                let weights = dequantize(w);
                let magnitude = magnitudes(w, &x);
                for r in 0..n {
                    for j in 0..rows {
                        let (wj, xr) = (&weights[j * cols..][..cols], &x[r * cols..][..cols]);
                        let exact: f64 = bias[j] as f64
                            + wj.iter()
                                .zip(xr)
                                .map(|(&a, &b)| a as f64 * b as f64)
                                .sum::<f64>();
                        let err = (got[r * rows + j] as f64 - exact).abs();
                        let bound = 1e-5 * (magnitude[r * rows + j] + bias[j].abs() as f64);
                        assert!(
                            err <= bound,
                            "{ty:?} {rows}×{cols} ({r}, {j}): err {err} > {bound}"
                        );
                    }
                }
            }
        }
    });
}

#[test]
fn products_together_equal_products_apart() {
    let mut rng = Rng::new(36);
    two_threads(|| {
        // Formats of both activation kinds and a float matrix, as a k-quant file mixes them.
        let types = [
            QuantType::Q4_1,
            QuantType::Q6_K,
            QuantType::F16,
            QuantType::Q8_0,
        ];
        let cols = 512;
        for n in [1, 3, 70] {
            let x = rng.vec(n * cols, 1.0);
            let data: Vec<(QuantType, usize, Vec<u8>)> = types
                .iter()
                .zip([96, 40, 33, 300])
                .map(|(&ty, rows)| {
                    let w = random_matrix(&mut rng, ty, rows, cols, Scales::Typical, None);
                    (ty, rows, w)
                })
                .collect();
            let mats: Vec<QMatRef> = data
                .iter()
                .map(|(ty, rows, w)| QMatRef::new(*ty, *rows, cols, w).unwrap())
                .collect();
            let apart: Vec<Vec<f32>> = mats
                .iter()
                .map(|&w| product(Backend::detect(), w, &x))
                .collect();
            let mut outs: Vec<Vec<f32>> =
                mats.iter().map(|w| vec![f32::NAN; n * w.rows()]).collect();
            let mut products: Vec<(QMatRef, &mut [f32])> = mats
                .iter()
                .copied()
                .zip(outs.iter_mut().map(|o| &mut o[..]))
                .collect();
            matmul_q_each(&x, &mut products);
            for ((ty, _, _), (together, apart)) in data.iter().zip(outs.iter().zip(&apart)) {
                assert_eq!(together, apart, "{ty:?}, n = {n}");
            }
        }
    });
}

#[test]
fn simd_matches_scalar_on_every_shape() {
    let mut rng = Rng::new(33);
    two_threads(|| {
        for ty in QuantType::ALL {
            let block = QuantType::Q4_K.block_len().max(ty.block_len());
            for (rows, blocks, ns) in [
                (1, 1, &[1, 2, 7][..]),
                (7, 1, &[1, 2, 7, 64]),
                (67, 3, &[1, 2, 7, 64]),
                (301, 6, &[1, 5]),
            ] {
                let cols = blocks * block;
                let data = random_matrix(&mut rng, ty, rows, cols, Scales::Typical, None);
                let w = QMatRef::new(ty, rows, cols, &data).unwrap();
                for &n in ns {
                    let x = rng.vec(n * cols, 2.0);
                    let want = product(Backend::SCALAR, w, &x);
                    for be in simd_backends() {
                        let got = product(be, w, &x);
                        let what = format!("{} {ty:?} {rows}×{cols}, n = {n}", be.name());
                        assert_agree(&got, &want, &magnitudes(w, &x), &what);
                    }
                }
            }
        }
    });
}

#[test]
fn simd_matches_scalar_on_one_block_rows() {
    let mut rng = Rng::new(34);
    for ty in QUANTIZED {
        let cols = ty.block_len();
        let data = random_matrix(&mut rng, ty, 9, cols, Scales::Typical, None);
        let w = QMatRef::new(ty, 9, cols, &data).unwrap();
        for n in [1, 2, 3, 4, 5, 9] {
            let x = rng.vec(n * cols, 1.0);
            let want = product(Backend::SCALAR, w, &x);
            for be in simd_backends() {
                let got = product(be, w, &x);
                let what = format!("{} {ty:?} n = {n}", be.name());
                assert_agree(&got, &want, &magnitudes(w, &x), &what);
            }
        }
    }
}

/// The 32-value formats on rows of an odd number of blocks above one, beside even ones: the
/// AVX-512 tiles take blocks two at a time and the last of an odd row alone.
#[test]
fn simd_matches_scalar_on_odd_and_even_block_counts() {
    let mut rng = Rng::new(41);
    for ty in QUANTIZED.into_iter().filter(|ty| ty.block_len() == 32) {
        for blocks in [2, 3, 5, 6] {
            let cols = blocks * 32;
            let data = random_matrix(&mut rng, ty, 11, cols, Scales::Typical, None);
            let w = QMatRef::new(ty, 11, cols, &data).unwrap();
            for n in [1, 2, 3, 4, 5, 8] {
                let x = rng.vec(n * cols, 1.0);
                let want = product(Backend::SCALAR, w, &x);
                for be in simd_backends() {
                    let got = product(be, w, &x);
                    let what = format!("{} {ty:?} {blocks} blocks, n = {n}", be.name());
                    assert_agree(&got, &want, &magnitudes(w, &x), &what);
                }
            }
        }
    }
}

#[test]
fn simd_matches_scalar_on_extreme_scales_and_uniform_quants() {
    let mut rng = Rng::new(35);
    for ty in QUANTIZED {
        let (rows, cols) = (6, 512);
        for scales in [Scales::Zero, Scales::Tiny, Scales::Large, Scales::Typical] {
            for fill in [None, Some(0x00), Some(0xFF), Some(0x88)] {
                let data = random_matrix(&mut rng, ty, rows, cols, scales, fill);
                let w = QMatRef::new(ty, rows, cols, &data).unwrap();
                let mut x = rng.vec(5 * cols, 1.0);
                x[..cols].fill(0.0); // a row of zero activations
                let want = product(Backend::SCALAR, w, &x);
                for be in simd_backends() {
                    let got = product(be, w, &x);
                    let what = format!("{} {ty:?} {scales:?} fill {fill:?}", be.name());
                    assert_agree(&got, &want, &magnitudes(w, &x), &what);
                    if matches!(scales, Scales::Zero) {
                        assert!(got.iter().all(|&v| v == 0.0), "{what}: {got:?}");
                    }
                }
            }
        }
    }
}

/// With unit weight scales and integer activations whose blocks peak at ±127 (activation
/// scale exactly 1), every term is an integer and every partial sum stays below 2^24, so any
/// summation order gives the same f32: the SIMD integer sums must equal the scalar ones.
#[test]
fn integer_sums_are_exact_on_every_backend() {
    let mut rng = Rng::new(36);
    for ty in QUANTIZED {
        let (rows, cols, n) = (7, 512, 6);
        let data = random_matrix(&mut rng, ty, rows, cols, Scales::Unit, None);
        let w = QMatRef::new(ty, rows, cols, &data).unwrap();
        let mut x: Vec<f32> = (0..n * cols)
            .map(|_| (rng.signed_f32() * 3.5).round())
            .collect();
        let act_block = ty.act_format().unwrap().block_len();
        for (b, blk) in x.chunks_exact_mut(act_block).enumerate() {
            blk[b % act_block] = if b % 2 == 0 { 127.0 } else { -127.0 };
        }
        let largest = magnitudes(w, &x).into_iter().fold(0.0, f64::max);
        assert!(largest < (1 << 24) as f64, "{ty:?}: sums reach {largest}");
        let want = product(Backend::SCALAR, w, &x);
        for be in simd_backends() {
            assert_eq!(product(be, w, &x), want, "{} {ty:?}", be.name());
        }
        // And the products are the exact ones of the dequantized weights.
        let weights = dequantize(w);
        for (o, (r, j)) in want
            .iter()
            .zip((0..n).flat_map(|r| (0..rows).map(move |j| (r, j))))
        {
            let exact: f64 = (0..cols)
                .map(|i| weights[j * cols + i] as f64 * x[r * cols + i] as f64)
                .sum();
            assert_eq!(*o as f64, exact, "{ty:?} ({r}, {j})");
        }
    }
}

#[test]
fn get_row_dequantizes_one_row() {
    let mut rng = Rng::new(37);
    for ty in QuantType::ALL {
        let data = random_matrix(&mut rng, ty, 3, 256, Scales::Typical, None);
        let w = QMatRef::new(ty, 3, 256, &data).unwrap();
        let mut row = vec![0.0; 256];
        get_row(w, 1, &mut row);
        let mut want = vec![0.0; 256];
        dequantize_row(ty, &data[w.row_bytes()..2 * w.row_bytes()], &mut want);
        assert_eq!(row, want);
    }
}

#[test]
fn dequantize_row_reads_the_layouts() {
    // Q4_0 with d = 2: byte i = 0x9 << 4 | 0x3 gives value i = (3-8)·2, value i + 16 = (9-8)·2.
    let mut block = [0x93u8; 18];
    put_f16(&mut block, 0, 2.0);
    let mut out = [0.0; 32];
    dequantize_row(QuantType::Q4_0, &block, &mut out);
    assert_eq!(out[..16], [-10.0; 16]);
    assert_eq!(out[16..], [2.0; 16]);
    // Q4_1 with d = 0.5, m = -1: nibble 3 → 0.5, nibble 9 → 3.5.
    let mut block = [0x93u8; 20];
    put_f16(&mut block, 0, 0.5);
    put_f16(&mut block, 2, -1.0);
    dequantize_row(QuantType::Q4_1, &block, &mut out);
    assert_eq!((out[0], out[31]), (0.5, 3.5));
    // Q5_0 with d = 1: qh bits 0 and 17 set add 16 to value 0 (low nibble of byte 0) and value
    // 17 (high nibble of byte 1).
    let mut block = [0u8; 22];
    put_f16(&mut block, 0, 1.0);
    block[2..6].copy_from_slice(&(1u32 | 1 << 17).to_le_bytes());
    block[6] = 0x03;
    block[7] = 0x50;
    dequantize_row(QuantType::Q5_0, &block, &mut out);
    assert_eq!((out[0], out[1], out[16], out[17]), (3.0, -16.0, -16.0, 5.0));
    // Q5_1 with d = 2, m = 1: the same bits give (16 + 3)·2 + 1 and (16 + 5)·2 + 1.
    let mut block = [0u8; 24];
    put_f16(&mut block, 0, 2.0);
    put_f16(&mut block, 2, 1.0);
    block[4..8].copy_from_slice(&(1u32 | 1 << 17).to_le_bytes());
    block[8] = 0x03;
    block[9] = 0x50;
    dequantize_row(QuantType::Q5_1, &block, &mut out);
    assert_eq!((out[0], out[1], out[16], out[17]), (39.0, 1.0, 1.0, 43.0));
}

/// Integers sharing one step become Q8_0 blocks whose values are each integer times the step
/// rounded to f16: -128 and 127 included, the same step in every block.
#[test]
fn q8_0_from_i8_keeps_the_integers_and_rounds_the_step() {
    let values: Vec<i8> = (0..96).map(|i| (i * 37 % 256 - 128) as i8).collect();
    assert!(values.contains(&-128) && values.contains(&127));
    let step = 1.0 / 3.0;
    let mut blocks = vec![0; QuantType::Q8_0.row_bytes(96).unwrap()];
    q8_0_from_i8(&values, step, &mut blocks);
    let mut out = vec![0.0; 96];
    dequantize_row(QuantType::Q8_0, &blocks, &mut out);
    let rounded = f16::from_f32(step).to_f32();
    assert!((rounded - step).abs() <= step * 2f32.powi(-11));
    for (&got, &q) in out.iter().zip(&values) {
        assert_eq!(got, f32::from(q) * rounded);
    }
}

/// Each quantizer's values lie within half a step of the input (Q8_0, and the asymmetric
/// types) or within a step (Q4_0/Q5_0, whose top level is clipped), the extreme value is
/// represented exactly up to the f16 step, and quantizing the dequantized values again gives
/// the same bytes.
#[test]
fn quantizers_round_trip() {
    let mut rng = Rng::new(38);
    let quantizable: Vec<QuantType> = QuantType::ALL
        .into_iter()
        .filter(|t| t.has_quantizer())
        .collect();
    assert_eq!(
        quantizable,
        [
            QuantType::Q4_0,
            QuantType::Q4_1,
            QuantType::Q5_0,
            QuantType::Q5_1,
            QuantType::Q8_0
        ]
    );
    for ty in quantizable {
        let cols = 8 * 32;
        let mut x = rng.vec(cols, 1.5);
        x[32..64].fill(0.0); // an all-zero block
        x[64..96].fill(-0.25); // a constant block
        let mut bytes = vec![0u8; ty.row_bytes(cols).unwrap()];
        quantize_row(ty, &x, &mut bytes);
        let mut back = vec![0.0; cols];
        dequantize_row(ty, &bytes, &mut back);
        for (b, (xb, yb)) in x.chunks_exact(32).zip(back.chunks_exact(32)).enumerate() {
            let block = &bytes[b * ty.block_bytes()..];
            let d = scalar::f16_le(block, 0).abs();
            let (lo, hi) = xb
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            // The stored step is the f16 rounding of the exact one: allow for that drift over
            // the whole range.
            let drift = (hi - lo).abs().max(hi.abs()).max(lo.abs()) * 1e-3;
            let clipped = matches!(ty, QuantType::Q4_0 | QuantType::Q5_0);
            let bound = if clipped { d } else { 0.5 * d } + drift;
            for (i, (&v, &y)) in xb.iter().zip(yb).enumerate() {
                assert!(
                    (v - y).abs() <= bound,
                    "{ty:?} block {b} value {i}: {v} → {y}"
                );
            }
        }
        assert!(back[32..64].iter().all(|&v| v == 0.0), "{ty:?}");
        let mut again = vec![0u8; bytes.len()];
        quantize_row(ty, &back, &mut again);
        let mut twice = vec![0.0; cols];
        dequantize_row(ty, &again, &mut twice);
        assert_eq!(twice, back, "{ty:?}: quantizing its own values is stable");
    }
}

/// A hand-worked block: Q8_0 rounds half away from zero; Q4_0 maps the largest-magnitude
/// value (here negative) to level 0 and clips the opposite extreme at level 15.
#[test]
fn quantizers_round_as_ggml_does() {
    let mut x = [0.0f32; 32];
    x[0] = 127.0;
    x[1] = 2.5;
    x[2] = -2.5;
    let mut q8 = [0u8; 34];
    quantize_row(QuantType::Q8_0, &x, &mut q8);
    assert_eq!(scalar::f16_le(&q8, 0), 1.0);
    assert_eq!(q8[2..5], [127, 3, (-3i8) as u8]);

    let mut x = [0.0f32; 32];
    x[0] = -8.0;
    x[1] = 8.0;
    x[2] = 0.49;
    let mut q4 = [0u8; 18];
    quantize_row(QuantType::Q4_0, &x, &mut q4);
    assert_eq!(scalar::f16_le(&q4, 0), 1.0);
    // d = -8 / -8 = 1: -8 → level 0, 8 → 16 clipped to 15, 0.49 → trunc(8.99) = 8.
    assert_eq!(q4[2] & 0x0F, 0);
    assert_eq!(q4[3] & 0x0F, 15);
    assert_eq!(q4[4] & 0x0F, 8);
}

#[test]
#[should_panic(expected = "out.len() != n·rows")]
fn matmul_q_rejects_a_short_output() {
    let data = [0u8; 34];
    let w = QMatRef::new(QuantType::Q8_0, 1, 32, &data).unwrap();
    matmul_q(w, &[0.0; 64], &mut [0.0; 1]);
}
