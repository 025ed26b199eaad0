"""A drop-in for pycocoevalcap 1.2: change one import line, get the same numbers.

    # from pycocoevalcap.eval import PTBTokenizer, Bleu, Meteor, Rouge, Cider
    from capeval.compat import PTBTokenizer, Bleu, Meteor, Rouge, Cider

    gts = PTBTokenizer().tokenize({image_id: [{"caption": ...}, ...]})
    res = PTBTokenizer().tokenize({image_id: [{"caption": ...}]})
    score, scores = Bleu(4).compute_score(gts, res)      # ([b1..b4], [[per image] x 4])
    score, scores = Cider().compute_score(gts, res)      # (mean, numpy array per image)

    # from pycocoevalcap.eval import COCOEvalCap
    from capeval.compat import COCOEvalCap
    coco_eval = COCOEvalCap(coco, coco_result)           # pycocotools COCO objects (or capeval.compat.COCO)
    coco_eval.params["image_id"] = coco_result.getImgIds()
    coco_eval.evaluate()
    coco_eval.eval, coco_eval.imgToEval, coco_eval.evalImgs

Return types and key orders are pycocoevalcap's: per-image scores follow ``gts``'s key order, Bleu
returns lists, Rouge and Cider a ``numpy.float64`` mean and a numpy array, Meteor a float and a
list. ``Bleu.compute_score(..., verbose=1)`` prints the same totals and ratio lines.
``Cider`` is pycocoevalcap's Cider, i.e. CIDEr-D (capeval's ``"CIDEr-D"`` key); it also accepts a
precomputed ``df=`` (:class:`capeval.df.DocumentFrequencies`), which pycocoevalcap cannot.

Differences, all of them errors or warnings rather than silent changes: mismatched ``gts``/``res``
keys raise :class:`~capeval.errors.MissingIdError` (pycocoevalcap: a bare ``AssertionError``);
``Spice`` raises :class:`~capeval.errors.SpiceUnavailableError`, and ``COCOEvalCap`` computes
everything but SPICE (with a :class:`SpiceSkippedWarning`); without Java, ``COCOEvalCap`` leaves
METEOR out with a warning, and ``Meteor`` raises :class:`~capeval.errors.MeteorUnavailableError`.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import metrics as _metrics
from ._inputs import check_caption
from .errors import (
    FormatError,
    InvalidCaptionError,
    MissingIdError,
    SpiceUnavailableError,
    format_ids,
)

SPICE_MESSAGE = (
    "SPICE is not available in capeval: pycocoevalcap's SPICE runs the SPICE 1.0 jar, which downloads "
    "the Stanford CoreNLP 3.6.0 models (about 1 GB) at run time (pycocoevalcap/spice/get_stanford_models.py) "
    "and needs an 8 GB Java heap; run pycocoevalcap.spice.spice.Spice where that download is possible"
)


class SpiceSkippedWarning(UserWarning):
    """``COCOEvalCap.evaluate`` computed every metric but SPICE."""


def _evaluate(gts, res, metrics, **kwargs):
    from .evaluate import evaluate

    if gts.keys() != res.keys():
        missing = [k for k in gts if k not in res]
        extra = [k for k in res if k not in gts]
        raise MissingIdError(
            f"gts and res must have the same keys (pycocoevalcap asserts this): {len(missing)} ids without a result "
            f"{format_ids(missing)}, {len(extra)} results without references {format_ids(extra)}"
        )
    for key, value in res.items():
        if not isinstance(value, list) or len(value) != 1:
            raise InvalidCaptionError(f"res[{key!r}] must be a list holding exactly one caption, got {value!r:.60}")
    return evaluate(gts, res, metrics, tokenizer="none", **kwargs)


class PTBTokenizer:
    """pycocoevalcap's PTBTokenizer: ``{id: [{"caption": str}, ...]}`` -> ``{id: [tokenized str, ...]}``.

    Lower-cases, tokenizes as Stanford's PTBTokenizer 3.4.1 and drops the punctuation tokens, with
    capeval's tokenizer (``tokenizer="ptb"``). Plain strings are accepted in place of the dicts.
    """

    def __init__(self, tokenizer: str = "ptb"):
        self.tokenizer = tokenizer

    def tokenize(self, captions_for_image: Mapping) -> dict:
        from .tokenize import tokenize

        image_ids = []
        texts = []
        for key, captions in captions_for_image.items():
            for j, caption in enumerate(captions):
                caption = check_caption(caption, f"image {key!r}, caption {j}")
                image_ids.append(key)
                texts.append(caption.replace("\n", " "))
        out: dict = {}
        for key, tokens in zip(image_ids, tokenize(texts, self.tokenizer)):
            out.setdefault(key, []).append(tokens)
        return out


class Bleu:
    """BLEU-1..n with pycocoevalcap's ``closest`` reference length: ``([bleu_1..n], [[per image] x n])``."""

    def __init__(self, n: int = 4):
        self._n = n

    def compute_score(self, gts, res, verbose: int = 1):
        result = _evaluate(gts, res, ["bleu"], n=self._n)
        keys = _metrics.get("bleu").keys(_metrics.Options(n=self._n))
        if verbose > 0:
            totals = result.statistics["bleu"].sum(axis=0)
            n = self._n
            comps = {
                "testlen": int(totals[0]),
                "reflen": int(totals[1]),
                "guess": [int(x) for x in totals[2 : 2 + n]],
                "correct": [int(x) for x in totals[2 + n : 2 + 2 * n]],
            }
            print(comps)
            print("ratio:", (comps["testlen"] + 1e-15) / (comps["reflen"] + 1e-9))
        return [result.scores[k] for k in keys], [result.per_item[k].tolist() for k in keys]

    def method(self) -> str:
        return "Bleu"


