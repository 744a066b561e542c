#!/usr/bin/env python3
"""What llama.cpp's own tools say about a GGUF model, as JSON on stdout, for voxd's LLM tests.

Reference tools only (never a runtime dependency of voxd). Needs .venv/ from
`scripts/setup.sh --reference` (this script re-runs itself with .venv's python when the
current one lacks the packages): `gguf` (llama.cpp's gguf-py reader) and `xllamacpp`
(llama.cpp prebuilt, driven through its embedded server's HTTP endpoints).

  scripts/reference/llm_reference.py tensors FILE
        gguf-py's tensor directory: [{name, type, dims (innermost first), offset (from the
        start of the data section), n_bytes}], plus the data offset and alignment.

  scripts/reference/llm_reference.py metadata FILE
        gguf-py's metadata: {key: {type, value}}; arrays as {type: "array", element_type,
        len, head (first 8 elements)}.

  scripts/reference/llm_reference.py tokenize FILE CORPUS
        CORPUS is a JSON list of strings. For each, llama.cpp's tokenizer (the server's
        /tokenize, no BOS/EOS added) with special tokens parsed and not parsed, and the
        server's /detokenize of the ids: [{text, ids, ids_special, detokenized}].

  scripts/reference/llm_reference.py chat FILE CONVERSATIONS
        CONVERSATIONS is a JSON list of {messages, add_generation_prompt}. For each, the
        prompt llama.cpp renders with the model's own (Jinja) chat template through the
        server's /apply-template: [{prompt}].

  scripts/reference/llm_reference.py greedy FILE PROMPTS [--tokens N] [--threads T]
        PROMPTS is a JSON list of raw prompt strings. For each, llama.cpp's greedy
        continuation of exactly N tokens (default 32) through the server's /completion: one
        slot, no prompt cache, top-k 1, no stop strings, end-of-generation tokens banned
        (`ignore_eos`) so that it never stops early. The prompt is tokenized with special
        tokens parsed and a BOS only if the GGUF's tokenizer.ggml.add_bos_token says so, and
        sent as those ids: [{prompt, prompt_ids, ids, text, eog_steps, margins}], with
          ids        the N generated token ids, text their detokenization;
          eog_steps  the steps where the model's own argmax was an end-of-generation token
                     (so the continuation is the argmax over the other tokens from there);
          margins    per step, the log-probability of the chosen token minus that of the
                     best other allowed token (llama.cpp's softmax of the raw logits): a
                     small margin marks a step that rounding may legitimately flip.

  scripts/reference/llm_reference.py speed FILE [--threads T] [--prompt-tokens P] [--gen-tokens G]
                                      [--runs R]
        llama.cpp's prompt processing (pp) and token generation (tg) speed on the model, as
        its server's /completion timings report them, with T threads (default 2) and the
        default batch sizes. After one uncounted warm-up, each of R runs (default 3)
        processes a fresh prompt of exactly P tokens (default 128) with no prompt cache and
        generates exactly G tokens (default 64) greedily: {threads, prompt_tokens,
        gen_tokens, runs: [{pp_tok_s, tg_tok_s}], best: {pp_tok_s, tg_tok_s}, median: {...}}.
        pp is P over the prompt's evaluation time; tg is the server's: the G-1 decode steps
        after the first generated token (which comes from the prompt's logits) over the time
        from the end of the prompt to the last token.
"""
import argparse
import contextlib
import json
import os
import pathlib
import random
import statistics
import sys
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]

try:
    import gguf
    import xllamacpp
except ImportError:  # fall back to the reference venv, once
    venv_py = ROOT / ".venv" / "bin" / "python"
    if venv_py.exists() and os.environ.get("VOXD_REFERENCE_REEXEC") != "1":
        os.environ["VOXD_REFERENCE_REEXEC"] = "1"
        os.execv(str(venv_py), [str(venv_py), __file__] + sys.argv[1:])
    sys.exit("llm_reference: needs gguf and xllamacpp (run scripts/setup.sh --reference)")


def tensors(path):
    reader = gguf.GGUFReader(path)
    data_offset = int(reader.data_offset)
    out = []
    for t in reader.tensors:
        out.append({
            "name": t.name,
            "type": t.tensor_type.name,
            "type_id": int(t.tensor_type),
            "dims": [int(d) for d in t.shape],
            "offset": int(t.data_offset) - data_offset,
            "n_bytes": int(t.n_bytes),
        })
    return {"alignment": int(reader.alignment), "data_offset": data_offset, "tensors": out}


def metadata(path):
    reader = gguf.GGUFReader(path)
    out = {}
    for name, field in reader.fields.items():
        if name.startswith("GGUF."):  # the reader's own pseudo-keys for the header
            continue
        kind = gguf.GGUFValueType(field.types[0])
        value = field.contents()
        if kind == gguf.GGUFValueType.ARRAY:
            element = gguf.GGUFValueType(field.types[1]).name if len(field.types) > 1 else None
            out[name] = {"type": "array", "element_type": element, "len": len(value),
                         "head": value[:8]}
        else:
            out[name] = {"type": kind.name, "value": value}
    return out


