"""Out-of-distribution and anomaly scores from exact likelihoods, and how to judge them.

Convention everywhere: out-of-distribution (OOD) is the positive class and every score is oriented
so that HIGHER MEANS MORE ANOMALOUS. With it, a score that ranks OOD inputs as more typical than
in-distribution ones (the likelihood's trap: a model of Fashion-MNIST gives MNIST digits a higher
likelihood, Nalisnick et al., ICLR 2019) shows as an AUROC below 0.5.

The scores (each per image, from integer images and `build_model` models):
- `likelihood_scores`: -log p(x), nats per image.
- `likelihood_ratio_scores`: -LLR(x) = -(log p(x) - log p_background(x)) (Ren et al., NeurIPS 2019;
  their background model is the same architecture trained on perturbed inputs:
  `training.run --perturb-rate MU --weight-decay W`, whose likelihoods `denoised_log_probs` rids
  of the floor the noise put in them; a short such run, or a small model that sees a few rows
  around each pixel, separated Fashion-MNIST from MNIST best here: BUILD_NOTES.md).
- `complexity_scores`: S(x) = -log2 p(x) - L(x), L(x) the bits a generic lossless compressor needs
  for x (Serra et al., ICLR 2020): PNG or WebP lossless, JPEG XL with the `ood` extra.
- `typicality_scores`: |mean NLL of a group of M inputs - the in-distribution mean NLL| (Nalisnick
  et al., 2019b); M = 1 scores single inputs.

`auroc`, `auprc` and `fpr_at_95_tpr` (scikit-learn's) judge a score on in- and out-of-distribution
sets; `threshold` picks the cut that accepts a given share of in-distribution validation images, and
`is_anomalous` applies it to new inputs.
"""

import io
import numbers

import numpy as np

from pixel_keras.extras import install_line
from pixel_keras.inspection import model_spec, num_classes_of
from pixel_keras.likelihood import log_prob

# Generic lossless compressors for the input complexity, by name: Pillow format and save options.
# JPEG XL (Serra et al.'s best) needs the pillow-jxl-plugin package (the `ood` extra), loaded on use.
COMPRESSORS = {"png": ("PNG", {"optimize": True}), "webp": ("WEBP", {"lossless": True, "method": 6, "quality": 100}),
               "jxl": ("JXL", {"lossless": True})}
PLUGINS = {"jxl": "pillow_jxl"}
# The largest log-probability taken as 0: float32 arithmetic of a probability of 1 may round above it.
LOG_PROB_ROUNDING = 1e-5


def compressor_available(compressor):
    """Whether Pillow can write `compressor`'s format here (JPEG XL: pillow-jxl-plugin installed)."""
    if compressor not in PLUGINS:
        return compressor in COMPRESSORS
    import importlib.util

    return importlib.util.find_spec(PLUGINS[compressor]) is not None


def _check_images(images, what="images"):
    array = np.asarray(images)
    if array.ndim != 4 or len(array) == 0:
        raise ValueError(f"Expected a non-empty batch of {what} (N, H, W, C). Received shape {array.shape}.")
    return array


