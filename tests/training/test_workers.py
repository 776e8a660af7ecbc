"""Several workers, one run folder: roles, TF_CONFIG checks, a real job.

The two-worker test starts two processes of
`tf.distribute.MultiWorkerMirroredStrategy` on 127.0.0.1, each with its own
`TF_CONFIG` as on two machines: `tests/_drivers/train_run.py`, which
pauses where the test SIGKILLs the job, then the README's commands
(`examples/multi_worker.py`, the same settings), which resume it. Both
train on the embedded CIFAR-10 sample.
"""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_regkit import ProductionModelBuilder
from keras_regkit.callbacks import RunBackup
from keras_regkit.training.runs import RunFolder
from keras_regkit.training.runs.workers import WorkerRole
from keras_regkit.training.runs.workers import check_cluster
from keras_regkit.training.runs.workers import check_tf_config
from keras_regkit.training.runs.workers import private_folder
from keras_regkit.training.runs.workers import worker_role
from keras_regkit.training.runs.workers import worker_run_dir

DRIVER = Path(__file__).parents[1] / "_drivers" / "train_run.py"
EXAMPLE = Path(__file__).parents[2] / "examples" / "multi_worker.py"


def tf_config(hosts, index, job="worker"):
    return json.dumps({"cluster": {"worker": hosts},
                       "task": {"type": job, "index": index}})


@pytest.mark.parametrize("text, message", [
    ("{not json", "is not JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"task": {"type": "worker", "index": 0}}', '"worker" (or "chief")'),
    ('{"cluster": {"worker": ["a:1"], "trainer": ["b:1"]}, '
     '"task": {"type": "trainer"}}', "job 'trainer'"),
    ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker"}}',
     "host:port"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief"}}',
     '"type" that names a cluster job'),
    (tf_config(["a:1", "b:1"], 2), "task index 2: 'worker' has 2 host"),
    (tf_config(["a:1", "b:1"], True), "task index True"),
])
def test_malformed_tf_config_is_named_with_an_example(text, message):
    with pytest.raises(ValueError) as info:
        check_tf_config(text)
    assert str(info.value).startswith("TF_CONFIG ")
    assert message in str(info.value)
    assert repr(text) in str(info.value) and '"cluster"' in str(info.value)


def test_tf_config_counts_every_worker():
    assert check_tf_config(None) == check_tf_config("") == 0
    assert check_tf_config(tf_config(["a:1", "b:2", "c:3"], 1)) == 3
    with_chief = json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                             "task": {"type": "worker", "index": 0}})
    assert check_tf_config(with_chief) == 2
    # Parameter servers and an evaluator are not training workers.
    others = json.dumps({"cluster": {"worker": ["a:1", "b:1"], "ps": ["c:1"],
                                     "evaluator": ["d:1"]},
                         "task": {"type": "evaluator", "index": 0}})
    assert check_tf_config(others) == 2


def test_a_cluster_without_a_multi_worker_strategy_is_refused(monkeypatch):
    # Each worker would train its own model into the same run folder.
    monkeypatch.setenv("TF_CONFIG", tf_config(["a:1", "b:1"], 1))
    with pytest.raises(ValueError, match="TF_CONFIG names 2 workers.*"
                       "MultiWorkerMirroredStrategy"):
        ProductionModelBuilder((32, 32, 3), 10, "small")
    monkeypatch.setenv("TF_CONFIG", tf_config(["a:1"], 0))
    assert check_cluster(None) == WorkerRole(0, 1, True)


@pytest.mark.requires_tensorflow  # tf.distribute's cluster resolver
@pytest.mark.parametrize("jobs, task, role", [
    ({"worker": ["a:1", "b:1"]}, ("worker", 0), WorkerRole(0, 2, True)),
    ({"worker": ["a:1", "b:1"]}, ("worker", 1), WorkerRole(1, 2, False)),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("chief", 0),
     WorkerRole(0, 2, True)),
    ({"chief": ["c:1"], "worker": ["a:1"]}, ("worker", 0),
     WorkerRole(1, 2, False)),
])
def test_worker_role_reads_the_strategy_cluster(jobs, task, role):
    import types

    import tensorflow as tf

    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(jobs), task_type=task[0], task_id=task[1])
    strategy = types.SimpleNamespace(cluster_resolver=resolver)
    assert worker_role(strategy) == role
    assert worker_role(None) == WorkerRole()
    assert worker_role(tf.distribute.OneDeviceStrategy("/cpu:0")) == (
        WorkerRole())


