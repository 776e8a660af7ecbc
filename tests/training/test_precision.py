"""Choosing float32 or mixed precision."""

import keras
import pytest

from keras_regkit.training.precision import cpu_has_native_bf16, resolve_precision


def test_explicit_choices_pass_through():
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert resolve_precision(name).name == name


def test_policy_scope_sets_and_restores_the_global_policy():
    before = keras.config.dtype_policy().name
    with resolve_precision("mixed_bfloat16").policy_scope():
        layer = keras.layers.Dense(2)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert layer.compute_dtype == "bfloat16"
    assert layer.variable_dtype == "float32"
    assert keras.config.dtype_policy().name == before


@pytest.mark.parametrize(
    "flags, expected",
    [("fpu sse avx512f", False), ("fpu avx512f avx512_bf16", True),
     ("fpu amx_bf16 amx_tile", True)],
)
def test_native_bf16_is_read_from_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(cpuinfo) is expected


@pytest.fixture
def probe(monkeypatch, tmp_path):
    """`measure_precisions` replaced by a counter; a private cache."""
    import keras_regkit.training.precision as precision

    monkeypatch.setattr(precision, "_has_gpu", lambda: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in precision._KERNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(precision, "_MEASURED", {})
    calls = []
    timings = {"float32": 0.2, "mixed_bfloat16": 0.1}

    def fake(batch_size=64, steps=3):
        calls.append(1)
        return dict(timings)

    monkeypatch.setattr(precision, "measure_precisions", fake)
    return precision, calls, timings, tmp_path / "cache" / "keras_regkit" / \
        "precision.json"


def test_auto_picks_the_precision_measured_faster(probe):
    precision, calls, timings, _ = probe
    chosen = resolve_precision("auto")
    assert chosen.name == "mixed_bfloat16"
    assert "float32 200.0 ms/step, mixed_bfloat16 100.0 ms/step" in \
        chosen.reason
    assert "just measured" in chosen.reason
    precision._MEASURED.clear()
    timings.update(float32=0.1, mixed_bfloat16=0.3)
    for _ in range(2):  # read back from the cache: still bfloat16
        assert resolve_precision("auto").name == "mixed_bfloat16"
    assert len(calls) == 1
    precision._MEASURED.clear()
    precision._cache_path().unlink()
    chosen = resolve_precision("auto")  # measured again: float32 now
    assert chosen.name == "float32" and len(calls) == 2


def test_the_probe_cache_is_per_machine_and_backend(probe):
    import json

    precision, calls, _, path = probe
    resolve_precision("auto")
    entries = json.loads(path.read_text())
    (key, seconds), = entries.items()
    assert keras.backend.backend() in key and keras.__version__ in key
    assert seconds == {"float32": 0.2, "mixed_bfloat16": 0.1}
    # Another machine's entry is kept and not used.
    entries["another CPU"] = {"float32": 0.1, "mixed_bfloat16": 9.0}
    path.write_text(json.dumps(entries))
    precision._MEASURED.clear()
    chosen = resolve_precision("auto")
    assert chosen.name == "mixed_bfloat16" and "cached in" in chosen.reason
    assert len(calls) == 1
    assert "earlier in this process" in resolve_precision("auto").reason


@pytest.mark.parametrize("content", ["{not json", "[1, 2]",
                                     '{"KEY": {"float32": -1.0}}'])
def test_a_damaged_probe_cache_is_measured_again(probe, content):
    precision, calls, _, path = probe
    resolve_precision("auto")
    key = next(iter(json_load(path)))
    path.write_text(content.replace("KEY", key))
    precision._MEASURED.clear()
    assert resolve_precision("auto").name == "mixed_bfloat16"
    assert len(calls) == 2
    assert key in json_load(path)


def json_load(path):
    import json

    return json.loads(path.read_text())


def test_the_probe_times_both_precisions_for_real():
    from keras_regkit.training.precision import measure_precisions

    seconds = measure_precisions(batch_size=4, steps=1)
    assert sorted(seconds) == ["float32", "mixed_bfloat16"]
    assert all(0 < s < 60 for s in seconds.values())
    assert keras.config.dtype_policy().name == "float32"  # restored
    with pytest.raises(ValueError, match="argument `steps`"):
        measure_precisions(steps=0)


def test_auto_picks_float32_where_bfloat16_cannot_train(probe):
    import math

    precision, calls, timings, path = probe
    timings.update(float32=0.2, mixed_bfloat16=math.inf)
    chosen = resolve_precision("auto")
    assert chosen.name == "float32"
    assert "mixed_bfloat16 could not train on this CPU" in chosen.reason
    assert "float32 200.0 ms/step" in chosen.reason
    # Stored as the string "inf" (standard JSON), read back as infinity.
    (stored,) = json_load(path).values()
    assert stored == {"float32": 0.2, "mixed_bfloat16": "inf"}
    precision._MEASURED.clear()
    chosen = resolve_precision("auto")
    assert chosen.name == "float32" and "cached in" in chosen.reason
    assert len(calls) == 1


def test_kernel_settings_get_their_own_cache_entry(probe, monkeypatch):
    precision, calls, timings, path = probe
    assert resolve_precision("auto").name == "mixed_bfloat16"
    # Held to AVX2, oneDNN has no BF16 kernels: measured again, not read
    # from the entry measured without the setting.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    timings.update(float32=0.2, mixed_bfloat16=0.9)
    assert resolve_precision("auto").name == "float32"
    assert len(calls) == 2
    keys = sorted(json_load(path))
    assert len(keys) == 2 and keys[1] == keys[0] + ", with ONEDNN_MAX_CPU_ISA=AVX2"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    precision._MEASURED.clear()
    assert resolve_precision("auto").name == "mixed_bfloat16"
    assert len(calls) == 2


def test_the_probe_warning_quotes_the_informative_line():
    from keras_regkit.training.precision import _error_words

    tf_text = ("Graph execution error:\n\nDetected at node conv\n"
               "Operation received an exception:Status: 3, message: could "
               "not create a primitive descriptor, in file mkl_conv_ops.cc\n"
               "\t [[{{node conv}}]]")
    assert _error_words(RuntimeError(tf_text)) == (
        "could not create a primitive descriptor, in file mkl_conv_ops.cc")
    assert _error_words(RuntimeError("first\nlast words")) == "last words"
    assert _error_words(RuntimeError("")) == ""


def test_a_failing_bfloat16_step_counts_as_unusable(monkeypatch, caplog):
    import math

    import keras_regkit.training.precision as precision

    # The real steps are timed in the test above; here each precision's
    # step is stood in for, to fail where the test says.
    def bf16_fails(model, x, y, steps):
        if model.dtype_policy.name == "mixed_bfloat16":
            raise RuntimeError("could not create a primitive descriptor")
        assert model.dtype_policy.name == "float32"
        return 0.25

    monkeypatch.setattr(precision, "_time_steps", bf16_fails)
    with caplog.at_level("WARNING", logger="keras_regkit"):
        seconds = precision.measure_precisions(batch_size=2, steps=1)
    assert seconds["float32"] == 0.25
    assert math.isinf(seconds["mixed_bfloat16"])
    assert "mixed_bfloat16 training step failed" in caplog.text
    assert "RuntimeError: could not create a primitive" in caplog.text
    assert keras.config.dtype_policy().name == "float32"  # restored

    def float32_fails(model, x, y, steps):
        raise RuntimeError("broken float32 kernels")

    monkeypatch.setattr(precision, "_time_steps", float32_fails)
    with pytest.raises(RuntimeError, match="broken float32"):
        precision.measure_precisions(batch_size=2, steps=1)


def test_missing_cpuinfo_means_no_native_bf16(tmp_path):
    assert cpu_has_native_bf16(tmp_path / "absent") is False


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="`precision`"):
        resolve_precision("int8")
