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


def test_auto_picks_bfloat16_only_with_native_support(monkeypatch):
    import keras_regkit.training.precision as precision

    monkeypatch.setattr(precision, "_has_gpu", lambda: False)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    chosen = resolve_precision("auto")
    assert chosen.name == "float32" and "no native BF16" in chosen.reason
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto").name == "mixed_bfloat16"


def test_missing_cpuinfo_means_no_native_bf16(tmp_path):
    assert cpu_has_native_bf16(tmp_path / "absent") is False


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="`precision`"):
        resolve_precision("int8")
