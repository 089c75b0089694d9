"""rotor's GLA language model rebuilt in PyTorch (CPU, eager), for scripts/compare-torch.

The modules carry rotor's parameter names, so a rotor checkpoint loads with load_state_dict.
One exported step (examples/export_step: batch, logits, loss, gradients) is repeated here and
the differences printed; then a full training step of each is timed.

    python3 scripts/compare_torch.py --model m.safetensors --step step.safetensors [--time-steps 20]
"""
import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    """(tensors by name, metadata): the format's 8-byte header length, JSON header, raw bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        a, b = h["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=DTYPES[h["dtype"]]).reshape(h["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class ShortConvolution(nn.Module):
    """Causal depthwise convolution over time, weight [C, 1, W] (PyTorch's Conv1d layout)."""

    def __init__(self, channels, width, bias, silu):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels, 1, width))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.silu = silu

    def forward(self, x):  # [B, T, C]
        w = self.weight.shape[-1]
        y = F.conv1d(F.pad(x.transpose(1, 2), (w - 1, 0)), self.weight, self.bias, groups=x.shape[-1])
        y = y.transpose(1, 2)
        return F.silu(y) if self.silu else y


def rotate(x, theta):
    """Half-split rotation of head vectors x [B, T, H, D] by angles theta [B, T, H, D/2]."""
    r = x.shape[-1] // 2
    a, b = x[..., :r], x[..., r:]
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.cat([a * c - b * s, a * s + b * c], -1)


def rope_temperature(kind, theta0, d, tmax):
    r = d // 2
    if kind == "rope":
        return tmax * (1.0 / theta0 ** (torch.arange(r, dtype=torch.float64) * 2 / d))
    w = torch.linspace(0, theta0 * math.pi, r, dtype=torch.float64)
    t = torch.sqrt((1 - torch.cos(w)) / (1 + torch.cos(w)))
    return tmax * t / t.max()