def _check_number(value, name):
    """`value` as a float: a finite real number (numpy's too, not a bool or a string), else a
    ValueError naming `name`."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f"Expected {name} to be a finite number. Received {name}={value!r}.")
    return float(value)


def _check_num_levels(num_levels):
    """`num_levels` as an int in [2, 256] (numpy integers too), else a ValueError naming it."""
    if not isinstance(num_levels, numbers.Integral) or isinstance(num_levels, bool) or not 2 <= num_levels <= 256:
        raise ValueError(f"Expected num_levels to be an integer in [2, 256]. Received num_levels={num_levels!r}.")
    return int(num_levels)


def _check_finite_values(values, name):
    """`values` as a float64 array with no NaN or infinity, else a ValueError naming `name`."""
    array = np.asarray(values)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"Expected {name} to be numbers. Received an array of dtype {array.dtype}.")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Expected finite {name}. Received {int(np.sum(~np.isfinite(array)))} that are NaN or "
                         "infinite.")
    return array


def _check_levels_of(images, num_levels):
    """Integer images whose values are whole numbers in [0, num_levels - 1], as int64; else a
    ValueError naming `images` (a value outside would wrap through uint8 silently)."""
    array = _check_finite_values(_check_images(images), "images")
    if np.any(array != np.round(array)):
        raise ValueError("Expected images of whole-number levels. Received fractional values.")
    low, high = array.min(), array.max()
    if low < 0 or high > num_levels - 1:
        raise ValueError(f"Expected images with levels in [0, {num_levels - 1}] (num_levels={num_levels}). "
                         f"Received values in [{low:g}, {high:g}].")
    return array.astype(np.int64)


def check_same_spec(model, background):
    """Refuse a background model whose image shape or levels differ from the main model's: the
    ratio of two likelihoods is only meaningful over the same space of images."""
    main, other = model_spec(model), model_spec(background)
    if main != other:
        raise ValueError(f"The background model scores images of shape {other[0]} with {other[1]} levels; "
                         f"the model, {main[0]} with {main[1]} levels: they must be the same.")


def likelihood_scores(model, images, *, labels=None, batch_size=256):
    """-log p(x) in nats per image (numpy (N,)): the negative log-likelihood, higher = more anomalous."""
    return -log_prob(model, _check_images(images), batch_size, labels=labels).astype(np.float64)


def denoised_log_probs(log_probs, perturb_rate, num_levels):
    """Per-sub-pixel log-probabilities of a background trained on perturbed images, with the
    perturbation's own share taken out.

    Trained on images whose values are each replaced, with probability mu, by a uniform level, a
    model learns p = (1 - mu) q + mu / L for every value: q, the clean value's conditional, plus a
    floor that the noise, not the image, puts there. The ratio counts that floor against every
    confidently predicted pixel (~0.22 nats each at mu = 0.2), which penalises images of many
    such pixels (MNIST's black field) and so hides them; q = (p - mu / L) / (1 - mu), clipped to
    [mu / L, 1] (estimation error can step outside [0, 1]), does not (BUILD_NOTES.md, "Likelihood-ratio
    backgrounds"). Rate 0 returns the input unchanged.
    """
    from pixel_keras.perturbation import check_perturb_rate

    rate = check_perturb_rate(perturb_rate)
    num_levels = _check_num_levels(num_levels)
    log_probs = _check_finite_values(log_probs, "log_probs")
    if np.any(log_probs > LOG_PROB_ROUNDING):
        raise ValueError(f"Expected log_probs <= 0 (log-probabilities). Received a largest value of "
                         f"{log_probs.max():g}.")
    if rate == 0.0:
        return log_probs
    floor = rate / num_levels
    return np.log(np.clip((np.exp(log_probs) - floor) / (1.0 - rate), floor, 1.0))


def background_log_prob(background, images, *, perturb_rate=0.0, labels=None, batch_size=256):
    """log p_background(x) in nats per image (numpy (N,)); for `perturb_rate` > 0 (the
    `--perturb-rate` the background was trained with), summed over `denoised_log_probs`."""
    from pixel_keras.perturbation import check_perturb_rate

    images = _check_images(images)
    if not check_perturb_rate(perturb_rate):  # a bad rate refused before any scoring
        return log_prob(background, images, batch_size, labels=labels).astype(np.float64)
    _, num_levels = model_spec(background)
    terms = log_prob(background, images, batch_size, labels=labels, per_pixel=True)
    return denoised_log_probs(terms, perturb_rate, num_levels).sum(axis=(1, 2, 3))


def likelihood_ratio_scores(model, background, images, *, labels=None, batch_size=256, background_perturb_rate=0.0):
    """-LLR(x) = log p_background(x) - log p(x) in nats per image: higher = more anomalous.

    Args:
        model: the model of the in-distribution data.
        background: a model of the same image shape and levels that captures the background
            statistics (pixel counts, smoothness) that dominate log p: one trained on perturbed
            inputs, or one of small receptive field.
        background_perturb_rate: the perturbation rate the background was trained with (its
            run.json's `perturb_rate`): its log-probabilities are then `denoised_log_probs`.
            0 uses them as they are.
    """
    check_same_spec(model, background)
    images = _check_images(images)
    background_labels = labels if num_classes_of(background) is not None else None  # an unconditional background
    return (likelihood_scores(model, images, labels=labels, batch_size=batch_size)
            + background_log_prob(background, images, perturb_rate=background_perturb_rate,
                                  labels=background_labels, batch_size=batch_size))


def compressed_bits(images, num_levels, compressor="png"):
    """L(x): the bits of each image (N,) compressed by a generic lossless compressor (`COMPRESSORS`),
    the image's levels spread over 0 .. 255 (8 bits per value: how the compressor sees any image)."""
    from PIL import Image

    if compressor not in COMPRESSORS:
        raise ValueError(f"Expected compressor to be one of {sorted(COMPRESSORS)}. Received compressor={compressor!r}.")
    num_levels = _check_num_levels(num_levels)
    images = _check_levels_of(images, num_levels)
    if images.shape[-1] not in (1, 3):
        raise ValueError(f"A generic compressor takes 1 or 3 channels. Received images of shape {images.shape}.")
    if compressor in PLUGINS:
        if not compressor_available(compressor):
            raise ValueError(f"Compressor {compressor!r} needs the {PLUGINS[compressor]} module: "
                             f"{install_line('ood')}.")
        __import__(PLUGINS[compressor])  # registers the format with Pillow
    file_format, options = COMPRESSORS[compressor]
    scaled = np.round(images.astype(np.float64) * 255.0 / (num_levels - 1)).astype(np.uint8)
    bits = []
    for image in scaled:
        encoded = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(encoded, format=file_format, **options)
        bits.append(8 * len(encoded.getvalue()))
    return np.asarray(bits, np.float64)


def complexity_scores(model, images, *, compressor="png", labels=None, batch_size=256):
    """S(x) = -log2 p(x) - L(x) in bits per image: how much worse the model codes x than a generic
    compressor does (Serra et al., ICLR 2020); higher = more anomalous."""
    images = _check_images(images)
    _, num_levels = model_spec(model)
    nll_bits = likelihood_scores(model, images, labels=labels, batch_size=batch_size) / np.log(2.0)
    return nll_bits - compressed_bits(images, num_levels, compressor)


def mean_nll(model, images, *, labels=None, batch_size=256):
    """The mean -log p(x) in nats of in-distribution images (e.g. the training set): the reference
    of `typicality_scores`."""
    return float(np.mean(likelihood_scores(model, images, labels=labels, batch_size=batch_size)))


def typicality_scores(model, images, reference_nll, *, group_size=1, labels=None, batch_size=256):
    """|mean -log p over each group of `group_size` consecutive images - reference_nll| in nats
    (Nalisnick et al. 2019b's typicality test): one score per group, (N // group_size,); a tail of
    fewer than `group_size` images is left out. Higher = more anomalous.

    Args:
        reference_nll: the in-distribution mean NLL in nats (`mean_nll` of the training images).
        group_size: M inputs judged together (M = 1: single inputs).
    """
    images = _check_images(images)
    if (not isinstance(group_size, numbers.Integral) or isinstance(group_size, bool)
            or not 1 <= group_size <= len(images)):
        raise ValueError(f"Expected group_size to be an integer in [1, {len(images)}] (the number of images). "
                         f"Received group_size={group_size!r}.")
    group_size = int(group_size)
    reference_nll = _check_number(reference_nll, "reference_nll")
    nll = likelihood_scores(model, images, labels=labels, batch_size=batch_size)
    groups = len(nll) // group_size
    return np.abs(nll[:groups * group_size].reshape(groups, group_size).mean(axis=1) - float(reference_nll))


def _labelled(in_scores, out_scores):
    scores = [np.asarray(s, np.float64).reshape(-1) for s in (in_scores, out_scores)]
    for name, values in zip(("in-distribution", "out-of-distribution"), scores):
        if values.size == 0:
            raise ValueError(f"Expected at least one {name} score. Received none.")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"Expected finite {name} scores. Received {int(np.sum(~np.isfinite(values)))} "
                             "that are NaN or infinite.")
    truth = np.concatenate([np.zeros(scores[0].size), np.ones(scores[1].size)])  # OOD is the positive class
    return truth, np.concatenate(scores)


def auroc(in_scores, out_scores):
    """Area under the ROC curve, OOD positive, higher score = more anomalous: 1 separates perfectly,
    0.5 is chance, below 0.5 ranks OOD inputs as the more typical ones."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(*_labelled(in_scores, out_scores)))


def auprc(in_scores, out_scores):
    """Area under the precision-recall curve (average precision), OOD positive."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(*_labelled(in_scores, out_scores)))


def fpr_at_95_tpr(in_scores, out_scores):
    """The share of in-distribution inputs flagged at the lowest cut that flags 95% of the OOD ones."""
    from sklearn.metrics import roc_curve

    false_positive, true_positive, _ = roc_curve(*_labelled(in_scores, out_scores), drop_intermediate=False)  # every cut
    return float(false_positive[np.argmax(true_positive >= 0.95)])


def threshold(in_validation_scores, accept=0.95):
    """The cut that accepts at least `accept` of in-distribution validation inputs (their scores at
    or below it; one input more at most): decide single inputs with `is_anomalous(scores, cut)`."""
    scores = _check_finite_values(in_validation_scores, "in_validation_scores").reshape(-1)
    if scores.size == 0:
        raise ValueError("Expected a non-empty set of in_validation_scores. Received none.")
    if not isinstance(accept, numbers.Real) or isinstance(accept, bool) or not 0 < accept < 1:
        raise ValueError(f"Expected accept, the share of in-distribution inputs accepted, in (0, 1). Received accept={accept!r}.")
    return float(np.quantile(scores, accept, method="higher"))


def is_anomalous(scores, cut):
    """True where a score is above the cut from `threshold`.

    Raises:
        ValueError: for a NaN or infinite score or cut (a NaN would count as normal).
    """
    return _check_finite_values(scores, "scores") > _check_number(cut, "cut")
