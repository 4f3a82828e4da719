"""End-of-step detection."""

import pytest

from collab.steps import StepDetector


def ends(text, chunk=1):
    d = StepDetector()
    out = []
    for i in range(chunk, len(text) + chunk, chunk):
        out += d.feed(text[:i])
    return [text[:o].rstrip()[-6:] for o in out]


@pytest.mark.parametrize("chunk", [1, 3, 50])
def test_paragraph_break_after_a_sentence_ends_a_step(chunk):
    text = "Add them: 1+2=3.\n\nThen double\n\nit to 6!\n\nok"
    assert ends(text, chunk) == ["1+2=3.", " to 6!"]


def test_never_inside_code_or_display_math():
    text = "Code:\n\n```\nx = 1.\n\ny = 2.\n```\nDone.\n\n$$\na = b.\n\n$$\nQ.E.D.\n\nend"
    assert ends(text) == ["Code:", "\nDone.", "Q.E.D."]


def test_a_custom_rule():
    d = StepDetector(is_end=lambda before: before.endswith("!"))
    assert d.feed("a.\n\nb!\n\nc") == [len("a.\n\nb!\n\n")]


def test_the_runtime_records_step_ends():
    import collab
    from conftest import tiny_model
    from scripted import CharTokenizer, Script

    prompt = "Q\n"
    script = "One step.\n\nTwo steps.\n\nthree"
    r = collab.generate(
        tiny_model(vocab_size=128, eos_token_id=3), prompt, tokenizer=CharTokenizer(), template=None, workers=1,
        protocol="markers", max_new_tokens=40, logits_processor=[Script(len(prompt), [script])],
    )
    assert [e.info["steps"] for e in r.events if e.kind == "step_end"] == [1, 2]
    assert r.workers[0].step_ends == 2


def test_a_custom_rule_through_generate():
    import collab
    from conftest import tiny_model
    from scripted import CharTokenizer, Script

    prompt = "Q\n"
    script = "One step.\n\nTwo steps!\n\nthree"
    r = collab.generate(
        tiny_model(vocab_size=128, eos_token_id=3), prompt, tokenizer=CharTokenizer(), template=None, workers=1,
        protocol="markers", max_new_tokens=40, logits_processor=[Script(len(prompt), [script])],
        step_end=lambda before: before.endswith("!"),
    )
    assert [e.info["steps"] for e in r.events if e.kind == "step_end"] == [1]


def test_a_step_end_that_is_not_callable_is_refused():
    import pytest

    import collab
    from conftest import tiny_model

    with pytest.raises(TypeError, match="step_end=.*give a callable"):
        collab.generate(tiny_model(), [1, 2], template=None, step_end="\n\n")