class SelectiveRoPE(nn.Module):
    def __init__(self, head_dim, model_dim, heads, c):
        super().__init__()
        if c.get("phi_parametrization", "low-rank") != "low-rank":
            sys.exit("compare_torch: only the low-rank phi projection is rebuilt here")
        self.heads, self.r, self.c = heads, head_dim // 2, c
        ch = heads * self.r
        rank = c.get("phi_proj_rank", 32)
        self.phi_proj = nn.Sequential(nn.Linear(model_dim, rank, bias=False), nn.Linear(rank, ch, bias=False))
        if not c.get("skip_conv", False):
            act = c.get("conv_act") or ""
            self.phi_conv1d = ShortConvolution(ch, c.get("d_conv", 4), False, act in ("silu", "swish"))
        if c.get("use_bias", False):
            self.phi_bias = nn.Parameter(torch.zeros(1, 1, heads, self.r))
        if c.get("use_gate", False):
            gp = c.get("gate_parametrization", "standard")
            if gp == "standard":
                self.phase_gate_proj = nn.Linear(model_dim, heads, bias=True)
            else:
                out = ch if gp == "gla" else heads
                lr = c.get("gate_low_rank_dim", 16)
                self.phase_gate_proj = nn.Sequential(nn.Linear(model_dim, lr, bias=False), nn.Linear(lr, out, bias=True))
        temp = rope_temperature(c.get("temp_type", "rope"), c.get("temp_theta", 500000.0), head_dim,
                                c.get("temp_max", 1.0)).float().reshape(1, 1, 1, self.r)
        if c.get("temp_grad", False):
            self.temperature = nn.Parameter(temp)
        else:
            self.register_buffer("temperature", temp)

    def forward(self, q, k, x):
        B, T, d = x.shape
        H, R = self.heads, self.r
        xh = x.reshape(B, T, H, d // H)
        xn = (xh / torch.sqrt(xh.pow(2).sum(-1, keepdim=True) + 1e-6)).reshape(B, T, d)
        phi = self.phi_proj(xn)
        if hasattr(self, "phi_conv1d"):
            phi = self.phi_conv1d(phi)
        else:
            phi = phi - F.pad(phi, (0, 0, 1, 0))[:, :T]
        phi = phi.reshape(B, T, H, R)
        if hasattr(self, "phi_bias"):
            phi = phi + torch.exp(self.phi_bias)
        if hasattr(self, "phase_gate_proj"):
            gate = torch.sigmoid(self.phase_gate_proj(xn))
            phi = phi * (gate.unsqueeze(-1) if gate.shape[-1] == H else gate.reshape(B, T, H, R))
        theta = torch.cumsum(phi, 1) * self.temperature
        return rotate(q, theta), rotate(k, theta)


def gla_chunked(q, k, v, g, scale, C=16):
    """o_t = scale q_t S_t, S_t = diag(exp g_t) S_{t-1} + k_t^T v_t, in chunks of C steps:
    pairwise decays inside a chunk (differences of cumulative log-decays), a state between chunks.
    q, k, g [B, T, H, K], v [B, T, H, V] -> [B, T, H, V]."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    pad = (-T) % C
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v))
        g = F.pad(g, (0, 0, 0, 0, 0, pad))
    N = (T + pad) // C
    # [B, H, N, C, K]
    q, k, v, g = (t.reshape(B, N, C, H, -1).permute(0, 3, 1, 2, 4) for t in (q, k, v, g))
    b = torch.cumsum(g, 3)
    mask = torch.ones(C, C, dtype=torch.bool).tril()
    diff = (b.unsqueeze(4) - b.unsqueeze(3)).masked_fill(~mask[:, :, None], float("-inf"))
    A = (q.unsqueeze(4) * k.unsqueeze(3) * torch.exp(diff)).sum(-1) * scale  # [B, H, N, C, C]
    o_intra = A @ v
    S = q.new_zeros(B, H, K, V)
    inter = []
    for n in range(N):
        bn = b[:, :, n]
        inter.append((q[:, :, n] * torch.exp(bn)) @ S * scale)
        last = bn[:, :, -1:]
        S = torch.exp(last).transpose(-1, -2) * S + (k[:, :, n] * torch.exp(last - bn)).transpose(-1, -2) @ v[:, :, n]
    o = o_intra + torch.stack(inter, 2)
    return o.permute(0, 2, 3, 1, 4).reshape(B, N * C, H, V)[:, :T]


class GatedLinearAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, H = c["hidden_size"], c["num_heads"]
        kd, vd = int(d * c.get("expand_k", 0.5)), int(d * c.get("expand_v", 1.0))
        self.H, self.kd, self.vd = H, kd, vd
        self.normalizer = c.get("gate_logit_normalizer", 16)
        self.q_proj = nn.Linear(d, kd, bias=False)
        self.k_proj = nn.Linear(d, kd, bias=False)
        self.v_proj = nn.Linear(d, vd, bias=False)
        self.output_gate = c.get("use_output_gate", True)
        if self.output_gate:
            self.g_proj = nn.Linear(d, vd, bias=False)
        if c.get("use_short_conv", False):
            w = c.get("conv_size", 4)
            self.q_conv1d = ShortConvolution(kd, w, c.get("conv_bias", False), True)
            self.k_conv1d = ShortConvolution(kd, w, c.get("conv_bias", False), True)
            self.v_conv1d = ShortConvolution(vd, w, c.get("conv_bias", False), True)
        r = c.get("gate_low_rank_dim", 16)
        self.gk_proj = nn.Sequential(nn.Linear(d, r, bias=False), nn.Linear(r, kd, bias=True))
        self.o_proj = nn.Linear(vd, d, bias=False)
        if self.output_gate:
            self.g_norm_swish_gate = RMSNorm(vd // H, c.get("norm_eps", 1e-6))
        else:
            self.g_norm = RMSNorm(vd // H, c.get("norm_eps", 1e-6))
        pe = c.get("position_embedding") or {"type": "nope"}
        self.pe = pe.get("type", "nope")
        if self.pe == "selective_rope":
            self.rotary = SelectiveRoPE(kd // H, d, H, pe)
        elif self.pe == "rope":
            hk = kd // H
            self.register_buffer("omega", 1.0 / pe.get("theta", 500000.0) ** (torch.arange(hk // 2, dtype=torch.float64) * 2 / hk),
                                 persistent=False)

    def forward(self, x):
        B, T, _ = x.shape
        H = self.H
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if hasattr(self, "q_conv1d"):
            q, k, v = self.q_conv1d(q), self.k_conv1d(k), self.v_conv1d(v)
        gk = self.gk_proj(x)
        q, k = q.reshape(B, T, H, -1), k.reshape(B, T, H, -1)
        if self.pe == "selective_rope":
            q, k = self.rotary(q, k, x)
        elif self.pe == "rope":
            theta = (torch.arange(T, dtype=torch.float64)[:, None] * self.omega).float()[None, :, None, :]
            q, k = rotate(q, theta), rotate(k, theta)
        v = v.reshape(B, T, H, -1)
        g = F.logsigmoid(gk.reshape(B, T, H, -1)) / self.normalizer
        o = gla_chunked(q, k, v, g, q.shape[-1] ** -0.5)
        if self.output_gate:
            gate = self.g_proj(x).reshape(B, T, H, -1)
            o = rms_norm(o, self.g_norm_swish_gate.weight, self.g_norm_swish_gate.eps) * F.silu(gate)
        else:
            o = self.g_norm(o)
        return self.o_proj(o.reshape(B, T, self.vd))


class GatedMLP(nn.Module):
    def __init__(self, d, inner):
        super().__init__()
        self.gate_proj = nn.Linear(d, inner, bias=False)
        self.up_proj = nn.Linear(d, inner, bias=False)
        self.down_proj = nn.Linear(inner, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c, inner):
        super().__init__()
        self.attn_norm = RMSNorm(c["hidden_size"], c["norm_eps"])
        self.attn = GatedLinearAttention(c)
        self.mlp_norm = RMSNorm(c["hidden_size"], c["norm_eps"])
        self.mlp = GatedMLP(c["hidden_size"], inner)

    def forward(self, x):
        r = x + self.attn(self.attn_norm(x))
        return r + self.mlp(self.mlp_norm(r))


class Model(nn.Module):
    def __init__(self, c, inner):
        super().__init__()
        d = c["hidden_size"]
        self.embeddings = nn.Embedding(c["vocab_size"], d)
        self.layers = nn.ModuleList(Block(c, inner) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(d, c["norm_eps"])


class LanguageModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        if c.get("model_type", "gla") != "gla" or c.get("attn"):
            sys.exit(f"compare_torch: model_type {c.get('model_type')} (or attention layers) is not rebuilt here")
        d = c["hidden_size"]
        inner = c.get("intermediate_size") or 256 * ((d * c.get("hidden_ratio", 4) * 2 // 3 + 255) // 256)
        self.model = Model(c, inner)
        self.lm_head = nn.Linear(d, c["vocab_size"], bias=False)

    def forward(self, ids):
        x = self.model.embeddings(ids)
        for layer in self.model.layers:
            x = layer(x)
        return self.lm_head(self.model.norm(x))


def rel(a, b):
    return float((a - b).norm() / max(float(b.norm()), 1e-30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--step", required=True)
    ap.add_argument("--time-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    params, meta = read_safetensors(a.model)
    config = json.loads(meta["config"])
    m = LanguageModel(config)
    missing, unexpected = m.load_state_dict(params, strict=False)
    missing = [n for n in missing if not n.endswith("omega")]
    if missing or unexpected:
        sys.exit(f"compare_torch: names differ: missing in the checkpoint {missing}, unknown here {unexpected}")
    step, _ = read_safetensors(a.step)
    ids, labels = step["inputs"], step["labels"]
    logits = m(ids)
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    loss.backward()
    print(f"{a.label}: {sum(p.numel() for p in m.parameters())} parameters, batch {list(ids.shape)}")
    dl = (logits.detach() - step["logits"]).abs().max().item()
    print(f"  logits  max |torch - rotor| {dl:.3e}   (max |logit| {step['logits'].abs().max().item():.3f})")
    print(f"  loss    torch {loss.item():.7f}  rotor {step['loss'].item():.7f}  diff {abs(loss.item() - step['loss'].item()):.3e}")
    print("  gradients: |g_torch - g_rotor| / |g_rotor|")
    worst = 0.0
    for name, p in m.named_parameters():
        key = "grad." + name
        if key not in step:
            print(f"    {name:50s} no rotor gradient")
            continue
        r = rel(p.grad, step[key])
        worst = max(worst, r)
        print(f"    {name:50s} {r:.2e}")
    print(f"  worst relative gradient difference {worst:.2e}")
    if a.time_steps > 0:
        opt = torch.optim.AdamW(m.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)

        def train_step():
            opt.zero_grad(set_to_none=False)
            out = m(ids)
            F.cross_entropy(out.reshape(-1, V), labels.reshape(-1), ignore_index=-100).backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()

        train_step()
        wall, cpu = [], []
        for _ in range(a.time_steps):
            t0, c0 = time.perf_counter(), time.process_time()
            train_step()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f"torch step: {1e3 * min(wall):.3f} ms wall, {1e3 * min(cpu):.3f} ms CPU (min over {a.time_steps} steps, "
              f"{torch.get_num_threads()} thread(s))")


if __name__ == "__main__":
    main()
