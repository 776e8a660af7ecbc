"""Invalid input to the public API fails early, naming the argument.

One table of distinct invalid inputs across layers, regularizers,
constraints, losses, callbacks, schedules, metrics, the builder, presets and
YAML, data loading, pipelines, augmentation and analysis. Each row gives the
call, the exception type and a pattern that the message must contain: the
argument's name (Keras form "`rate`" unless the row says otherwise).
"""

import re
import types

import keras
import numpy as np
import pytest

import keras_regkit as kr
from keras_regkit import cli
from keras_regkit import constraints
from keras_regkit import regularizers
from keras_regkit.analysis import calculate_dropout_rate
from keras_regkit.analysis import classify_with_uncertainty
from keras_regkit.analysis import compare_ablations
from keras_regkit.analysis import expected_calibration_error
from keras_regkit.analysis import mc_dropout_prediction
from keras_regkit.analysis import plot_learning_curves
from keras_regkit.analysis import plot_training_diagnostics
from keras_regkit.analysis import progressive_regularization_search
from keras_regkit.analysis import quick_regularization_advice
from keras_regkit.analysis import regularization_diagnosis
from keras_regkit.training.builder import ProductionModelBuilder
from keras_regkit.data import augmentation_from_image_data_generator as idg
from keras_regkit.data import cutmix
from keras_regkit.data import get_augmentation
from keras_regkit.data import load_cifar10
from keras_regkit.data import load_cifar10_sample
from keras_regkit.data import make_dataset
from keras_regkit.data import mixup
from keras_regkit.metrics import TopKAccuracy
from keras_regkit.models.presets import CapacityPreset
from keras_regkit.models.presets import get_preset
from keras_regkit.schedules import WarmupLinearDecay


def arg(name):
    """The message names argument `name` in Keras's form."""
    return "`" + re.escape(name) + "`"


def dense():
    return keras.layers.Dense(4)


