"""The builder's run folder: checking it before a run, closing it after.

A run folder holds `config.yaml`, `history.csv`, `best_model.keras`,
`final_model.keras`, `training_curves.png`, the detector's state and, once
the run has finished, `summary.json`; while it runs, `backup/` lets an
interrupted run resume.
"""

import warnings

import tensorflow as tf

from keras_regkit.training.runs import _resume, _files as _run_files


RUN_FILES = ("history.csv", "summary.json", "best_model.keras",
             "best_model.best.json", "final_model.keras", "config.yaml",
             "training_curves.png", "overfitting_detector.json")


def prepare_run_dir(run_dir, overwrite, preset):
    """Checks a run folder before training.

    A folder with `summary.json` holds a finished run: refused unless
    `overwrite`. Any other folder with run files holds an interrupted run,
    which is resumed; its `config.yaml` must match `preset`.
    """
    existing = [name for name in RUN_FILES if (run_dir / name).exists()]
    if "summary.json" in existing:
        if not overwrite:
            raise FileExistsError(
                f"Run folder {run_dir} already holds a finished run "
                f"({', '.join(existing)}). Choose another run_dir (--out) or "
                "pass overwrite=True (--overwrite) to replace it.")
        for name in existing:
            (run_dir / name).unlink()
        _resume.remove_backup(run_dir / "backup")
        return
    config = run_dir / "config.yaml"
    if config.exists():
        saved = type(preset).from_yaml(config).to_dict()
        ours = preset.to_dict()
        changed = sorted(k for k in ours if saved.get(k) != ours[k])
        if changed:
            raise ValueError(
                f"Cannot resume the run in {run_dir} with a different config: "
                + ", ".join(f"{k}={ours[k]!r} (run has {saved.get(k)!r})"
                            for k in changed)
                + ". Use the same flags, or another run_dir (--out).")


def tensorboard_available():
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        warnings.warn("The `tensorboard` package is not installed: no "
                      "TensorBoard logs are written (pip install tensorboard).",
                      stacklevel=3)
        return False
    return True


def finish_run(preset, seed, model, history, callbacks, run_dir, wall, x):
    """Writes a finished run's files; `summary.json` last marks it done.

    The History gets every epoch of the run folder (a resumed run's too).
    """
    recorder = next(c for c in callbacks
                    if isinstance(c, _run_files.HistoryRecorder))
    full = recorder.history()
    if full:
        history.history = full
    n_images = len(x) if hasattr(x, "__len__") and not isinstance(
        x, tf.data.Dataset) else None
    epochs_run = len(history.epoch)
    summary = {
        "preset": preset.name,
        "seed": seed,
        "epochs_recorded": len(next(iter(full.values()), [])),
        "epochs_this_run": epochs_run,
        "wall_time_s": wall,
        "images_per_s": (n_images * epochs_run / wall
                         if n_images and wall > 0 else None),
        "final": {k: v[-1] for k, v in full.items() if v},
    }
    for key, better in (("val_accuracy", max), ("val_loss", min)):
        if full.get(key):
            value = better(full[key])
            summary["best_" + key] = value
            summary["best_" + key + "_epoch"] = full[key].index(value)
    _run_files.atomic_save_model(model, run_dir / "final_model.keras")
    try:
        from keras_regkit.analysis.plots import plot_training_diagnostics
        plot_training_diagnostics(full, run_dir / "training_curves.png")
    except Exception as exc:  # plots must never cost the run its files
        warnings.warn(f"Could not write training plots: {exc}",
                      stacklevel=2)
    # summary.json marks the run finished: written last, then the backup
    # goes (a run killed before this line resumes and finishes again).
    _run_files.atomic_write_json(run_dir / "summary.json", summary)
    _resume.remove_backup(run_dir / "backup")
