"""Callbacks that do not keep their owner alive.

A child widget that holds a bound method (or the instance) of its parent makes a reference cycle
through PyQt's wrappers that the garbage collector cannot break while the C++ objects live: the
parent's viewers then outlive the window (napari's leak check sees them). Children therefore get
weak callbacks to their parents."""

from __future__ import annotations

import weakref


def weak_callback(method):
    """A function calling ``method`` (a bound method) while its object lives; None after."""
    ref = weakref.WeakMethod(method)

    def call(*args, **kwargs):
        target = ref()
        return None if target is None else target(*args, **kwargs)

    return call
