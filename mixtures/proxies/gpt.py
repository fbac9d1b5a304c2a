"""A small decoder-only transformer proxy (PyTorch, CPU or CUDA).

Hyper-parameters default to the Step Law fit (Li et al. 2025), so a proxy of any size is
trained near its optimum without a per-size sweep:

    peak LR        = 1.79 * N**-0.713 * D**0.307
    batch (tokens) = 0.58 * D**0.571

with N the non-embedding parameters and D the training tokens, then a short linear warm-up
and a linear decay to zero (Bergsma et al. 2025). One pass over the data (no repetition).
Every value can be overridden. On CPU with a fixed ``threads`` the run is deterministic.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from metamix.mixtures.proxies.base import (
    ProxyError,
    ProxyResult,
    ProxyTrainer,
    TrainingData,
    ValidationSet,
    ValidationTokens,
    losses_from_logprobs,
)


def step_law_lr(n_params: int, n_tokens: int) -> float:
    return 1.79 * n_params ** -0.713 * n_tokens ** 0.307


def step_law_batch_tokens(n_tokens: int) -> float:
    return 0.58 * n_tokens ** 0.571


class _Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(),
                                 nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.n_heads, d // self.n_heads).unbind(2)
        att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                             v.transpose(1, 2), is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """Pre-LN GPT with learned positions and a tied output embedding."""

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, n_heads: int,
                 seq_len: int) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(seq_len, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def non_embedding_params(self) -> int:
        embed = self.tok.weight.numel() + self.pos.weight.numel()
        return sum(p.numel() for p in self.parameters()) - embed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tok(x) + self.pos(torch.arange(x.shape[1], device=x.device))
        for block in self.blocks:
            h = block(h)
        return self.norm(h) @ self.tok.weight.T


class GPTTrainer(ProxyTrainer):
    """Decoder-only transformer proxy; ``lr``/``batch_tokens`` None = Step Law values."""

    name = "gpt"

    def __init__(self, d_model: int = 128, n_layers: int = 4, n_heads: int = 4,
                 seq_len: int = 128, lr: float | None = None, batch_tokens: int | None = None,
                 warmup_fraction: float = 0.02, weight_decay: float = 0.1,
                 max_steps: int | None = None, device: str = "cpu", threads: int = 1,
                 eval_batch: int = 64, log_every: int = 10) -> None:
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.seq_len = seq_len
        self.lr = lr
        self.batch_tokens = batch_tokens
        self.warmup_fraction = warmup_fraction
        self.weight_decay = weight_decay
        self.max_steps = max_steps
        self.device = device
        self.threads = threads
        self.eval_batch = eval_batch
        self.log_every = log_every

    def fit_evaluate(self, train: TrainingData, validation: ValidationSet, *,
                     return_logprobs: bool = False, work_dir: Path | None = None) -> ProxyResult:
        start = time.perf_counter()
        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        torch.manual_seed(train.seed)
        corpus = train.load()
        val = validation.load()
        if val.vocab_size != corpus.vocab_size:
            raise ProxyError("training and validation caches use different tokenizers")
        chunks = self._chunks(train.documents(), corpus.eos_id)
        n_tokens = chunks.shape[0] * self.seq_len
        model = TinyGPT(corpus.vocab_size, self.d_model, self.n_layers, self.n_heads,
                        self.seq_len).to(self.device)
        n_params = model.non_embedding_params()
        lr = self.lr or step_law_lr(n_params, n_tokens)
        batch_tokens = self.batch_tokens or step_law_batch_tokens(n_tokens)
        batch = max(1, min(round(batch_tokens / self.seq_len), len(chunks)))
        steps = max(1, len(chunks) // batch)
        if self.max_steps:
            steps = min(steps, self.max_steps)
        curve = self._train(model, chunks, batch, steps, lr, train.seed)
        logprobs = self._logprobs(model, val)
        losses, mean = losses_from_logprobs(val, logprobs)
        return ProxyResult(
            losses=losses, mean_loss=mean, n_train_tokens=steps * batch * self.seq_len,
            seconds=time.perf_counter() - start, curve=curve,
            token_logprobs=logprobs if return_logprobs else None,
            info={"non_embedding_params": n_params, "lr": lr, "batch_size": batch,
                  "steps": steps, "seq_len": self.seq_len})

    def _chunks(self, docs: list[np.ndarray], eos_id: int) -> torch.Tensor:
        """Non-overlapping (seq_len + 1)-token windows of the EOS-separated training stream."""
        stream = np.concatenate([np.concatenate([[eos_id], d]) for d in docs]) if docs else []
        n = (len(stream) - 1) // self.seq_len
        if n < 1:
            raise ProxyError(f"need more than {self.seq_len} training tokens, got {len(stream)}")
        idx = np.arange(n)[:, None] * self.seq_len + np.arange(self.seq_len + 1)
        return torch.from_numpy(np.asarray(stream, dtype=np.int64)[idx])

    def _train(self, model: TinyGPT, chunks: torch.Tensor, batch: int, steps: int, lr: float,
               seed: int) -> list[tuple[int, float]]:
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": self.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=lr, betas=(0.9, 0.95))
        warmup = max(1, math.ceil(self.warmup_fraction * steps))
        order = torch.randperm(len(chunks), generator=torch.Generator().manual_seed(seed))
        curve: list[tuple[int, float]] = []
        running: list[float] = []
        model.train()
        for step in range(steps):
            scale = (step + 1) / warmup if step < warmup else (steps - step) / (steps - warmup + 1)
            for group in opt.param_groups:
                group["lr"] = lr * scale
            xy = chunks[order[step * batch : (step + 1) * batch]].to(self.device)
            logits = model(xy[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), xy[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            running.append(loss.item())
            if (step + 1) % self.log_every == 0 or step == steps - 1:
                curve.append(((step + 1) * batch * self.seq_len, float(np.mean(running))))
                running = []
        return curve

    @torch.no_grad()
    def _logprobs(self, model: TinyGPT, val: ValidationTokens) -> np.ndarray:
        """log p of every validation token, each doc split into seq_len windows after EOS."""
        model.eval()
        length = self.seq_len
        inputs, targets, positions = [], [], []
        for i, doc in enumerate(val.docs()):
            seq = np.concatenate([[val.eos_id], doc])
            for s in range(0, len(doc), length):
                x, y = seq[s : s + length], seq[s + 1 : s + length + 1]
                inputs.append(np.pad(x[: len(y)], (0, length - len(y)), constant_values=val.eos_id))
                targets.append(np.pad(y, (0, length - len(y)), constant_values=-1))
                positions.append(val.offsets[i] + s)
        out = np.empty(val.n_tokens, dtype=np.float64)
        for b in range(0, len(inputs), self.eval_batch):
            x = torch.from_numpy(np.stack(inputs[b : b + self.eval_batch])).to(self.device)
            y = np.stack(targets[b : b + self.eval_batch])
            logp = torch.log_softmax(model(x).float(), dim=-1).cpu().numpy()
            for row, pos in enumerate(positions[b : b + self.eval_batch]):
                valid = y[row] >= 0
                out[pos : pos + valid.sum()] = logp[row, np.flatnonzero(valid), y[row][valid]]
        return out
