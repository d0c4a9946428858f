#!/usr/bin/env bash
# The device check (benchmarks/device_check.py): environment, trainer end to
# end without TensorFlow, the GPU's idle time in the loop, the train step
# beside PyTorch in float32 and bfloat16, and the library's tests, in under
# eight minutes on one GPU; the JSON is rewritten after every case.
#
#     bash benchmarks/device_check.sh --out "$OUT"      # on the GPU machine
#     bash benchmarks/device_check.sh --out DIR --dry_run   # here, on the CPU
#
# The interpreter is $PYTHON (default python3). Fetch the wheels it installs
# first, where pip works: bash benchmarks/device_wheels.sh
set -uo pipefail
python="${PYTHON:-python3}"
exec "$python" "$(dirname "$0")/device_check.py" --python "$python" "$@"
