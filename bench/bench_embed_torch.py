#!/usr/bin/python3
"""PyTorch's half of bench/bench-embed.sh: the AstroCLIP model rebuilt in PyTorch from one of our
aligned checkpoints, checked against `astroclip embed` and timed embedding a catalogue.

Run with Debian's PyTorch 1.13 (/usr/bin/python3) and astropy.

The model is written here from the descriptions in core/ (no code of ours is used; only the
checkpoint's values):

  spectrum   (core/aclip-spectrum-encoder.c) each spectrum standardised by the mean and
             population std of its good pixels (ivar > 0, finite; std clipped below at std_min),
             bad pixels 0; per pixel a weight w = s/(1+s), s = ivar·std²; windows of `window`
             pixels every `stride`, each [flux…, weights…] embedded by `embed`; a leading token
             stats_embed(asinh mean, ln std); + pos_embed; windows without a good pixel are
             masked keys (no mask is passed for a batch without such a window);
             nn.TransformerEncoderLayer blocks (pre-LN, GELU, dropout 0); final LayerNorm
  image      (core/aclip-image-encoder.c, aclip-augment.c, aclip-render.c) the centre crop
             (starting at ((W−N)/2, (H−N)/2)), d×d block means, the Legacy Survey RGB mapping
             (asinh, Q = 20; R ← z, G ← r, B ← g); a 3×3 stem conv → BN → ReLU; stages of
             torchvision-style basic blocks, the first of each stage with stride 2 and a 1×1
             projection; BN in evaluation mode; the last map as tokens [B, h·w, C]
  heads      (core/aclip-head.c) nn.MultiheadAttention of one learned query over the tokens
             (with the spectrum's key mask), LayerNorm, Linear → GELU → Linear, F.normalize

The module's state_dict names are the checkpoint's tensor names (docs/checkpoint.md: PyTorch's
conventions), so loading with strict names checks that the two models hold the same tensors.

Modes:
  --check EMB.fits   embed the first --n galaxies of the catalogue (0: all) and compare with
                     their rows of EMB.fits, `astroclip embed`'s output for that catalogue
                     (max |difference| of any embedding element, both modalities), in
                     float32 (the timed model) and in float64 (ours against near-exact
                     arithmetic); fails (exit 1) above --tolerance
  --time             time embedding --n galaxies (both modalities) in batches of --batch under
                     torch.inference_mode(), --reps passes after --warmup batches; the input
                     arrays are in memory (file reading is not timed); preprocessing
                     (standardisation, windows, crop, RGB mapping) is timed, as in ours

Prints one JSON line.
"""

import argparse
import configparser
import json
import math
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ---- The checkpoint (docs/checkpoint.md, version 1) -----------------------------------------


def read_checkpoint(path):
    """Returns (text, {name: float32 array}) of a checkpoint; the values only. The checksum
    is not verified here: bench-embed.sh's `astroclip embed` reads the same file and does."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 128 or data[:8] != b"ACLIPCKP":
        raise ValueError(f"{path}: not a Galaxy Viewer checkpoint")
    version, _flags, size, text_offset, text_length, dir_offset, dir_length, n_tensors = (
        struct.unpack_from("<IIQQQQQI", data, 8)
    )
    if version != 1:
        raise ValueError(f"{path}: checkpoint format version {version} is not supported")
    if size != len(data):
        raise ValueError(f"{path}: the file has {len(data)} bytes but its header says {size}")
    text = data[text_offset : text_offset + text_length].decode("utf-8")
    tensors = {}
    at = dir_offset
    for _ in range(n_tensors):
        entry_length, name_length, element_type, n_dims = struct.unpack_from("<IIII", data, at)
        n_elements, values_offset = struct.unpack_from("<QQ", data, at + 24)
        shape = struct.unpack_from(f"<{n_dims}q", data, at + 56)
        name = data[at + 56 + 8 * n_dims : at + 56 + 8 * n_dims + name_length].decode("utf-8")
        if element_type != 1 or math.prod(shape) != n_elements:
            raise ValueError(f"{path}: tensor {name}: bad element type or shape")
        values = np.frombuffer(data, "<f4", n_elements, values_offset).reshape(shape)
        tensors[name] = values.copy()
        at += entry_length
    if at > dir_offset + dir_length:
        raise ValueError(f"{path}: the directory runs past its stated length")
    return text, tensors


def read_config(text):
    """The checkpoint's GKeyFile text as {group: {key: str}} (GKeyFile is INI-like)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read_string(text)
    return {group: dict(parser[group]) for group in parser.sections()}


