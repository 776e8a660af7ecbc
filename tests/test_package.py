"""The package's shape: its public names, its import graph, its layering.

The names below are the public API as it stood before the layout redesign:
every one must keep importing from the same place. The import graph is
read from the source (no import is executed), so a cycle or a forbidden
dependency fails here whichever backend runs the tests.
"""

import ast
import importlib
from pathlib import Path

import pytest

import keras_regkit

PACKAGE_DIR = Path(keras_regkit.__file__).resolve().parent

TOP_LEVEL = (
    "AUGMENTATION_POLICIES", "ArrayLoader", "CapacityPreset",
    "CenteredUnitNorm", "ConcreteDropout", "DeviceArrayLoader",
    "DropBlock2D", "DropConnect",
    "DropConnectDense", "ElasticNet", "ExpectedCalibrationError",
    "GaussianWeightNoise", "GroupLasso", "L2SP", "LabelSmoothingCrossEntropy",
    "Lookahead", "MCDropout", "MCSpatialDropout2D", "OverfittingDetector",
    "PRESETS", "PartialDirac", "PatchWhitening", "ProductionModelBuilder",
    "RegularizationScheduler", "ScaledBias", "SpectralNormConstraint",
    "StochasticDepth", "TopKAccuracy", "WarmupLinearDecay",
    "WeightStatsMonitor", "WhiteningBiasFreezer", "adapt_fast_net",
    "alternating_flip_mask", "apply_l2sp",
    "augmentation_from_image_data_generator", "augmentation_model_layers",
    "build_fast_net", "calculate_dropout_rate", "classify_with_uncertainty",
    "compare_ablations", "compile_for_preset", "constraints", "cutmix",
    "expected_calibration_error", "get_augmentation", "get_preset",
    "initializers", "label_smoothing_cross_entropy", "label_smoothing_loss",
    "layers", "learning_curve", "load_cifar10", "load_cifar10_sample",
    "losses", "make_dataset", "make_optimizer", "mc_dropout_prediction",
    "mix_batch", "mixup", "mutual_information", "patch_whitening_kernel",
    "plot_learning_curves", "plot_reliability_diagram",
    "plot_training_diagnostics", "plot_validation_curves",
    "predictive_entropy", "progressive_regularization_search",
    "quick_regularization_advice", "regularization_diagnosis",
    "regularizers", "seed_augmentation", "set_mc_dropout", "smooth_labels",
    "trick_callbacks",
)

SUBMODULES = {
    "layers": (
        "ConcreteDropout", "DropBlock2D", "DropConnect", "DropConnectDense",
        "GaussianWeightNoise", "MCDropout", "MCSpatialDropout2D",
        "PatchWhitening", "ScaledBias", "StochasticDepth",
        "concrete_dropout_regularization", "drop_block",
        "drop_connect_kernel", "drop_path", "gaussian_weight_noise",
        "patch_whitening_kernel", "relaxed_dropout", "set_mc_dropout",
    ),
    "regularizers": ("ElasticNet", "GroupLasso", "L2SP", "apply_l2sp", "get",
                     "group_lasso", "l2sp_penalty"),
    "constraints": ("CenteredUnitNorm", "SpectralNormConstraint",
                    "centered_unit_norm", "clip_spectral_norm", "get",
                    "spectral_norm"),
    "initializers": ("PartialDirac", "dirac_mask", "torch_conv_initializer"),
    "losses": ("LabelSmoothingCrossEntropy", "label_smoothing_cross_entropy",
               "label_smoothing_loss", "smooth_labels"),
    "metrics": ("TopKAccuracy", "top_k_accuracy", "ExpectedCalibrationError",
                "expected_calibration_error"),
    "schedules": ("LR_SCHEDULES", "WarmupLinearDecay", "make_learning_rate"),
    "callbacks": ("Lookahead", "OverfittingDetector",
                  "RegularizationScheduler", "WeightStatsMonitor",
                  "WhiteningBiasFreezer"),
    "data": (
        "AUGMENTATION_POLICIES", "ArrayLoader", "CLASS_NAMES",
        "DeviceArrayLoader", "alternating_flip_mask", "augmentation_from_image_data_generator",
        "augmentation_model_layers", "cutmix", "get_augmentation",
        "load_cifar10", "load_cifar10_sample", "make_dataset", "mix_batch",
        "mixup", "seed_augmentation",
    ),
    "models": (
        "ARCHITECTURES", "ARCHITECTURE_NAMES", "AUGMENTATIONS",
        "CapacityPreset", "LR_SCHEDULES", "OPTIMIZERS", "PRESETS",
        "REG_CONFIG_KEYS", "WEIGHT_DECAY_MODES", "build_backbone",
        "build_cnn", "build_fast_net", "build_mlp", "build_resnet",
        "get_preset",
    ),
    "analysis": (
        "ABLATIONS", "ExpectedCalibrationError", "LADDER", "VERDICTS",
        "add_compare_parser", "add_diagnose_parser",
        "calculate_dropout_rate", "calibration_bins",
        "classify_with_uncertainty", "compare_ablations",
        "expected_calibration_error", "history_dict", "learning_curve",
        "mc_dropout_prediction", "mutual_information", "plot_learning_curves",
        "plot_reliability_diagram", "plot_training_diagnostics",
        "plot_validation_curves", "predictive_entropy",
        "progressive_regularization_search", "quick_regularization_advice",
        "regularization_diagnosis", "weight_statistics",
    ),
}

