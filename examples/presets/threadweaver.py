"""threadweaver: the model outlines parallel threads; each <Thread> runs as a worker of its own,
and the model continues after </Parallel> reading every thread.

    python examples/presets/threadweaver.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 192))
result = collab.generate(None, "A shop sells pens at 3 dollars and books at 12. What do 4 pens and 2 books cost?",
                         strategy="threadweaver", max_new_tokens=tokens, seed=0)
print(result.tree())
print(result.text)
print("answer:", result.answer)
