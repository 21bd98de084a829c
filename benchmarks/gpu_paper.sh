#!/usr/bin/env bash
# One time slice of the paper network's full schedule (paper.toml; issue #11 item 5) on a lent GPU machine, resumable
# across slices and sessions. Run there from the repository root through the device tool, carrying what this machine
# prepared (docs/training.md "The paper network"):
#     command: bash benchmarks/gpu_paper.sh      carry: [".whl", ".gpu_data", "runs/paper"]
# It installs the carried wheels the device image lacks (kornia, kornia_rs, simplejpeg), builds the 64-px aligned pool
# without the validation hold-outs (the protocol's, robust_protocol.py --align --patch 64) if it is not there, trains
# (resuming runs/paper/last.pt when carried) until the first epoch that ends past $MINUTES minutes, and copies the
# run's files to $OUT/paper, from where the next slice carries them back as runs/paper.
# Knobs: MINUTES (default 7), DEVICE (default cuda), DATA (default .gpu_data), EXTRA (more --set KEY=VALUE words).
set -euo pipefail
MINUTES=${MINUTES:-7}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-.gpu_data}
PY=${PY:-python3}
if compgen -G ".whl/*.whl" > /dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="src:/tmp/site"
else
    export PYTHONPATH="src"
fi
export PYTHONUNBUFFERED=1 CROSSFUSE_DATA="$DATA"
[ -f runs/align64_ho/patches.npz ] || "$PY" benchmarks/robust_protocol.py --align runs/align64_ho --patch 64
resume=()
[ -f runs/paper/last.pt ] && resume=(--resume runs/paper/last.pt)
sets=(--set "device=\"$DEVICE\"" --set 'data.external=["runs/align64_ho/patches.npz"]')
for kv in ${EXTRA:-}; do sets+=(--set "$kv"); done
"$PY" -m crossfuse.cli train paper --out runs/paper --no-progress --max-minutes "$MINUTES" "${sets[@]}" "${resume[@]}"
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT/paper"
    for f in last.pt best.pt log.csv env.json config.toml; do
        [ -f "runs/paper/$f" ] && cp "runs/paper/$f" "$OUT/paper/"
    done
fi
tail -n 3 runs/paper/log.csv
