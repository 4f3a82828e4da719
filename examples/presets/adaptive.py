"""adaptive: one lead worker decides at run time to hand parts off, with <spawn>task</spawn>,
<wait> and <done> markers; a finisher writes the answer.

    python examples/presets/adaptive.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 128))
result = collab.generate(None, "Compare tea and coffee on taste, caffeine and price.", strategy="adaptive",
                         max_new_tokens=tokens, finisher_tokens=tokens, seed=0, limits={"max_workers": 4})
print(result.tree())
print(result.text)
print("answer:", result.answer)
