"""Tiny causal LMs built from a ``transformers`` config, and loading of local HF checkpoints.

Nothing is downloaded: a model is either built from :class:`TinyLMConfig` (random init, then
trained here) or loaded from a local directory written by ``save_pretrained``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ARCHS = ("gpt2", "llama")


@dataclass
class TinyLMConfig:
    """Size of a from-scratch causal LM (a few hundred thousand to a few million parameters)."""

    arch: str = field(default="gpt2", metadata={"help": "Architecture: 'gpt2' (pre-LN GPT) or 'llama'."})
    d_model: int = field(default=128, metadata={"help": "Hidden size."})
    n_layers: int = field(default=4, metadata={"help": "Number of transformer blocks."})
    n_heads: int = field(default=4, metadata={"help": "Attention heads (must divide d_model)."})
    d_ff: int = field(default=512, metadata={"help": "MLP inner size."})
    max_positions: int = field(default=1024, metadata={"help": "Context length in tokens."})
    dropout: float = field(default=0.0, metadata={"help": "Dropout (0 keeps RL log-probs exact)."})

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}.")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}.")
        for name in ("d_model", "n_layers", "n_heads", "d_ff", "max_positions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields."""
        return asdict(self)


def build_tiny_model(config: TinyLMConfig, tokenizer: Any, *, seed: int = 0) -> Any:
    """A randomly initialised causal LM sized by ``config`` for ``tokenizer``'s vocabulary.

    The initialisation is deterministic under ``seed`` (a local generator state is used and the
    global torch RNG is restored afterwards).
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    vocab = len(tokenizer)
    special = {
        "bos_token_id": tokenizer.eos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if config.arch == "gpt2":
        hf_config = GPT2Config(
            vocab_size=vocab,
            n_positions=config.max_positions,
            n_embd=config.d_model,
            n_layer=config.n_layers,
            n_head=config.n_heads,
            n_inner=config.d_ff,
            resid_pdrop=config.dropout,
            embd_pdrop=config.dropout,
            attn_pdrop=config.dropout,
            **special,
        )
        cls: Any = GPT2LMHeadModel
    else:
        hf_config = LlamaConfig(
            vocab_size=vocab,
            hidden_size=config.d_model,
            intermediate_size=config.d_ff,
            num_hidden_layers=config.n_layers,
            num_attention_heads=config.n_heads,
            num_key_value_heads=config.n_heads,
            max_position_embeddings=config.max_positions,
            attention_dropout=config.dropout,
            tie_word_embeddings=True,
            **special,
        )
        cls = LlamaForCausalLM
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(hf_config)
    return model


def count_parameters(model: Any) -> int:
    """Number of distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def fit_sequences(
    model: Any,
    sequences: list[list[int]],
    *,
    pad_id: int,
    steps: int,
    batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    on_step: Any = None,
) -> float:
    """Plain next-token training of a causal LM on whole token sequences (every token is a
    target): ``steps`` AdamW steps on batches drawn with a seeded RNG, right-padded with
    ``pad_id``. For warm-starting tiny chat models on rendered conversations (examples, tests);
    the SFT trainer in :mod:`baselines.train.sft` is the one that masks prompts and tool outputs.

    Args:
        on_step: Called as ``on_step(step, loss)`` after each step, if given.

    Returns:
        The last step's loss. The model is left in eval mode.
    """
    import torch

    if not sequences:
        raise ValueError("fit_sequences needs at least one sequence.")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = torch.tensor(float("nan"))
    for step in range(steps):
        batch = [sequences[int(i)] for i in torch.randint(len(sequences), (batch_size,), generator=generator)]
        length = max(map(len, batch))
        ids = torch.full((len(batch), length), pad_id)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(batch):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        loss = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step, float(loss.detach()))
    model.eval()
    return float(loss.detach())


def context_length(model: Any) -> int:
    """The model's maximum sequence length in tokens."""
    cfg = model.config
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, name, None)
        if value:
            return int(value)
    return 2048


def save_pretrained(model: Any, tokenizer: Any, path: str | Path) -> Path:
    """Write model and tokenizer to ``path`` (a standard HF checkpoint directory)."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def load_pretrained(path: str | Path) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a local HF checkpoint directory (never downloads).

    Works for our tiny models and for any local causal-LM checkpoint whose tokenizer has ChatML
    turn markers. Dropout is disabled in the returned model (``model.eval()`` semantics are set by
    the caller when needed).

    Raises:
        FileNotFoundError: if ``path`` is not a directory with a ``config.json``.
    """
    from transformers import AutoModelForCausalLM

    from baselines.llm.tokenizer import load_tokenizer

    root = Path(path)
    if not (root / "config.json").is_file():
        raise FileNotFoundError(
            f"{root} is not a Hugging Face checkpoint directory (no config.json). Train one with "
            "`python -m baselines.train sft ...` or pass a local checkpoint path."
        )
    model = AutoModelForCausalLM.from_pretrained(str(root), local_files_only=True)
    tokenizer = load_tokenizer(root)
    return model, tokenizer
