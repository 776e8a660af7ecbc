#!/bin/bash
# airbench94_muon beside the fast preset on a GPU machine with PyTorch and
# JAX but no TensorFlow (issue 14, part 4), as one command. Carry .whl (the
# keras, namex and optree wheels for the machine's Python), the peer's script
# and a folder holding cifar10_train_jpeg.tar.gz; run from the repository
# root:
#   bash tools/crosscheck/device_peer_bench.sh PEER_SCRIPT DATA_DIR [ARGS]
# ARGS go to bench/peer_airbench.py (default: 5 peer runs, seeds 0 and 1 of
# the preset, 8 epochs with Muon, and of its former recipe, 10 epochs of
# SGD alone with a two-epoch warm-up). The log lands in
# $OUT/gpu_peer.log when $OUT is set.
peer=${1:?path of airbench94_muon.py}
data=${2:?folder holding cifar10_train_jpeg.tar.gz}
shift 2
[ $# -gt 0 ] || set -- --runs 5 --seeds 0 1 \
    --variant sgd10 optimizer=sgd epochs=10 warmup_epochs=2
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
    --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax PYTHONUNBUFFERED=1 \
    XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache \
    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
nvidia-smi -L
python3 -c "import keras, jax, torch; print(keras.__version__, jax.__version__, torch.__version__, jax.devices())" || exit 1
python3 bench/peer_airbench.py "$peer" --data-dir "$data" --loader device \
    --precision mixed_bfloat16 "$@" 2>&1 | grep -v "^I0000\|^W0000" \
    | tee "${OUT:-/tmp}/gpu_peer.log"
