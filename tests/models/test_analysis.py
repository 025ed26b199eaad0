"""Caption-quality counts and the DropHead study's exact sign-flip test, against values worked out by hand."""

import pytest

from capeval_models.analysis import (
    caption_quality,
    has_repeated_ngram,
    reference_quality,
    repeated_ngram_share,
    wrong_shape_share,
)
from capeval_models.study import sign_flip_p_value

ISSUE_CAPTION = "a yellow circle a large yellow circle and a large red triangle"  # issue 17's example


def test_repeated_ngrams():
    assert has_repeated_ngram(ISSUE_CAPTION, 2)  # "yellow circle" twice
    assert not has_repeated_ngram(ISSUE_CAPTION, 3)  # no trigram occurs twice
    assert has_repeated_ngram("a red square and a red square", 3)
    assert not has_repeated_ngram("a red square", 2)
    captions = [ISSUE_CAPTION, "a red square", "a red square and a red circle", "two boxes"]
    assert repeated_ngram_share(captions, 2) == 0.5  # the first and the third ("a red")
    assert repeated_ngram_share(captions, 3) == 0.0
    # references are split like the models' captions (lower case, no punctuation) before counting
    assert reference_quality({"1": ["A red square, a red circle.", "Two boxes"]}) == {
        "repeated_2gram": 0.5, "repeated_3gram": 0.0}


def test_wrong_shape_names_count_synonyms_as_the_same_shape():
    refs = {"1": ["a yellow disk above a red diamond"], "2": ["a big box"], "3": ["a plus sign on the left"]}
    preds = {"1": ISSUE_CAPTION,  # circle = disk, but no triangle in the references: wrong
             "2": "a large square",  # square = box: right
             "3": "two crosses"}  # crosses = plus sign: right
    assert wrong_shape_share(preds, refs) == pytest.approx(1 / 3)
    q = caption_quality(preds, refs, shapes=True)
    assert q == {"repeated_2gram": pytest.approx(1 / 3), "repeated_3gram": 0.0, "wrong_shape": pytest.approx(1 / 3)}
    assert caption_quality(preds, refs, shapes=False)["wrong_shape"] is None


def test_sign_flip_p_values_by_hand():
    # d = (1, 2, 3): mean 2; of the 8 sign flips only (+,+,+) and (-,-,-) reach |mean| 2
    assert sign_flip_p_value([1.0, 2.0, 3.0]) == 0.25
    # d = (1, -1): mean 0, every flip reaches it
    assert sign_flip_p_value([1.0, -1.0]) == 1.0
    # d = (3, -1): |mean| 1; flips give |mean| 1, 2, 2, 1 -> all four reach 1
    assert sign_flip_p_value([3.0, -1.0]) == 1.0
    # five positive differences: only the all-plus and all-minus flips reach the mean: 2 / 32
    assert sign_flip_p_value([1.0, 1.5, 2.0, 0.5, 1.0]) == 2 / 32
    with pytest.raises(ValueError):
        sign_flip_p_value([])
