#!/usr/bin/env python3
"""PyTorch baselines for `terdit bench runtime --device cuda`, on the same GPU, from the same .tdit files.

Builds the TerDiT network (docs/DESIGN.md) from a packed model (weights dequantized: trit * alpha) and times one
sampling step (one forward of 2*batch images, as with classifier-free guidance) for:
  torch-bf16-eager    bf16 weights and activations, eager
  torch-bf16-compile  the same, each transformer block through one torch.compile graph shared by all blocks
  torch-fp8-compile   fp8 e4m3 weights (trits are exact) and per-token dynamic fp8 activations through
                      torch._scaled_mm (row-wise scales), compiled block by block like the above
  authors-unpack      the authors' deployment: 2-bit weights in their layout, unpacked to fp32 at every forward,
                      dense fp32 GEMMs
and the GEMMs alone (cuBLAS bf16 and fp8) at the 4.2B shapes. Appends its rows to the JSON the C# benchmark wrote.
Scales are tensors and shapes static (dynamic=False), so one compiled graph serves every block.

usage: python3 bench/torch_runtime.py --json bench/results/runtime-cuda.json [--batches 1,4,16] [--budget-s 420]
"""
import argparse, json, math, os, struct, sys, time

import torch
import torch.nn.functional as F

# --------------------------------------------------------------------------------------------------------------
# The .tdit container: 8-byte little-endian header length, JSON header, data (safetensors).

DTYPES = {"U8": torch.uint8, "F16": torch.float16, "F32": torch.float32}


def read_tdit(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__")
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:e]), dtype=DTYPES[info["dtype"]]) if e > b else torch.empty(0, dtype=DTYPES[info["dtype"]])
        tensors[name] = t.reshape(info["shape"])
    return json.loads(meta["config"]), tensors


def unpack_trits(packed, rows, cols):
    """Our layout (docs/TERNARY-LAYOUT.md): rows of 32-byte blocks of 128 trits, column c of block b in byte
    c % 32 at bits 2 * (c // 32); code = trit + 1. Returns int8 (rows, cols)."""
    blocks = packed.reshape(rows, -1, 32).to(torch.int16)
    fields = torch.stack([(blocks >> (2 * i)) & 3 for i in range(4)], dim=2)   # (rows, nblocks, 4, 32)
    return (fields.reshape(rows, -1)[:, :cols] - 1).to(torch.int8)


def derived(cfg):
    d = cfg["HiddenSize"]
    c = dict(cfg)
    c["D"] = d
    c["cdim"] = min(d, 1024)
    hidden = int(2 * 4 * d / 3)
    m = cfg.get("FfnMultipleOf", 256)
    c["F"] = (hidden + m - 1) // m * m
    c["Cout"] = 2 * cfg["InChannels"] if cfg.get("LearnSigma", True) else cfg["InChannels"]
    c["g"] = cfg["InputSize"] // cfg["PatchSize"]
    c["T"] = c["g"] ** 2
    c["hd"] = d // cfg["NumHeads"]
    return c


TERNARY = ["attention.wq", "attention.wk", "attention.wv", "attention.wo", "feed_forward.w1", "feed_forward.w3",
           "feed_forward.w2", "adaLN_modulation"]


def load(path, device):
    raw_cfg, t = read_tdit(path)
    c = derived(raw_cfg)
    full = {k: v.float() for k, v in t.items() if v.dtype != torch.uint8 and not k.endswith(".alpha")}
    tern = {}
    for i in range(c["Depth"]):
        for name in TERNARY:
            key = f"blocks.{i}.{name}"
            packed = t[key + ".weight"]
            rows = packed.shape[0]
            cols = {"feed_forward.w2": c["F"], "adaLN_modulation": c["cdim"]}.get(name, c["D"])
            tern[key] = (unpack_trits(packed.to(device), rows, cols), float(t[key + ".alpha"][0]))
    return c, full, tern


# --------------------------------------------------------------------------------------------------------------
# The network. Linear layers are callables so that each implementation brings its own.

def rms_norm(x, w, eps=1e-5):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * w.float()).to(x.dtype)


def rope_tables(c, device):
    hd, T = c["hd"], c["T"]
    freq = 1.0 / (10000 ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]
    return torch.cos(ang).float().to(device), torch.sin(ang).float().to(device)


