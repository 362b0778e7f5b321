#!/usr/bin/env bash
# Run every parity test on a CUDA GPU (fp32 and bf16) and write the results file.
#
#   bash scripts/gpu_parity.sh [RESULTS_JSON]      (default: results/gpu_parity.json)
#
# Meant for a fresh GPU machine with Python, PyTorch (CUDA) and pip, possibly with no network:
# it installs nothing from the internet. If wheels are waiting in .whl/ (transformers pinned as in
# requirements.txt), they are installed into /tmp/site first, so the GPU run compares against the same
# transformers version as the CPU tests; otherwise the machine's own transformers is used and the
# results file records which version that was. The package `demos` is used from src/ directly.
# The results file records the commit (`git rev-parse HEAD`, and whether the tree differed from it)
# and the date of the run; a copy without .git records $PARITY_COMMIT instead, so send it along:
#   PARITY_COMMIT=$(git rev-parse HEAD) bash scripts/gpu_parity.sh
set -uo pipefail
cd "$(dirname "$0")/.."
results=${1:-results/gpu_parity.json}
mkdir -p "$(dirname "$results")"
start=$(date +%s)

python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
    echo "gpu_parity: no CUDA device visible to torch; nothing to do" >&2
    exit 2
}
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import pytest" 2>/dev/null || { echo "gpu_parity: pytest is missing (carry its wheel in .whl/)" >&2; exit 1; }
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c "import torch, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"

# Mamba kernels: compared against only when a from-scratch Mamba exists in src/demos and mamba_ssm imports.
python3 - <<'PY'
import importlib.util
for name in ("mamba_ssm", "causal_conv1d"):
    print(f"{name}: {'installed' if importlib.util.find_spec(name) else 'not installed'}")
print("demos.models.mamba:", "present" if importlib.util.find_spec("demos.models.mamba") else "absent (no Mamba parity to run yet)")
PY

# Every test except the book tooling (build, browser, page helpers: jupyter-book, chromium and IPython are not needed there). The `setting`
# fixture adds cuda-fp32 and cuda-bf16 to each parity test when CUDA is present.
PARITY_RESULTS="$results" python3 -m pytest tests --ignore=tests/book --ignore=tests/test_book.py -m "not book" -q -p no:cacheprovider -rfE
status=$?
echo "gpu_parity: pytest exit status $status, $(( $(date +%s) - start )) s, results in $results"
exit $status
