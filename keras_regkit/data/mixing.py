"""Batch-level MixUp and CutMix as plain TensorFlow functions.

Each function takes a batch of images (B, H, W, C), soft or one-hot labels
(B, K) and a stateless seed (a shape-(2,) integer tensor), and returns the
mixed batch. Every image is paired with another of the same batch through a
random permutation; the labels are mixed with the same weights as the
pixels, so every label row still sums to 1. The pipeline draws a fresh seed
per batch from `tf.data.Dataset.random`, which makes mixing reproducible
and safe under a parallel `map`.
"""

from __future__ import annotations

import tensorflow as tf


def _split(seed: tf.Tensor, count: int) -> list[tf.Tensor]:
    return tf.unstack(tf.random.experimental.stateless_split(seed, count))


def sample_beta(alpha: float, seed: tf.Tensor) -> tf.Tensor:
    """One draw of lambda ~ Beta(alpha, alpha), from two Gamma draws.

    Args:
        alpha: the concentration, > 0.
        seed: a stateless seed, shape (2,).

    Returns:
        A float32 scalar in [0, 1].
    """
    seed_a, seed_b = _split(seed, 2)
    a = tf.random.stateless_gamma([], seed_a, alpha=alpha)
    b = tf.random.stateless_gamma([], seed_b, alpha=alpha)
    return a / tf.maximum(a + b, 1e-12)


def _partners(batch_size: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    return tf.random.experimental.stateless_shuffle(
        tf.range(batch_size), seed=seed)


def _check_alpha(alpha: float) -> None:
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or \
            not alpha > 0:
        raise ValueError(
            "Invalid value received for argument `alpha`. Expected a float > 0 "
            f"(the Beta concentration). Received: alpha={alpha!r}")


def mixup(images: tf.Tensor, labels: tf.Tensor, alpha: float,
          seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """MixUp: a convex combination of each image with a random partner.

    `x' = lam * x + (1 - lam) * x[perm]`, `y' = lam * y + (1 - lam) *
    y[perm]`, with one `lam ~ Beta(alpha, alpha)` per batch.

    Args:
        images: float images (B, H, W, C).
        labels: float soft labels (B, K).
        alpha: the Beta concentration, > 0.
        seed: a stateless seed, shape (2,).

    Returns:
        `(images, labels)` mixed.

    References:
        - Zhang et al., "mixup: Beyond Empirical Risk Minimization",
          ICLR 2018.
    """
    seed_lam, seed_perm = _split(seed, 2)
    _check_alpha(alpha)
    lam = sample_beta(alpha, seed_lam)
    perm = _partners(tf.shape(images)[0], seed_perm)
    mixed_images = lam * images + (1.0 - lam) * tf.gather(images, perm)
    mixed_labels = lam * labels + (1.0 - lam) * tf.gather(labels, perm)
    return mixed_images, mixed_labels


def cutmix_box(
    height: tf.Tensor, width: tf.Tensor, lam: tf.Tensor, seed: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """A box covering about `1 - lam` of an image, clipped to its borders.

    The box has sides `sqrt(1 - lam)` times the image's and a uniformly
    drawn centre.

    Returns:
        `(top, left, bottom, right)` int32 scalars (bottom/right exclusive).
    """
    ratio = tf.sqrt(1.0 - lam)
    cut_h = tf.cast(tf.round(ratio * tf.cast(height, tf.float32)), tf.int32)
    cut_w = tf.cast(tf.round(ratio * tf.cast(width, tf.float32)), tf.int32)
    seed_y, seed_x = _split(seed, 2)
    cy = tf.random.stateless_uniform([], seed_y, 0, height, dtype=tf.int32)
    cx = tf.random.stateless_uniform([], seed_x, 0, width, dtype=tf.int32)
    top = tf.clip_by_value(cy - cut_h // 2, 0, height)
    bottom = tf.clip_by_value(cy - cut_h // 2 + cut_h, 0, height)
    left = tf.clip_by_value(cx - cut_w // 2, 0, width)
    right = tf.clip_by_value(cx - cut_w // 2 + cut_w, 0, width)
    return top, left, bottom, right


def cutmix(images: tf.Tensor, labels: tf.Tensor, alpha: float,
           seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """CutMix: paste a box from a random partner into each image.

    One `lam ~ Beta(alpha, alpha)` and one box per batch; the labels are
    weighted by the area actually kept after clipping the box to the image.
    Arguments and result are those of `mixup`.

    References:
        - Yun et al., "CutMix: Regularization Strategy to Train Strong
          Classifiers with Localizable Features", ICCV 2019.
    """
    seed_lam, seed_box, seed_perm = _split(seed, 3)
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    _check_alpha(alpha)
    lam = sample_beta(alpha, seed_lam)
    top, left, bottom, right = cutmix_box(height, width, lam, seed_box)
    rows = tf.range(height)
    cols = tf.range(width)
    inside = ((rows[:, None] >= top) & (rows[:, None] < bottom)
              & (cols[None, :] >= left) & (cols[None, :] < right))
    inside = tf.cast(inside, images.dtype)[None, :, :, None]
    perm = _partners(shape[0], seed_perm)
    mixed_images = images * (1.0 - inside) + tf.gather(images, perm) * inside
    area = tf.cast((bottom - top) * (right - left), tf.float32)
    kept = 1.0 - area / tf.cast(height * width, tf.float32)
    kept = tf.cast(kept, labels.dtype)
    mixed_labels = kept * labels + (1.0 - kept) * tf.gather(labels, perm)
    return mixed_images, mixed_labels


def mix_batch(images: tf.Tensor, labels: tf.Tensor, mixup_alpha: float,
              cutmix_alpha: float,
              seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Applies MixUp or CutMix to a batch; with both on, each half the time.

    Args:
        images: float images (B, H, W, C).
        labels: float soft labels (B, K).
        mixup_alpha: MixUp's Beta concentration; 0 turns MixUp off.
        cutmix_alpha: CutMix's Beta concentration; 0 turns CutMix off.
        seed: a stateless seed, shape (2,).

    Returns:
        `(images, labels)`, unchanged when both alphas are 0.
    """
    if mixup_alpha > 0 and cutmix_alpha > 0:
        seed_pick, seed_mix = _split(seed, 2)
        pick = tf.random.stateless_uniform([], seed_pick)
        return tf.cond(
            pick < 0.5,
            lambda: mixup(images, labels, mixup_alpha, seed_mix),
            lambda: cutmix(images, labels, cutmix_alpha, seed_mix),
        )
    if mixup_alpha > 0:
        return mixup(images, labels, mixup_alpha, seed)
    if cutmix_alpha > 0:
        return cutmix(images, labels, cutmix_alpha, seed)
    return images, labels