def apply_rope(x, cos, sin):
    # x (N, heads, T, hd), adjacent pairs rotated as complex numbers.
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    a, b = xf[..., 0], xf[..., 1]
    out = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1)
    return out.reshape(x.shape).to(x.dtype)


def block_forward(x, sc, w, p, cos, sin, heads, kind, eps=1e-5):
    """One transformer block. x (N, T, D), sc = SiLU(c) (N, cdim); w[name] holds the tensors of that ternary linear
    for `kind` (see ternary_linear), p the block's full-precision tensors. Weights are arguments, not constants, so
    one compiled graph serves every block."""
    lin = {name: (lambda inp, name=name: ternary_linear(kind, w[name], inp)) for name in TERNARY}
    N, T, D = x.shape
    mod = lin["adaLN_modulation"](sc) + p["adaLN_modulation.bias"]
    if "adaLN_norm.weight" in p:
        mod = rms_norm(mod, p["adaLN_norm.weight"])
    sh1, s1, g1, sh2, s2, g2 = mod.unsqueeze(1).chunk(6, dim=-1)
    h = rms_norm(x, p["attention_norm.weight"]) * (1 + s1) + sh1
    q, k, v = lin["attention.wq"](h), lin["attention.wk"](h), lin["attention.wv"](h)
    if "attention.q_norm.weight" in p:
        q = F.layer_norm(q.float(), (D,), p["attention.q_norm.weight"].float(), p["attention.q_norm.bias"].float(), eps).to(x.dtype)
        k = F.layer_norm(k.float(), (D,), p["attention.k_norm.weight"].float(), p["attention.k_norm.bias"].float(), eps).to(x.dtype)
    hd = D // heads
    q, k, v = (z.view(N, T, heads, hd).transpose(1, 2) for z in (q, k, v))
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(N, T, D)
    x = x + g1 * lin["attention.wo"](a)
    h = rms_norm(x, p["ffn_norm.weight"]) * (1 + s2) + sh2
    f = F.silu(lin["feed_forward.w1"](h)) * lin["feed_forward.w3"](h)
    return x + g2 * lin["feed_forward.w2"](f)


