#!/usr/bin/env bash
# Downloads into .whl/ the wheels of benchmarks/device_wheels.txt, for the
# GPU machine (CPython 3.12, manylinux x86-64), where pip can reach an index.
#
#     bash benchmarks/device_wheels.sh [DIR]      # DIR defaults to .whl
#
# Earlier wheels in DIR are removed first: two versions of one package stop
# the install there. Without --no-deps pip would fetch what that machine
# already has, so each requirement that it lacks is listed in the file.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.whl}"
python="${PYTHON:-python3}"
mkdir -p "$dir"
rm -f "$dir"/*.whl
grep -v '^\s*\(#\|$\)' benchmarks/device_wheels.txt | while read -r wheel; do
  "$python" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$dir" "$wheel"
done
ls -l "$dir"/*.whl
du -ch "$dir"/*.whl | tail -1
