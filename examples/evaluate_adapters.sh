#!/usr/bin/env bash
# The evaluation tables of docs/training.md and docs/evaluation.md: the shipped adapters (the
# default model taught with `python -m collab train` on parallel traces, and the same recipe on
# sequential traces of the same problems) on held-out problems, greedy unless stated. Each model
# runs in its own process and folder (one thread each: the two run side by side on 2 cores); the
# rows (every worker's text) are then merged into one summary and its plots. Every command
# resumes where it stopped.
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
R=examples/results
EVAL="python -m collab eval --strategy adaptive --workers 1 --yes --no-progress"

parallel_model() {  # one process: the parallel adapter's rows and half the ablation
  local E="$EVAL --models parallel=default+parallel"
  $E --tasks tasks:compound=10,countdown4=10,simple=10 --budgets 512 --out $R/adapters-par
  $E --tasks tasks:countdown4=10 --budgets 256 --out $R/adapters-par
  $E --tasks tasks:countdown3=10 --budgets 256 512 --out $R/countdown3-par
  # the visibility ablation: helpers that see each other's live work (siblings on) under three
  # policies, against helpers blind to each other as trained (siblings off); greedy, split over
  # the two processes (the other half in sequential_model), then a first sampled run; `full` and
  # the blind helpers on 90 problems, the other two policies on the first 30 of them
  $E --tasks tasks:countdown4=30 --budgets 256 --visibility full full:same_step --siblings on --out $R/ablation-a
  $E --tasks tasks:countdown4=90 --budgets 256 --visibility full --siblings on --out $R/ablation-a
  $E --tasks tasks:countdown4=5 --budgets 256 --visibility full full:same_step lag:4 --siblings on --sample --seeds 0 \
     --out $R/ablation
  $E --tasks tasks:countdown4=5 --budgets 256 --siblings off --sample --seeds 0 --out $R/ablation
}

sequential_model() {  # the other: the sequential adapter's rows, then the ablation's other half
  local E="$EVAL --models sequential=default+sequential"
  $E --tasks tasks:compound=10,countdown4=10,simple=10 --budgets 512 --out $R/adapters-seq
  $E --tasks tasks:countdown4=10 --budgets 256 --out $R/adapters-seq
  $E --tasks tasks:countdown4=6 --budgets 256 --samples 3 --out $R/adapters-seq  # self-consistency, 3 votes
  $E --tasks tasks:countdown3=10 --budgets 256 512 --out $R/countdown3-seq
  # the ablation's other half (the parallel adapter; see parallel_model)
  local A="$EVAL --models parallel=default+parallel --budgets 256 --out $R/ablation-b"
  $A --tasks tasks:countdown4=30 --visibility lag:4 --siblings on
  $A --tasks tasks:countdown4=90 --siblings off
}

parallel_model & sequential_model & wait
for d in adapters countdown3; do
  mkdir -p $R/$d
  cp $R/$d-par/runs.jsonl $R/$d/runs-parallel.jsonl
  cp $R/$d-seq/runs.jsonl $R/$d/runs-sequential.jsonl
  python -m collab eval --report --out $R/$d
done
cp $R/ablation-a/runs.jsonl $R/ablation/runs-greedy-a.jsonl
cp $R/ablation-b/runs.jsonl $R/ablation/runs-greedy-b.jsonl
python -m collab eval --report --out $R/ablation --baseline "parallel adaptive full W1 b256 siblings-off finisher-off"
