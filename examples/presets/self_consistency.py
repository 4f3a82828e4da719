"""self_consistency: independent sampled workers (they do not see each other); the answer is
the majority of their extracted answers.

    python examples/presets/self_consistency.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 64))
result = collab.generate(None, "How many days are in a week?", strategy="self_consistency",
                         workers=3, max_new_tokens=tokens, seed=0)
print(result.text)
print("votes:", result.answers)
print("answer:", result.answer)
