"""Ablations side by side: a preset against itself without one regularizer.

`compare_ablations` trains a capacity preset and, for each ablation, the
same preset with one family of regularization switched off, on the same
data with the same seed, and writes `table.md`, `table.csv` and
`validation_curves.png`. `regkit compare` and `regkit diagnose` are thin
shells over it and over `regularization_diagnosis`.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from keras_regkit._atomic import atomic_write_json, atomic_write_text
from keras_regkit._choices import ABLATION_NAMES
from keras_regkit._typing import StrPath
from keras_regkit._validation import check_int, check_seed
from keras_regkit.analysis._common import integer_labels
from keras_regkit.analysis.plots import plot_validation_curves

if TYPE_CHECKING:
    from keras_regkit.models.presets import CapacityPreset, PresetLike

# The preset fields each ablation switches off, keyed (and ordered) by the
# names in `_choices.ABLATION_NAMES`, which `regkit compare --help` lists.
_SWITCHED_OFF: dict[str, dict[str, Any]] = {
    "dropout": {"dropout_dense": 0.0, "dropout_conv": 0.0},
    "l2": {"weight_decay": 0.0, "l2": 0.0},
    "augmentation": {"augmentation": "none", "mixup_alpha": 0.0,
                     "cutmix_alpha": 0.0},
    "label_smoothing": {"label_smoothing": 0.0},
    "batch_norm": {"batch_norm": False},
    "max_norm": {"max_norm": None},
}
ABLATIONS = {name: _SWITCHED_OFF[name] for name in ABLATION_NAMES}
COLUMNS = ("run", "changes", "train_acc", "val_acc", "gap", "val_loss",
           "delta_val_acc", "epochs", "time_s")


def parse_ablations(ablate: str | Iterable[str]) -> list[str]:
    """Ablation names from a comma-separated string or a list; validated."""
    names = ablate.split(",") if isinstance(ablate, str) else list(ablate)
    names = [str(n).strip() for n in names if str(n).strip()]
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown or not names:
        raise ValueError(
            f"Unknown ablation(s): {', '.join(unknown) or '(none given)'}. "
            f"Valid ablations: {', '.join(ABLATIONS)}.")
    return list(dict.fromkeys(names))


def _changes(preset: CapacityPreset,
             overrides: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in overrides.items() if getattr(preset, k) != v}


def compare_ablations(
    capacity: PresetLike, ablate: str | Iterable[str], x_train: np.ndarray,
    y_train: npt.ArrayLike, x_val: np.ndarray, y_val: npt.ArrayLike,
    epochs: int = 10, seed: int | None = 0, out_dir: StrPath | None = None,
    batch_size: int | None = None, architecture: str | None = None,
    num_classes: int | None = None, save_runs: bool = False,
    verbose: int | str = 0, progress: bool = False, loader: str = "auto",
    augment_on: str = "pipeline",
) -> dict[str, Any]:
    """Trains a preset and its ablations on the same data and seed.

    Ablations: "dropout" (dropout_dense = dropout_conv = 0), "l2"
    (weight_decay = l2 = 0), "augmentation" (augmentation "none", MixUp
    and CutMix off), "label_smoothing" (0), "batch_norm" (off) and
    "max_norm" (none). An ablation that changes nothing in the preset is
    not trained again: it reuses the preset's run.

    Args:
        capacity: a preset name, `CapacityPreset` or YAML path.
        ablate: names, as a list or a comma-separated string.
        x_train: training images (uint8 or float in [0, 1]).
        y_train: integer or one-hot labels.
        x_val: validation images.
        y_val: validation labels.
        epochs: epochs per run. Defaults to `10`.
        seed: the seed of every run. Defaults to `0`.
        out_dir: folder for `table.md`, `table.csv`,
            `validation_curves.png` and `results.json`. Defaults to `None`
            (nothing written).
        batch_size: batch size. Defaults to `None` (the preset's).
        architecture: backbone. Defaults to `None` (the preset's).
        num_classes: defaults to `None` (from the labels).
        save_runs: also keep each run's folder under `out_dir`. Defaults to
            `False`.
        verbose: Keras `fit` verbosity. Defaults to `0`.
        progress: print a line per run and the final table. Defaults to
            `False`.
        loader: the builder's `loader` (`"auto"`, `"tf.data"` or
            `"arrays"`). Defaults to `"auto"`.
        augment_on: the builder's `augment_on`. Defaults to `"pipeline"`.

    Returns:
        A dict: `records` (one dict per run with the `COLUMNS` keys: train
        and validation accuracy of the restored model in inference mode,
        their gap, and the change in validation accuracy from the preset),
        `histories` (run name -> History dict), `table` (Markdown) and
        `files` (paths written).
    """
    from keras_regkit.training.builder import ProductionModelBuilder
    from keras_regkit.models.presets import get_preset

    names = parse_ablations(ablate)
    epochs = check_int("epochs", epochs, 1)
    seed = check_seed("seed", seed)
    preset = get_preset(capacity)
    y_train, y_val = np.asarray(y_train), np.asarray(y_val)
    if num_classes is None:
        num_classes = (y_train.shape[1] if y_train.ndim == 2
                       and y_train.shape[1] > 1 else
                       int(max(integer_labels(y_train).max(),
                               integer_labels(y_val).max())) + 1)
    out_dir = None if out_dir is None else Path(out_dir)
    runs: list[tuple[str, Mapping[str, Any]]] = [("preset", {})] + [
        (f"no_{n}", ABLATIONS[n]) for n in names]
    records: list[dict[str, Any]] = []
    histories: dict[str, dict[str, list[float]]] = {}
    # Each distinct set of changes trains once: its record, by the changes.
    done: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}
    for run, overrides in runs:
        changes = _changes(preset, overrides)
        key = tuple(sorted(changes.items()))
        if key in done:
            record = dict(done[key], run=run, _source=done[key]["run"],
                          changes=f"none (same as {done[key]['run']})")
            records.append(record)
            histories[run] = histories[done[key]["run"]]
            continue
        if progress:
            print(f"[compare] {run}: changes {_describe(changes)}",
                  flush=True)
        builder = ProductionModelBuilder(
            tuple(np.shape(x_train)[1:]), num_classes,
            model_capacity=preset.replace(**changes), seed=seed,
            loader=loader, augment_on=augment_on)
        run_dir = out_dir / run if save_runs and out_dir else None
        start = time.perf_counter()
        model, history = builder.train(
            x_train, y_train, x_val, y_val, epochs=epochs,
            batch_size=batch_size, architecture=architecture,
            run_dir=run_dir, verbose=verbose, overwrite=True)
        elapsed = time.perf_counter() - start
        train = builder.evaluate(model, x_train, y_train)
        val = builder.evaluate(model, x_val, y_val)
        record = {
            "run": run, "changes": _describe(changes),
            "train_acc": train["accuracy"], "val_acc": val["accuracy"],
            "gap": train["accuracy"] - val["accuracy"],
            "val_loss": val["loss"], "epochs": len(history.epoch),
            "time_s": elapsed,
        }
        records.append(record)
        histories[run] = dict(history.history)
        done[key] = record
    for record in records:
        record["delta_val_acc"] = record["val_acc"] - records[0]["val_acc"]
    labels = _distinct(records)
    for record in records:
        record.pop("_source", None)
    table = markdown_table(records, preset.name, epochs, seed)
    files: dict[str, Path] = {}
    if out_dir is not None:
        files = _write(out_dir, records, histories, labels, table,
                       preset.name)
    if progress:
        print(table)
    return {"records": records, "histories": histories, "table": table,
            "files": files}


def _describe(changes: Mapping[str, Any]) -> str:
    if not changes:
        return "none"
    return ", ".join(f"{k}={v}" for k, v in changes.items())


def markdown_table(records: Sequence[Mapping[str, Any]], preset_name: str = "",
                   epochs: int | None = None, seed: int | None = None) -> str:
    """The comparison as a Markdown table."""
    lines = [f"Preset `{preset_name}`, {epochs} epoch(s), seed {seed}; "
             "accuracies of the restored model in inference mode.", "",
             "| Run | Changes | Train acc | Val acc | Gap | Val loss "
             "| Δ val acc | Epochs | Time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        lines.append(
            f"| {r['run']} | {r['changes']} | {r['train_acc']:.4f} | "
            f"{r['val_acc']:.4f} | {r['gap']:+.4f} | {r['val_loss']:.4f} | "
            f"{r['delta_val_acc']:+.4f} | {r['epochs']} | "
            f"{r['time_s']:.1f} |")
    return "\n".join(lines) + "\n"


def _distinct(records: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Plot labels: runs that reused another's training share its curve."""
    labels: dict[str, list[str]] = {}
    for r in records:
        source = r.get("_source", r["run"])
        labels.setdefault(source, []).append(r["run"])
    return {source: " = ".join(names) for source, names in labels.items()}


def _write(out_dir: Path, records: Sequence[Mapping[str, Any]],
           histories: Mapping[str, Mapping[str, Sequence[float]]],
           labels: Mapping[str, str], table: str,
           preset_name: str) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: r[k] for k in COLUMNS} for r in records)
    files = {"table_md": out_dir / "table.md", "table_csv": out_dir /
             "table.csv", "curves": out_dir / "validation_curves.png",
             "results": out_dir / "results.json"}
    atomic_write_text(files["table_md"], table)
    atomic_write_text(files["table_csv"], buffer.getvalue())
    plot_validation_curves({labels[k]: histories[k] for k in labels},
                           files["curves"],
                           title=f"Preset {preset_name} and its ablations")
    atomic_write_json(files["results"], {"records": records,
                                         "histories": histories})
    return files

