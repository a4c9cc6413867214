"""Tiny causal LMs built from a ``transformers`` config, and loading of local HF checkpoints.

Nothing is downloaded: a model is either built from :class:`TinyLMConfig` (random init, then
trained here) or loaded from a local directory written by ``save_pretrained``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

ARCHS = ("gpt2", "llama")

TOOL_PROMPT_CONTEXT = 32768
"""Context length (tokens) that fits the longest first prompt with tools of every registered env.

Measured by ``scripts/measure_prompt_context.py`` over every task of every split, with tools passed
as ``tools=`` through :data:`~baselines.llm.tokenizer.CHAT_TEMPLATE` (the longer protocol: the
text protocol's prompts, in any action format, are 180 to 1,370 bytes shorter), longest prompt in
UTF-8 bytes / tokens of the committed Lookup tokenizer (354 tokens, mostly bytes: the worst case
of ours) / tokens of the Search config's tokenizer: Lookup 987 / 656 / 470, Search 1,475 / 1,059 /
697, SQL 1,803 / 1,347 / 914, Calc 1,717 / 1,316 / 856, Multi 2,175 / 1,627 / 1,090, Code 2,625 /
2,106 / 1,426, Booking 8,329 / 6,645 / 4,495, BFCL-MultiTurn (all four) up to 21,369 / 16,963 /
10,996. Bytes bound the tokens of any byte-level BPE, so the next power of two above 21,369 fits
whatever tokenizer a trainer learns, with room for the turns that follow."""


@dataclass
class TinyLMConfig:
    """Size of a from-scratch causal LM (a few hundred thousand to a few million parameters)."""

    arch: str = field(default="gpt2", metadata={"help": "Architecture: 'gpt2' (pre-LN GPT) or 'llama'."})
    d_model: int = field(default=128, metadata={"help": "Hidden size."})
    n_layers: int = field(default=4, metadata={"help": "Number of transformer blocks."})
    n_heads: int = field(default=4, metadata={"help": "Attention heads (must divide d_model)."})
    d_ff: int = field(default=512, metadata={"help": "MLP inner size."})
    max_positions: int = field(
        default=TOOL_PROMPT_CONTEXT,
        metadata={"help": "Context length in tokens (default: fits every env's first prompt with tools)."},
    )
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
    set_chat_generation_config(model, tokenizer)
    return model


def chat_stop_ids(tokenizer: Any) -> list[int]:
    """The token ids that end an assistant turn for a ChatML tokenizer: ``<|im_end|>`` then
    ``<|endoftext|>`` (as Qwen2.5's ``generation_config``), else the tokenizer's EOS; ``[]`` if it
    has none of these."""
    from baselines.llm.tokenizer import ENDOFTEXT, IM_END

    vocab = tokenizer.get_vocab()
    ids = [vocab[t] for t in (IM_END, ENDOFTEXT) if t in vocab]
    if not ids and tokenizer.eos_token_id is not None:
        ids = [int(tokenizer.eos_token_id)]
    return list(dict.fromkeys(ids))


def set_chat_generation_config(model: Any, tokenizer: Any) -> None:
    """Make ``model.generation_config`` end generation at the end of a chat turn, in place.

    ``eos_token_id`` becomes :func:`chat_stop_ids` (so ``generate`` and ``pipeline`` stop at
    ``<|im_end|>``) and ``pad_token_id`` the tokenizer's pad token. Models whose generation config
    already lists stop ids of their own (a Llama-3 checkpoint's ``<|eot_id|>``) keep them.
    """
    stops = chat_stop_ids(tokenizer)
    config = model.generation_config
    current = config.eos_token_id
    current = [] if current is None else [current] if isinstance(current, int) else list(current)
    if stops and (not current or set(current) <= set(stops) | {tokenizer.eos_token_id, tokenizer.pad_token_id}):
        config.eos_token_id = stops if len(stops) > 1 else stops[0]
    if tokenizer.pad_token_id is not None:
        config.pad_token_id = int(tokenizer.pad_token_id)
    # Written explicitly, not derived from the model config (which generate() may otherwise redo).
    config._from_model_config = False


def extend_context(model: Any, n_positions: int, *, seed: int = 0) -> Any:
    """Let ``model`` read ``n_positions`` tokens, in place, without changing its outputs on
    inputs that fit its current context.

    A GPT-2 gets new rows in its learned position table (drawn like GPT-2's initialisation,
    ``N(0, initializer_range)``, from ``seed``); the existing rows, and so every output on
    sequences of at most the old length, are unchanged. A rotary-position model (Llama, Qwen2)
    only has its ``max_position_embeddings`` raised. The new positions were never trained.

    Raises:
        ValueError: if ``n_positions`` is below the current context length.
    """
    import torch

    old = context_length(model)
    if n_positions < old:
        raise ValueError(f"n_positions={n_positions} is below the model's context of {old} tokens.")
    cfg = model.config
    if getattr(cfg, "model_type", None) == "gpt2":
        wpe = model.transformer.wpe
        generator = torch.Generator().manual_seed(seed)
        extra = torch.randn(n_positions - old, wpe.embedding_dim, generator=generator) * cfg.initializer_range
        table = torch.nn.Embedding(n_positions, wpe.embedding_dim)
        with torch.no_grad():
            table.weight.copy_(torch.cat([wpe.weight.detach(), extra.to(wpe.weight.dtype)]))
        model.transformer.wpe = table
        cfg.n_positions = n_positions
    elif hasattr(cfg, "max_position_embeddings"):
        cfg.max_position_embeddings = n_positions
    else:
        raise ValueError(f"Cannot extend the context of a {getattr(cfg, 'model_type', type(model).__name__)} model.")
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


WEIGHT_BITS: dict[str, int] = {"int8": 8, "int4": 4}
"""The weight-only quantised samplers (``RLConfig.sampler_dtype``) and their bits per weight."""

SAMPLER_STORAGE: dict[str, str] = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16",
                                   **{name: "float32" for name in WEIGHT_BITS}}
"""The torch dtype a sampler copy is held in, for each ``RLConfig.sampler_dtype``. ``"int8"`` and
``"int4"`` are weight-only quantisation (:func:`quantize_weights_`): their weights are float32
tensors that hold only the quantised levels, and their activations stay float32."""


def sampler_storage_dtype(name: str) -> torch.dtype:
    """The torch dtype of a sampler copy for ``RLConfig.sampler_dtype`` ``name`` (see
    :data:`SAMPLER_STORAGE`).

    Raises:
        ValueError: for a name not in :data:`SAMPLER_STORAGE`.
    """
    import torch

    if name not in SAMPLER_STORAGE:
        raise ValueError(f"sampler dtype must be one of {list(SAMPLER_STORAGE)}, got {name!r}.")
    return getattr(torch, SAMPLER_STORAGE[name])


def quantize_weights_(model: Any, bits: int) -> Any:
    """Round the weight of every ``nn.Linear`` of ``model`` (the LM head included) to symmetric
    ``bits``-bit levels per output row, in place, and return ``model``.

    Each row ``w`` becomes ``round(w / s).clamp(-q, q) * s`` with ``q = 2**(bits - 1) - 1`` (127
    for 8 bits, 7 for 4) and ``s = max|w| / q``: what a weight-only integer inference kernel
    computes with, simulated in float32 (biases, norms and, unless tied to the LM head, embeddings
    are left as they are). The result is a deterministic function of the weights.

    Raises:
        ValueError: for ``bits`` outside 2..16.
    """
    import torch

    if not 2 <= bits <= 16:
        raise ValueError(f"bits must be in 2..16, got {bits!r}.")
    top = 2 ** (bits - 1) - 1
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                weight = module.weight
                scale = weight.abs().amax(dim=1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny) / top
                weight.copy_(torch.round(weight / scale).clamp_(-top, top) * scale)
    return model


def quantize_sampler_(model: Any, name: str) -> Any:
    """Quantise ``model``'s weights in place as sampler dtype ``name`` asks (:data:`WEIGHT_BITS`);
    a no-op for the float dtypes. Returns ``model``."""
    return quantize_weights_(model, WEIGHT_BITS[name]) if name in WEIGHT_BITS else model


def save_pretrained(model: Any, tokenizer: Any, path: str | Path) -> Path:
    """Write model and tokenizer to ``path`` (a standard HF checkpoint directory).

    The model's ``generation_config`` is first set to stop at the end of a chat turn
    (:func:`set_chat_generation_config`), so ``generate`` and ``pipeline`` stop where our agents do.
    """
    set_chat_generation_config(model, tokenizer)
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


def upgrade_checkpoint(path: str | Path, out: str | Path, *, n_positions: int = TOOL_PROMPT_CONTEXT) -> Path:
    """Re-save one of our tiny checkpoints with today's conventions, outputs unchanged.

    The tokenizer gets :func:`~baselines.llm.tokenizer.with_chat_conventions` (tags as non-special
    added tokens, same ids; EOS ``<|im_end|>``; the Qwen2.5-style :data:`CHAT_TEMPLATE`), the model
    :func:`extend_context` to ``n_positions`` and the chat ``generation_config``. Other files of the
    directory (``toolgym_agent.json``, the training config) are copied as they are.

    Returns:
        ``out``.
    """
    import shutil

    from baselines.llm.tokenizer import with_chat_conventions

    src, dst = Path(path), Path(out)
    model, tokenizer = load_pretrained(src)
    tokenizer = with_chat_conventions(tokenizer)
    extend_context(model, max(n_positions, context_length(model)))
    tokenizer.model_max_length = context_length(model)
    if src.resolve() != dst.resolve():
        dst.mkdir(parents=True, exist_ok=True)
        for extra in ("toolgym_agent.json", "train_config.yaml"):
            if (src / extra).is_file():
                shutil.copy2(src / extra, dst / extra)
    return save_pretrained(model, tokenizer, dst)