def _shared_run(path):
    """A run folder as a killed chief leaves it: committed and stray files."""
    (path / "backup").mkdir(parents=True)
    (path / "config.yaml").write_text("name: small\n")
    (path / "history.csv").write_text("epoch,loss\n0,2.3\n")
    (path / "backup" / "epoch-00001.weights.h5").write_bytes(b"w1")
    (path / "backup" / ".epoch-00002.weights.h5.tmp").write_bytes(b"half")
    (path / "backup" / "state.json").write_text(json.dumps(
        {"epoch": 1, "files": ["epoch-00001.weights.h5"], "info": {}}))


def test_other_workers_write_a_private_copy_and_remove_it(tmp_path):
    shared = tmp_path / "run"
    _shared_run(shared)
    before = sorted(p.relative_to(shared) for p in shared.rglob("*"))
    with worker_run_dir(shared, WorkerRole(0, 2, True)) as path:
        assert path == shared
    worker = WorkerRole(1, 2, False)
    stale = private_folder(shared, worker)
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "left-by-a-killed-worker").write_text("x")
    with pytest.raises(KeyboardInterrupt):
        with worker_run_dir(shared, worker) as path:
            assert path == stale and path != shared
            names = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
            # What the chief committed, nothing it did not.
            assert names == ["backup", "backup/epoch-00001.weights.h5",
                             "backup/state.json", "config.yaml",
                             "history.csv"]
            (path / "summary.json").write_text("{}")
            raise KeyboardInterrupt  # removed whatever happens
    assert not stale.exists()
    assert sorted(p.relative_to(shared) for p in shared.rglob("*")) == before


def test_resume_by_another_number_of_workers_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    x, y = np.zeros((8, 4), "float32"), np.zeros((8, 2), "float32")
    folder = RunFolder(tmp_path / "run", workers=2)
    model.fit(x, y, epochs=1, verbose=0, callbacks=folder.callbacks("loss"))
    from keras_regkit.models.presets import get_preset

    preset = get_preset("small")
    before = sorted(p.relative_to(folder.path)
                    for p in folder.path.rglob("*"))
    with pytest.raises(ValueError) as info:
        RunFolder(folder.path, workers=1).prepare(preset)
    message = str(info.value)
    assert "with 1 worker(s)" in message and "committed by 2" in message
    assert "another run_dir" in message
    assert sorted(p.relative_to(folder.path)
                  for p in folder.path.rglob("*")) == before
    RunFolder(folder.path, workers=2).prepare(preset)  # the same count: fine
    with pytest.raises(ValueError, match="`workers`"):
        RunFolder(tmp_path, workers=0)
    with pytest.raises(ValueError, match="`info`"):
        RunBackup(tmp_path / "b", info=[1])


# Two real workers.