# Building blocks import nothing from the layers above them (DESIGN.md:
# data -> training (with models and callbacks) -> fit -> analysis;
# experiments and cli on top).
BLOCKS = ("layers", "regularizers", "constraints", "initializers", "losses",
          "metrics", "schedules", "optimizers", "callbacks")
ABOVE_BLOCKS = ("data", "models", "training", "experiments", "analysis",
                "cli")
FORBIDDEN = {
    **{block: ABOVE_BLOCKS for block in BLOCKS},
    "data": ("models", "training", "experiments", "analysis", "cli"),
    "models": ("training", "experiments", "analysis", "cli"),
    "analysis": ("training", "experiments", "cli"),
    "training": ("experiments", "cli"),
    "experiments": ("cli",),
}


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_every_public_name_still_imports_from_the_package(name):
    assert name in keras_regkit.__all__
    assert getattr(keras_regkit, name) is not None


@pytest.mark.parametrize("module", sorted(SUBMODULES))
def test_public_submodules_still_offer_their_names(module):
    mod = importlib.import_module(f"keras_regkit.{module}")
    missing = [name for name in SUBMODULES[module] if not hasattr(mod, name)]
    assert missing == []


def _module_name(path):
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path, module, top_level_only):
    """The keras_regkit modules `path` imports (resolved to module names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # module-level `if`/`try` blocks run at import too
        nodes = [n for top in tree.body for n in ast.walk(top)
                 if not isinstance(top, (ast.FunctionDef, ast.ClassDef,
                                         ast.AsyncFunctionDef))]
    package = module if path.name == "__init__.py" else module.rpartition(
        ".")[0]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [(base, f"{base}.{alias.name}") for alias in node.names]
        else:
            continue
        found.update(n for n in names if (
            n if isinstance(n, str) else n[0]).startswith("keras_regkit"))
    return found


def _graph(top_level_only):
    modules = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target in _imports(path, name, top_level_only):
            if not isinstance(target, str):  # from base import attr
                base, dotted = target
                target = dotted if dotted in modules else base
            while target and target not in modules:
                target = target.rpartition(".")[0]
            # A module's own packages are imported before it anyway.
            if target and not (name == target or
                               name.startswith(target + ".")):
                targets.add(target)
        graph[name] = targets
    return graph


def _cycle(graph):
    state, path = {}, []

    def visit(node):
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = _graph(top_level_only=True)
    assert "keras_regkit.training.builder" in graph
    assert _cycle(graph) is None


def test_the_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]


def _area(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_building_blocks_import_nothing_above_them():
    # Every import counts here, lazy ones inside functions too.
    graph = _graph(top_level_only=False)
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if _area(target) in FORBIDDEN.get(_area(source), ())
    )
    assert wrong == []


def test_private_modules_are_not_imported_across_packages_by_name():
    # A private helper is shared through a private module (`_blocks.py`),
    # never by importing a `_name` from another public module.
    wrong = []
    for path in PACKAGE_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("keras_regkit"):
                last = node.module.rsplit(".", 1)[-1]
                base = PACKAGE_DIR.parent.joinpath(*node.module.split("."))
                for alias in node.names:
                    is_module = (base / f"{alias.name}.py").exists() or (
                        base / alias.name).is_dir()
                    private = alias.name.startswith("_") and not (
                        alias.name.endswith("__"))
                    if private and not last.startswith("_") and not is_module:
                        wrong.append(f"{path.name}: {node.module}."
                                     f"{alias.name}")
    assert wrong == []
