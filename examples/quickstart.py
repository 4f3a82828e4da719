"""Two workers of the embedded default model answer one question over a shared KV cache."""

import collab

result = collab.generate(None, "Plan a three-course dinner for a vegetarian guest.", workers=2, max_new_tokens=96, seed=0)
for worker in result.workers:
    print(f"--- {worker.name}\n{worker.text}\n")
print(result.stats)
