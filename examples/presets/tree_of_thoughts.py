"""tree_of_thoughts: a beam search over reasoning steps. Each kept step is forked into sampled
continuations that share its KV blocks; the model scores each step itself (or pass scorer=).

    python examples/presets/tree_of_thoughts.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 48))  # per reasoning step
result = collab.generate(None, "Tom has 3 boxes of 12 eggs and uses 5. How many eggs are left?",
                         strategy="tree_of_thoughts", seed=0,
                         search={"branching": 2, "beam": 2, "max_depth": 3, "step_tokens": tokens})
print(result.search.render())  # the chosen path is marked *
print("answer:", result.answer)
