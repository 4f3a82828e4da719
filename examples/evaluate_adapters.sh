#!/usr/bin/env bash
# The evaluation tables of docs/training.md and docs/evaluation.md: the shipped adapters (the
# default model taught with `python -m collab train` on parallel traces, and the same recipe on
# sequential traces of the same problems) on held-out problems, greedy unless stated. Each model
# runs in its own process and folder (one thread each: the two run side by side on 2 cores); the
# rows (every worker's text) are then merged into one summary and its plots. Every command
# resumes where it stopped. `bash examples/evaluate_adapters.sh repetition` makes only the
# repetition-penalty rows of docs/training.md, `... loops` only the loop-stop rows (stop_repeats).
set -euo pipefail
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
R=examples/results
EVAL="python -m collab eval --strategy adaptive --workers 1 --yes --no-progress"

parallel_model() {  # one process: the parallel adapter's rows and half the ablation
  local E="$EVAL --models parallel=default+parallel"
  $E --tasks tasks:compound=10,countdown4=10,simple=10 --budgets 512 --out $R/adapters-par
  $E --tasks tasks:countdown4=10 --budgets 256 --out $R/adapters-par
  $E --tasks tasks:countdown3=10 --budgets 256 512 --out $R/countdown3-par
  # the visibility ablation: helpers that see each other's live work (siblings on, `full`) against
  # helpers blind to each other as trained (siblings off), greedy, 90 problems, one arm per process.
  # 0.3.4's adapter ran a wider grid (also `full:same_step` and `lag:4` on 30, and sampled runs):
  # its rows are in $R/ablation*/ with the commands in this script's history (git log -p).
  $E --tasks tasks:countdown4=90 --budgets 256 --visibility full --siblings on --out $R/ablation-0.3.5-a
}

sequential_model() {  # the other: the sequential adapter's rows, then the ablation's other half
  local E="$EVAL --models sequential=default+sequential"
  $E --tasks tasks:compound=10,countdown4=10,simple=10 --budgets 512 --out $R/adapters-seq
  $E --tasks tasks:countdown4=10 --budgets 256 --out $R/adapters-seq
  $E --tasks tasks:countdown4=6 --budgets 256 --samples 3 --out $R/adapters-seq  # self-consistency, 3 votes
  $E --tasks tasks:countdown3=10 --budgets 256 512 --out $R/countdown3-seq
  # the ablation's other arm (the parallel adapter; see parallel_model)
  $EVAL --models parallel=default+parallel --budgets 256 --tasks tasks:countdown4=90 --siblings off --out $R/ablation-0.3.5-b
}

repetition() {  # both adapters at repetition penalties 1.1 and 1.2 on the problems of $R/adapters
  local E="$EVAL --budgets 512 --repetition-penalty 1.1 1.2" P=$R/repetition-penalty
  $E --models parallel=default+parallel --tasks tasks:compound=10,simple=10 --out $P-a &
  $E --models parallel=default+parallel --tasks tasks:countdown4=10 --out $P-b &
  wait
  $E --models sequential=default+sequential --tasks tasks:compound=10,simple=10 --out $P-c
  mkdir -p $P
  cp $P-a/runs.jsonl $P/runs-parallel-compound-simple.jsonl
  cp $P-b/runs.jsonl $P/runs-parallel-countdown4.jsonl
  cp $P-c/runs.jsonl $P/runs-sequential.jsonl
  python -m collab eval --report --out $P
}

loops() {  # both adapters with the loop stop (a span of tokens written 3 times in a row ends its worker)
  local E="$EVAL --budgets 512 --stop-repeats 3 --tasks tasks:compound=10,countdown4=10,simple=10" P=$R/loop-stop
  $E --models parallel=default+parallel --out $P-a &
  $E --models sequential=default+sequential --out $P-b &
  wait
  mkdir -p $P
  cp $P-a/runs.jsonl $P/runs-parallel.jsonl
  cp $P-b/runs.jsonl $P/runs-sequential.jsonl
  python -m collab eval --report --out $P
}

if [ "${1:-}" = repetition ]; then repetition; exit; fi
if [ "${1:-}" = loops ]; then loops; exit; fi
parallel_model & sequential_model & wait
for d in adapters countdown3; do
  mkdir -p $R/$d
  cp $R/$d-par/runs.jsonl $R/$d/runs-parallel.jsonl
  cp $R/$d-seq/runs.jsonl $R/$d/runs-sequential.jsonl
  python -m collab eval --report --out $R/$d
done
mkdir -p $R/ablation-0.3.5
cp $R/ablation-0.3.5-a/runs.jsonl $R/ablation-0.3.5/runs-full.jsonl
cp $R/ablation-0.3.5-b/runs.jsonl $R/ablation-0.3.5/runs-blind.jsonl
python -m collab eval --report --out $R/ablation-0.3.5 --baseline "parallel adaptive full W1 b256 siblings-off finisher-off"
