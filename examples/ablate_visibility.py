"""Same seed, same prompt: do workers that see each other write differently from independent ones?"""

import collab

model, tokenizer = collab.load()
question = "List four prime numbers greater than 50, each worker finding different ones."
for visibility in ("full", "none"):
    result = collab.generate(model, question, tokenizer=tokenizer, workers=2, visibility=visibility,
                             max_new_tokens=48, do_sample=True, temperature=0.7, seed=0)
    print(f"===== visibility={visibility}")
    print(result.text, "\n")
