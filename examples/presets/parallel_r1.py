"""parallel_r1: the root opens a <Parallel> block when it wants to; two paths (<Path> ... </Path>)
start at once without seeing each other; the root then writes a <Summary> that reads both.

    python examples/presets/parallel_r1.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 128))
result = collab.generate(None, "Is 91 a prime number?", strategy="parallel_r1", max_new_tokens=tokens, seed=0)
print(result.tree())
print(result.text)
print("answer:", result.answer)
