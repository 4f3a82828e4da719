"""best_of_n: independent sampled workers; a scorer you supply (here a checker that knows what a
right answer looks like) picks the best one.

    python examples/presets/best_of_n.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os
import re

import collab


def scorer(text: str) -> float:
    """1 per distinct prime between 50 and 70 that the text names."""
    numbers = {int(n) for n in re.findall(r"\d+", text)}
    return float(sum(50 < n < 70 and all(n % d for d in range(2, n)) for n in numbers))


tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 64))
result = collab.generate(None, "Name the prime numbers between 50 and 70.", strategy="best_of_n",
                         workers=3, scorer=scorer, max_new_tokens=tokens, seed=0)
print(result.text)
print("scores:", result.scores)
print("answer:", result.answer)
