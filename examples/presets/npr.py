"""npr: the model writes a <guideline> of numbered <plan>s; each <step> runs as a worker of its
own at the same positions, and the <takeaway> reads them all.

    python examples/presets/npr.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 192))
result = collab.generate(None, "What is (3 + 4) * (5 + 6)? The two sums are independent.",
                         strategy="npr", max_new_tokens=tokens, seed=0)
print(result.tree())
print(result.text)
print("answer:", result.answer)
