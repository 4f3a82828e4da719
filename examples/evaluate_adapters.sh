#!/usr/bin/env bash
# The evaluation tables of docs/training.md and docs/evaluation.md: the shipped adapters (the
# default model taught with `python -m collab train` on parallel traces, and the same recipe on
# sequential traces of the same problems) on held-out problems, greedy unless stated. Rows
# (every worker's text), summaries and plots land in examples/results/. About 50 minutes on a
# 2-core CPU (one thread per command: run two of them side by side); every command resumes
# where it stopped.
set -euo pipefail
PAR="parallel=default+parallel"
SEQ="sequential=default+sequential"
EVAL="python -m collab eval --strategy adaptive --workers 1 --yes --no-progress"

# 1. When to go parallel, answers and the critical path (512 tokens per worker).
$EVAL --tasks tasks:compound=20,countdown4=20,simple=20 --models $PAR $SEQ --budgets 512 --out examples/results/adapters

# 2. APR's comparison in shape: 4-number Countdown against the per-thread budget (512 from step 1),
#    and self-consistency of the sequential model (3 sampled runs voted) at 256.
$EVAL --tasks tasks:countdown4=20 --models $PAR $SEQ --budgets 128 256 --out examples/results/adapters
$EVAL --tasks tasks:countdown4=12 --models $SEQ --budgets 256 --samples 3 --out examples/results/adapters

# 3. Visibility ablation: helpers that see each other's live work (siblings on) under three
#    policies, against helpers blind to each other as trained (siblings off); sampled, 2 seeds.
$EVAL --tasks tasks:countdown4=8 --models $PAR --budgets 256 --visibility full full:same_step lag:4 --siblings on \
    --sample --seeds 0 1 --out examples/results/ablation
$EVAL --tasks tasks:countdown4=8 --models $PAR --budgets 256 --siblings off --sample --seeds 0 1 \
    --out examples/results/ablation
