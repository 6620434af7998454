"""LLMRank Gateway: an OpenAI-compatible proxy that routes each prompt with LLMRank."""
