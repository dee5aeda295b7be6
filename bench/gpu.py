"""GPU benchmark of the image tools: classifier images/s at fp32 and fp16 over batch sizes
1-256, segmenter and report generator latency, and peak GPU memory of each.

On a CUDA machine (H100/H200), in one call of about 3-5 minutes::

    python bench/gpu.py --json $OUT/gpu.json

The lent GPU machine (Python 3.12, torch, transformers; no registry) lacks a few of the
project's dependencies. Once, here, in the repository root, fetch them as wheels
(about 35 MB) into an ignored folder::

    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl pydantic==2.14.4 pydantic-core==2.50.5 pydantic-settings==2.16.3 \
        annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 \
        python-dotenv==1.2.4 platformdirs==4.14.8 pydicom==3.0.2 torchxrayvision==1.5.7

then run, with ``carry=[".whl"]`` and ``timeout_s=480``::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 \
        && python3 bench/gpu.py --json $OUT/gpu.json

``--quick`` runs a shorter version (fewer batch sizes, fewer runs). Without CUDA the script
prints one line and exits 0; ``--cpu`` runs a reduced version on the CPU (batch sizes 1-16,
few runs) so the script itself can be tested anywhere.

What it measures:

* ``cxr_classifier`` model forward, exactly as ``CxrClassifier.run_batch`` calls it
  (channels-last input, ``inference_mode``, fp16 through ``torch.autocast``, scores copied to
  the host), on preprocessed 224x224 tensors of real images, at each batch size: images/s,
  ms per batch and peak memory, fp32 and fp16 side by side with their ratio.
* ``cxr_classifier`` end to end: ``invoke_batch`` on 16 DICOM files per call (decode,
  preprocessing, forward, result checks), images/s.
* ``lesion_segmenter`` (PSPNet anatomy + one MedSAM box prompt) and ``report_generator``
  (findings + impression generation): p50/p95 latency of ``invoke`` on one DICOM file
  (decode included; the decode time alone is reported too), and peak memory.

The machine has no internet, so the real weights are not used. The checkpoints are the test
suite's real-format ones (``tests.support.checkpoints``) with made-up weights: DenseNet-121
and PSPNet are the full-size architectures, so their figures are the real models' throughput
(not accuracy); MedSAM and the report models are tiny stand-ins, so their latency is the
tools' pipeline and generation overhead, not that of the real ViT-B / SwinV2-BERT models.
The classifier checkpoint flags no finding, so no Grad-CAM runs and the forward path is timed.
Images: ``--studies FOLDER``, else the shared demo studies when found
(``shared/data/demo-studies`` in or beside the repository; ``../shared`` does not travel to the
GPU machine), else 16 synthetic 2048x2048 12-bit DX DICOM radiographs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

# bench/ for _machine; the repository root so that copilot imports from a plain checkout too
# (the GPU machine has no editable install).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label

if TYPE_CHECKING:
    from copilot.config import Settings
    from copilot.study.model import InstanceRecord

ROOT = Path(__file__).resolve().parents[1]
SKIP_LINE = "bench/gpu.py: no CUDA device; skipped"
E2E_BATCH = 16
SYNTHETIC_SIZE = 2048


@dataclass
class Plan:
    """How much to run: batch sizes, timing budget per configuration, repetitions."""

    device: str
    batch_sizes: list[int]
    half_batch_sizes: list[int]
    min_seconds: float
    min_iters: int
    warmup: int
    e2e_runs: int
    latency_runs: int


@dataclass
class ForwardRow:
    """One classifier forward configuration (batch size and precision)."""

    batch_size: int
    precision: str
    images_per_s: float | None = None
    ms_per_batch: float | None = None
    peak_mib: float | None = None
    iterations: int = 0
    error: str = ""


@dataclass
class Latency:
    """Latency of one tool over repeated ``invoke`` calls."""

    tool: str
    runs: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    peak_mib: float | None
    resident_mib: float | None
    status: str
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def make_plan(device: str, quick: bool) -> Plan:
    """The run sizes for this device: full sweep on CUDA, reduced on CPU, shorter with quick."""
    if device == "cpu":
        # fp16 on a CPU runs autocast's slow reference kernels: small batches, only to test the path.
        return Plan(device, [1, 2, 4, 8, 16], [1, 2, 4], 0.0, 1, 0, 1, 2)
    if quick:
        sizes = [1, 8, 32, 128, 256]
        return Plan(device, sizes, sizes, 0.3, 3, 2, 3, 8)
    sizes = [2**k for k in range(9)]
    return Plan(device, sizes, sizes, 1.0, 5, 3, 8, 20)


def isolate(device: str) -> Path:
    """Point the copilot at fresh temporary dirs, offline, on ``device``; return the base dir."""
    base = Path(tempfile.mkdtemp(prefix="copilot-gpu-bench-"))
    for name in ("CACHE", "DATA", "CONFIG"):
        os.environ[f"COPILOT_{name}_DIR"] = str(base / name.lower())
    os.environ["COPILOT_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["COPILOT_DEVICE"] = device
    os.environ["COPILOT_HALF_PRECISION"] = "1"
    from copilot.config import get_settings
    from copilot.runtime.hf import quiet_transformers

    get_settings.cache_clear()
    quiet_transformers()
    return base


def install_checkpoints(settings: Settings, base: Path) -> dict[str, str]:
    """Install the real-format test checkpoints; return a description of each."""
    from copilot.models.registry import ModelRegistry
    from copilot.tools.builtin.report_generator import FINDINGS_MODEL, IMPRESSION_MODEL
    from tests.support.checkpoints import (
        install_fake_densenet,
        install_fake_pspnet,
        make_tiny_report_model,
        make_tiny_sam,
    )

    install_fake_densenet(settings, positive=())
    install_fake_pspnet(settings)
    registry = ModelRegistry(settings)
    registry.add("medsam-vit-base", make_tiny_sam(base / "tiny-sam"))
    for model_id in (FINDINGS_MODEL, IMPRESSION_MODEL):
        registry.add(model_id, make_tiny_report_model(base / model_id))
    return {
        "xrv-densenet121-res224-all": "full-size DenseNet-121 (xrv format), made-up weights",
        "xrv-pspnet-chestx-det": "full-size PSPNet (xrv ChestX-Det format), made-up weights",
        "medsam-vit-base": "TINY SamModel (2-layer ViT, 128 px), not MedSAM ViT-B",
        FINDINGS_MODEL: "TINY ViT+BERT VisionEncoderDecoder (1 layer, 32 px), not SwinV2-BERT",
        IMPRESSION_MODEL: "TINY ViT+BERT VisionEncoderDecoder (1 layer, 32 px), not SwinV2-BERT",
    }


def find_studies(given: str | None) -> Path | None:
    """The studies folder: ``--studies``, else demo-studies in shared/ in or beside the
    repository, else None."""
    if given:
        if not Path(given).is_dir():
            raise SystemExit(f"bench/gpu.py: --studies {given}: no such folder")
        return Path(given)
    candidates = [
        ROOT / "shared" / "data" / "demo-studies",
        ROOT.parent / "shared" / "data" / "demo-studies",
    ]
    return next((c for c in candidates if c.is_dir()), None)


def synthetic_studies(folder: Path, count: int) -> Path:
    """``count`` single-image DX chest studies, 2048x2048 12-bit, smooth made-up content."""
    from copilot.testing import make_dicom

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SYNTHETIC_SIZE, 0:SYNTHETIC_SIZE].astype(np.float32) / SYNTHETIC_SIZE
    for i in range(count):
        lungs = np.exp(-(((x - 0.32) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2))
        lungs += np.exp(-(((x - 0.68) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2))
        image = 3000 - 2000 * lungs + rng.normal(0, 60, lungs.shape)
        make_dicom(
            folder / f"s{i:02d}" / "IM0001.dcm",
            np.clip(image, 0, 4095).astype(np.uint16),
            spacing_mm=0.15,
            patient_id=f"BENCH{i:02d}",
        )
    return folder


def load_records(folder: Path, count: int, settings: Settings) -> list[InstanceRecord]:
    """``count`` frontal chest instances from ``folder`` (repeated when it holds fewer)."""
    from copilot.study import index_folder

    studies = index_folder(folder, settings).studies
    records = [s.primary_instance() for s in studies]
    records = [r for r in records if r.modality in ("DX", "CR") and r.view in ("", "PA", "AP")]
    if not records:
        raise SystemExit(f"bench/gpu.py: no frontal chest radiograph under {folder}")
    return list(itertools.islice(itertools.cycle(records), count))


def synchronize(device: str) -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def reset_peak(device: str) -> float | None:
    """Reset the peak-memory counter; return the MiB allocated now (None on the CPU)."""
    if device != "cuda":
        return None
    import torch

    synchronize(device)
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated() / 2**20


def peak_mib(device: str) -> float | None:
    """Peak MiB allocated since the last reset (None on the CPU)."""
    if device != "cuda":
        return None
    import torch

    synchronize(device)
    return torch.cuda.max_memory_allocated() / 2**20


def timed_iterations(call: Callable[[], object], plan: Plan) -> list[float]:
    """Seconds of each timed call after ``plan.warmup`` untimed ones; at least
    ``plan.min_iters`` calls and ``plan.min_seconds`` in all."""
    for _ in range(plan.warmup):
        call()
    synchronize(plan.device)
    times: list[float] = []
    while len(times) < plan.min_iters or sum(times) < plan.min_seconds:
        start = time.perf_counter()
        call()
        synchronize(plan.device)
        times.append(time.perf_counter() - start)
    return times


def preprocessed_batch(records: Sequence[InstanceRecord], size: int, device: str) -> Any:
    """``size`` classifier inputs (N, 1, 224, 224) from real images, tiled, on ``device``."""
    import torch

    from copilot.study.pixels import load_pixels
    from copilot.tools.builtin.vision import xrv_input

    arrays = [xrv_input(load_pixels(r), 224)[0] for r in records]
    stacked = np.stack([arrays[i % len(arrays)] for i in range(size)])
    return torch.from_numpy(stacked).to(device)


def forward_row(model: Any, inputs: Any, batch_size: int, half: bool, plan: Plan) -> ForwardRow:
    """Time the classifier's forward (as ``run_batch`` calls it) at one batch size/precision."""
    import torch

    row = ForwardRow(batch_size, "fp16" if half else "fp32")
    x = inputs[:batch_size].contiguous(memory_format=torch.channels_last)

    def call() -> object:
        with torch.inference_mode(), torch.autocast(plan.device, dtype=torch.float16, enabled=half):
            return model(x).float().cpu()

    reset_peak(plan.device)
    try:
        times = timed_iterations(call, plan)
    except torch.cuda.OutOfMemoryError as exc:
        row.error = f"out of memory: {str(exc).splitlines()[0]}"
        torch.cuda.empty_cache()
        return row
    row.iterations = len(times)
    row.images_per_s = batch_size * len(times) / sum(times)
    row.ms_per_batch = 1000 * float(np.median(times))
    row.peak_mib = peak_mib(plan.device)
    return row


