"""The embedding model run by ONNX Runtime: the same weights, exported once from the local model folder.

On this 2-core machine a short question takes 4-5.5 ms with ONNX Runtime (fp32) against about 11 ms
with torch; the vectors agree to 1e-7, so an index built with either backend serves the other.
"onnx-int8" quantises the weights per channel: about 1.3 ms a question, cosine >= 0.99 against torch
(per-tensor quantisation fell to 0.89 on long passages, so it is not offered).

sentence-transformers' own ONNX backend needs `optimum`, whose releases on this registry do not import
together; the export here uses torch's TorchScript exporter, which needs nothing more. Once exported, the
model runs with onnxruntime and tokenizers alone: `citeqa serve` never imports torch to answer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from citeqa.index import allocator
from citeqa.index.errors import InvalidInput

log = logging.getLogger(__name__)
BACKENDS = ("torch", "onnx", "onnx-int8")
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


def model_files(model_path: str, cache_dir: Path, backend: str) -> Path:
    """Where the exported model lives: named by backend and a digest of the source weights' folder."""
    digest = hashlib.sha256()
    for f in sorted(Path(model_path).rglob("*")):
        if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt"):
            stat = f.stat()  # name, size and time: retrained weights of the same size still differ
            digest.update(f"{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return Path(cache_dir) / f"{Path(model_path).name}-{digest.hexdigest()[:12]}.{backend}.onnx"


def export(model, path: Path, int8: bool) -> Path:
    """Write the transformer of a loaded SentenceTransformer as ONNX (dynamic batch and length)."""
    import torch

    bert = model[0].auto_model.eval()

    class Hidden(torch.nn.Module):  # keyword arguments: a positional call clashes with `use_cache`
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids, return_dict=True).last_hidden_state

    path.parent.mkdir(parents=True, exist_ok=True)
    sample = model.tokenizer(["a sample question for the export", "short"], padding=True, return_tensors="pt")
    fp32 = path.with_name(f".{path.name}.{os.getpid()}.fp32")
    quantized = fp32.with_suffix(".int8")
    axes = {name: {0: "batch", 1: "tokens"} for name in [*INPUTS, "last_hidden_state"]}
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on constants: tests/index/test_onnx_backend.py
            torch.onnx.export(Hidden(bert), tuple(sample[n] for n in INPUTS), str(fp32), dynamo=False,
                              input_names=INPUTS, output_names=["last_hidden_state"], dynamic_axes=axes,
                              opset_version=17)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(quantized if int8 else fp32, path)  # whole or absent, even with two exporters at once
    finally:
        fp32.unlink(missing_ok=True)
        quantized.unlink(missing_ok=True)
    return path


@functools.cache
def _shrink_options():
    """Run options that shrink ONNX Runtime's memory arena after the run."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


class OnnxModel:
    """Tokenise with `tokenizers`, run the exported transformer, mean-pool over real tokens, L2-normalise:
    what the sentence-transformers pipeline of all-MiniLM-L6-v2 does (Transformer, Pooling, Normalize),
    with neither torch nor transformers imported, so a server that only answers never loads them."""

    def __init__(self, path: Path, model_path: str, max_tokens: int, threads: int = 2):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Two threads on two cores: under 16 concurrent clients the service answered 216 questions/s
        # against 168 with one, in a short run (a lone question was about 1 ms slower).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # No spinning: ONNX Runtime's pool threads otherwise spin on a core after each run, waiting for the
        # next. Measured on htmldocs (2 cores): one server's CPU per answer 23.3 -> 15.2 ms, and 63 -> 93
        # answers/s under 16 clients; in the cluster gateway, whose thread waits on the shards right after
        # embedding, the spinning thread cost 46 ms per answer.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        # The folder's tokenizer.json is what transformers' fast tokenizer runs; its own truncation and
        # fixed padding (128) are replaced by the model's limit and padding to the longest text.
        self.tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        pad = self.tokenizer.padding or {}
        self.tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))

    def encode(self, texts: list[str], release: bool = False) -> np.ndarray:
        """`release`: give the memory this run needed back to the system afterwards. Documents' batches
        (32 texts of 256 tokens) grow ONNX Runtime's arena by about 400 MB that questions never need;
        shrunk after a write's last batch (building.prepare asks), a server stays at its size
        (measured: 616 MB after five such batches without, 182 MB with, at the same speed)."""
        encoded = self.tokenizer.encode_batch(texts)
        feed = {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64)}
        hidden = self.session.run(["last_hidden_state"], feed, _shrink_options() if release else None)[0]
        if release:
            allocator.give_back()
        mask = feed["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return (pooled / norms).astype(np.float32)


def token_counter(model_path: str) -> Callable[[str], int] | None:
    """Counts a text's tokens as the model's tokenizer does, special tokens left out, with `tokenizers`
    alone; None when the folder has no tokenizer.json."""
    from tokenizers import Tokenizer

    path = Path(model_path) / "tokenizer.json"
    if not path.is_file():
        return None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


@dataclass(frozen=True)
class Pipeline:
    """What a sentence-transformers folder says of itself, read from its JSON files without torch."""

    dim: int
    max_tokens: int  # the model's input limit, special tokens included
    mean_pooled: bool  # Transformer, mean Pooling and at most Normalize: what OnnxModel reproduces


def describe(model_path: str) -> Pipeline | None:
    """The folder's pipeline, or None when its files do not say (a model name, or an unusual layout)."""
    folder = Path(model_path)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
        pooling = json.loads((folder / modules[1]["path"] / "config.json").read_text())
        limit = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    mean = pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode") == "mean"
    plain = kinds[:2] == ["Transformer", "Pooling"] and all(k == "Normalize" for k in kinds[2:])
    return Pipeline(int(pooling["word_embedding_dimension"]), int(limit), bool(mean) and plain)


def load(model_path: str, cache_dir: Path, backend: str, threads: int = 2) -> OnnxModel:
    """The ONNX model of the folder, exported on first use into `cache_dir`. The export is the one step
    that needs torch, and it runs in a child process: this one never imports torch, so a server's memory
    stays that of the ONNX model even on its first start."""
    pipeline = describe(model_path)
    if pipeline is None or not pipeline.mean_pooled:
        raise InvalidInput(f"CITEQA_QUERY_BACKEND={backend} runs mean-pooled sentence-transformers folders "
                           f"only (Transformer, Pooling, Normalize), and {Path(model_path).name} is not one; "
                           "set it to torch")
    path = model_files(model_path, cache_dir, backend)
    if not path.exists():
        log.warning("exporting %s to ONNX (%s) into %s, once", Path(model_path).name, backend, path.parent)
        done = subprocess.run([sys.executable, "-m", __name__, model_path, str(path), backend],
                              capture_output=True, text=True)
        if done.returncode != 0 or not path.exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise InvalidInput(f"exporting {Path(model_path).name} to ONNX failed ({last}); set "
                               "CITEQA_QUERY_BACKEND=torch to run without the export")
    return OnnxModel(path, model_path, pipeline.max_tokens, threads)


def _export_main(model_path: str, path: str, backend: str) -> None:
    """`python -m citeqa.index.onnx_backend MODEL_FOLDER OUT.onnx BACKEND`: what `load` runs in a child."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    export(SentenceTransformer(model_path, device="cpu"), Path(path), int8=backend == "onnx-int8")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _export_main(*sys.argv[1:4])
