"""hogwild: workers write at once over one cache, each reading the others' tokens as they
appear; a finisher then reads the whole cache and writes the answer.

    python examples/presets/hogwild.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 128))
result = collab.generate(None, "Plan a weekend in Rome: one of you covers sights, the other food.",
                         strategy="hogwild", workers=2, max_new_tokens=tokens, finisher_tokens=tokens, seed=0)
print(result.text)
print("answer:", result.answer)
