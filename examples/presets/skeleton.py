"""skeleton: one worker writes a numbered outline; each point is then written out by a worker
of its own, in parallel, and the first worker combines them.

    python examples/presets/skeleton.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 128))
result = collab.generate(None, "Give three tips for writing clear emails.", strategy="skeleton",
                         max_new_tokens=tokens, seed=0)
print(result.tree())
print(result.text)
print("answer:", result.answer)