def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def start_job(run_dir, tmp_path, hook=None, tag="job"):
    """Starts both workers of a two-worker job; returns their processes."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, KERAS_BACKEND="tensorflow",
                   TF_CPP_MIN_LOG_LEVEL="2",
                   TF_CONFIG=tf_config(hosts, index))
        env.pop("REGKIT_DRIVER_HOOK", None)
        if hook and index == 0:  # the chief pauses, the other one waits
            env.update(REGKIT_DRIVER_HOOK=hook,
                       REGKIT_DRIVER_MARKER=str(tmp_path / f"{tag}.paused"))
        log = open(tmp_path / f"{tag}-worker{index}.log", "wb")
        procs.append(subprocess.Popen(
            [sys.executable, str(DRIVER), str(run_dir),
             str(tmp_path / f"{tag}-report{index}.json")],
            env=env, stdout=log, stderr=subprocess.STDOUT))
        log.close()
    return procs


def logs(tmp_path, tag):
    return "\n".join((tmp_path / f"{tag}-worker{i}.log").read_text()[-2000:]
                     for i in range(2))


def history_rows(run_dir):
    with open(run_dir / "history.csv") as f:
        return list(csv.DictReader(f))


def load_example():
    import importlib.util

    spec = importlib.util.spec_from_file_location("multi_worker", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def readme_commands(run):
    """Runs the README's two commands (examples/multi_worker.py on two
    workers on 127.0.0.1); returns each worker's stdout."""
    hosts = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = [subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--run-dir", str(run)],
        env=dict(os.environ, KERAS_BACKEND="tensorflow",
                 TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=tf_config(hosts, i)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


# One job covers both: the driver (the example's settings, with a pause
# point) is SIGKILLed on two workers, and the README's commands resume it.
@pytest.mark.requires_tensorflow  # tf.distribute.MultiWorkerMirroredStrategy
@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_killed_two_worker_job_resumes_with_the_readme_commands(
        tmp_path, monkeypatch, capsys):
    from tests._drivers.train_run import CONFIG, N_TRAIN, N_VAL, tiny_builder
    from keras_regkit.data import load_cifar10_sample

    steps = N_TRAIN // CONFIG["batch_size"]
    run = tmp_path / "run"
    private = private_folder(run, WorkerRole(1, 2, False))
    # 1. The whole job is SIGKILLed in the middle of the second epoch.
    procs = start_job(run, tmp_path, hook="batch:1:4", tag="killed")
    marker = tmp_path / "killed.paused"
    deadline = time.monotonic() + 300
    while not marker.exists():
        if any(p.poll() is not None for p in procs) or \
                time.monotonic() > deadline:
            for p in procs:
                p.kill()
            pytest.fail("the chief never paused:\n"
                        + logs(tmp_path, "killed"))
        time.sleep(0.05)
    assert private.is_dir()  # worker 1 writes its own copy, not `run`
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    assert [int(r["epoch"]) for r in history_rows(run)] == [0]
    state = json.loads((run / "backup" / "state.json").read_text())
    assert state["epoch"] == 1 and state["info"] == {"workers": 2}
    # 2. One process cannot take the run over: refused, nothing touched.
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    (x, y), (x_val, y_val) = load_cifar10_sample()
    data = (x[:N_TRAIN], y[:N_TRAIN], x_val[:N_VAL], y_val[:N_VAL])
    with pytest.raises(ValueError, match="committed by 2"):
        tiny_builder().train(*data, run_dir=run, verbose=0)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before
    # 3. The README's two commands resume it at epoch 1 and finish.
    outputs = readme_commands(run)
    reports = [json.loads(out.splitlines()[-2]) for out in outputs]
    assert [(r["worker"], r["workers"]) for r in reports] == [(0, 2), (1, 2)]
    assert [r["epochs_run"] for r in reports] == [[1, 2], [1, 2]]
    assert "written by this worker" in outputs[0]
    assert "written by the chief" in outputs[1]
    # Both workers report the loss averaged over the whole global batch of
    # 100 (50 images each), so they agree exactly; the history they return
    # holds the killed job's first epoch too.
    assert reports[0]["losses"] == reports[1]["losses"]
    assert len(reports[0]["losses"]) == 3
    assert [int(r["epoch"]) for r in history_rows(run)] == [0, 1, 2]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs_recorded"] == 3
    assert not (run / "backup").exists() and not private.exists()
    assert not list(run.rglob(".*"))  # no temporary file left
    # Only the chief wrote the shared folder: one of each file, and the
    # worker's private copy is gone.
    assert sorted(p.name for p in run.iterdir()) == sorted(
        {"config.yaml", "history.csv", "best_model.keras",
         "best_model.best.json", "final_model.keras", "summary.json",
         "training_curves.png", "overfitting_detector.json", "logs"})
    final = keras.saving.load_model(run / "final_model.keras")
    assert int(final.optimizer.iterations.numpy()) == CONFIG["epochs"] * steps
    # 4. The same script in one process (no TF_CONFIG). Its first epoch
    # adds the same numbers in another order (the loss over 100 images,
    # the gradients without an all-reduce), so it differs from the
    # workers' by float32 rounding (about 6e-8 relative per operation) that
    # ten steps carry through the weights. 1e-4 relative is far above that,
    # and far below what a wrong split gives: a worker training on its own
    # half, or images counted twice, moves the loss by more than 1e-2.
    # (Later epochs drift further apart as the rounding compounds.)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    capsys.readouterr()
    assert load_example().main(["--run-dir", str(tmp_path / "one")]) == 0
    one_process = json.loads(capsys.readouterr().out.splitlines()[-2])
    assert one_process["workers"] == 1 and len(one_process["losses"]) == 3
    assert one_process["epochs_run"] == [0, 1, 2]
    assert reports[0]["losses"][0] == pytest.approx(
        one_process["losses"][0], rel=1e-4)
