//! voxd's dequantizers against gguf-py's numpy ones (llama.cpp's reference for the ggml block
//! formats), through `scripts/reference/quant_reference.py` in the reference `.venv/`. Random blocks,
//! generated deterministically here, must dequantize to bit-identical f32 values.

use std::path::PathBuf;
use std::process::Command;

use voxd::kernels::quant::{dequantize_row, QuantType};

use crate::common::repo;

/// The reference tools' Python; missing tools fail the test with the command that installs them.
fn python() -> PathBuf {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh --reference (installs gguf-py into .venv/)",
        python.display()
    );
    python
}

/// xorshift64*: deterministic test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A random finite f16 (zero, subnormal, normal up to 65504), as its two bytes.
    fn finite_f16(&mut self) -> [u8; 2] {
        let mut bits = self.next() as u16;
        if bits & 0x7C00 == 0x7C00 {
            bits &= !0x4000; // an infinity or NaN exponent becomes a normal one
        }
        bits.to_le_bytes()
    }

    /// A random finite f32, as its four bytes.
    fn finite_f32(&mut self) -> [u8; 4] {
        let mut bits = self.next() as u32;
        if bits & 0x7F80_0000 == 0x7F80_0000 {
            bits &= !0x4000_0000;
        }
        bits.to_le_bytes()
    }
}

/// Where each block of `ty` keeps its f16 scales and offsets.
fn f16_fields(ty: QuantType) -> &'static [usize] {
    match ty {
        QuantType::F32 | QuantType::F16 => &[],
        QuantType::Q8_0 | QuantType::Q4_0 | QuantType::Q5_0 => &[0],
        QuantType::Q4_1 | QuantType::Q5_1 | QuantType::Q4_K => &[0, 2],
        QuantType::Q6_K => &[208],
    }
}

/// `blocks` random blocks of `ty`: random bytes with finite f16 scales; the last two blocks
/// have all value bytes 0x00 and 0xFF.
fn random_blocks(rng: &mut Rng, ty: QuantType, blocks: usize) -> Vec<u8> {
    let mut data = Vec::with_capacity(blocks * ty.block_bytes());
    for b in 0..blocks {
        let mut block: Vec<u8> = (0..ty.block_bytes()).map(|_| rng.next() as u8).collect();
        if b + 2 >= blocks {
            block.fill(if b + 1 == blocks { 0xFF } else { 0x00 });
        }
        match ty {
            QuantType::F32 => block.copy_from_slice(&rng.finite_f32()),
            QuantType::F16 => block.copy_from_slice(&rng.finite_f16()),
            _ => {
                for &at in f16_fields(ty) {
                    block[at..at + 2].copy_from_slice(&rng.finite_f16());
                }
            }
        }
        data.extend(block);
    }
    data
}

fn reference(ty: QuantType, data: &[u8]) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks.bin");
    std::fs::write(&path, data).unwrap();
    let out = Command::new(python())
        .arg(repo().join("scripts/reference/quant_reference.py"))
        .arg(format!("{ty:?}"))
        .arg(&path)
        .output()
        .expect("run scripts/reference/quant_reference.py");
    assert!(
        out.status.success(),
        "scripts/reference/quant_reference.py {ty:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

#[test]
fn dequantizers_match_gguf_py_bit_for_bit() {
    let mut rng = Rng(0x5EED_0FC0_FFEE);
    for ty in QuantType::ALL {
        let blocks = 4096 / ty.block_len().min(32) + 2;
        let data = random_blocks(&mut rng, ty, blocks);
        let want = reference(ty, &data);
        let mut got = vec![f32::NAN; blocks * ty.block_len()];
        dequantize_row(ty, &data, &mut got);
        assert_eq!(got.len(), want.len(), "{ty:?}: value count");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let b = i / ty.block_len();
            assert!(
                g.to_bits() == w.to_bits(),
                "{ty:?} value {i} (block {b}, {:02x?}): voxd {g}, gguf-py {w}",
                &data[b * ty.block_bytes()..(b + 1) * ty.block_bytes()]
            );
        }
    }
}