def model_forward(c, full, blocks, x, t, y, dtype, cos, sin, block_fn):
    N, C, p, g = x.shape[0], c["InChannels"], c["PatchSize"], c["g"]
    patches = x.view(N, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(N, g * g, C * p * p).to(dtype)
    h = F.linear(patches, full["x_embedder.weight"], full["x_embedder.bias"])
    freqs = torch.exp(-math.log(10000) * torch.arange(128, device=x.device, dtype=torch.float32) / 128)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(dtype)
    temb = F.linear(F.silu(F.linear(emb, full["t_embedder.fc1.weight"], full["t_embedder.fc1.bias"])),
                    full["t_embedder.fc2.weight"], full["t_embedder.fc2.bias"])
    sc = F.silu(temb + full["y_embedder.embedding_table.weight"][y])
    for lin, bp in blocks:
        h = block_fn(h, sc, lin, bp, cos, sin)
    mod = F.linear(sc, full["final_layer.adaLN_modulation.weight"], full["final_layer.adaLN_modulation.bias"])
    shift, scale = mod.unsqueeze(1).chunk(2, dim=-1)
    h = F.layer_norm(h.float(), (c["D"],), eps=1e-6).to(dtype) * (1 + scale) + shift
    out = F.linear(h, full["final_layer.linear.weight"], full["final_layer.linear.bias"])
    co = c["Cout"]
    return out.view(N, g, g, p, p, co).permute(0, 5, 1, 3, 2, 4).reshape(N, co, g * p, g * p)


# --------------------------------------------------------------------------------------------------------------
# Implementations of the ternary linear: kind "dense" (w,), "fp8" (w8 (N, K) e4m3, scale (1, N)),
# "authors" (packed (N/4, K) uint8, alpha ()).

def ternary_linear(kind, params, x):
    if kind == "dense":
        return F.linear(x, params[0])
    if kind == "fp8":
        w8, wscale = params
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        s = (x2.abs().amax(dim=-1, keepdim=True).float() / 448.0).clamp(min=1e-12)
        x8 = (x2.float() / s).to(torch.float8_e4m3fn)
        y = torch._scaled_mm(x8, w8.t(), scale_a=s, scale_b=wscale, out_dtype=torch.bfloat16)
        return y.reshape(*shape[:-1], w8.shape[0])
    packed, alpha = params
    w = torch.cat([(packed >> s) & 3 for s in (6, 4, 2, 0)], dim=0).float() - 1.0   # unpacked at every forward
    return F.linear(x, w * alpha)


def authors_pack(trits):
    """The authors' layout: uint8 (out/4, in), code = trit + 1; rows [0,h) in bits 7-6, [h,2h) 5-4, [2h,3h) 3-2, [3h,4h) 1-0."""
    n = trits.shape[0]
    h = n // 4
    codes = (trits + 1).to(torch.uint8)
    return (codes[:h] << 6) | (codes[h:2 * h] << 4) | (codes[2 * h:3 * h] << 2) | codes[3 * h:]


def build(impl, c, full, tern, device):
    dtype = torch.float32 if impl == "authors-unpack" else torch.bfloat16
    fulld = {k: v.to(device=device, dtype=dtype) for k, v in full.items()}
    blocks = []
    for i in range(c["Depth"]):
        pre = f"blocks.{i}."
        lin = {}
        for name in TERNARY:
            trits, alpha = tern[pre + name]
            if impl.startswith("torch-bf16"):
                lin[name] = ((trits.to(torch.float32) * alpha).to(device=device, dtype=torch.bfloat16),)
            elif impl == "torch-fp8-compile":
                w8 = trits.to(device=device, dtype=torch.float32).to(torch.float8_e4m3fn)
                lin[name] = (w8, torch.full((1, trits.shape[0]), alpha, device=device, dtype=torch.float32))
            else:
                lin[name] = (authors_pack(trits).to(device), torch.tensor(alpha, device=device))
        bp = {k[len(pre):]: v for k, v in fulld.items() if k.startswith(pre)}
        blocks.append((lin, bp))
    return dtype, fulld, blocks


def time_ms(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]


def gemm_rates(shapes, rows_list, device):
    out = []
    for (k, n) in shapes:
        for m in rows_list:
            a = torch.randn(m, k, device=device, dtype=torch.bfloat16)
            b = torch.randn(n, k, device=device, dtype=torch.bfloat16)
            a8, b8 = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn)
            sa = torch.ones(m, 1, device=device, dtype=torch.float32)
            sb = torch.ones(1, n, device=device, dtype=torch.float32)
            for impl, fn in [("cublas-bf16", lambda: torch.mm(a, b.t())),
                             ("cublas-fp8", lambda: torch._scaled_mm(a8, b8.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16))]:
                ms = time_ms(fn, 5, 20)
                out.append({"m": m, "k": k, "n": n, "impl": impl, "ms": round(ms, 4), "tflops": round(2 * m * k * n / (ms * 1e-3) / 1e12, 1)})
                print(f"gemm M={m} {k}->{n} {impl}: {ms:.3f} ms, {out[-1]['tflops']:.0f} TFLOP/s", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True, help="the C# benchmark's JSON (models, rows); torch rows are appended")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--impls", default="torch-bf16-eager,torch-bf16-compile,torch-fp8-compile,authors-unpack")
    ap.add_argument("--fp8-points", default="TerDiT-600M:16,TerDiT-4.2B:4,TerDiT-4.2B:16",
                    help="model:batch points for torch-fp8-compile ('all' for every point)")
    ap.add_argument("--bf16-compile-points", default="all", help="model:batch points for torch-bf16-compile ('all' for every point)")
    ap.add_argument("--gemm-rows", default="512,2048,8192")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--budget-s", type=float, default=1e9, help="skip compiled variants once this much time has passed")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--summary-only", action="store_true", help="print the table of the JSON and exit")
    args = ap.parse_args()
    if args.summary_only:
        with open(args.json) as f:
            summarize(json.load(f))
        return
    start = time.time()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    with open(args.json) as f:
        doc = json.load(f)
    batches = [int(b) for b in args.batches.split(",") if b]
    impls = [i for i in args.impls.split(",") if i]
    points_of = lambda text: None if text == "all" else {tuple(p.split(":")) for p in text.split(",") if p}
    only = {"torch-fp8-compile": points_of(args.fp8_points), "torch-bf16-compile": points_of(args.bf16_compile_points)}
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    if doc.get("gpu") not in (None, gpu):
        sys.exit(f"this GPU is {gpu}, the JSON's rows are from {doc['gpu']}: run both in the same call")
    notes = []
    doc.setdefault("gemm", []).extend(gemm_rates([(3072, 3072), (3072, 8192), (8192, 3072), (1024, 18432)],
                                                 [int(m) for m in args.gemm_rows.split(",") if m], device) if args.gemm_rows else [])
    doc["torch"] = {"version": torch.__version__, "command": "python3 " + " ".join(sys.argv), "notes": notes}

    def save():
        # after every implementation, so that a run stopped by a time limit keeps what it measured
        doc["torch"]["seconds"] = round(time.time() - start, 1)
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, args.json)

    for model_name, path in doc["models"].items():
        c, full, tern = load(path, device)
        cos, sin = rope_tables(c, device)
        for impl in impls:
            points = [b for b in batches if only.get(impl) is None or (model_name, str(b)) in only[impl]]
            if not points:
                continue
            if "compile" in impl and time.time() - start > args.budget_s:
                notes.append(f"{model_name} {impl}: skipped, time budget spent")
                continue
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            dtype, fulld, blocks = build(impl, c, full, tern, device)
            heads = c["NumHeads"]
            kind = {"torch-fp8-compile": "fp8", "authors-unpack": "authors"}.get(impl, "dense")
            block_fn = lambda x, sc, lin, p, cs, sn: block_forward(x, sc, lin, p, cs, sn, heads, kind)
            if "compile" in impl:
                torch._dynamo.reset()
                block_fn = torch.compile(block_fn, dynamic=False)
            for b in points:
                n = 2 * b
                x = torch.randn(n, c["InChannels"], c["InputSize"], c["InputSize"], device=device)
                t = torch.full((n,), 500, device=device, dtype=torch.long)
                y = torch.tensor([i % c["NumClasses"] if i < b else c["NumClasses"] for i in range(n)], device=device)
                step = lambda: model_forward(c, fulld, blocks, x, t, y, dtype, cos, sin, block_fn)
                with torch.no_grad():
                    t0 = time.time()
                    out = step()
                    torch.cuda.synchronize()
                    first_s = time.time() - t0
                    if not torch.isfinite(out).all():
                        notes.append(f"{model_name} {impl} batch {b}: non-finite output")
                    ms = time_ms(step, args.warmup, args.reps)
                peak = torch.cuda.max_memory_allocated(device) / 2 ** 30
                doc["rows"].append({"model": model_name, "batch": b, "impl": impl, "ms_per_step": round(ms, 3),
                             "peak_device_gib": round(peak, 4), "first_call_s": round(first_s, 1)})
                print(f"{model_name} batch {b} {impl}: {ms:.2f} ms/step (first call {first_s:.1f} s), peak {peak:.2f} GiB", flush=True)
            del blocks, fulld
            save()
        del full, tern
        torch.cuda.empty_cache()
    save()
    summarize(doc)


