"""Scenarios of the learning-rate decays."""

from __future__ import annotations

from .scenario import Scenario

# ---------------------------------------------------------------- learning-rate decay


def _decay(**arguments):
    return lambda rng: dict(arguments)


def lr_decay_scenarios():
    inverse = [
        ("epoch-0", dict(learning_rate0=0.5, epoch_num=0, decay_rate=1.0), "epoch 0: the rate is lr0",
         "the decay applied before the first epoch, or 1 + decay_rate written as decay_rate"),
        ("course-example", dict(learning_rate0=0.5, epoch_num=2, decay_rate=1.0), "lr0 0.5, epoch 2, decay 1",
         "the formula's parentheses misplaced: lr0 / 1 + decay_rate * epoch_num"),
        ("nondefault", dict(learning_rate0=0.0371, epoch_num=7, decay_rate=0.29), "lr0 0.0371, epoch 7, decay 0.29",
         "10 + decay_rate for 1 + decay_rate, or an exponential decay instead of the inverse-time one"),
        ("decay-zero", dict(learning_rate0=0.2, epoch_num=50, decay_rate=0.0), "decay 0: the rate never changes",
         "a decay applied whatever the rate"),
        ("huge-epoch", dict(learning_rate0=0.1, epoch_num=10**9, decay_rate=0.3), "epoch 1e9: the rate near 0",
         "an overflow or a sign flip at large epoch numbers"),
        ("float-epoch", dict(learning_rate0=0.25, epoch_num=2.5, decay_rate=0.4), "a float epoch number 2.5",
         "the epoch number truncated to an integer"),
        ("rate-above-one", dict(learning_rate0=5.0, epoch_num=1, decay_rate=0.5), "lr0 5, epoch 1, decay 0.5",
         "floor division (//) of the rate, which only a rate above the denominator shows as other than 0"),
    ]
    scenarios = [Scenario("lr_decay.inverse_time", name, description, why, ("lr_decay", "inverse-time"),
                          _decay(**arguments)) for name, arguments, description, why in inverse]
    scheduled = [
        ("epoch-0", dict(learning_rate0=0.5, epoch_num=0, decay_rate=1.0, time_interval=1000),
         "epoch 0: the rate is lr0", "the decay applied before the first interval", ()),
        ("before-boundary", dict(learning_rate0=0.5, epoch_num=999, decay_rate=1.0, time_interval=1000),
         "epoch 999, interval 1000: still lr0", "round() or plain division instead of floor", ()),
        ("on-boundary", dict(learning_rate0=0.5, epoch_num=2000, decay_rate=0.3, time_interval=1000),
         "epoch 2000, interval 1000: two decays", "ceil instead of floor, or an interval counted from 1", ()),
        ("after-boundary", dict(learning_rate0=0.5, epoch_num=1001, decay_rate=0.3, time_interval=1000),
         "epoch 1001, interval 1000: one decay", "the decay applied every epoch instead of every interval", ()),
        ("nondefault-interval", dict(learning_rate0=0.3, epoch_num=749, decay_rate=0.7, time_interval=250),
         "epoch 749, interval 250: two decays, one epoch before the third", "the interval hard-coded to 1000", ()),
        ("decay-zero", dict(learning_rate0=0.2, epoch_num=5000, decay_rate=0.0, time_interval=1000),
         "decay 0: the rate never changes", "a decay applied whatever the rate", ()),
        ("huge-epoch", dict(learning_rate0=0.1, epoch_num=10**9 + 999, decay_rate=0.3, time_interval=1000),
         "epoch 1e9 + 999", "round() instead of floor, or a precision loss at large epoch numbers", ()),
        ("float-epoch", dict(learning_rate0=0.4, epoch_num=1999.5, decay_rate=0.5, time_interval=1000),
         "a float epoch number 1999.5: one decay", "round() instead of floor on a fractional epoch", ()),
        ("default-interval", dict(learning_rate0=0.5, epoch_num=2500, decay_rate=0.3, time_interval=1000),
         "schedule_lr_decay(lr0, 2500, 0.3): the default interval 1000", "a wrong default time_interval",
         ("time_interval",)),
        ("default-interval-boundary", dict(learning_rate0=0.5, epoch_num=1000, decay_rate=0.3, time_interval=1000),
         "schedule_lr_decay(lr0, 1000, 0.3): the first decay falls exactly on the default interval",
         "a default time_interval a little over 1000 (epoch 2500 cannot tell 1000 from 1001)", ("time_interval",)),
        ("default-interval-before-boundary", dict(learning_rate0=0.5, epoch_num=999, decay_rate=0.3, time_interval=1000),
         "schedule_lr_decay(lr0, 999, 0.3): one epoch before the first decay of the default interval",
         "a default time_interval a little under 1000 (999 decays here already)", ("time_interval",)),
        ("default-interval-after-boundary", dict(learning_rate0=0.5, epoch_num=1001, decay_rate=0.3, time_interval=1000),
         "schedule_lr_decay(lr0, 1001, 0.3): one epoch after the first decay of the default interval",
         "a default time_interval of 1002 or a little more (not decayed yet here; epoch 2500 decays it twice "
         "either way)", ("time_interval",)),
        ("interval-on-rate", dict(learning_rate0=0.6, epoch_num=300, decay_rate=0.2, time_interval=100),
         "epoch 300, interval 100: three decays", "the interval applied to the learning rate instead of the epoch",
         ()),
        ("mid-interval", dict(learning_rate0=0.5, epoch_num=1600, decay_rate=0.5, time_interval=1000),
         "epoch 1600, interval 1000: one decay, 0.6 of the way to the next",
         "round() for floor (1.6 rounds to 2), told apart from epochs counted from 1 (1601 // 1000 is 1)", ()),
        ("rate-above-one", dict(learning_rate0=5.0, epoch_num=1000, decay_rate=0.5, time_interval=1000),
         "lr0 5 at the first boundary", "floor division (//) of the rate, 0 for any rate below the denominator",
         ()),
    ]
    scenarios += [Scenario("lr_decay.scheduled", name, description, why, ("lr_decay", "scheduled"),
                           _decay(**arguments), omitted=omitted)
                  for name, arguments, description, why, omitted in scheduled]
    return scenarios