def int_list(value):
    """A GKeyFile integer list, "16;32;"."""
    return [int(v) for v in value.split(";") if v.strip()]


# ---- The model -------------------------------------------------------------------------------


class SpectrumEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n_wave = int(c["n_wave"])
        self.window = int(c["window"])
        self.stride = int(c["stride"])
        self.std_min = float(c["std_min"])
        width, heads = int(c["width"]), int(c["heads"])
        eps = float(c["layernorm_eps"])
        self.n_windows = (self.n_wave - self.window) // self.stride + 1
        self.embed = nn.Linear(2 * self.window, width)
        self.stats_embed = nn.Linear(2, width)
        self.pos_embed = nn.Parameter(torch.zeros(self.n_windows + 1, width))
        self.mask_embed = nn.Parameter(torch.zeros(width))  # pretraining only
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                width,
                heads,
                int(c["mlp_hidden"]),
                dropout=0.0,
                activation="gelu",
                layer_norm_eps=eps,
                batch_first=True,
                norm_first=True,
            )
            for _ in range(int(c["layers"]))
        )
        self.final_norm = nn.LayerNorm(width, eps=eps)

    def preprocess(self, flux, ivar):
        """flux, ivar [B, n_wave] → window features [B, n_windows, 2·window], statistics
        token input [B, 2], key mask [B, T] (True = ignore). Mean and std in float64."""
        good = (ivar > 0) & torch.isfinite(ivar) & torch.isfinite(flux)
        f = torch.where(good, flux, torch.zeros_like(flux)).double()
        count = good.sum(1, keepdim=True)
        mean = f.sum(1, keepdim=True) / count.clamp(min=1)
        deviation = torch.where(good, f - mean, torch.zeros_like(f))
        std = torch.sqrt((deviation * deviation).sum(1, keepdim=True) / count.clamp(min=1))
        std = torch.where(std >= self.std_min, std, torch.full_like(std, self.std_min))
        s = ivar.double() * std * std
        x = torch.where(good, deviation / std, torch.zeros_like(f)).to(flux.dtype)
        w = torch.where(good, s / (1.0 + s), torch.zeros_like(f)).to(flux.dtype)
        x = x.unfold(1, self.window, self.stride)  # [B, n_windows, window]
        w = w.unfold(1, self.window, self.stride)
        features = torch.cat([x, w], dim=2)
        bad_window = ~good.unfold(1, self.window, self.stride).any(2)
        key_mask = torch.cat([torch.zeros_like(bad_window[:, :1]), bad_window], dim=1)
        mean32, std32 = mean.float(), std.float()
        stats = torch.cat([torch.asinh(mean32), torch.log(std32)], dim=1).to(flux.dtype)
        return features, stats, key_mask

    def forward(self, flux, ivar):
        features, stats, key_mask = self.preprocess(flux, ivar)
        # A batch without a masked window needs no mask: the same result, and PyTorch is
        # faster without one (its fused encoder layer took 1.58 s per 64 spectra with a mask,
        # 1.21 s without, on the default model).
        if not bool(key_mask.any()):
            key_mask = None
        tokens = torch.cat([self.stats_embed(stats)[:, None], self.embed(features)], dim=1)
        x = tokens + self.pos_embed
        for block in self.blocks:
            x = block(x, src_key_padding_mask=key_mask)
        return self.final_norm(x), key_mask