class Meteor:
    """METEOR 1.5 (``-l en -norm``) through capeval.meteor: ``(score, [per image])``.

    ``backend``: ``"auto"`` (capeval's pure-Python engine where pycocoevalcap's data files are
    installed, no Java needed; else the jar), ``"python"`` or ``"jar"``. Like pycocoevalcap's, it
    checks what it needs when constructed (raising :class:`~capeval.errors.MeteorUnavailableError`
    if it cannot run) and, with the jar, keeps its JVMs for later calls. ``options``:
    :class:`capeval.meteor.Meteor`'s for the jar (``workers``, ``heap``, ...); ``workers`` for Python.
    """

    def __init__(self, backend: str = "auto", **options):
        from .errors import MeteorUnavailableError
        from .meteor import meteor_unavailable_reason, resolve_backend

        self._pool = None
        self._options = {"backend": resolve_backend(backend, options=options), **options}
        if self._options["backend"] == "python":
            reason = meteor_unavailable_reason(backend="python")
            if reason:
                raise MeteorUnavailableError(reason)
        else:
            from .meteor import Meteor as MeteorPool

            self._pool = MeteorPool(**options)
            self._options = {"scorer": self._pool}

    def compute_score(self, gts, res):
        result = _evaluate(gts, res, ["meteor"], meteor_options=self._options)
        key = _key("meteor")
        return float(result.scores[key]), [float(x) for x in result.per_item[key]]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()

    def method(self) -> str:
        return "METEOR"


class Rouge:
    """ROUGE-L (beta 1.2): ``(numpy.float64 mean, numpy array per image)``."""

    def compute_score(self, gts, res):
        per = _evaluate(gts, res, ["rouge_l"]).per_item[_key("rouge_l")].to_numpy(dtype=np.float64)
        return np.mean(per), per

    def method(self) -> str:
        return "Rouge"


class Cider:
    """pycocoevalcap's CIDEr, which is CIDEr-D: ``(numpy.float64 mean, numpy array per image)``.

    ``df``: capeval's extension, precomputed document frequencies (default: those of ``gts``).
    """

    def __init__(self, test=None, refs=None, n: int = 4, sigma: float = _metrics.SIGMA, df=None):
        self._n = n
        self._sigma = sigma
        self._df = df

    def compute_score(self, gts, res):
        result = _evaluate(gts, res, ["cider_d"], n=self._n, sigma=self._sigma, df=self._df)
        per = result.per_item[_key("cider_d")].to_numpy(dtype=np.float64)
        return np.mean(per), per

    def method(self) -> str:
        return "CIDEr"


class Spice:
    """Not available: raises :class:`~capeval.errors.SpiceUnavailableError` with the reason."""

    def __init__(self, *args, **kwargs):
        raise SpiceUnavailableError(SPICE_MESSAGE)

    def method(self) -> str:  # pragma: no cover - never constructed
        return "SPICE"


# -- COCO objects ---------------------------------------------------------------------------------
class COCO:
    """The part of pycocotools' ``COCO`` that caption evaluation uses, for when pycocotools is absent.

    ``COCO(annotation_file)`` (or ``COCO()`` then ``.dataset = {...}; .createIndex()``),
    ``.getImgIds()``, ``.imgToAnns``, ``.loadRes(results_file_or_list)``.
    """

    def __init__(self, annotation_file=None):
        self.dataset: dict = {}
        self.anns: dict = {}
        self.imgs: dict = {}
        self.imgToAnns: defaultdict = defaultdict(list)
        if annotation_file is not None:
            self.dataset = _load_json(annotation_file)
            if not isinstance(self.dataset, dict):
                raise FormatError(f"{annotation_file}: a COCO annotation file is a JSON object, got {type(self.dataset).__name__}")
            self.createIndex()

    def createIndex(self) -> None:  # noqa: N802 - pycocotools' name
        self.anns, self.imgs, self.imgToAnns = {}, {}, defaultdict(list)
        for index, ann in enumerate(self.dataset.get("annotations", [])):
            if not isinstance(ann, Mapping) or "image_id" not in ann:
                raise FormatError(f"annotations [{index}]: an annotation needs an 'image_id'")
            self.imgToAnns[ann["image_id"]].append(ann)
            self.anns[ann.get("id", index)] = ann
        for img in self.dataset.get("images", []):
            self.imgs[img["id"]] = img

    def getImgIds(self, imgIds=(), catIds=()) -> list:  # noqa: N802, N803
        ids = list(self.imgs) if self.imgs else list(self.imgToAnns)
        if imgIds:
            wanted = set(imgIds if isinstance(imgIds, (list, tuple, set)) else [imgIds])
            ids = [i for i in ids if i in wanted]
        return ids

    def loadRes(self, resFile):  # noqa: N802, N803
        anns = _load_json(resFile) if isinstance(resFile, (str, Path)) else resFile
        if not isinstance(anns, list):
            raise FormatError(f"{resFile}: results must be a JSON list of {{\"image_id\", \"caption\"}} objects")
        known = set(self.getImgIds())
        stray = [a.get("image_id") for a in anns if isinstance(a, Mapping) and a.get("image_id") not in known]
        if stray:
            raise MissingIdError(f"results do not correspond to the annotations: {len(stray)} image ids unknown {format_ids(stray)}")
        res = COCO()
        ids = {a["image_id"] for a in anns}
        res.dataset = {"images": [img for img in self.dataset.get("images", []) if img["id"] in ids] or [{"id": i} for i in ids]}
        res.dataset["annotations"] = [dict(a, id=k + 1) for k, a in enumerate(anns)]
        res.createIndex()
        return res