@contextlib.contextmanager
def llama_server(path, threads=1, n_ctx=512):
    """llama.cpp's server on the model, its log kept off stdout (the JSON goes there).

    One slot, so requests run one at a time on the same context. `threads` serves both
    generation and prompt (batch) processing: llama.cpp keeps separate counts for the two.
    """
    stdout = os.dup(1)
    os.dup2(2, 1)
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    # Render a conversation that ends with an assistant message as the template does, not as
    # a reply to continue (the server's "prefill" drops the end of the template's output).
    params.prefill_assistant = False
    server = xllamacpp.Server(params)
    try:
        yield server.listening_address
    finally:
        del server
        os.dup2(stdout, 1)
        os.close(stdout)


def post(address, endpoint, body, timeout=60):
    request = urllib.request.Request(address + endpoint, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def tokenize(path, corpus_path):
    corpus = json.loads(pathlib.Path(corpus_path).read_text(encoding="utf-8"))
    out = []
    with llama_server(path) as address:
        for text in corpus:
            plain = post(address, "/tokenize",
                         {"content": text, "add_special": False, "parse_special": False})
            special = post(address, "/tokenize",
                           {"content": text, "add_special": False, "parse_special": True})
            back = post(address, "/detokenize", {"tokens": plain["tokens"]})
            out.append({"text": text, "ids": plain["tokens"], "ids_special": special["tokens"],
                        "detokenized": back["content"]})
    return out


def chat(path, conversations_path):
    conversations = json.loads(pathlib.Path(conversations_path).read_text(encoding="utf-8"))
    out = []
    with llama_server(path) as address:
        for c in conversations:
            body = {"messages": c["messages"],
                    "add_generation_prompt": c.get("add_generation_prompt", True)}
            out.append({"prompt": post(address, "/apply-template", body)["prompt"]})
    return out


# Generation on a loaded, shared machine can take minutes; a stuck server should still fail.
GENERATION_TIMEOUT = 600

# Raw-logit candidates asked for at each step: enough to find the best allowed token after the
# chosen one even when the few end-of-generation tokens that ignore_eos bans rank above it.
N_PROBS = 8


def greedy_request(prompt_ids, n_tokens, n_probs=0):
    """A /completion body for llama.cpp's deterministic greedy continuation of exactly n_tokens.

    Only the top-k sampler with k = 1 (the argmax, whatever the other sampling defaults are),
    ignore_eos so that generation never ends early (the server then bans every
    end-of-generation token with a -inf logit bias), no stop strings, and no prompt cache so
    that each request evaluates its whole prompt afresh.
    """
    return {"prompt": prompt_ids, "n_predict": n_tokens, "samplers": ["top_k"], "top_k": 1,
            "temperature": 0.0, "ignore_eos": True, "stop": [], "cache_prompt": False,
            "return_tokens": True, "n_probs": n_probs}


def complete(address, body):
    """Runs a /completion request and checks the server did exactly what it was asked."""
    reply = post(address, "/completion", body, timeout=GENERATION_TIMEOUT)
    timings = reply["timings"]
    if (timings["prompt_n"] != len(body["prompt"]) or timings["cache_n"] != 0
            or len(reply["tokens"]) != body["n_predict"]):
        sys.exit(f"llm_reference: llama.cpp evaluated {timings['prompt_n']} prompt tokens "
                 f"({timings['cache_n']} from cache) and generated {len(reply['tokens'])}, "
                 f"asked for {len(body['prompt'])} and {body['n_predict']}")
    return reply


def bos_policy(path):
    """(add_bos, bos_id) from the GGUF's tokenizer metadata; add_bos is None when unset."""
    fields = gguf.GGUFReader(path).fields

    def value(key):
        return fields[key].contents() if key in fields else None

    return value("tokenizer.ggml.add_bos_token"), value("tokenizer.ggml.bos_token_id")


def prompt_ids(address, text, add_bos, bos_id):
    """The ids of a raw prompt: special tokens parsed, and a BOS exactly when the GGUF asks.

    The server's own tokenization with special tokens added (what it does to a text prompt)
    must agree, so that these ids are what llama.cpp would have evaluated for the text.
    """
    body = {"content": text, "parse_special": True}
    plain = post(address, "/tokenize", dict(body, add_special=False))["tokens"]
    server = post(address, "/tokenize", dict(body, add_special=True))["tokens"]
    if add_bos is None:  # the GGUF leaves it to llama.cpp's default for the vocabulary
        return server
    ids = [bos_id] + plain if add_bos else plain
    if ids != server:
        sys.exit(f"llm_reference: the GGUF says add_bos_token = {add_bos} but llama.cpp's "
                 f"server tokenizes {text!r} with special tokens as {server}, not {ids}")
    return ids


def step_report(step, chosen, banned):
    """(whether an end-of-generation token was the raw argmax, the chosen token's margin).

    `step` is one entry of the reply's completion_probabilities: its top_logprobs come from a
    softmax of the raw logits, before the sampler and its logit biases.
    """
    candidates = step["top_logprobs"]
    eog_first = candidates[0]["id"] in banned
    chosen_logprob = next(c["logprob"] for c in candidates if c["id"] == chosen)
    rivals = [c["logprob"] for c in candidates if c["id"] != chosen and c["id"] not in banned]
    if not rivals:
        sys.exit(f"llm_reference: no allowed runner-up among the top {len(candidates)} tokens")
    return eog_first, chosen_logprob - max(rivals)


def greedy(path, prompts_path, tokens=32, threads=2):
    prompts = json.loads(pathlib.Path(prompts_path).read_text(encoding="utf-8"))
    add_bos, bos_id = bos_policy(path)
    # Room for the longest prompt and its continuation: a byte-level BPE token (even a special
    # token, which is longer) covers at least one byte of the prompt.
    longest = max(len(text.encode("utf-8")) for text in prompts)
    n_ctx = max(512, longest + tokens + 1)
    out = []
    with llama_server(path, threads=threads, n_ctx=n_ctx) as address:
        for text in prompts:
            ids = prompt_ids(address, text, add_bos, bos_id)
            reply = complete(address, greedy_request(ids, tokens, n_probs=N_PROBS))
            # The biases ignore_eos added; JSON has no -inf, so the server writes it as null.
            banned = {b["token"] for b in reply["generation_settings"]["logit_bias"]
                      if b["bias"] is None}
            steps = [step_report(step, chosen, banned)
                     for step, chosen in zip(reply["completion_probabilities"], reply["tokens"])]
            out.append({"prompt": text, "prompt_ids": ids, "ids": reply["tokens"],
                        "text": reply["content"],
                        "eog_steps": [i for i, (eog_first, _) in enumerate(steps) if eog_first],
                        "margins": [margin for _, margin in steps]})
    return out


# Words for the speed prompts; their order is shuffled afresh for every run.
WORDS = ("the quick brown fox jumps over a lazy dog while seven small birds sing about "
         "winter rain, old maps, bright kitchens, quiet rivers and the price of bread in "
         "1987; nobody knows why the tall clock stopped at noon").split()


def speed_prompt(address, n_tokens, seed):
    """A prompt of exactly n_tokens ids, different for every seed (nothing for a cache)."""
    rng = random.Random(seed)
    text = " ".join(rng.choice(WORDS) for _ in range(n_tokens))  # >= 1 token a word
    ids = post(address, "/tokenize", {"content": text, "add_special": False})["tokens"]
    return ids[:n_tokens]


def speed(path, threads=2, prompt_tokens=128, gen_tokens=64, runs=3):
    runs_out = []
    n_ctx = max(512, prompt_tokens + gen_tokens + 1)
    with llama_server(path, threads=threads, n_ctx=n_ctx) as address:
        for run in range(runs + 1):  # run 0 warms caches, pages and threads up: not counted
            ids = speed_prompt(address, prompt_tokens, seed=run)
            timings = complete(address, greedy_request(ids, gen_tokens))["timings"]
            if run > 0:
                runs_out.append({"pp_tok_s": timings["prompt_per_second"],
                                 "tg_tok_s": timings["predicted_per_second"]})

    def summary(pick):
        return {key: pick(r[key] for r in runs_out) for key in ("pp_tok_s", "tg_tok_s")}

    return {"threads": threads, "prompt_tokens": prompt_tokens, "gen_tokens": gen_tokens,
            "runs": runs_out, "best": summary(max), "median": summary(statistics.median)}


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name, run, *inputs):
        """A subcommand on FILE and the given input files, which `run(args)` carries out."""
        sub = commands.add_parser(name)
        sub.add_argument("file")
        for input_name in inputs:
            sub.add_argument(input_name)
        sub.set_defaults(run=run)
        return sub

    command("tensors", lambda a: tensors(a.file))
    command("metadata", lambda a: metadata(a.file))
    command("tokenize", lambda a: tokenize(a.file, a.corpus), "corpus")
    command("chat", lambda a: chat(a.file, a.conversations), "conversations")
    sub = command("greedy", lambda a: greedy(a.file, a.prompts, tokens=a.tokens,
                                             threads=a.threads), "prompts")
    sub.add_argument("--tokens", type=positive, default=32)
    sub.add_argument("--threads", type=positive, default=2)
    sub = command("speed", lambda a: speed(a.file, threads=a.threads,
                                           prompt_tokens=a.prompt_tokens,
                                           gen_tokens=a.gen_tokens, runs=a.runs))
    sub.add_argument("--threads", type=positive, default=2)
    sub.add_argument("--prompt-tokens", type=positive, default=128)
    sub.add_argument("--gen-tokens", type=positive, default=64)
    sub.add_argument("--runs", type=positive, default=3)

    args = parser.parse_args(argv[1:])
    result = args.run(args)
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
