"""Mistakes of the learning-rate decays ``update_lr`` and ``schedule_lr_decay``."""

from __future__ import annotations

import math

import numpy as np

from optconform.reference import ops

from .model import Mistake


def _scheduled(intervals, one=1.0):
    def fn(learning_rate0, epoch_num, decay_rate, time_interval=1000):
        return learning_rate0 / (one + decay_rate * intervals(epoch_num, time_interval))

    return fn



def _build() -> list[Mistake]:
    mistakes: list[Mistake] = []
    add = mistakes.append
    # learning-rate decay ---------------------------------------------------------------------
    op = "lr_decay.inverse_time"
    add(Mistake("ten-plus-decay", op, "10 + decay_rate instead of 1 + decay_rate",
                "the denominator is 10 + decay_rate * epoch_num.", "divide by 1 + decay_rate * epoch_num.",
                lambda learning_rate0, epoch_num, decay_rate: learning_rate0 / (10 + decay_rate * epoch_num)))
    add(Mistake("missing-parentheses", op, "the denominator without parentheses",
                "learning_rate0 / 1 + decay_rate * epoch_num adds the decay to the rate instead of dividing by it.",
                "write learning_rate0 / (1 + decay_rate * epoch_num).",
                lambda learning_rate0, epoch_num, decay_rate: learning_rate0 / 1 + decay_rate * epoch_num))
    add(Mistake("exponential-decay", op, "exponential decay instead of inverse-time",
                "the rate is learning_rate0 * decay_rate**epoch_num.",
                "use the inverse-time form learning_rate0 / (1 + decay_rate * epoch_num).",
                lambda learning_rate0, epoch_num, decay_rate: learning_rate0 * decay_rate**epoch_num))
    add(Mistake("epoch-plus-one", op, "epoch_num + 1 instead of epoch_num",
                "the denominator is 1 + decay_rate * (epoch_num + 1), as if epochs were counted from 1.",
                "use epoch_num as given: 1 + decay_rate * epoch_num.",
                lambda learning_rate0, epoch_num, decay_rate: learning_rate0 / (1 + decay_rate * (epoch_num + 1))))
    add(Mistake("floor-division", op, "floor division instead of division",
                "learning_rate0 // (1 + decay_rate * epoch_num) rounds the rate down to a whole number, 0 for "
                "any rate below the denominator.", "divide with /, not //.",
                lambda learning_rate0, epoch_num, decay_rate: learning_rate0 // (1 + decay_rate * epoch_num)))
    op = "lr_decay.scheduled"
    add(Mistake("round-for-floor", op, "round instead of floor",
                "the number of intervals is round(epoch_num / time_interval), so the decay starts half an "
                "interval early.", "use np.floor(epoch_num / time_interval).",
                _scheduled(lambda e, t: float(np.round(e / t)))))
    add(Mistake("ceil-for-floor", op, "ceil instead of floor",
                "the number of intervals is ceil(epoch_num / time_interval), so the rate decays on the first "
                "epoch after each boundary instead of at the boundary's end.",
                "use np.floor(epoch_num / time_interval).", _scheduled(lambda e, t: math.ceil(e / t))))
    add(Mistake("epoch-plus-one", op, "epoch_num + 1 in the intervals",
                "the number of intervals is floor((epoch_num + 1) / time_interval), as if epochs were counted "
                "from 1, so each decay comes one epoch early.",
                "use floor(epoch_num / time_interval) with epoch_num as given.",
                _scheduled(lambda e, t: math.floor((e + 1) / t))))
    add(Mistake("intervals-in-float32", op, "the intervals counted in float32",
                "floor(epoch_num / time_interval) is computed in float32 (as Keras does), so on large epochs "
                "the count is off by one.", "compute the number of intervals in float64, or with integers.",
                _scheduled(lambda e, t: float(np.floor(np.float32(e) / np.float32(t))))))
    add(Mistake("floor-division", op, "floor division of the rate",
                "learning_rate0 // (1 + ...) rounds the rate down to a whole number, 0 for any rate below the "
                "denominator.", "divide with /, not //.",
                lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
                learning_rate0 // (1 + decay_rate * math.floor(epoch_num / time_interval))))
    add(Mistake("no-floor", op, "plain division instead of floor",
                "the number of intervals is epoch_num / time_interval, so the rate decays a little every epoch.",
                "use np.floor(epoch_num / time_interval).", _scheduled(lambda e, t: e / t)))
    add(Mistake("ten-plus-decay", op, "10 + decay_rate instead of 1 + decay_rate",
                "the denominator is 10 + decay_rate * floor(epoch_num / time_interval).",
                "divide by 1 + decay_rate * floor(epoch_num / time_interval).",
                _scheduled(lambda e, t: math.floor(e / t), one=10.0)))
    add(Mistake("interval-on-rate", op, "the interval applied to the learning rate",
                "the rate is divided by time_interval and decays every epoch, instead of decaying once per "
                "interval of epochs.", "divide the epoch by the interval: floor(epoch_num / time_interval).",
                lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
                learning_rate0 / (1 + decay_rate * epoch_num) / time_interval))
    add(Mistake("decay-only-on-boundary", op, "decayed only on the boundary epochs",
                "the decayed rate is returned only when epoch_num is a multiple of time_interval, and lr0 "
                "on every other epoch; the rate should stay decayed until the next boundary.",
                "return learning_rate0 / (1 + decay_rate * floor(epoch_num / time_interval)) for every epoch.",
                lambda learning_rate0, epoch_num, decay_rate, time_interval=1000:
                ops.lr_scheduled(learning_rate0, epoch_num, decay_rate, time_interval)
                if epoch_num % time_interval == 0 else learning_rate0))
    add(Mistake("default-interval-100", op, "default time_interval of 100",
                "called without an interval, your function decays every 100 epochs; the default is 1000.",
                "declare time_interval=1000 in the signature.",
                lambda learning_rate0, epoch_num, decay_rate, time_interval=100:
                ops.lr_scheduled(learning_rate0, epoch_num, decay_rate, time_interval)))
    return mistakes


#: This family's mistakes, most common first within each op.
MISTAKES: tuple[Mistake, ...] = tuple(_build())
