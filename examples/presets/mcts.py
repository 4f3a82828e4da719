"""mcts: Monte Carlo tree search over reasoning steps: select by UCT, expand by forking (the
forks share the path's KV blocks), score each new step, back the value up the tree.

    python examples/presets/mcts.py    # COLLAB_EXAMPLE_TOKENS=16 for a quick run
"""

import os

import collab

tokens = int(os.environ.get("COLLAB_EXAMPLE_TOKENS", 48))  # per reasoning step
result = collab.generate(None, "Tom has 3 boxes of 12 eggs and uses 5. How many eggs are left?",
                         strategy="mcts", seed=0,
                         search={"branching": 2, "max_depth": 3, "iterations": 3, "step_tokens": tokens})
print(result.search.render())  # the chosen path is marked *
print("answer:", result.answer)