def _load_json(path):
    from .formats import _parse_json, _read_text

    path = Path(path)
    return _parse_json(path, _read_text(path))


class COCOEvalCap:
    """pycocoevalcap's ``COCOEvalCap`` without SPICE: ``evaluate()`` fills ``eval``, ``imgToEval``, ``evalImgs``.

    Prints pycocoevalcap's progress and ``"%s: %0.3f"`` score lines. METEOR is left out, with a
    warning, where Java or the Meteor jar is missing.
    """

    def __init__(self, coco, cocoRes, *, spice: bool = False):  # noqa: N803
        if spice:
            raise SpiceUnavailableError(SPICE_MESSAGE)
        self.evalImgs: list = []
        self.eval: dict = {}
        self.imgToEval: dict = {}
        self.coco = coco
        self.cocoRes = cocoRes
        self.params = {"image_id": coco.getImgIds()}
        self.result = None  # the capeval EvaluationResult behind the numbers

    def evaluate(self) -> None:
        from .evaluate import evaluate

        img_ids = self.params["image_id"]
        gts = {i: self.coco.imgToAnns[i] for i in img_ids}
        res = {i: self.cocoRes.imgToAnns[i] for i in img_ids}
        print("tokenization...")
        tokenizer = PTBTokenizer()
        gts = tokenizer.tokenize(gts)
        res = tokenizer.tokenize(res)
        print("setting up scorers...")
        if gts.keys() != res.keys():
            _evaluate(gts, res, [])  # raises the MissingIdError
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = evaluate(gts, res, None, tokenizer="none")  # coco's set; METEOR skipped where unavailable
        for w in caught:
            if w.category.__name__ != "MetricUnavailableWarning":
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if "METEOR" in result.skipped:
            warnings.warn(f"METEOR left out: {result.skipped['METEOR']}", UserWarning, stacklevel=2)
        self.result = result
        for scorer, keys in _coco_methods():
            if any(key not in result.scores for key in keys):
                continue
            print(f"computing {scorer} score...")
            for key, method in keys.items():
                self.setEval(result.scores[key], method)
                self.setImgToEvalImgs([float(x) for x in result.per_item[key]], gts.keys(), method)
                print(f"{method}: {result.scores[key]:0.3f}")
        warnings.warn("SPICE not computed: " + SPICE_MESSAGE, SpiceSkippedWarning, stacklevel=2)
        self.setEvalImgs()

    def setEval(self, score, method) -> None:  # noqa: N802
        self.eval[method] = score

    def setImgToEvalImgs(self, scores, imgIds, method) -> None:  # noqa: N802, N803
        for img_id, score in zip(imgIds, scores):
            entry = self.imgToEval.setdefault(img_id, {"image_id": img_id})
            entry[method] = score

    def setEvalImgs(self) -> None:  # noqa: N802
        self.evalImgs = [entry for entry in self.imgToEval.values()]


def _key(metric: str) -> str:
    """The output key of a one-key metric."""
    return _metrics.get(metric).keys(_metrics.Options())[0]


def _coco_methods() -> list[tuple[str, dict[str, str]]]:
    """pycocoevalcap's scorers in its order, each with {capeval output key: pycocoevalcap key}."""
    out = []
    for name in _metrics.default_names():
        metric = _metrics.get(name)
        if metric.coco is not None:
            scorer, renamed = metric.coco
            out.append((scorer, {k: renamed.get(k, k) for k in metric.keys(_metrics.Options())}))
    return out


__all__ = ["COCO", "COCOEvalCap", "Bleu", "Cider", "Meteor", "PTBTokenizer", "Rouge", "Spice", "SpiceSkippedWarning"]