def classifier_forward(records: Sequence[InstanceRecord], plan: Plan) -> list[ForwardRow]:
    """The forward sweep: every batch size at fp32 then fp16."""
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    tool = CxrClassifier()
    tool.setup()
    model = tool.model
    inputs = preprocessed_batch(records, max(plan.batch_sizes), plan.device)
    forward_row(model, inputs, 1, False, replace(plan, warmup=0, min_iters=1, min_seconds=0))  # warm-up
    rows: list[ForwardRow] = []
    for half in (False, True):
        for bs in plan.half_batch_sizes if half else plan.batch_sizes:
            row = forward_row(model, inputs, bs, half, plan)
            rows.append(row)
            print(f"  forward {row.precision} batch {bs:3d}: {_num(row.images_per_s)} images/s", flush=True)
            if row.error:
                break  # larger batches would not fit either
    del inputs
    return rows


def classifier_end_to_end(
    records: Sequence[InstanceRecord], settings: Settings, plan: Plan
) -> list[dict[str, Any]]:
    """``invoke_batch`` images/s on ``E2E_BATCH`` DICOM files per call, per precision."""
    from copilot.tools import ToolRequest, invoke_batch
    from copilot.tools.builtin.cxr_classifier import CxrClassifier

    halves = (False, True) if plan.device == "cuda" else (False,)
    out = []
    for half in halves:
        tool = CxrClassifier(settings.model_copy(update={"half_precision": half}))
        failures: list[str] = []

        def call(tool: CxrClassifier = tool, failures: list[str] = failures) -> object:
            # Fresh requests: each call decodes its DICOM files, as a real batch does.
            results = invoke_batch(tool, [ToolRequest(instance=r) for r in records[:E2E_BATCH]])
            failures.extend(r.detail for r in results if r.status != "ok")
            return results

        reset_peak(plan.device)
        times = timed_iterations(call, replace(plan, min_iters=plan.e2e_runs, warmup=max(1, plan.warmup)))
        out.append(
            {
                "precision": "fp16" if half else "fp32",
                "batch_size": E2E_BATCH,
                "calls": len(times),
                "images_per_s": E2E_BATCH * len(times) / sum(times),
                "ms_per_call_p50": 1000 * float(np.median(times)),
                "peak_mib": peak_mib(plan.device),
                "failed_results": len(failures),
                "first_failure": failures[0] if failures else "",
            }
        )
        print(f"  invoke_batch {out[-1]['precision']}: {out[-1]['images_per_s']:.1f} images/s", flush=True)
    return out


