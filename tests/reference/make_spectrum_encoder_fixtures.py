"""Writes the PyTorch fixture of the spectrum-encoder suite: tests/data/reference/spectrum-encoder.bin.

Run with Debian's PyTorch from the repository root:
    /usr/bin/python3 tests/reference/make_spectrum_encoder_fixtures.py

A tiny spectrum encoder of the architecture of core/aclip-spectrum-encoder.h (standardisation
over good pixels with the std clipped, windows of flux and weight channels, a statistics token,
mask-embedding replacement, learned positions, pre-LayerNorm blocks with a key mask, a final
LayerNorm) and its masked-reconstruction head and inverse-variance weighted loss
(core/aclip-spectrum-pretrain.h), written here from the definitions in PyTorch, evaluated in
float64 on float32 inputs and parameters. The fixture holds the inputs, every parameter (under
the names the C model registers), the output tokens, the loss and the gradient of the loss with
respect to every parameter. Seeded: re-running reproduces the file byte for byte.
"""
import math
import os

import torch
import torch.nn.functional as F

from fixture_io import write_fixture

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "reference")

N_WAVE, WINDOW, STRIDE = 50, 8, 4
WIDTH, LAYERS, HEADS, HIDDEN = 16, 2, 4, 32
STD_MIN, EPS = 0.2, 1e-5
BATCH = 3
N_WINDOWS = (N_WAVE - WINDOW) // STRIDE + 1
TOKENS = N_WINDOWS + 1


def draw(*shape, scale=1.0):
    """float32 normal values, returned as float64."""
    return (torch.randn(*shape, dtype=torch.float32) * scale).to(torch.float64)


def spectra():
    """Three spectra: all good; scattered bad pixels and one window entirely bad; flat (std
    clipped) with non-finite-free noisy pixels."""
    wave = torch.arange(N_WAVE, dtype=torch.float64)
    flux = torch.stack([
        3.0 + torch.sin(wave / 5.0) + 0.3 * draw(N_WAVE),
        -1.0 + 2.0 * torch.cos(wave / 3.0) + 0.5 * draw(N_WAVE),
        7.0 + 0.05 * draw(N_WAVE),
    ]).float().double()
    ivar = (torch.rand(BATCH, N_WAVE, dtype=torch.float32) * 20 + 0.5).double()
    ivar[1, [3, 17, 18, 40]] = 0.0
    ivar[1, 20:32] = 0.0  # window 5 covers pixels 20..27: entirely bad
    flux[1, 20:32] = 0.0
    ivar[2, 10] = 0.0
    return flux, ivar


def preprocess(flux, ivar):
    good = ivar > 0
    count = good.sum(1, keepdim=True).double()
    mean = torch.where(good, flux, torch.zeros_like(flux)).sum(1, keepdim=True) / count
    var = torch.where(good, (flux - mean) ** 2, torch.zeros_like(flux)).sum(1, keepdim=True) / count
    std = var.sqrt().clamp(min=STD_MIN)
    x = torch.where(good, (flux - mean) / std, torch.zeros_like(flux))
    s = ivar * std ** 2
    w = torch.where(good, s / (1 + s), torch.zeros_like(flux))
    xw = x.unfold(1, WINDOW, STRIDE)  # [B, n_windows, window]
    ww = w.unfold(1, WINDOW, STRIDE)
    features = torch.cat([xw, ww], dim=-1)
    key_mask = torch.cat([torch.zeros(BATCH, 1, dtype=torch.bool),
                          ~(good.unfold(1, WINDOW, STRIDE).any(-1))], dim=1)
    stats_in = torch.cat([torch.asinh(mean), torch.log(std)], dim=1)
    return features, key_mask, stats_in, xw, ww, torch.cat([mean, std], dim=1)


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Linear(2 * WINDOW, WIDTH)
        self.stats_embed = torch.nn.Linear(2, WIDTH)
        self.pos_embed = torch.nn.Parameter(torch.zeros(TOKENS, WIDTH))
        self.mask_embed = torch.nn.Parameter(torch.zeros(WIDTH))
        self.blocks = torch.nn.ModuleList([
            torch.nn.TransformerEncoderLayer(WIDTH, HEADS, dim_feedforward=HIDDEN, dropout=0.0,
                                             activation="gelu", batch_first=True,
                                             norm_first=True, layer_norm_eps=EPS)
            for _ in range(LAYERS)])
        self.final_norm = torch.nn.LayerNorm(WIDTH, eps=EPS)

    def forward(self, features, stats_in, key_mask, replace):
        windows = self.embed(features)  # [B, n_windows, C]
        windows = torch.where(replace[:, 1:, None], self.mask_embed.expand_as(windows), windows)
        x = torch.cat([self.stats_embed(stats_in)[:, None, :], windows], dim=1)
        x = x + self.pos_embed[None]
        for block in self.blocks:
            x = block(x, src_key_padding_mask=key_mask)
        return self.final_norm(x)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(20240611)
    flux, ivar = spectra()
    features, key_mask, stats_in, target, weight, stats = preprocess(flux, ivar)

    encoder = Encoder().double()
    head = torch.nn.Linear(WIDTH, WINDOW).double()
    encoder.train()
    with torch.no_grad():
        for name, parameter in list(encoder.named_parameters()) + \
                [("head." + n, p) for n, p in head.named_parameters()]:
            if "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + draw(parameter.numel(), scale=0.2).view_as(parameter))
            elif parameter.dim() == 1 or name == "pos_embed":
                parameter.copy_(draw(*parameter.shape, scale=0.2))
            else:
                parameter.copy_(draw(*parameter.shape, scale=1.0 / math.sqrt(parameter.shape[1])))

    replace = torch.zeros(BATCH, TOKENS, dtype=torch.bool)
    replace[0, 2:5] = True
    replace[1, 5:8] = True  # includes the entirely bad window (token 6)
    replace[1, 10] = True
    replace[2, 1:3] = True
    replace[2, 9:12] = True

    tokens = encoder(features, stats_in, key_mask, replace)
    pred = head(tokens[:, 1:, :])  # [B, n_windows, window]
    rows = replace[:, 1:]
    w = weight * rows[..., None]
    loss = (w * (pred - target) ** 2).sum() / w.sum()
    loss.backward()

    tensors = {
        "n_wave": N_WAVE, "window": WINDOW, "stride": STRIDE, "width": WIDTH,
        "layers": LAYERS, "heads": HEADS, "hidden": HIDDEN, "std_min": STD_MIN, "eps": EPS,
        "flux": flux, "ivar": ivar, "replace": replace.double(),
        "features": features, "key_mask": key_mask.double(), "stats": stats,
        "tokens": tokens, "loss": loss,
    }
    for name, parameter in encoder.named_parameters():
        name = "spectrum." + name
        tensors[name] = parameter
        tensors["d_" + name] = parameter.grad
    for name, parameter in head.named_parameters():
        tensors["spectrum_pretrain.head." + name] = parameter
        tensors["d_spectrum_pretrain.head." + name] = parameter.grad
    path = os.path.join(OUT, "spectrum-encoder.bin")
    write_fixture(path, tensors)
    print(f"{path}: {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
