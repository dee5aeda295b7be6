"""Header indexing: ``copilot studies`` against the plain way, as whole processes side by side.

The baseline is what a script does without us: a process that imports pydicom and reads
every file's header (``dcmread(..., stop_before_pixels=True)``) one after another. Ours is
``copilot studies FOLDER --json`` in a fresh process, cold (an empty index cache) and warm
(the cache of the previous run). Whole processes count start-up, imports and worker spawn,
which is what a user waits for. ``--in-process`` adds the old in-process figures (the index
alone, after imports, against a full ``dcmread`` of every file).

Runs alternate (baseline, cold, warm) so background load hits all three alike; medians are
printed with the machine. Usage:
``python bench/index.py [--files 5000] [--runs 3] [--keep DIR] [--in-process]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _machine import machine_label

SOURCE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "demo-studies"
#: The baseline process: pydicom alone, header of every file, sequentially.
BASELINE = """
import os, sys
import pydicom
count = 0
for folder, _, names in os.walk(sys.argv[1]):
    for name in sorted(names):
        ds = pydicom.dcmread(os.path.join(folder, name), stop_before_pixels=True)
        _ = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        count += 1
print(count)
"""


def make_copies(target: Path, n: int) -> None:
    """Write ``n`` copies of the demo radiographs with fresh UIDs (100 images per study)."""
    import pydicom
    from pydicom.uid import generate_uid

    sources = sorted(SOURCE.rglob("*.dcm"))
    if not sources:
        from copilot.testing.dicom import make_dicom

        sources = [make_dicom(target.parent / "seed.dcm", rows=512, columns=512)]
    datasets = [pydicom.dcmread(p) for p in sources]
    study_uid = series_uid = ""
    for i in range(n):
        if i % 100 == 0:
            study_uid, series_uid = generate_uid(), generate_uid()
        ds = datasets[i % len(datasets)]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.InstanceNumber = i % 100 + 1
        out = target / f"study{i // 100:04d}" / f"IM{i % 100:04d}.dcm"
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(out)


def naive(folder: Path) -> int:
    """Full read of every file, one after another (the in-process baseline)."""
    import pydicom

    count = 0
    for path in sorted(folder.rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        _ = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.PixelData[:1])
        count += 1
    return count


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of one process (it must succeed) and its standard output."""
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=3600)
    return time.perf_counter() - start, out.stdout


def whole_processes(folder: Path, n: int, runs: int, work: Path) -> None:
    """Baseline, cold and warm as fresh processes, alternating; medians and ratios."""
    import json

    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        # Installed packages run from compiled bytecode; without it every run of ours would
        # compile our modules again (pydicom, in site-packages, has its bytecode already).
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        print("bytecode: PYTHONDONTWRITEBYTECODE was set; compiled modules cached under the run folder")
    base_t, cold_t, warm_t = [], [], []
    studies = [sys.executable, "-m", "copilot", "studies", str(folder), "--json"]
    # One untimed run of each first: bytecode compiled, files in the page cache for all three.
    timed([sys.executable, "-c", BASELINE, str(folder)], env)
    timed(studies, {**env, "COPILOT_CACHE_DIR": str(work / "cache-warmup")})
    for run in range(runs):
        secs, out = timed([sys.executable, "-c", BASELINE, str(folder)], env)
        assert int(out) == n, out
        base_t.append(secs)
        cache = work / f"cache-{run}"
        shutil.rmtree(cache, ignore_errors=True)
        run_env = {**env, "COPILOT_CACHE_DIR": str(cache)}
        secs, cold_out = timed(studies, run_env)
        cold_t.append(secs)
        secs, warm_out = timed(studies, run_env)
        warm_t.append(secs)
        assert json.loads(cold_out) == json.loads(warm_out)
        shutil.rmtree(cache, ignore_errors=True)
    rows = [
        ("baseline process (pydicom, stop_before_pixels)", base_t),
        ("copilot studies, cold (empty cache)", cold_t),
        ("copilot studies, warm (cache)", warm_t),
    ]
    print(f"whole processes, {n} files, median of {runs} (alternating runs):")
    for label, values in rows:
        med = statistics.median(values)
        spread = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {label:48s} {med:6.2f} s  {n / med:7.0f} files/s  [{spread}]")
    base = statistics.median(base_t)
    print(f"  ratio cold: {base / statistics.median(cold_t):.1f}x faster (aim >= 1.5x)")
    print(f"  ratio warm: {base / statistics.median(warm_t):.1f}x faster (aim >= 5x)")


def in_process(folder: Path, n: int, work: Path) -> None:
    """The index alone after imports, against a full dcmread of every file."""
    os.environ["COPILOT_CACHE_DIR"] = str(work / "cache-in-process")
    from copilot.config import get_settings
    from copilot.study import index_folder

    get_settings.cache_clear()
    t = time.perf_counter()
    naive(folder)
    t_naive = time.perf_counter() - t
    t = time.perf_counter()
    cold = index_folder(folder)
    t_cold = time.perf_counter() - t
    t = time.perf_counter()
    warm = index_folder(folder)
    t_warm = time.perf_counter() - t
    assert warm.model_dump() == cold.model_dump()
    print("in process (after imports):")
    for label, secs in (
        ("naive (full dcmread, sequential)", t_naive),
        ("ours cold (no cache)", t_cold),
        ("ours warm (cache)", t_warm),
    ):
        print(f"  {label:36s} {secs:7.2f} s  {n / secs:9.0f} files/s")
    print(f"  ratio cold/naive: {t_naive / t_cold:.1f}x, warm/naive: {t_naive / t_warm:.1f}x")


def main() -> None:
    """Run the benchmark and print times, files/s and ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="reuse/keep the synthetic folder here")
    parser.add_argument("--in-process", action="store_true", help="also time the index in-process")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="copilot-bench-"))
    folder = args.keep or work / "studies"
    if not folder.exists() or not any(folder.rglob("*.dcm")):
        print(f"writing {args.files} synthetic files to {folder} ...", flush=True)
        make_copies(folder, args.files)
        os.sync()  # flush the new files first: writeback during a timed run skews it
    n = sum(1 for _ in folder.rglob("*.dcm"))
    print(f"machine: {machine_label()}; load average {os.getloadavg()[0]:.1f} at start")
    print(f"files: {n}")
    try:
        whole_processes(folder, n, args.runs, work)
        if args.in_process:
            in_process(folder, n, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a --keep folder lives outside it


if __name__ == "__main__":
    main()