def invoke_latency(
    tool: Any, record: InstanceRecord, plan: Plan, options: dict[str, Any], question: str = ""
) -> tuple[Latency, Any]:
    """p50/p95 latency of ``invoke`` on one DICOM file (decoded each call), peak memory, and
    the first call's result (the one that loaded the models)."""
    from copilot.tools import ToolRequest, invoke

    def call() -> Any:
        return invoke(tool, ToolRequest(instance=record, question=question, options=dict(options)))

    first = call()  # loads the models: not timed, not in the peak
    resident = reset_peak(plan.device)
    times = timed_iterations(call, replace(plan, min_iters=plan.latency_runs))
    ms = 1000 * np.asarray(times)
    latency = Latency(
        tool=tool.name,
        runs=len(times),
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        mean_ms=float(ms.mean()),
        peak_mib=peak_mib(plan.device),
        resident_mib=resident,
        status=first.status,
        note="" if first.ok else f"{first.detail} {first.fix or ''}".strip(),
    )
    return latency, first


def decode_latency(record: InstanceRecord, runs: int) -> dict[str, float]:
    """p50 ms to decode the DICOM file the latency runs use (included in their figures)."""
    from copilot.study.pixels import load_pixels

    load_pixels(record)
    times = []
    for _ in range(max(runs, 3)):
        start = time.perf_counter()
        load_pixels(record)
        times.append(time.perf_counter() - start)
    return {"p50_ms": 1000 * float(np.median(times)), "runs": len(times)}