class BasicBlock(nn.Module):
    """conv3×3 (stride) → BN → ReLU → conv3×3 → BN, plus the input or a 1×1 projection + BN;
    then ReLU."""

    def __init__(self, in_channels, out_channels, stride, eps):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=eps)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels, eps=eps),
            )

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + shortcut)


# The Legacy Survey RGB mapping's constants (float32 in core/aclip-render.c), bands g, r, z.
RGB_SCALE = np.array([6.0, 3.4, 2.2], dtype=np.float32)
RGB_OFFSET = float(np.float32(0.03))
RGB_Q = 20.0


class ImageEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.crop = int(c["crop"])
        self.downsample = int(c["downsample"])
        eps = float(c["bn_eps"])
        stem = int(c["stem_channels"])
        self.conv1 = nn.Conv2d(3, stem, 3, int(c["stem_stride"]), 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, eps=eps)
        channels = stem
        for i, (out, n_blocks) in enumerate(
            zip(int_list(c["stage_channels"]), int_list(c["stage_blocks"]))
        ):
            blocks = [BasicBlock(channels if b == 0 else out, out, 2 if b == 0 else 1, eps)
                      for b in range(n_blocks)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            channels = out
        self.n_stages = i + 1
        self.register_buffer("rgb_scale", torch.from_numpy(RGB_SCALE).view(1, 3, 1, 1),
                             persistent=False)

    def preprocess(self, images):
        """Flux cubes [B, 3, H, W] (g, r, z, nanomaggies) → RGB input [B, 3, S, S] (R, G, B)."""
        images = torch.where(torch.isfinite(images), images, torch.zeros_like(images))
        height, width = images.shape[2:]
        n = self.crop
        # C's integer division (towards zero) of a possibly negative difference.
        y0, x0 = int((height - n) / 2), int((width - n) / 2)
        if y0 < 0 or x0 < 0:  # a cutout smaller than the crop: pixels outside count as 0
            images = F.pad(images, (n, n, n, n))
            y0, x0 = y0 + n, x0 + n
        x = images[:, :, y0 : y0 + n, x0 : x0 + n]
        if self.downsample > 1:
            x = F.avg_pool2d(x, self.downsample)
        v = x * self.rgb_scale.to(x.dtype) + RGB_OFFSET
        intensity = v.clamp(min=0).mean(1, keepdim=True)
        sqrt_q = math.sqrt(RGB_Q)
        factor = torch.where(
            intensity > 0,
            torch.asinh(RGB_Q * intensity) / (sqrt_q * intensity),
            torch.full_like(intensity, sqrt_q),
        )
        rgb = (v * factor).clamp(0.0, 1.0)
        return rgb.flip(1)  # g, r, z → R (z), G (r), B (g)

    def forward(self, images):
        x = F.relu(self.bn1(self.conv1(self.preprocess(images))))
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x.flatten(2).transpose(1, 2)  # [B, h·w, C]


class Head(nn.Module):
    def __init__(self, channels, c):
        super().__init__()
        hidden = int(c["mlp_ratio"]) * channels
        self.query = nn.Parameter(torch.zeros(1, channels))
        self.attn = nn.MultiheadAttention(channels, int(c["n_heads"]), batch_first=True)
        self.norm = nn.LayerNorm(channels, eps=float(c["layernorm_eps"]))
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, int(c["dim"]))
        )

    def forward(self, tokens, key_mask=None):
        query = self.query.expand(tokens.shape[0], 1, -1)
        pooled, _ = self.attn(query, tokens, tokens, key_padding_mask=key_mask,
                              need_weights=False)
        z = self.mlp(self.norm(pooled[:, 0]))
        return F.normalize(z, dim=1, eps=1e-12)


