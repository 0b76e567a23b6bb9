#!/bin/bash
# Issue 26 on the lent GPU: the paper's binarized-MNIST rows, trained by training.run under JAX (no
# TensorFlow there), resumed from benchmarks/paper_table/runs/*.tgz, returned as tgz in $OUT.
# The three rows train at once, one process each (batch 16 leaves the GPU mostly idle).
#
# Before (here, in the checkout; .whl/ and .carry/ listed in .git/info/exclude):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl keras==3.15.1 namex optree
#   python -m pixel_keras.fetch_mnist .carry/mnist
# The call (device tool): command "MIN=6.5 bash benchmarks/paper_table/gpu_rows.sh", carry [".whl", ".carry"]
# After: cp the returned *.tgz over benchmarks/paper_table/runs/ and commit them (they are the runs;
# .gitignore lets that folder in). A row with no tgz there continues from its shipped model
# (--initial-model pretrained:NAME --initial-optimizer-state: its weights, RMSProp state and step,
# the data order from that step), which training.run ignores once the run directory resumes.
# The PixelCNN row is past its 1e-3 plateau (session 30: 1e-4 from step 68,000), hence its --learning-rate.
# Rehearsal on a CPU: SKIP_INSTALL=1 PY=.venv/bin/python JAX_PLATFORMS=cpu MIN=0.4 EPOCH=20 OUT=/tmp/o bash ...
set -u
[ -n "${SKIP_INSTALL:-}" ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=${EXTRA_PATH:-}/tmp/site:$PWD KERAS_BACKEND=jax PIXEL_KERAS_MNIST_DIR=$PWD/.carry/mnist \
  XLA_PYTHON_CLIENT_PREALLOCATE=false TF_CPP_MIN_LOG_LEVEL=2
OUT=${OUT:-/tmp/out}; mkdir -p runs $OUT
for t in benchmarks/paper_table/runs/*.tgz; do [ -f "$t" ] && tar xzf "$t" -C runs; done
nvidia-smi -L 2>/dev/null; date -u
MIN=${MIN:-6.5}
common="--dataset stochastic_binarized_mnist --optimizer rmsprop --batch-size 16 --lr-schedule constant --steps 10000000
  --steps-per-epoch ${EPOCH:-2000} --checkpoint-every 500 --max-minutes $MIN --gallery-every 0 --gallery-size 8"
${PY:-python3} -m training.run --arch diagonal_bilstm --layers 7 --hidden 16 $common --run-dir runs/mnist_diagonal_bilstm_7x16 \
  --initial-model pretrained:mnist_diagonal_bilstm_7x16 --initial-optimizer-state > $OUT/dbl.log 2>&1 &
${PY:-python3} -m training.run --arch row_lstm --layers 7 --hidden 16 $common --run-dir runs/mnist_row_lstm_7x16 \
  --initial-model pretrained:mnist_row_lstm_7x16 --initial-optimizer-state > $OUT/row.log 2>&1 &
${PY:-python3} -m training.run --arch pixelcnn --layers 15 --hidden 16 $common --run-dir runs/mnist_pixelcnn_15x16 --learning-rate 1e-4 \
  --initial-model pretrained:mnist_pixelcnn_15x16 --initial-optimizer-state > $OUT/pcnn.log 2>&1 &
wait
date -u
for r in runs/mnist_*; do tar czf $OUT/$(basename $r).tgz -C runs $(basename $r); done
tail -n 4 $OUT/*.log
