"""Incremental detokenization equals decoding everything, for byte-level BPE (the default model),
SentencePiece with byte fallback, and WordPiece with clean-up; and it decodes O(1) tokens a push."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models

from collab.detokenize import Detokenizer

PIECES = ["▁", "▁the", "▁cat", "s", "é", "▁naïve", "ing", ".", ",", "▁'", "n't", "▁.", "日本", "▁1", "2", "\n", "▁▁"]
WORDS = ["the", "cat", "##s", "naïve", "##ing", ".", ",", "'", "n", "##'", "t", "?", "日本", "1", "##2", "(", ")"]


def sentencepiece():
    """Llama-2-style: pieces with '▁' for a space, bytes <0x00>..<0xFF> as a fallback, and the
    decoded text's first space stripped (the case a context window exists for)."""
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}}
    vocab.update({p: len(vocab) + i for i, p in enumerate(PIECES)})
    tok = Tokenizer(models.BPE(vocab, [], unk_token="<unk>", byte_fallback=True))
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    return tok, len(vocab)


def wordpiece():
    """BERT-style: '##' continues a word, spaces before punctuation are cleaned up."""
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return tok, len(vocab)


@pytest.fixture(scope="module")
def smol_tokenizer():
    from transformers import AutoTokenizer

    from collab.models import default_model_path

    return AutoTokenizer.from_pretrained(default_model_path())


def check(decode, ids, chunks, reader=None):
    """Push `ids` in `chunks`: after each push the text is the full decode, unless that ends in an
    unfinished character (then it is held back); the deltas add up to the text unless the decoder
    rewrote text it had returned (byte fallback turns a valid byte into U+FFFD when an invalid
    one follows it)."""
    reader, deltas, k, shown = reader or Detokenizer(decode), "", 0, []
    for size in chunks:
        deltas += reader.push(ids[k : k + size])
        k += size
        full = decode(ids[:k])
        assert reader.text == full or full.endswith("\ufffd"), (ids[:k], full, reader.text)
        shown.append(reader.text)
        if all(full.startswith(text) for text in shown):
            assert deltas == reader.text
    return reader


def sequences(vocab):
    ids = st.lists(st.integers(0, vocab - 1), min_size=1, max_size=40)
    return ids.flatmap(lambda ids: st.tuples(st.just(ids), st.lists(st.integers(1, 3), min_size=len(ids), max_size=len(ids))))


SP, SP_VOCAB = sentencepiece()
WP, WP_VOCAB = wordpiece()


@settings(max_examples=300, deadline=None)
@given(sequences(SP_VOCAB))
def test_sentencepiece_with_byte_fallback(case):
    ids, chunks = case
    check(lambda x: SP.decode(x, skip_special_tokens=True), ids, chunks)


@settings(max_examples=300, deadline=None)
@given(sequences(WP_VOCAB))
def test_wordpiece_with_cleanup(case):
    ids, chunks = case
    check(lambda x: WP.decode(x), ids, chunks)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_byte_level_bpe_of_the_default_model(smol_tokenizer, data):
    vocab = len(smol_tokenizer)
    ids, chunks = data.draw(sequences(vocab))
    for skip in (True, False):  # as Worker.text, and as the controller reads markers
        check(lambda x: smol_tokenizer.decode(x, skip_special_tokens=skip), ids, chunks)


def test_real_text_in_one_token_pushes_is_exact_and_reads_a_few_tokens_each(smol_tokenizer):
    text = "Let's check: 17 × 24 = 408. Naïve café, 日本語 and emoji 🙂🙂 too.\n\n<think1>\nok</think1>" * 30
    ids = smol_tokenizer(text)["input_ids"]
    windows = []

    def decode(x):
        windows.append(len(x))
        return smol_tokenizer.decode(x)

    reader = check(smol_tokenizer.decode, ids, [1] * len(ids), Detokenizer(decode))
    assert reader.text == smol_tokenizer.decode(ids) and len(ids) > 600
    assert max(windows) <= 8  # not the whole text: O(1) work per token, O(n) per run


def test_a_decoder_that_rewrites_earlier_text_falls_back_to_a_full_decode():
    """A decoder may change text it already returned (here: token 9 upper-cases the character
    before it); the reader then resends the whole text, which stays exact."""
    def decode(ids):
        text = "".join(chr(97 + i) for i in ids)
        return "".join(c.upper() if n == "j" else c for c, n in zip(text, text[1:] + " "))

    reader = Detokenizer(decode)
    assert reader.push([0, 1]) == "ab" and reader.push([2]) == "c"
    assert reader.push([9]) == "abCj" and reader.text == "abCj"
    assert reader.push([3]) == "d" and reader.text == decode([0, 1, 2, 9, 3])
    assert reader.sync([0, 1, 2, 9, 3, 4]) == "abCjde"


def test_flush_gives_the_held_back_text_at_the_end(smol_tokenizer):
    ids = smol_tokenizer(" 日本", add_special_tokens=False)["input_ids"]
    reader = Detokenizer(smol_tokenizer.decode)
    assert reader.push(ids[:2]) == "" and reader.text == ""
    rest = reader.flush()
    assert rest == smol_tokenizer.decode(ids[:2]) == reader.text and rest.endswith("\ufffd")
    assert reader.flush() == ""