def tool_latencies(record: InstanceRecord, plan: Plan) -> list[Latency]:
    """Segmenter (anatomy + one box prompt) and report generator latency."""
    from copilot.tools.builtin.lesion_segmenter import LesionSegmenter
    from copilot.tools.builtin.report_generator import ReportGenerator

    rows, cols = record.rows or 512, record.columns or 512
    box = [cols // 3, rows // 3, 2 * cols // 3, 2 * rows // 3]
    out = []
    seg, result = invoke_latency(LesionSegmenter(), record, plan, {"boxes": [box]})
    lesions = sum(f.label.startswith("Lesion") for f in result.findings)
    seg.extra = {"models": "PSPNet (full size) + tiny SAM", "box": box, "lesion_masks": lesions}
    if seg.status == "ok" and not lesions:
        seg.note = f"no MedSAM mask made: {result.detail}"
    out.append(seg)
    print(f"  lesion_segmenter: p50 {seg.p50_ms:.1f} ms", flush=True)
    rep, result = invoke_latency(ReportGenerator(), record, plan, {"report_mode": "model"}, "draft a report")
    rep.extra = {"models": "tiny ViT+BERT x2", "generation": "findings + impression, 2 beams, max 128"}
    if rep.status == "ok" and "image-to-text" not in (result.findings[0].source if result.findings else ""):
        rep.note = f"not generated by the models: {result.detail}"
    out.append(rep)
    print(f"  report_generator: p50 {rep.p50_ms:.1f} ms", flush=True)
    return out


def machine_info(device: str) -> dict[str, Any]:
    """GPU name and memory, driver, torch/CUDA/cuDNN versions, CPU count and model."""
    import torch

    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": machine_label(),
        "python": platform.python_version(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["compute_capability"] = f"{props.major}.{props.minor}"
        info["driver"] = _driver_version()
    return info


def _driver_version() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def _num(value: float | None, fmt: str = "8.1f") -> str:
    """A number for the table, or a dash."""
    return format(value, fmt) if value is not None else "-".rjust(len(format(0.0, fmt)))


def fp16_summary(rows: Sequence[ForwardRow]) -> dict[str, Any]:
    """Best images/s per precision (and its batch size), the fp16/fp32 ratio of the bests, and
    the ratio at the same batch size (fp16's best)."""
    best: dict[str, Any] = {}
    for precision in ("fp32", "fp16"):
        ok = [r for r in rows if r.precision == precision and r.images_per_s]
        if ok:
            top = max(ok, key=lambda r: r.images_per_s or 0.0)
            best[precision] = {"batch_size": top.batch_size, "images_per_s": top.images_per_s}
    if "fp32" in best and "fp16" in best:
        best["ratio_fp16_over_fp32"] = best["fp16"]["images_per_s"] / best["fp32"]["images_per_s"]
        bs = best["fp16"]["batch_size"]
        same = next((r for r in rows if r.precision == "fp32" and r.batch_size == bs), None)
        if same is not None and same.images_per_s:
            best["ratio_at_fp16_best_batch"] = best["fp16"]["images_per_s"] / same.images_per_s
    return best


def print_forward(rows: Sequence[ForwardRow], device: str) -> None:
    """The batch-size table, fp32 and fp16 side by side with their ratio."""
    by = {(r.precision, r.batch_size): r for r in rows}
    print(f"\ncxr_classifier forward on {device} (DenseNet-121 224x224, as run_batch calls it)")
    print(
        f"{'batch':>5} | {'fp32 img/s':>10} {'ms/batch':>8} {'peak MiB':>8} | "
        f"{'fp16 img/s':>10} {'ms/batch':>8} {'peak MiB':>8} | {'fp16/fp32':>9}"
    )
    for bs in sorted({r.batch_size for r in rows}):
        cells = []
        for precision in ("fp32", "fp16"):
            r = by.get((precision, bs))
            if r is None or r.error:
                cells.append(f"{('OOM' if r else '-'):>10} {'-':>8} {'-':>8}")
            else:
                cells.append(f"{_num(r.images_per_s, '10.1f')} {_num(r.ms_per_batch)} {_num(r.peak_mib)}")
        a, b = by.get(("fp32", bs)), by.get(("fp16", bs))
        ratio = b.images_per_s / a.images_per_s if a and b and a.images_per_s and b.images_per_s else None
        print(f"{bs:>5} | {cells[0]} | {cells[1]} | {_num(ratio, '8.2f')}{'x' if ratio else ' '}")
    best = fp16_summary(rows)
    if "ratio_fp16_over_fp32" in best:
        f32, f16 = best["fp32"], best["fp16"]
        print(
            f"best: fp32 {f32['images_per_s']:.1f} images/s (batch {f32['batch_size']})  |  "
            f"fp16 {f16['images_per_s']:.1f} images/s (batch {f16['batch_size']})  |  "
            f"fp16/fp32 {best['ratio_fp16_over_fp32']:.2f}x"
            + (
                f" (at batch {f16['batch_size']}: {best['ratio_at_fp16_best_batch']:.2f}x)"
                if "ratio_at_fp16_best_batch" in best
                else ""
            )
        )


def print_rest(e2e: Sequence[dict[str, Any]], latencies: Sequence[Latency], decode: dict[str, float]) -> None:
    """End-to-end classifier throughput and the tools' latency table."""
    print(f"\ncxr_classifier end to end: invoke_batch, {E2E_BATCH} DICOM files per call (decode included)")
    for row in e2e:
        fail = f", {row['failed_results']} failed: {row['first_failure']}" if row["failed_results"] else ""
        print(
            f"  {row['precision']}: {row['images_per_s']:8.1f} images/s, p50 {row['ms_per_call_p50']:.1f} "
            f"ms/call, peak {_num(row['peak_mib'], '.0f')} MiB{fail}"
        )
    print(f"\ntool latency: invoke on one DICOM file (decode p50 {decode['p50_ms']:.1f} ms included)")
    print(
        f"{'tool':<18} {'models':<30} {'runs':>4} {'p50 ms':>9} {'p95 ms':>9} "
        f"{'peak MiB':>9} {'resident':>9}  status"
    )
    for lat in latencies:
        note = f" ({lat.note})" if lat.note else ""
        print(
            f"{lat.tool:<18} {lat.extra.get('models', ''):<30} {lat.runs:>4} {lat.p50_ms:9.1f} "
            f"{lat.p95_ms:9.1f} {_num(lat.peak_mib, '9.0f')} {_num(lat.resident_mib, '9.0f')}  "
            f"{lat.status}{note}"
        )
    print("peak MiB: most allocated during the runs, including every model loaded so far (resident).")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description="GPU benchmark of the image tools (see the module docstring)."
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--cpu", action="store_true", help="run a reduced version on the CPU")
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes and runs")
    parser.add_argument("--studies", help="folder of chest radiograph studies to use")
    return parser.parse_args(argv)


def cuda_available() -> bool:
    """Whether torch sees a CUDA device."""
    import torch

    return bool(torch.cuda.is_available())


def run(args: argparse.Namespace, device: str, base: Path) -> dict[str, Any]:
    """Install the checkpoints, find the images, run every measurement, print the tables;
    return the JSON report."""
    from copilot.config import get_settings

    started = time.perf_counter()
    plan = make_plan(device, args.quick)
    settings = get_settings()
    machine = machine_info(device)
    print(f"bench/gpu.py on {machine.get('gpu', 'CPU')}: {json.dumps(machine)}")
    checkpoints = install_checkpoints(settings, base)
    print("checkpoints (throughput of the architecture, not accuracy):")
    for model_id, what in checkpoints.items():
        print(f"  {model_id}: {what}")
    studies = find_studies(args.studies)
    source = str(studies) if studies else f"synthetic {SYNTHETIC_SIZE}x{SYNTHETIC_SIZE} 12-bit DX DICOM"
    if studies is None:
        studies = synthetic_studies(base / "studies", E2E_BATCH)
    records = load_records(studies, E2E_BATCH, settings)
    print(f"images: {source} ({len({r.path for r in records})} files)", flush=True)

    forward = classifier_forward(records, plan)
    e2e = classifier_end_to_end(records, settings, plan)
    latencies = tool_latencies(records[0], plan)
    decode = decode_latency(records[0], plan.latency_runs)

    print_forward(forward, device)
    print_rest(e2e, latencies, decode)
    elapsed = time.perf_counter() - started
    print(f"\ntotal {elapsed:.0f} s")
    return {
        "command": " ".join(["python", *sys.argv]),
        "machine": machine,
        "plan": asdict(plan),
        "checkpoints": checkpoints,
        "images": source,
        "classifier_forward": [asdict(r) for r in forward],
        "classifier_best": fp16_summary(forward),
        "classifier_end_to_end": e2e,
        "decode": decode,
        "latency": [asdict(lat) for lat in latencies],
        "elapsed_s": elapsed,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Skip without CUDA (unless --cpu); else run in a temporary copilot home, removed after,
    and write the JSON when asked."""
    args = parse_args(argv)
    if not args.cpu and not cuda_available():
        print(SKIP_LINE)
        return 0
    device = "cpu" if args.cpu else "cuda"
    base = isolate(device)
    try:
        report = run(args, device, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