def summarize(doc):
    """Ratios of every baseline's time over ours (a8 and exact) at each point: > 1 means ours is faster."""
    by = {(r["model"], r["batch"], r["impl"]): r for r in doc["rows"]}
    print(f"\n{doc['gpu']}: ms per step (ratios = baseline / ours-a8)")
    print(f"{'model':12} {'b':>3} {'ours-a8':>8} {'ours-ex':>8} {'bf16':>8} {'bf16-c':>8} {'fp8-c':>8} {'authors':>8} {'bf16c/a8':>9} {'fp8c/a8':>8} {'auth/a8':>8} {'auth/ex':>8}")
    for (m, b, impl), r in sorted(by.items()):
        if impl != "ours-a8":
            continue
        get = lambda i: by.get((m, b, i), {}).get("ms_per_step")
        ours, ex = r["ms_per_step"], get("ours-exact")
        cells = [get(i) for i in ("torch-bf16-eager", "torch-bf16-compile", "torch-fp8-compile", "authors-unpack")]
        ratio = lambda v, o: f"{v / o:.2f}" if v and o else "-"
        fmt = lambda v: f"{v:.2f}" if v else "-"
        print(f"{m:12} {b:>3} {fmt(ours):>8} {fmt(ex):>8} " + " ".join(f"{fmt(v):>8}" for v in cells)
              + f" {ratio(cells[1], ours):>9} {ratio(cells[2], ours):>8} {ratio(cells[3], ours):>8} {ratio(cells[3], ex):>8}")


if __name__ == "__main__":
    main()