class AstroClip(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.spectrum = SpectrumEncoder(config["spectrum_encoder"])
        self.image = ImageEncoder(config["image_encoder"])
        spectrum_width = int(config["spectrum_encoder"]["width"])
        image_width = int_list(config["image_encoder"]["stage_channels"])[-1]
        self.spectrum_head = Head(spectrum_width, config["heads"])
        self.image_head = Head(image_width, config["heads"])
        self.logit_scale = nn.Parameter(torch.zeros(1))

    def embed_spectra(self, flux, ivar):
        return self.spectrum_head(*self.spectrum(flux, ivar))

    def embed_images(self, images):
        return self.image_head(self.image(images))


def load_model(path):
    text, tensors = read_checkpoint(path)
    model = AstroClip(read_config(text))
    state = model.state_dict()
    # BN's num_batches_tracked counters are PyTorch's bookkeeping, not in our checkpoints.
    wanted = {k for k in state if not k.endswith("num_batches_tracked")}
    missing, extra = sorted(wanted - tensors.keys()), sorted(tensors.keys() - wanted)
    if missing or extra:
        raise ValueError(f"{path}: tensors missing from the checkpoint {missing}, "
                         f"not in the PyTorch model {extra}")
    for name in wanted:
        if tuple(state[name].shape) != tensors[name].shape:
            raise ValueError(f"{path}: {name} has shape {tensors[name].shape}, "
                             f"PyTorch's {tuple(state[name].shape)}")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=False)
    return model.eval()


# ---- Data ------------------------------------------------------------------------------------


