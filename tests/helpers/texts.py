"""Texts the `rnnfast char` tests build themselves: nothing is downloaded, nothing is shipped with the tests.

english_like(n, seed): English-like prose from a small template grammar over common words (sentences,
    commas, quotes, names, years, paragraphs): 58 distinct characters, the same text for a seed on every
    Python version (random.Random's choice, randint and choices are stable for a seed).
python_docs(): the prose of the Python documentation's topics that ships with Python (pydoc_data): 103
    distinct characters on Python 3.11; None where this Python does not ship it.
python_source(n): the standard library's source, `rnnfast char`'s default corpus (code, not prose).
make_text(n, seed): a small text of a dozen words in random lines (the CLI tests' quick runs).
"""

import math
import random
from collections import Counter

import numpy as np

from rnnfast import char

DET = "the a this that every no some each my our their his her its".split()
ADJ = ("old new small large long short great little good bad early late young high low strong quiet dark bright "
       "cold warm open simple common certain whole free full true clear").split()
NOUN = ("man woman child house world day night year time way life hand eye word thing place king city river "
        "road book friend letter door heart mind reason virtue nature water fire horse church law truth death "
        "war country money voice face master servant garden field").split()
VERB = ("saw made took found gave told knew left kept held brought wrote read heard felt said loved feared "
        "followed praised carried opened closed built lost won sought").split()
IVERB = "came went lived died slept waited spoke wept laughed stood fell rose".split()
PREP = "in on under over with without near beyond from into through against before after".split()
CONJ = "and but yet so for or".split()
ADV = "never always often slowly quickly again there here indeed perhaps".split()
NAME = "John Mary Peter Anne Thomas Elizabeth London Rome Paris Henry Caesar Plato".split()
PRON = "he she they we I it".split()


def _noun_phrase(r):
    if r.random() < 0.15:
        return r.choice(NAME)
    words = [r.choice(DET)]
    if r.random() < 0.4:
        words.append(r.choice(ADJ))
    words.append(r.choice(NOUN) + ("s" if r.random() < 0.2 else ""))
    return " ".join(words)


def _clause(r):
    parts = [r.choice(PRON) if r.random() < 0.3 else _noun_phrase(r)]
    if r.random() < 0.15:
        parts.append(r.choice(ADV))
    if r.random() < 0.6:
        parts += [r.choice(VERB), _noun_phrase(r)]
    else:
        parts.append(r.choice(IVERB))
    if r.random() < 0.5:
        parts += [r.choice(PREP), _noun_phrase(r)]
    return " ".join(parts)


def _sentence(r):
    s = _clause(r)
    while r.random() < 0.35:
        s += (", " if r.random() < 0.7 else "; ") + r.choice(CONJ) + " " + _clause(r)
    if r.random() < 0.08:
        s += f", in {r.randint(1500, 1700)}"
    s = s[0].upper() + s[1:] + r.choices([".", "?", "!", ":"], [0.85, 0.07, 0.05, 0.03])[0]
    return '"' + s + '"' if r.random() < 0.1 else s


def english_like(n, seed=0):
    """n characters of English-like prose (paragraphs of 2-7 sentences)."""
    r = random.Random(seed)
    out, size = [], 0
    while size < n:
        para = " ".join(_sentence(r) for _ in range(r.randint(2, 7))) + "\n\n"
        out.append(para)
        size += len(para)
    return "".join(out)[:n]


def python_docs():
    """The Python documentation's topics (prose with code examples), or None without pydoc_data."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        return None
    return "".join(topics[k] for k in sorted(topics))


def python_source(n):
    return char.stdlib_corpus(cap=n)[0]


# letters, whitespace and the punctuation of ordinary prose: what a sample of a model that learned
# anything about a text made of them is mostly made of
COMMON = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \n.,;:'\"!?-()")


def common_fraction(s):
    """The fraction of s's characters that are letters, whitespace or common punctuation."""
    return sum(c in COMMON for c in s) / max(1, len(s))


def unigram_bits(s, text):
    """Mean bits per character of s under text's character frequencies (add-one smoothed): about the text's
    own unigram entropy (unigram_entropy) for a sample made of the text's usual characters, far more for
    one made of its rare ones."""
    counts = Counter(text)
    total = len(text) + len(counts) + 1
    return sum(-math.log2((counts[c] + 1) / total) for c in s) / max(1, len(s))


def unigram_entropy(text):
    return -sum(k / len(text) * math.log2(k / len(text)) for k in Counter(text).values())


def make_text(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "and", "runs", "away", "home"]
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(words, size=int(rng.integers(3, 9)))) + ".\n"
        out.append(line)
        size += len(line)
    return "".join(out)[:n]
