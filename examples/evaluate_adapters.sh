#!/usr/bin/env bash
# The README's evaluation tables: the shipped adapters (the default model taught with
# `python -m collab train` on parallel traces, and the same recipe on sequential traces of the
# same problems) on held-out problems. Rows, summaries and plots land in examples/results/.
# About 40 minutes on a 2-core CPU; every command resumes where it stopped.
set -euo pipefail
MODELS="parallel=default+parallel sequential=default+sequential"

# 1. When to go parallel, answers and the critical path (greedy, 512 tokens per worker).
python -m collab eval --tasks tasks:compound=20,countdown4=20,simple=20 --models $MODELS \
    --strategy adaptive --workers 1 --budgets 512 --out examples/results/adapters --yes "$@"

# 2. APR's comparison in shape (same folder): 4-number Countdown against the per-thread budget, both models,
#    (512 comes from step 1) and self-consistency of the sequential model (4 sampled runs voted).
python -m collab eval --tasks tasks:countdown4=20 --models $MODELS \
    --strategy adaptive --workers 1 --budgets 128 256 --out examples/results/adapters --yes "$@"
python -m collab eval --tasks tasks:countdown4=20 --models sequential=default+sequential \
    --strategy adaptive --workers 1 --budgets 256 --samples 4 --out examples/results/adapters --yes "$@"

# 3. Visibility ablation: do helpers that see each other duplicate work? 4-number Countdown,
#    the parallel adapter, sampled (temperature 0.7), helpers' sibling visibility on under four
#    policies, and off (as trained).
python -m collab eval --tasks tasks:countdown4=12 --models parallel=default+parallel --strategy adaptive \
    --workers 1 --budgets 256 --visibility full full:same_step lag:4 none --siblings on --sample --seeds 0 \
    --out examples/results/ablation --yes "$@"
python -m collab eval --tasks tasks:countdown4=12 --models parallel=default+parallel --strategy adaptive \
    --workers 1 --budgets 256 --siblings off --sample --seeds 0 --out examples/results/ablation --yes "$@"
