"""apr (adaptive parallel reasoning): the model calls sub-searches, each runs as a worker of its
own, and the caller continues once it can read their results.

    python examples/presets/apr.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 192))
result = collab.generate(None, "Use 3, 5 and 7 once each with + and * to make 26.", strategy="apr",
                         max_new_tokens=tokens, seed=0)
print(result.tree())
print(result.text)
print("answer:", result.answer)
