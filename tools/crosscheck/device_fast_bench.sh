#!/bin/bash
# Device check of the fast preset on a GPU machine with JAX but no TensorFlow:
# carry .whl (keras, namex, optree wheels for its Python) and a folder with
# cifar10_train_jpeg.tar.gz, e.g. .gpu/data; run from the repository root.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
nvidia-smi -L
python3 -c "import keras, jax; print(keras.__version__, jax.__version__, jax.devices())"
python3 bench/time_to_accuracy.py --capacity fast --loader array --data-dir .gpu/data "$@" 2>&1 | grep -v "^I0000\|^W0000" | tee $OUT/gpu_fast.log
