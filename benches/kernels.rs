//! Kernel benchmarks with plain `Instant` timing: `cargo bench --bench kernels [-- FILTER]`.
//!
//! Prints best and median throughput of several runs for each case, on 1 and 2 threads.
//! FILTER (a substring, e.g. `gemm`, `f16`, `attention`, `quant`) selects cases by name.

use half::f16;
use std::time::{Duration, Instant};
use voxd::kernels::quant::{quantize_row, QMatRef, QuantType};
use voxd::kernels::{Backend, GemmEngine, MatRef};

const RUNS: usize = 7;

fn data(n: usize, seed: u32) -> Vec<f32> {
    // Values in [-1, 1) from a multiplicative hash; the contents do not affect the timing.
    (0..n as u32)
        .map(|i| {
            (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 8) as f32 / (1u32 << 23) as f32
                - 1.0
        })
        .collect()
}

/// CPU time consumed so far by all threads of this process (Linux `schedstat`, in ns). The
/// machines this runs on are shared, so CPU time tells the kernel's cost apart from time spent
/// waiting for a core; `None` where the file does not exist.
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Wall and CPU time of each run.
#[derive(Default)]
struct Samples {
    wall: Vec<Duration>,
    cpu: Vec<Duration>,
}

impl Samples {
    fn run(&mut self, f: &mut impl FnMut()) {
        let (t, c) = (Instant::now(), cpu_time());
        f();
        self.wall.push(t.elapsed());
        if let (Some(c0), Some(c1)) = (c, cpu_time()) {
            self.cpu.push(c1.saturating_sub(c0));
        }
    }

    fn report(mut self, name: &str, threads: usize, flops: f64) {
        let g = |d: Duration| flops / d.as_secs_f64() / 1e9;
        self.wall.sort();
        self.cpu.sort();
        let (best, median) = (self.wall[0], self.wall[self.wall.len() / 2]);
        // schedstat advances in scheduler ticks, so CPU time of short runs is not meaningful.
        let cpu = match self.cpu.get(self.cpu.len() / 2) {
            Some(&c) if median >= Duration::from_millis(10) => format!("  per CPU-s {:>6.1}", g(c)),
            _ => String::new(),
        };
        println!(
            "{name:<44} {threads}T  best {:>6.1}  median {:>6.1} GFLOP/s{cpu}  ({:.2} ms)",
            g(best),
            g(median),
            median.as_secs_f64() * 1e3
        );
    }
}

/// Runs each closure once to warm up, then `RUNS` rounds that take turns, so that all of them
/// see the same background load; returns one sample set per closure.
fn time_interleaved(fs: &mut [&mut dyn FnMut()]) -> Vec<Samples> {
    let mut samples: Vec<Samples> = fs.iter().map(|_| Samples::default()).collect();
    for f in fs.iter_mut() {
        f();
    }
    for _ in 0..RUNS {
        for (f, s) in fs.iter_mut().zip(&mut samples) {
            s.run(f);
        }
    }
    samples
}

fn time(mut f: impl FnMut()) -> Samples {
    time_interleaved(&mut [&mut f]).remove(0)
}

fn in_pool(threads: usize, f: impl FnOnce() + Send) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(f);
}

fn bench_gemm(threads: usize) {
    let shapes = [
        ("tiny", 384, 1152),
        ("tiny", 384, 384),
        ("tiny", 384, 1536),
        ("tiny", 1536, 384),
        ("base", 512, 1536),
        ("base", 512, 512),
        ("base", 512, 2048),
        ("base", 2048, 512),
    ];
    for (model, k, n) in shapes {
        compare_engines(model, 1500, k, n, threads);
    }
}

/// Where our GEMM overtakes the crate as the rows of A grow.
fn bench_gemm_rows(threads: usize) {
    for m in [1, 5, 12, 32, 128, 384, 768] {
        compare_engines("rows", m, 384, 1536, threads);
    }
}

fn compare_engines(model: &str, m: usize, k: usize, n: usize, threads: usize) {
    let be = Backend::detect();
    let (a, b, bias) = (data(m * k, 1), data(n * k, 2), data(n, 3));
    let (mut c_own, mut c_crate) = (vec![0.0; m * n], vec![0.0; m * n]);
    let mut own = || be.matmul_t_with(GemmEngine::Own, &a, &b, Some(&bias), &mut c_own, m, k, n);
    let mut other = || {
        be.matmul_t_with(
            GemmEngine::GemmCrate,
            &a,
            &b,
            Some(&bias),
            &mut c_crate,
            m,
            k,
            n,
        )
    };
    let samples = time_interleaved(&mut [&mut own, &mut other]);
    let flops = 2.0 * (m * k * n) as f64;
    for (s, engine) in samples.into_iter().zip(["own", "gemm-crate"]) {
        s.report(
            &format!("gemm {model} m={m} k={k} n={n} {engine}"),
            threads,
            flops,
        );
    }
}

