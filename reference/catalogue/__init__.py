"""The case catalogue: which inputs the vectors hold, and why each exists.

Each :class:`Scenario` is a named recipe: an op, a description, the bug class it
exists to catch (``why``), tags, the conventions it is generated under, and a
builder that draws its inputs from a random generator. The generator turns each
scenario and convention into one case with a stable id ``op/convention/name``.

Each scenario's generator is seeded by the suite seed and the scenario's own
name, so adding or removing a scenario never changes another case's numbers, and
``--seed N`` gives the same catalogue with fresh numbers.
"""


from __future__ import annotations

from .adam import adam_scenarios
from .batches import mini_batch_scenarios
from .descent import gd_scenarios, rmsprop_scenarios
from .momentum import momentum_scenarios
from .scenario import Scenario
from .schedules import lr_decay_scenarios
from .states import INIT_SHAPES, init_scenarios, init_state
from .trajectories import trajectory_scenarios

__all__ = ["DEFAULT_SEED", "Scenario", "all_scenarios"]

DEFAULT_SEED = 20261124


def all_scenarios() -> list[Scenario]:
    """Every scenario of the catalogue, in a fixed order."""
    rmsprop_init = [Scenario("rmsprop.init", name, f"s for {description}",
                             "zeros of the wrong shape, a layer missed, or keys named W1 instead of dW1",
                             ("init", "shapes", "layers"), init_state(dims)) for name, dims, description in INIT_SHAPES]
    return (mini_batch_scenarios() + init_scenarios() + momentum_scenarios() + adam_scenarios()
            + trajectory_scenarios() + gd_scenarios() + rmsprop_init + rmsprop_scenarios() + lr_decay_scenarios())
