#!/usr/bin/env python3
"""What llama.cpp's own tools say about a GGUF model, as JSON on stdout, for voxd's LLM tests.

Reference tools only (never a runtime dependency of voxd). Needs .venv/ from
`scripts/setup.sh --reference` (this script re-runs itself with .venv's python when the
current one lacks the packages): `gguf` (llama.cpp's gguf-py reader) and `xllamacpp`
(llama.cpp prebuilt, driven through its embedded server's HTTP endpoints).

  scripts/llm_reference.py tensors FILE
        gguf-py's tensor directory: [{name, type, dims (innermost first), offset (from the
        start of the data section), n_bytes}], plus the data offset and alignment.

  scripts/llm_reference.py metadata FILE
        gguf-py's metadata: {key: {type, value}}; arrays as {type: "array", element_type,
        len, head (first 8 elements)}.

  scripts/llm_reference.py tokenize FILE CORPUS
        CORPUS is a JSON list of strings. For each, llama.cpp's tokenizer (the server's
        /tokenize, no BOS/EOS added) with special tokens parsed and not parsed, and the
        server's /detokenize of the ids: [{text, ids, ids_special, detokenized}].

  scripts/llm_reference.py chat FILE CONVERSATIONS
        CONVERSATIONS is a JSON list of {messages, add_generation_prompt}. For each, the
        prompt llama.cpp renders with the model's own (Jinja) chat template through the
        server's /apply-template: [{prompt}].
"""
import contextlib
import json
import os
import pathlib
import sys
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent

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
def llama_server(path):
    """llama.cpp's server on the model, its log kept off stdout (the JSON goes there)."""
    stdout = os.dup(1)
    os.dup2(2, 1)
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = 512
    params.n_parallel = 1
    params.cpuparams.n_threads = 1
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


def post(address, endpoint, body):
    request = urllib.request.Request(address + endpoint, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
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


def main(argv):
    commands = {"tensors": (tensors, 1), "metadata": (metadata, 1), "tokenize": (tokenize, 2),
                "chat": (chat, 2)}
    if len(argv) < 2 or argv[1] not in commands or len(argv) != 2 + commands[argv[1]][1]:
        sys.exit(__doc__)
    function, _ = commands[argv[1]]
    result = function(*argv[2:])
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
