"""asyncthink: an organizer hands parts of the problem to workers with <FORK1>...</FORK1>, keeps
thinking while they run, and reads each one's result when it writes <JOIN1> (asynchronous joins).

    python examples/presets/asyncthink.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 128))
result = collab.generate(None, "What is 17 * 24 + 13 * 11?", strategy="asyncthink", max_new_tokens=tokens, seed=0)
print(result.tree())
print(result.text)
print("answer:", result.answer)
