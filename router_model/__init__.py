"""LLMRank (arXiv 2510.01234): features + sentence embedding → late-fusion MLP → per-model utility."""