fn bench_f16(threads: usize) {
    let be = Backend::detect();
    for (k, n) in [(384, 1536), (1536, 384), (512, 2048), (2048, 512)] {
        let b: Vec<f16> = data(n * k, 4).into_iter().map(f16::from_f32).collect();
        for m in [1, 5, 32] {
            let a = data(m * k, 5);
            let mut c = vec![0.0; m * n];
            let t = time(|| {
                for _ in 0..10 {
                    be.matmul_t_f16(&a, &b, None, &mut c, m, k, n);
                }
            });
            let name = format!("matmul_t_f16 m={m} k={k} n={n} (x10)");
            t.report(&name, threads, 20.0 * (m * k * n) as f64);
        }
    }
}

fn bench_attention(threads: usize) {
    let be = Backend::detect();
    for (n_head, tq, tk, causal) in [
        (6, 1500, 1500, None),
        (8, 1500, 1500, None),
        (6, 1, 1500, Some(1499)),
        (6, 4, 448, Some(444)),
    ] {
        let (hd, width) = (64, n_head * 64);
        let (q, kv) = (data(tq * width, 6), data(tk * 2 * width, 7));
        let qv = MatRef::new(&q, tq, width);
        let fused = MatRef {
            data: &kv,
            rows: tk,
            cols: 2 * width,
            row_stride: 2 * width,
        };
        let (kview, vview) = (fused.columns(0, width), fused.columns(width, width));
        let mut out = vec![0.0; tq * width];
        let t = time(|| be.attention(qv, kview, vview, &mut out, n_head, hd, 0.125, causal));
        let name = format!("attention heads={n_head} tq={tq} tk={tk}");
        t.report(&name, threads, 4.0 * (tq * tk * width) as f64);
    }
}

/// The quantized products of the 32-value formats (where the byte dot-product instructions
/// differ) on every SIMD path of this CPU, taking turns; "GFLOP/s" counts a multiply and an
/// add per weight and activation row. Shapes of SmolLM2-135M's MLP (576 ↔ 1536, its file is
/// Q4_1); 1 row is a generated token, 32 a piece of a prompt.
fn bench_quant(threads: usize) {
    let backends: Vec<Backend> = Backend::available()
        .into_iter()
        .filter(|&b| b != Backend::SCALAR)
        .collect();
    let formats = [
        QuantType::Q8_0,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
    ];
    for ty in formats {
        for (k, n) in [(576, 1536), (1536, 576)] {
            let mut w = vec![0u8; n * ty.row_bytes(k).expect("whole blocks")];
            let row_bytes = w.len() / n;
            for (j, row) in w.chunks_exact_mut(row_bytes).enumerate() {
                quantize_row(ty, &data(k, 10 + j as u32), row);
            }
            let w = QMatRef::new(ty, n, k, &w).expect("a whole matrix");
            for m in [1, 32] {
                let x = &data(m * k, 9);
                let mut outs = vec![vec![0.0; m * n]; backends.len()];
                let mut runs: Vec<Box<dyn FnMut() + '_>> = backends
                    .iter()
                    .zip(&mut outs)
                    .map(|(&be, out)| {
                        Box::new(move || {
                            for _ in 0..10 {
                                be.matmul_q(w, x, out);
                            }
                        }) as Box<dyn FnMut()>
                    })
                    .collect();
                let mut refs: Vec<&mut dyn FnMut()> = runs
                    .iter_mut()
                    .map(|f| &mut **f as &mut dyn FnMut())
                    .collect();
                let samples = time_interleaved(&mut refs);
                for (s, be) in samples.into_iter().zip(&backends) {
                    let name = format!(
                        "matmul_q {} m={m} k={k} n={n} (x10) {}",
                        ty.name(),
                        be.name()
                    );
                    s.report(&name, threads, 20.0 * (m * k * n) as f64);
                }
            }
        }
    }
}

/// An elementwise kernel that works in place.
type InPlace = fn(Backend, &mut [f32]);

/// Softmax and GELU over a head's row and an encoder's sequence (one thread, whatever the
/// pool); "GFLOP/s" reads as billions of elements per second.
fn bench_elementwise(threads: usize) {
    let be = Backend::detect();
    let kernels: [(&str, InPlace); 2] = [("softmax", Backend::softmax), ("gelu", Backend::gelu)];
    for n in [64, 1500] {
        let x = data(n, 8);
        let mut y = x.clone();
        for (name, kernel) in kernels {
            let t = time(|| {
                for _ in 0..1000 {
                    y.copy_from_slice(&x);
                    kernel(be, &mut y);
                }
            });
            let label = format!("{name} n={n} (x1000; elements)");
            t.report(&label, threads, 1000.0 * n as f64);
        }
    }
}

/// A named benchmark, run once per thread count.
type Bench = (&'static str, fn(usize));

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    println!("backend: {}", Backend::detect().name());
    let benches: [Bench; 6] = [
        ("gemm-rows", bench_gemm_rows),
        ("gemm", bench_gemm),
        ("f16", bench_f16),
        ("attention", bench_attention),
        ("quant", bench_quant),
        ("elementwise", bench_elementwise),
    ];
    for (name, bench) in benches {
        if !name.contains(&filter) {
            continue;
        }
        for threads in [1, 2] {
            in_pool(threads, || bench(threads));
        }
    }
}
