#!/usr/bin/env python
"""Training throughput of DE-GAN and the baseline, per preset, as JSON.

Measures images/s of the real training steps (``degan.train.GanStep`` = one D
and one G update, ``ClassifyStep`` for stage 2 (frozen G_en + local CNNs) and
for the baseline) on random data shaped like CK+ (7 expressions, 106 training
identities, grayscale).

    python bench/degan_throughput.py --device cuda          # < 3 minutes on one GPU
    python bench/degan_throughput.py --quick                # CPU smoke test (seconds)
    python bench/degan_throughput.py --device cpu --presets cpu --out bench/results/throughput_cpu.json
    python bench/degan_throughput.py --presets cpu --threads 2 --processes 2   # 1 process x 2 threads vs 2 x 1

On CUDA every preset is measured in four variants: eager fp32, AMP (bf16
autocast), AMP + channels_last, AMP + channels_last + torch.compile. On CPU:
eager (and channels_last, compile or both, fp32, with --variants).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from degan import DeganConfig, get_preset  # noqa: E402
from degan.losses import stage2_loss  # noqa: E402
from degan.models import build_baseline, build_degan  # noqa: E402
from degan.train import ClassifyStep, GanStep, Precision, adam  # noqa: E402

from _machine import cpu_model  # noqa: E402  (bench/, next to this script)

N_EXPR, N_IDS, CHANNELS = 7, 106, 1
VARIANTS = {   # settings of the "train" section
    "eager": {"amp": "off", "channels_last": False, "compile": False},
    "amp": {"amp": "auto", "channels_last": False, "compile": False},
    "amp_channels_last": {"amp": "auto", "channels_last": True, "compile": False},
    "amp_channels_last_compile": {"amp": "auto", "channels_last": True, "compile": True},
    "channels_last": {"amp": "off", "channels_last": True, "compile": False},
    "compile": {"amp": "off", "channels_last": False, "compile": True},
    "channels_last_compile": {"amp": "off", "channels_last": True, "compile": True},
}


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _time(fn: Callable[[], None], dev: torch.device, warmup: int, steps: int, budget_s: float) -> tuple[float, int]:
    """Seconds per step (median of timed single steps) and the number timed."""
    for _ in range(warmup):
        fn()
    _sync(dev)
    times: list[float] = []
    t_start = time.perf_counter()
    while len(times) < steps and (time.perf_counter() - t_start < budget_s or len(times) < 2):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2], len(times)


#: most graphs torch.compile may build per function before the variant is reported as skipped
RECOMPILE_LIMIT = 4


class RecompilingError(RuntimeError):
    """torch.compile hit :data:`RECOMPILE_LIMIT` (the variant is reported as skipped)."""


def _compile(m: torch.nn.Module) -> Any:
    """torch.compile with static shapes (no automatic-dynamic recompiles, which on CUDA took minutes
    and warned "failed while executing pow_by_natural") and an error instead of an eager fallback
    once a function needs more than RECOMPILE_LIMIT graphs. D legitimately needs two or three
    (real input without grad, G's output with and without grad)."""
    cfg = torch._dynamo.config
    cfg.recompile_limit = RECOMPILE_LIMIT
    if hasattr(cfg, "fail_on_recompile_limit_hit"):
        cfg.fail_on_recompile_limit_hit = True
    return torch.compile(m, dynamic=False)


def _graph_count() -> int | None:
    try:
        from torch._dynamo.utils import counters
        return int(counters["stats"]["unique_graphs"])
    except Exception:  # noqa: BLE001 - only informative
        return None


def measure(cfg: DeganConfig, dev: torch.device, batch: int, warmup: int, steps: int,
            budget_s: float, sync: Callable[[], Any] | None = None) -> dict[str, Any]:
    """images/s of the stage-1, stage-2 and baseline steps for ``cfg`` on ``dev``.

    ``sync`` (if given) is called before each of the three timings (a barrier that keeps
    concurrent processes measuring the same step at the same time)."""
    sync = sync or (lambda: None)
    torch.manual_seed(0)
    s = cfg.arch.image_size
    tr = cfg.train
    mf = torch.channels_last if tr.channels_last else torch.contiguous_format
    x = torch.rand(batch, CHANNELS, s, s, device=dev).mul(2).sub(1).contiguous(memory_format=mf)
    y = torch.randint(0, N_EXPR, (batch,), device=dev)
    yid = torch.randint(0, N_IDS, (batch,), device=dev)
    ident = torch.randint(0, N_IDS, (batch,), device=dev)
    z = torch.randn(batch, cfg.arch.noise_dim, device=dev)
    nets = build_degan(cfg, CHANNELS, N_EXPR, N_IDS)
    for m in nets.modules().values():
        m.to(dev, memory_format=mf)
    G, D, local = nets.G, nets.D, nets.local
    if tr.compile:
        G, D, local = _compile(G), _compile(D), _compile(local)    # type: ignore[assignment]
    precision = Precision(tr.amp, dev)
    gan = GanStep(G, D, adam(nets.G.parameters(), cfg.stage1.lr, tr), adam(nets.D.parameters(), cfg.stage1.lr, tr),
                  cfg.stage1, precision, d_acc_ema=0.0)          # D starts weak: one G step per D step
    out: dict[str, Any] = {"batch": batch}

    def s1() -> None:
        gan(x, y, yid, ident, z)
    sync()
    sec, n = _time(s1, dev, warmup, steps, budget_s)
    out["stage1_img_per_s"], out["stage1_steps_timed"] = batch / sec, n

    enc = nets.G.encoder.eval().requires_grad_(False)

    def fwd(xx: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            f, taps = enc.forward_taps(xx)
        return local(f, taps)
    stage2 = ClassifyStep(fwd, lambda o, t: stage2_loss(o, t, cfg.stage2.weights),
                          adam(nets.local.parameters(), cfg.stage2.lr, tr), precision)

    def s2() -> None:
        stage2(x, y)
    sync()
    sec, n = _time(s2, dev, warmup, steps, budget_s)
    out["stage2_img_per_s"], out["stage2_steps_timed"] = batch / sec, n

    base = build_baseline(cfg, CHANNELS, N_EXPR).to(dev, memory_format=mf)
    bfwd = _compile(base) if tr.compile else base

    def lb(o: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = torch.nn.functional.cross_entropy(o.float(), t)
        return loss, {}
    baseline = ClassifyStep(bfwd, lb, adam(base.parameters(), cfg.baseline.lr, tr), precision)

    def sb() -> None:
        baseline(x, y)
    sync()
    sec, n = _time(sb, dev, warmup, steps, budget_s)
    out["baseline_img_per_s"], out["baseline_steps_timed"] = batch / sec, n
    return out


def _measure_in_child(cfg: DeganConfig, dev: str, batch: int, warmup: int, steps: int, budget_s: float,
                      threads: int, barrier: Any, results: Any) -> None:
    torch.set_num_threads(threads)
    try:
        results.put(measure(cfg, torch.device(dev), batch, warmup, steps, budget_s, sync=barrier.wait))
    except Exception as exc:  # noqa: BLE001 - reported by the parent
        barrier.abort()
        results.put({"error": f"{type(exc).__name__}: {exc}"})


STEPS = ("stage1", "stage2", "baseline")


def measure_processes(cfg: DeganConfig, dev: torch.device, batch: int, warmup: int, steps: int, budget_s: float,
                      processes: int, threads: int) -> dict[str, Any]:
    """``processes`` spawned processes with ``threads`` threads each, measuring at the same time (as
    ``degan-train --jobs`` runs folds): images/s summed over the processes, and each one's."""
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes, timeout=600), ctx.Queue()
    procs = [ctx.Process(target=_measure_in_child, args=(cfg, str(dev), batch, warmup, steps, budget_s, threads,
                                                         barrier, results)) for _ in range(processes)]
    for p in procs:
        p.start()
    per = [results.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join()
    bad = [r["error"] for r in per if "error" in r]
    if bad:
        raise RuntimeError(bad[0])
    out: dict[str, Any] = {"batch": batch, "processes": processes, "threads_per_process": threads}
    for k in STEPS:
        out[f"{k}_img_per_s"] = sum(r[f"{k}_img_per_s"] for r in per)
        out[f"{k}_img_per_s_per_process"] = [r[f"{k}_img_per_s"] for r in per]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--presets", default="paper,cpu")
    ap.add_argument("--variants", default=None, help="comma list of " + ", ".join(VARIANTS))
    ap.add_argument("--batch", type=int, default=None, help="batch size [default: the preset's]")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--budget", type=float, default=None, help="max seconds of timed steps per measurement")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--processes", type=int, default=0,
                    help="also measure N processes at once (as degan-train --jobs N), summed images/s")
    ap.add_argument("--process-threads", type=int, default=1, help="torch threads of each of those processes")
    ap.add_argument("--quick", action="store_true", help="tiny sizes and few steps (CPU smoke test)")
    ap.add_argument("--out", default=None, help="write JSON here too")
    a = ap.parse_args(argv)
    dev = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    variants = a.variants.split(",") if a.variants else (
        ["eager", "amp", "amp_channels_last", "amp_channels_last_compile"] if dev.type == "cuda" else ["eager"])
    presets = a.presets.split(",")
    steps = a.steps or (3 if a.quick else 20)
    warmup = a.warmup if a.warmup is not None else (1 if a.quick else 3)
    budget = a.budget or (2.0 if a.quick else (8.0 if dev.type == "cuda" else 30.0))
    report: dict[str, Any] = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_model(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "quick": a.quick, "results": []}
    t_all = time.perf_counter()
    for p in presets:
        base = get_preset(p)
        if a.quick:
            base = base.replace({"arch.image_size": min(base.arch.image_size, 32),
                                 "arch.width": min(base.arch.width, 0.125),
                                 "stage2.local_width": min(base.stage2.local_width, 0.25),
                                 "stage2.local_hidden": 32})
        for v in variants:
            cfg = base.replace({f"train.{k}": val for k, val in VARIANTS[v].items()})
            batch = a.batch or (8 if a.quick else cfg.train.batch_size)
            t0 = time.perf_counter()
            if cfg.train.compile:
                torch._dynamo.reset()
                from torch._dynamo.utils import counters
                counters.clear()
            try:
                res = measure(cfg, dev, batch, warmup + (2 if cfg.train.compile else 0), steps, budget)
                res["status"] = "ok"
                if cfg.train.compile:
                    res["compiled_graphs"] = _graph_count()
            except Exception as exc:  # noqa: BLE001 - report and go on with the next variant
                text = f"{type(exc).__name__}: {str(exc)[:300]}"
                recompiling = "recompile" in text.lower() or "cache_size_limit" in text.lower()
                res = {"status": ("skipped: recompiling (" if recompiling else "failed: (") + text + ")"}
            res.update(preset=p, variant=v, image_size=cfg.arch.image_size, width=cfg.arch.width, processes=1,
                       threads_per_process=torch.get_num_threads(), seconds=time.perf_counter() - t0)
            report["results"].append(res)
            print(json.dumps(res), file=sys.stderr, flush=True)
            if a.processes > 1 and res["status"] == "ok":
                t0 = time.perf_counter()
                par = measure_processes(cfg, dev, batch, warmup + (2 if cfg.train.compile else 0), steps, budget,
                                        a.processes, a.process_threads)
                par.update(status="ok", preset=p, variant=v, image_size=cfg.arch.image_size, width=cfg.arch.width,
                           seconds=time.perf_counter() - t0)
                par["speedup_over_one_process"] = {k: par[f"{k}_img_per_s"] / res[f"{k}_img_per_s"] for k in STEPS}
                report["results"].append(par)
                print(json.dumps(par), file=sys.stderr, flush=True)
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    report["seconds"] = time.perf_counter() - t_all
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
