"""Why a model was chosen: integrated gradients (captum) over the named features and the embedding."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from router_model.features import FeatureInfo
from router_model.model import LLMRankNet

EMBEDDING_LABEL = "text_embedding"


@dataclass(frozen=True)
class Attribution:
    name: str
    value: float
    attribution: float
    description: str


def attributions(
    net: LLMRankNet,
    infos: list[FeatureInfo],
    features: torch.Tensor,
    embedding: torch.Tensor,
    target: int,
    readout: tuple[torch.Tensor, float] | None = None,
) -> list[Attribution]:
    """Each feature's push on model `target`'s score relative to an average training prompt, largest first; with
    `readout`, a calibrated profile's (weight, bias) on the shared representation, that profile's score instead.

    The 384 embedding dimensions are not readable one by one, so they are reported as one summed line. captum
    (and the matplotlib it imports, 33 MB together) loads on the first explanation, not in every gateway.
    """
    from captum.attr import IntegratedGradients

    net.eval()
    f = features.reshape(1, -1).float()
    e = embedding.reshape(1, -1).float()
    baselines = (net.feature_mean.reshape(1, -1), torch.zeros_like(e))
    if readout is None:
        ig = IntegratedGradients(lambda fx, ex: net(fx, ex)[:, target])
    else:
        weight, bias = readout
        ig = IntegratedGradients(lambda fx, ex: net.hidden(fx, ex) @ weight + bias)
    attr_f, attr_e = ig.attribute((f, e), baselines=baselines, n_steps=32)
    result = [
        Attribution(info.name, float(f[0, i]), float(attr_f[0, i]), info.description) for i, info in enumerate(infos)
    ]
    result.append(Attribution(EMBEDDING_LABEL, float("nan"), float(attr_e.sum()), "the sentence embedding, summed"))
    return sorted(result, key=lambda a: -abs(a.attribution))
