#!/usr/bin/env python3
"""voxd's reply model against llama.cpp on the same GGUF file and threads, as ratios.

Prompt processing (pp: prompt tokens per second of the prompt's pass) and generation (tg:
tokens per second after the first) of `voxd bench --llm` and of llama.cpp (xllamacpp's
server, through `scripts/reference/llm_reference.py speed`), alternating between the two for several
rounds so that both see the same load on a shared machine. Each side reports best and
median of its runs; the ratios are voxd / llama.cpp (above 1: voxd is faster).

Usage: scripts/bench/bench_llm.py [--model models/smollm2/model.gguf] [--threads 2]
                            [--prompt-tokens 128] [--gen-tokens 64] [--runs 3] [--rounds 3]
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import sys

from machine import cpu_name, describe, simd_flags

ROOT = pathlib.Path(__file__).resolve().parents[2]


def voxd_speed(args):
    out = subprocess.run(
        [str(ROOT / "target/release/voxd"), "bench", "--llm", args.model, "--json",
         "--threads", str(args.threads), "--runs", str(args.runs),
         "--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens)],
        check=True, capture_output=True, text=True).stdout
    m = json.loads(out)
    return {"pp": [m["pp_best_tok_s"], m["pp_median_tok_s"]],
            "tg": [m["tg_best_tok_s"], m["tg_median_tok_s"]], "kernels": m.get("kernels")}


def llama_cpp_speed(args):
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts/reference/llm_reference.py"), "speed", args.model,
         "--threads", str(args.threads), "--runs", str(args.runs),
         "--prompt-tokens", str(args.prompt_tokens), "--gen-tokens", str(args.gen_tokens)],
        check=True, capture_output=True, text=True).stdout
    m = json.loads(out)
    return {"pp": [m["best"]["pp_tok_s"], m["median"]["pp_tok_s"]],
            "tg": [m["best"]["tg_tok_s"], m["median"]["tg_tok_s"]]}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="models/smollm2/model.gguf")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--gen-tokens", type=int, default=64)
    p.add_argument("--runs", type=int, default=3, help="timed runs per side per round")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    rounds = []
    for r in range(args.rounds):
        ours, theirs = voxd_speed(args), llama_cpp_speed(args)
        rounds.append((ours, theirs))
        print(f"round {r + 1}: voxd pp {ours['pp'][0]:.1f} tg {ours['tg'][0]:.1f} tok/s; "
              f"llama.cpp pp {theirs['pp'][0]:.1f} tg {theirs['tg'][0]:.1f} tok/s (best of "
              f"{args.runs})", file=sys.stderr)

    summary = {"threads": args.threads, "prompt_tokens": args.prompt_tokens,
               "gen_tokens": args.gen_tokens, "rounds": args.rounds, "runs": args.runs,
               "cpu": cpu_name(), "simd_flags": simd_flags(),
               "kernels": rounds[0][0]["kernels"]}
    print(describe(summary["kernels"]))
    print(f"{args.model}: {args.threads} threads, prompt {args.prompt_tokens} tokens, "
          f"{args.gen_tokens} generated; {args.rounds} rounds x {args.runs} runs")
    print(f"{'':4} {'voxd best':>10} {'median':>8} {'llama.cpp best':>15} {'median':>8} "
          f"{'ratio best':>11} {'median':>7}")
    for what in ("pp", "tg"):
        ours = [r[0][what][0] for r in rounds]
        theirs = [r[1][what][0] for r in rounds]
        ours_best, ours_median = max(ours), statistics.median(ours)
        theirs_best, theirs_median = max(theirs), statistics.median(theirs)
        ratio_best, ratio_median = ours_best / theirs_best, ours_median / theirs_median
        summary[what] = {"voxd_best": ours_best, "voxd_median": ours_median,
                         "llama_cpp_best": theirs_best, "llama_cpp_median": theirs_median,
                         "ratio_best": ratio_best, "ratio_median": ratio_median}
        print(f"{what:4} {ours_best:10.1f} {ours_median:8.1f} {theirs_best:15.1f} "
              f"{theirs_median:8.1f} {ratio_best:11.2f} {ratio_median:7.2f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
