"""The update orders of one iteration: plain functions, and `UPDATE_ORDERS`, the dict `--update-order` names.

An order decides which state each update reads:

    order(update_d, update_g, g, d) -> (g, d, d_metrics, g_metrics)

update_d(g, d) -> (d, metrics): D's rounds (step.d_rounds) on fakes made by the G in state g;
update_g(g, d) -> (g, metrics): G's update (step.g_update) through the D in state d (D fixed).
g, d: step.GState and step.DState. The step's key streams do not depend on the order: an order changes which
state each update sees, never its random draws.

To add an order: write one such function and add `"name": fn` to UPDATE_ORDERS; `--update-order name` names
it, and its --help lists it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Order = Callable[..., tuple[Any, Any, dict, dict]]


def d_then_g(update_d, update_g, g, d):
    """The reference (Keras): D's rounds, then G's update through the updated D (alternating updates)."""
    d, d_metrics = update_d(g, d)
    g, g_metrics = update_g(g, d)
    return g, d, d_metrics, g_metrics


def g_then_d(update_d, update_g, g, d):
    """G's update first, through the D of the last iteration; then D's rounds on the updated G's fakes."""
    g, g_metrics = update_g(g, d)
    d, d_metrics = update_d(g, d)
    return g, d, d_metrics, g_metrics


def simultaneous(update_d, update_g, g, d):
    """Both updates from the same state: D's rounds on the fakes of this iteration's G, G's update through this
    iteration's D (simultaneous gradient descent; Mescheder et al. 2018 compare it with the alternating one)."""
    new_d, d_metrics = update_d(g, d)
    new_g, g_metrics = update_g(g, d)
    return new_g, new_d, d_metrics, g_metrics


UPDATE_ORDERS: dict[str, Order] = {"d_then_g": d_then_g, "g_then_d": g_then_d, "simultaneous": simultaneous}
"""`--update-order` name -> order."""
