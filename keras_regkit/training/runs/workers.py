"""Which worker writes the run folder when several train one model.

Under `tf.distribute.MultiWorkerMirroredStrategy` every worker runs the
same script with the same `run_dir` (on storage they share). Every worker
must also run the same saves and callbacks, since they take part in the
same collective steps; so each one keeps a whole run folder, but only the
chief's is the shared `run_dir`:

- the chief (task type `"chief"`, or worker 0 when the cluster names no
  chief) writes `run_dir` itself;
- every other worker writes a private folder in the system's temporary
  folder, named after `run_dir` and its index. It starts as a copy of
  what the chief last committed there, so every worker resumes from the
  same epoch with the same weights, and it is removed when `train`
  returns or fails (a SIGKILLed worker's folder is removed when it starts
  again).

The number of workers is committed with every epoch's backup: a run
resumed by another number of workers would see its data in other shards,
so `RunFolder.prepare` refuses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_regkit._typing import StrPath

# The chief's committed files a private folder starts from (the finished
# run's `summary.json` is not among them: a finished run is refused or
# replaced by `RunFolder.prepare`, the same way on every worker).
_COMMITTED = ("config.yaml", "history.csv", "best_model.best.json",
              "overfitting_detector.json")


# TensorFlow's cluster job names (`TF_CONFIG`).
_JOBS = ("chief", "worker", "ps", "evaluator")


@dataclass(frozen=True)
class WorkerRole:
    """This process's place in a training cluster.

    Attributes:
        index: the worker's index among all workers (the chief is 0).
        count: the number of workers.
        chief: whether this worker writes the shared run folder.
    """

    index: int = 0
    count: int = 1
    chief: bool = True


def worker_role(strategy: Any) -> WorkerRole:
    """The role of this process under `strategy` (one worker without one).

    Reads the strategy's cluster resolver (`MultiWorkerMirroredStrategy`
    reads `TF_CONFIG`); any other strategy, or none, is one chief worker.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return WorkerRole()
    jobs = resolver.cluster_spec().as_dict()
    chiefs = len(jobs.get("chief", []))
    workers = len(jobs.get("worker", []))
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    if task_type == "chief":
        return WorkerRole(0, chiefs + workers, True)
    index = chiefs + task_id
    return WorkerRole(index, chiefs + workers, index == 0)


def check_tf_config(text: str | None) -> int:
    """Checks a `TF_CONFIG` value before any worker waits on the others.

    A wrong `TF_CONFIG` otherwise shows as workers that wait for each other
    forever, or train alone. Accepted: unset (one worker), or JSON with a
    `"cluster"` mapping TensorFlow's job names (`"chief"`, `"worker"`,
    `"ps"`, `"evaluator"`) to lists of `"host:port"`, at least one chief or
    worker among them, and a `"task"` whose `"type"` is one of those jobs
    and whose `"index"` is in range.

    Returns:
        The number of training workers it names (chief included; not the
        `ps` or `evaluator` tasks); 0 when unset.

    Raises:
        ValueError: naming `TF_CONFIG`, what is wrong and an example.
    """
    if not text:
        return 0
    example = ('{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}')

    def bad(what: str) -> ValueError:
        return ValueError(
            f"TF_CONFIG {what}. Received: TF_CONFIG={text!r}. Each worker "
            f"needs the same cluster and its own task, e.g. {example}")

    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(f"is not JSON ({exc.msg})") from None
    if not isinstance(config, dict):
        raise bad("must be a JSON object")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster.get("worker") and \
            not cluster.get("chief"):
        raise bad('needs "cluster" with a "worker" (or "chief") list')
    for job, hosts in cluster.items():
        if job not in _JOBS or not isinstance(hosts, list) \
                or not all(isinstance(h, str) and ":" in h for h in hosts):
            raise bad(f"has cluster job {job!r}: jobs are "
                      f"{', '.join(map(repr, _JOBS))}, each a list of "
                      '"host:port"')
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise bad('needs "task" with a "type" that names a cluster job')
    index = task.get("index", 0)
    hosts = cluster[task["type"]]
    if isinstance(index, bool) or not isinstance(index, int) or \
            not 0 <= index < len(hosts):
        raise bad(f'has task index {index!r}: {task["type"]!r} has '
                  f"{len(hosts)} host(s), so 0 to {len(hosts) - 1}")
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def private_folder(run_dir: StrPath, role: WorkerRole) -> Path:
    """A non-chief worker's own folder for `run_dir` (stable per worker)."""
    digest = hashlib.sha1(
        str(Path(run_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / (
        f"keras_regkit-run-{digest}-worker-{role.index}")


@contextlib.contextmanager
def worker_run_dir(run_dir: StrPath | None,
                   role: WorkerRole) -> Iterator[Path | None]:
    """The folder this worker writes: `run_dir` for the chief, else private.

    A private folder starts as a copy of the chief's committed files and
    backup in `run_dir`, and is removed on the way out, whatever happens.
    """
    if run_dir is None or role.chief:
        yield None if run_dir is None else Path(run_dir)
        return
    private = private_folder(run_dir, role)
    shutil.rmtree(private, ignore_errors=True)  # a killed worker's copy
    private.mkdir(parents=True)
    try:
        _copy_committed(Path(run_dir), private)
        yield private
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _copy_committed(shared: Path, private: Path) -> None:
    if (shared / "summary.json").exists():
        shutil.copy2(shared / "summary.json", private / "summary.json")
        return
    for name in _COMMITTED:
        if (shared / name).exists():
            shutil.copy2(shared / name, private / name)
    backup = shared / "backup"
    state = backup / "state.json"
    if state.exists():
        # Only what the last commit names (a killed write is left out).
        names = json.loads(state.read_text()).get("files", [])
        (private / "backup").mkdir()
        for name in names:
            shutil.copy2(backup / name, private / "backup" / name)
        shutil.copy2(state, private / "backup" / "state.json")


def check_cluster(strategy: Any, tf_config: str | None = None) -> WorkerRole:
    """This worker's role, after checking `TF_CONFIG` against `strategy`.

    Args:
        strategy: the builder's strategy (or None).
        tf_config: the `TF_CONFIG` text; defaults to the environment's.

    Raises:
        ValueError: `TF_CONFIG` is malformed (see `check_tf_config`), or it
            names several workers but `strategy` is not a multi-worker
            strategy: each worker would then train alone and all would
            write the same run folder.
    """
    if tf_config is None:
        tf_config = os.environ.get("TF_CONFIG")
    named = check_tf_config(tf_config)
    role = worker_role(strategy)
    if named > 1 and role.count == 1:
        raise ValueError(
            f"TF_CONFIG names {named} workers, but strategy={strategy!r} "
            "trains on this process alone: every worker would train its "
            "own model and all would write the same run folder. Pass "
            "strategy=tf.distribute.MultiWorkerMirroredStrategy() (on the "
            "TensorFlow backend, created before anything else runs on "
            "TensorFlow), or unset TF_CONFIG to train on one machine.")
    return role
