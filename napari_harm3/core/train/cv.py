"""Patient-level cross-validation splits.

Splits are over patients (one row per patient in the cohort table), so no patient is ever
in both the training and the test fold. Model selection uses an inner split of the
training folds only, never the test fold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split


@dataclass(frozen=True)
class Fold:
    index: int
    train: np.ndarray      # indices used to fit
    validation: np.ndarray  # inner split of the training folds, for model selection
    test: np.ndarray       # held-out fold, touched once for the reported metrics


def patient_folds(n_patients: int, n_folds: int = 5, seed: int = 0, stratify=None,
                  validation_fraction: float = 0.2) -> list:
    """K folds over patients, stratified on ``stratify`` (e.g. pCR, or the event indicator)
    when given, each with an inner (stratified) validation split of its training part."""
    if n_folds < 2:
        raise ValueError("need at least 2 folds")
    if n_patients < n_folds:
        raise ValueError(f"{n_patients} patients cannot make {n_folds} folds")
    index = np.arange(n_patients)
    labels = None if stratify is None else np.asarray(stratify)
    if labels is not None and np.bincount(labels.astype(int)).min() >= n_folds:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(index, labels)
    else:
        splitter = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(index)
    folds = []
    for k, (train_val, test) in enumerate(splits):
        strat = None
        if labels is not None:
            sub = labels[train_val].astype(int)
            if np.bincount(sub).min() >= 2:
                strat = sub
        train, val = train_test_split(train_val, test_size=validation_fraction, random_state=seed + k,
                                      stratify=strat)
        folds.append(Fold(k, np.sort(train), np.sort(val), np.sort(test)))
    return folds
