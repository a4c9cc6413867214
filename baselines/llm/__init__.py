"""LLM policies for ToolGym: tokenizer with control tokens, tiny causal LM, batched sampling with
log-probs, and multi-turn rollouts that keep token ids (token-in/token-out).

Modules (import them directly; this package imports nothing heavy):

* :mod:`baselines.llm.tokenizer` -- BPE tokenizer, chat template, :class:`ControlTokens`.
* :mod:`baselines.llm.model` -- tiny GPT-2 / Llama configs, loading any local HF checkpoint.
* :mod:`baselines.llm.policy` -- :class:`CausalLMPolicy`: KV-cache sampling and teacher-forced log-probs.
* :mod:`baselines.llm.rollout` -- multi-turn episodes against ToolGym envs, loss masks.
"""