def classifier(dropout=True):
    layers = [keras.Input((32, 32, 3)), keras.layers.Flatten()]
    layers += [keras.layers.Dropout(0.5)] if dropout else []
    model = keras.Sequential(layers + [keras.layers.Dense(10, "softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return model


def builder(**overrides):
    return ProductionModelBuilder((32, 32, 3), 10, "small", conv_filters=(8,),
                                  dense_units=(), **overrides)


def yaml_file(d, text):
    path = d.tmp / f"preset{len(list(d.tmp.iterdir()))}.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def d(cifar10_small, tmp_path):
    """Real images: `x` uint8, `xf` float in [0, 1], `y` int labels."""
    x, y = cifar10_small
    x, y = x[:16], y[:16]
    return types.SimpleNamespace(x=x, xf=x.astype("float32") / 255.0, y=y,
                                 onehot=np.eye(10, dtype="float32")[y],
                                 tmp=tmp_path)


V, T, F = ValueError, TypeError, FileNotFoundError
CASES = [
    # Layers.
    ("dropconnect-rate-above-1", lambda d: kr.DropConnect(dense(), 1.5), V,
     arg("rate")),
    ("dropconnect-wraps-flatten",
     lambda d: kr.DropConnect(keras.layers.Flatten(), 0.1), T, arg("layer")),
    ("dropconnect-dense-zero-units", lambda d: kr.DropConnectDense(0, 0.1), V,
     arg("units")),
    ("mcdropout-negative-rate", lambda d: kr.MCDropout(-0.1), V, arg("rate")),
    ("mcdropout-rate-string", lambda d: kr.MCDropout("0.5"), V, arg("rate")),
    ("mcdropout-mc-not-bool", lambda d: kr.MCDropout(0.1, mc="yes"), V,
     arg("mc")),
    ("mcspatial-rate-1", lambda d: kr.MCSpatialDropout2D(1.0), V, arg("rate")),
    ("mcspatial-data-format",
     lambda d: kr.MCSpatialDropout2D(0.1, data_format="nhwc"), V,
     arg("data_format")),
    ("concrete-negative-weight-reg",
     lambda d: kr.ConcreteDropout(dense(), weight_regularizer=-1.0), V,
     arg("weight_regularizer")),
    ("concrete-zero-temperature",
     lambda d: kr.ConcreteDropout(dense(), temperature=0.0), V,
     arg("temperature")),
    ("concrete-init-min-above-max",
     lambda d: kr.ConcreteDropout(dense(), init_min=0.5, init_max=0.2), V,
     arg("init_max")),
    ("dropblock-zero-block", lambda d: kr.DropBlock2D(0.1, 0), V,
     arg("block_size")),
    ("dropblock-nan-rate", lambda d: kr.DropBlock2D(float("nan"), 3), V,
     arg("rate")),
    ("dropblock-negative-seed", lambda d: kr.DropBlock2D(0.1, 3, seed=-1), V,
     arg("seed")),
    ("dropblock-data-format",
     lambda d: kr.DropBlock2D(0.1, 3, data_format="NHWC"), V,
     arg("data_format")),
    ("stochastic-depth-rate-1", lambda d: kr.StochasticDepth(1.0), V,
     arg("rate")),
    ("stochastic-depth-scale-string",
     lambda d: kr.StochasticDepth(0.1, scale_by_keep="no"), V,
     arg("scale_by_keep")),
    ("weight-noise-zero-stddev",
     lambda d: kr.GaussianWeightNoise(dense(), 0.0), V, arg("stddev")),
    ("weight-noise-inf-stddev",
     lambda d: kr.GaussianWeightNoise(dense(), float("inf")), V,
     arg("stddev")),
    ("set-mc-dropout-not-a-model", lambda d: kr.set_mc_dropout("m", True), T,
     arg("model")),
    ("set-mc-dropout-enabled-int",
     lambda d: kr.set_mc_dropout(classifier(), 1), V, arg("enabled")),
    # Regularizers and constraints.
    ("elastic-net-negative-l1", lambda d: kr.ElasticNet(l1=-0.1), V,
     arg("l1")),
    ("elastic-net-inf-l2", lambda d: kr.ElasticNet(l2=float("inf")), V,
     arg("l2")),
    ("l2sp-negative-alpha", lambda d: kr.L2SP(alpha=-1.0), V, arg("alpha")),
    ("l2sp-anchor-string", lambda d: kr.L2SP(0.1, anchor="zeros"), V,
     arg("anchor")),
    ("group-lasso-negative-l", lambda d: kr.GroupLasso(l=-0.1), V, arg("l")),
    ("group-lasso-axis-string", lambda d: kr.GroupLasso(axis="rows"), V,
     arg("axis")),
    ("regularizers-get-unknown", lambda d: regularizers.get("l3"), V,
     "identifier: 'l3'"),
    pytest.param("apply-l2sp-not-a-model", lambda d: kr.apply_l2sp("m"), T,
                 arg("model")),
    ("spectral-norm-zero-max", lambda d: kr.SpectralNormConstraint(0.0), V,
     arg("max_value")),
    ("spectral-norm-zero-iterations",
     lambda d: kr.SpectralNormConstraint(1.0, power_iterations=0), V,
     arg("power_iterations")),
    ("centered-unit-norm-float-axis", lambda d: kr.CenteredUnitNorm(0.5), V,
     arg("axis")),
    ("constraints-get-unknown", lambda d: constraints.get("unit_sphere"), V,
     "identifier: 'unit_sphere'"),
    # Losses, metrics, schedules.
    ("loss-epsilon-1", lambda d: kr.LabelSmoothingCrossEntropy(1.0), V,
     arg("epsilon")),
    ("loss-from-logits-string",
     lambda d: kr.LabelSmoothingCrossEntropy(0.1, from_logits="yes"), V,
     arg("from_logits")),
    ("loss-conflicting-label-smoothing",
     lambda d: kr.LabelSmoothingCrossEntropy(0.1, label_smoothing=0.2), V,
     arg("label_smoothing")),
    ("loss-sparse-string",
     lambda d: kr.LabelSmoothingCrossEntropy(0.1, sparse="auto"), V,
     arg("sparse")),
    ("loss-label-shape-mismatch",
     lambda d: kr.LabelSmoothingCrossEntropy(0.1)(d.onehot[:, :3], d.onehot),
     V, arg("y_true")),
    ("smooth-labels-negative-epsilon",
     lambda d: kr.smooth_labels(d.onehot, -0.1), V, arg("epsilon")),
    ("smooth-labels-int-without-k", lambda d: kr.smooth_labels(d.y, 0.1), V,
     arg("num_classes")),
    ("smooth-labels-k-mismatch",
     lambda d: kr.smooth_labels(d.onehot, 0.1, num_classes=4), V,
     arg("num_classes")),
    ("seed-loss-epsilon-2",
     lambda d: kr.label_smoothing_loss(d.onehot, d.onehot, epsilon=2.0), V,
     arg("epsilon")),
    ("top-k-zero", lambda d: TopKAccuracy(0), V, arg("k")),
    ("top-k-string", lambda d: TopKAccuracy("5"), V, arg("k")),
    ("warmup-zero-total-steps", lambda d: WarmupLinearDecay(0.1, 0), V,
     arg("total_steps")),
    ("warmup-longer-than-total",
     lambda d: WarmupLinearDecay(0.1, 10, warmup_steps=11), V,
     arg("warmup_steps")),
    ("warmup-negative-peak", lambda d: WarmupLinearDecay(-0.1, 10), V,
     arg("peak_learning_rate")),
    # Callbacks.
    ("detector-negative-threshold",
     lambda d: kr.OverfittingDetector(threshold=-0.1), V, arg("threshold")),
    ("detector-zero-patience", lambda d: kr.OverfittingDetector(patience=0),
     V, arg("patience")),
    ("detector-negative-min-delta",
     lambda d: kr.OverfittingDetector(min_delta=-0.1), V, arg("min_delta")),
    ("detector-acc-threshold-2",
     lambda d: kr.OverfittingDetector(acc_threshold=2.0), V,
     arg("acc_threshold")),
    ("detector-unknown-action",
     lambda d: kr.OverfittingDetector(action="explode"), V, arg("action")),
    ("detector-state-path-int",
     lambda d: kr.OverfittingDetector(state_path=3), V, arg("state_path")),
    ("monitor-negative-zero-tol",
     lambda d: kr.WeightStatsMonitor(zero_tol=-1.0), V, arg("zero_tol")),
    ("monitor-verbose-5", lambda d: kr.WeightStatsMonitor(verbose=5), V,
     arg("verbose")),
    ("scheduler-unknown-mode", lambda d: kr.RegularizationScheduler(
        dropout_schedule=lambda e: 1.0, dropout_mode="boost"), V,
     arg("dropout_mode")),
    ("scheduler-schedule-float",
     lambda d: kr.RegularizationScheduler(dropout_schedule=0.5), V,
     arg("dropout_schedule")),
    ("scheduler-regularizer-mode", lambda d: kr.RegularizationScheduler(
        regularizer_schedule=lambda e: 1.0, regularizer_mode="x"), V,
     arg("regularizer_mode")),
    # Builder.
    ("builder-negative-dimension",
     lambda d: ProductionModelBuilder((32, -1, 3), 10), V, arg("input_shape")),
    ("builder-one-class", lambda d: ProductionModelBuilder((32, 32, 3), 1), V,
     arg("num_classes")),
    ("builder-unknown-preset",
     lambda d: ProductionModelBuilder((32, 32, 3), 10, "huge"), V,
     "capacity preset: 'huge'.*'small', 'medium', 'large'"),
    ("builder-negative-seed", lambda d: builder(seed=-3), V, arg("seed")),
    ("builder-augment-on-gpu", lambda d: builder(augment_on="gpu"), V,
     arg("augment_on")),
    ("builder-precision-float8", lambda d: builder(precision="float8"), V,
     arg("precision")),
    ("builder-strategy-string", lambda d: builder(strategy="mirrored"), T,
     arg("strategy")),
    ("builder-override-out-of-range", lambda d: builder(dropout_dense=1.2), V,
     arg("dropout_dense")),
    ("builder-misspelt-override", lambda d: builder(dropuot=0.2), V,
     "key\\(s\\): dropuot"),
    ("build-model-unknown-architecture",
     lambda d: builder().build_model("vit"), V, arg("architecture")),
    ("train-negative-epochs",
     lambda d: builder().train(d.x, d.y, epochs=-1), V, arg("epochs")),
    ("train-negative-batch-size",
     lambda d: builder().train(d.x, d.y, epochs=1, batch_size=-2), V,
     arg("batch_size")),
    ("train-fewer-labels-than-images",
     lambda d: builder().train(d.x, d.y[:5], epochs=1), V, arg("y")),
    ("train-labels-out-of-range",
     lambda d: builder().train(d.x, d.y + 10, epochs=1), V, arg("y")),
    ("train-fractional-labels",
     lambda d: builder().train(d.x, d.y + 0.5, epochs=1), V, arg("y")),
    ("train-string-labels",
     lambda d: builder().train(d.x, d.y.astype(str), epochs=1), V, arg("y")),
    ("train-labels-rank-3",
     lambda d: builder().train(d.x, d.y.reshape(-1, 1, 1), epochs=1), V,
     arg("y")),
    ("train-one-hot-width-5", lambda d: builder().train(
        d.x, np.eye(5)[d.y % 5], epochs=1), V, arg("num_classes")),
    ("train-nan-pixels", lambda d: builder().train(
        np.where(d.xf > 0.5, np.nan, d.xf), d.y, epochs=1), V, arg("x")),
    ("train-x-val-without-y-val",
     lambda d: builder().train(d.x, d.y, d.x, epochs=1), V, arg("y_val")),
    ("train-images-28x28", lambda d: builder().train(
        d.x[:, :28, :28], d.y, epochs=1, verbose=0), V, arg("X_train")),
    ("evaluate-fewer-labels",
     lambda d: builder().evaluate(classifier(), d.xf, d.y[:3]), V, arg("y")),
    ("predict-unknown-tta",
     lambda d: builder().predict(classifier(), d.xf, tta="rotate"), V,
     arg("tta")),
    # Presets and YAML.
    ("preset-zero-learning-rate",
     lambda d: get_preset("small", learning_rate=0.0), V,
     arg("learning_rate")),
    ("preset-no-conv-filters", lambda d: get_preset("small", conv_filters=()),
     V, arg("conv_filters")),
    ("preset-negative-dense-units",
     lambda d: get_preset("small", dense_units=(32, -4)), V,
     arg("dense_units")),
    ("preset-batch-norm-string",
     lambda d: get_preset("small", batch_norm="yes"), V, arg("batch_norm")),
    ("preset-fractional-epochs", lambda d: get_preset("small", epochs=2.5), V,
     arg("epochs")),
    ("preset-unknown-augmentation",
     lambda d: get_preset("small", augmentation="heavy"), V,
     arg("augmentation")),
    ("preset-min-lr-above-lr",
     lambda d: get_preset("small", min_learning_rate=1.0), V,
     arg("min_learning_rate")),
    ("preset-zero-max-norm", lambda d: get_preset("small", max_norm=0.0), V,
     arg("max_norm")),
    ("preset-unknown-schedule",
     lambda d: get_preset("small", lr_schedule="step"), V, arg("lr_schedule")),
    ("preset-unknown-optimizer",
     lambda d: get_preset("small", optimizer="adam"), V, arg("optimizer")),
    ("preset-decay-mode-both",
     lambda d: get_preset("small", weight_decay_mode="both"), V,
     arg("weight_decay_mode")),
    ("preset-name-with-path", lambda d: CapacityPreset(name="../x"), V,
     arg("name")),
    ("preset-identifier-int", lambda d: get_preset(123), V,
     "capacity preset: 123"),
    ("yaml-unknown-key", lambda d: get_preset(
        yaml_file(d, "name: t\ndropout: 0.3\n")), V, "key\\(s\\): dropout\\."),
    ("yaml-string-epochs", lambda d: get_preset(
        yaml_file(d, "name: t\nepochs: ten\n")), V, arg("epochs")),
    ("yaml-list-not-mapping",
     lambda d: get_preset(yaml_file(d, "- 1\n- 2\n")), V, "must be a mapping"),
    ("yaml-syntax-error", lambda d: get_preset(yaml_file(d, "name: [t\n")), V,
     "Could not parse .*preset"),
    ("yaml-missing-file", lambda d: get_preset(d.tmp / "nowhere.yaml"), F,
     "nowhere.yaml"),
    # Data loading, pipelines, augmentation.
    ("load-missing-data-dir",
     lambda d: load_cifar10(data_dir=d.tmp / "no_such_dir"), F,
     arg("data_dir")),
    ("load-negative-shuffle-seed",
     lambda d: load_cifar10(data_dir=d.tmp, shuffle_seed=-1), V,
     arg("shuffle_seed")),
    ("load-sample-string-seed",
     lambda d: load_cifar10_sample(shuffle_seed="a"), V, arg("shuffle_seed")),
    ("dataset-zero-batch", lambda d: make_dataset(d.x, d.y, 0, True), V,
     arg("batch_size")),
    ("dataset-empty-x", lambda d: make_dataset(d.x[:0], d.y[:0], 4, True), V,
     arg("x")),
    ("dataset-int16-images",
     lambda d: make_dataset(d.x.astype("int16"), d.y, 4, True), V, arg("x")),
    ("dataset-floats-0-255",
     lambda d: make_dataset(d.xf * 255, d.y, 4, True), V, arg("x")),
    ("dataset-rows-not-summing-to-1",
     lambda d: make_dataset(d.x, np.ones((16, 10)), 4, True), V, arg("y")),
    ("dataset-num-classes-vs-one-hot", lambda d: make_dataset(
        d.x, d.onehot, 4, True, num_classes=5), V, arg("num_classes")),
    ("dataset-one-class", lambda d: make_dataset(
        d.x, d.y, 4, True, num_classes=1), V, arg("num_classes")),
    ("dataset-mix-unknown-key", lambda d: make_dataset(
        d.x, d.y, 4, True, mix={"alpha": 0.2}, num_classes=10), V, arg("mix")),
    ("dataset-mix-negative-alpha", lambda d: make_dataset(
        d.x, d.y, 4, True, mix={"mixup_alpha": -0.2}, num_classes=10), V,
     arg("mix['mixup_alpha']")),
    ("dataset-mix-without-num-classes", lambda d: make_dataset(
        d.x, d.y, 4, True, mix={"mixup_alpha": 0.2}), V, arg("num_classes")),
    ("dataset-training-string",
     lambda d: make_dataset(d.x, d.y, 4, "yes"), V, arg("training")),
    ("dataset-fractional-seed",
     lambda d: make_dataset(d.x, d.y, 4, True, seed=1.5), V, arg("seed")),
    ("dataset-3d-images-augmented", lambda d: make_dataset(
        d.x[..., 0], d.y, 4, True, augmentation="flip"), V, arg("x")),
    ("dataset-augmentation-int", lambda d: make_dataset(
        d.x, d.y, 4, True, augmentation=3), V, arg("augmentation")),
    ("augmentation-unknown-policy", lambda d: get_augmentation("extreme"), V,
     arg("name")),
    ("idg-featurewise-center", lambda d: idg(featurewise_center=True), V,
     arg("featurewise_center")),
    ("idg-zca-whitening", lambda d: idg(zca_whitening=True), V,
     arg("zca_whitening")),
    ("idg-brightness-range", lambda d: idg(brightness_range=(0.5, 1.5)), V,
     arg("brightness_range")),
    ("idg-preprocessing-function",
     lambda d: idg(preprocessing_function=np.flipud), V,
     arg("preprocessing_function")),
    ("idg-validation-split", lambda d: idg(validation_split=0.2), V,
     arg("validation_split")),
    ("idg-negative-width-shift", lambda d: idg(width_shift_range=-0.1), V,
     arg("width_shift_range")),
    ("idg-rescale-2", lambda d: idg(rescale=2.0), V, arg("rescale")),
    ("idg-shear-120", lambda d: idg(shear_range=120), V, arg("shear_range")),
    ("idg-zoom-1.5", lambda d: idg(zoom_range=1.5), V, arg("zoom_range")),
    ("idg-fill-mode",
     lambda d: idg(rotation_range=10, fill_mode="wrap-around"), V,
     arg("fill_mode")),
    ("idg-misspelt-argument", lambda d: idg(rotaton_range=10), V,
     arg("rotaton_range")),
    pytest.param("mixup-negative-alpha",
                 lambda d: mixup(d.xf, d.onehot, -1.0, (1, 2)), V,
                 arg("alpha")),
    pytest.param("cutmix-negative-alpha",
                 lambda d: cutmix(d.xf, d.onehot, -1.0, (1, 2)), V,
                 arg("alpha")),
    # Analysis.
    ("advice-nan-loss",
     lambda d: quick_regularization_advice(0.9, 0.7, float("nan"), 0.2), V,
     arg("train_loss")),
    pytest.param("advice-accuracy-1.5",
                 lambda d: quick_regularization_advice(1.5, 0.7, 0.1, 0.2), V,
                 arg("train_acc")),
    ("dropout-rate-zero-layer", lambda d: calculate_dropout_rate(0, 1000), V,
     arg("layer_size")),
    ("dropout-rate-negative-dataset",
     lambda d: calculate_dropout_rate(128, -5), V, arg("dataset_size")),
    ("mc-dropout-zero-iterations",
     lambda d: mc_dropout_prediction(classifier(), d.xf, n_iter=0), V,
     arg("n_iter")),
    ("classify-negative-threshold", lambda d: classify_with_uncertainty(
        classifier(), d.xf, n_iter=2, threshold=-0.1), V, arg("threshold")),
    ("classify-string-iterations", lambda d: classify_with_uncertainty(
        classifier(), d.xf, n_iter="10"), V, arg("n_iter")),
    ("ece-zero-bins", lambda d: expected_calibration_error(
        d.y, np.full((16, 10), 0.1), n_bins=0), V, arg("n_bins")),
    pytest.param("ece-length-mismatch", lambda d: expected_calibration_error(
        d.y[:4], np.full((16, 10), 0.1)), V, arg("y_true")),
    pytest.param("diagnosis-length-mismatch",
                 lambda d: regularization_diagnosis(
                     classifier(), d.xf, d.y[:3], d.xf, d.y, verbose=False),
                 V, arg("y_train")),
    pytest.param("diagnosis-negative-gap", lambda d: regularization_diagnosis(
        classifier(), d.xf, d.y, d.xf, d.y, verbose=False, severe_gap=-1.0),
        V, arg("severe_gap")),
    ("search-zero-epochs", lambda d: progressive_regularization_search(
        d.xf, d.y, d.xf, d.y, epochs=0), V, arg("epochs")),
    pytest.param("plot-history-without-losses",
                 lambda d: plot_training_diagnostics({"foo": [1.0]}), V,
                 arg("history")),
    ("learning-curves-zero-repeats", lambda d: plot_learning_curves(
        classifier(), d.xf, d.y, n_repeats=0), V, arg("n_repeats")),
    ("compare-unknown-ablation", lambda d: compare_ablations(
        "small", ["magic"], d.x, d.y, d.x, d.y, epochs=1), V,
     "Unknown ablation\\(s\\): magic"),
]
IDS = [c.values[0] if hasattr(c, "values") else c[0] for c in CASES]


def test_the_table_has_at_least_50_distinct_invalid_inputs():
    assert len(set(IDS)) == len(IDS) >= 50


@pytest.mark.parametrize("name,call,error,pattern", CASES, ids=IDS)
def test_invalid_input_is_refused_naming_the_argument(d, name, call, error,
                                                      pattern):
    with pytest.raises(error) as info:
        call(d)
    assert re.search(pattern, str(info.value)), str(info.value)


CLI_CASES = [
    ("train-epochs-zero", ["train", "--epochs", "0"], "--epochs"),
    ("train-batch-size-text", ["train", "--batch-size", "big"],
     "--batch-size"),
    ("train-unknown-capacity", ["train", "--capacity", "huge"],
     "--capacity"),
    ("train-unknown-dataset", ["train", "--dataset", "mnist"], "--dataset"),
    ("train-unknown-precision", ["train", "--precision", "int8"],
     "--precision"),
]


@pytest.mark.parametrize("name,argv,flag", CLI_CASES,
                         ids=[c[0] for c in CLI_CASES])
def test_invalid_flags_exit_2_naming_the_flag(name, argv, flag, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("text,pattern", [
    ("name: t\ndropuot: 0.3\n", "key\\(s\\): dropuot"),
    ("name: t\nbatch_size: -8\n", arg("batch_size")),
    ("name: t\nconv_filters: 32\n", arg("conv_filters")),
], ids=["unknown-key", "negative-batch", "filters-not-a-list"])
def test_cli_config_errors_name_the_key(tmp_path, capsys, text, pattern):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    code = cli.main(["train", "--config", str(config), "--out",
                     str(tmp_path / "run")])
    assert code == 2
    assert re.search(pattern, capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
