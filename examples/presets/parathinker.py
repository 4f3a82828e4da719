"""parathinker: a fixed number of independent thinking paths (<think1>, <think2>, ...) start at
once; the root then writes a <summary> that reads them all.

    python examples/presets/parathinker.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 128))
result = collab.generate(None, "Is 91 a prime number?", strategy="parathinker", workers=2,  # two paths
                         max_new_tokens=tokens, seed=0)
print(result.tree())
print(result.text)
print("answer:", result.answer)