def read_catalogue(path, n):
    """The first n galaxies' IDs, images [n, 3, H, W] and spectra, ivar [n, n_wave] (float32,
    as CFITSIO reads them: 16-bit images scaled in double, then rounded)."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as f:
        rows = f["GALAXIES"].data
        n = len(rows) if n <= 0 else min(n, len(rows))
        names = rows.columns.names
        ids = np.array(rows["ID"][:n], dtype=np.int64)
        images = np.array(rows["IMAGE"][:n], dtype=np.float32) if "IMAGE" in names else None
        flux = np.array(rows["SPECTRUM"][:n], dtype=np.float32) if "SPECTRUM" in names else None
        ivar = (np.array(rows["SPECTRUM_IVAR"][:n], dtype=np.float32)
                if "SPECTRUM" in names else None)
    return ids, images, flux, ivar


def read_embeddings(path):
    from astropy.io import fits

    with fits.open(path) as f:
        table = f["EMBEDDINGS"].data
        names = table.columns.names
        ids = np.array(table["ID"], dtype=np.int64)
        image = np.array(table["IMAGE_EMB"], dtype=np.float32) if "IMAGE_EMB" in names else None
        spectrum = (np.array(table["SPECTRUM_EMB"], dtype=np.float32)
                    if "SPECTRUM_EMB" in names else None)
    return ids, image, spectrum


def embed_all(model, images, flux, ivar, batch, dtype):
    """Both modalities of every galaxy, in batches; float64 numpy arrays."""
    out_image, out_spectrum = [], []
    n = len(flux) if flux is not None else len(images)
    with torch.inference_mode():
        for first in range(0, n, batch):
            last = min(first + batch, n)
            if images is not None:
                x = torch.from_numpy(images[first:last]).to(dtype)
                out_image.append(model.embed_images(x).double().numpy())
            if flux is not None:
                f = torch.from_numpy(flux[first:last]).to(dtype)
                v = torch.from_numpy(ivar[first:last]).to(dtype)
                out_spectrum.append(model.embed_spectra(f, v).double().numpy())
    return (np.concatenate(out_image) if out_image else None,
            np.concatenate(out_spectrum) if out_spectrum else None)


# ---- Load accounting (as bench_torch.py) -----------------------------------------------------


def cpu_sample():
    """(machine busy CPU seconds, steal included; this process's CPU seconds; wall time)."""
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return busy, usage.ru_utime + usage.ru_stime, time.monotonic()


def foreign_load(before, after):
    """Cores' worth of CPU used by other processes between two samples."""
    wall = after[2] - before[2]
    foreign = (after[0] - before[0]) - (after[1] - before[1])
    return max(foreign, 0.0) / wall if wall > 0 else 0.0


# ---- Main ------------------------------------------------------------------------------------


def check(args, model, result):
    ref_ids, ref_image, ref_spectrum = read_embeddings(args.check)
    ids, images, flux, ivar = read_catalogue(args.catalogue, args.n)
    index = {int(i): k for k, i in enumerate(ref_ids)}
    rows = [index.get(int(i), -1) for i in ids]
    if min(rows) < 0:
        raise SystemExit(f"{args.check}: galaxy {ids[rows.index(-1)]} of the catalogue is missing")
    result["check_galaxies"] = len(ids)
    passed = True
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        m = model if dtype == torch.float32 else load_model(args.model).double()
        image, spectrum = embed_all(m, images, flux, ivar, args.batch, dtype)
        for modality, ours, theirs in (("image", ref_image, image),
                                       ("spectrum", ref_spectrum, spectrum)):
            if ours is None or theirs is None:
                continue
            ours = ours[rows].astype(np.float64)
            present = np.isfinite(ours).all(1)  # rows of NaN: a modality the galaxy lacks
            difference = np.abs(ours[present] - theirs[present])
            cosine = (ours[present] * theirs[present]).sum(1)
            worst = float(difference.max())
            result[f"max_abs_dev_{modality}_{name}"] = worst
            result[f"min_cosine_{modality}_{name}"] = round(float(cosine.min()), 9)
            result[f"checked_{modality}"] = int(present.sum())
            if not worst <= args.tolerance:
                passed = False
    result["tolerance"] = args.tolerance
    result["check"] = "pass" if passed else "FAIL"
    return passed


def time_embedding(args, model, result):
    _, images, flux, ivar = read_catalogue(args.catalogue, args.n)
    n = len(flux) if flux is not None else len(images)
    batches = []
    for first in range(0, n, args.batch):
        last = min(first + args.batch, n)
        batches.append((
            torch.from_numpy(images[first:last]) if images is not None else None,
            torch.from_numpy(flux[first:last]) if flux is not None else None,
            torch.from_numpy(ivar[first:last]) if flux is not None else None,
        ))

    def run(batch, seconds):
        """Embeds one batch, images then spectra; adds the seconds of each to `seconds`."""
        x, f, v = batch
        t0 = time.perf_counter()
        if x is not None:
            model.embed_images(x)
        t1 = time.perf_counter()
        if f is not None:
            model.embed_spectra(f, v)
        t2 = time.perf_counter()
        seconds[0] += t1 - t0
        seconds[1] += t2 - t1

    times, image_times, spectrum_times = [], [], []
    with torch.inference_mode():
        for k in range(args.warmup):
            run(batches[k % len(batches)], [0.0, 0.0])
        before = cpu_sample()
        for _ in range(args.reps):
            seconds = [0.0, 0.0]
            start = time.perf_counter()
            for batch in batches:
                run(batch, seconds)
            times.append(time.perf_counter() - start)
            image_times.append(seconds[0])
            spectrum_times.append(seconds[1])
        load = foreign_load(before, cpu_sample())
    result.update({
        "n_galaxies": n,
        "times_s": [round(t, 4) for t in times],
        "galaxies_per_s": round(n / statistics.median(times), 2),
        "image_s": round(statistics.median(image_times), 4),
        "spectrum_s": round(statistics.median(spectrum_times), 4),
        "foreign_load": round(load, 3),
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="aligned checkpoint (astroclip align)")
    parser.add_argument("--catalogue", required=True)
    parser.add_argument("--check", metavar="EMB.fits", help="astroclip embed's output to compare")
    parser.add_argument("--time", action="store_true", help="time embedding the catalogue")
    parser.add_argument("--n", type=int, default=0, help="galaxies (0: all)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="batches before timing")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest |difference| allowed per embedding element")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    result = {"engine": "torch", "torch": torch.__version__, "threads": args.threads,
              "batch": args.batch}
    ok = True
    if args.check:
        ok = check(args, model, result)
    if args.time:
        time_embedding(args, model, result)
    print(json.dumps(result), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
