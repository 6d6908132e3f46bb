"""Conventions: the places where correct implementations legitimately differ.

A convention is named ``family.key=value``. Each case in the vectors declares the
conventions it assumes; a target declares its own, and the harness runs the cases
whose assumptions the target shares.
"""

from __future__ import annotations

ADAM_EPSILON = ("outside_sqrt", "inside_sqrt", "epsilon_hat")
RMSPROP_EPSILON = ("outside_sqrt", "inside_sqrt")
MOMENTUM_FORM = ("ema", "heavy_ball", "lr_scaled")
SUBNORMALS = ("kept", "flushed")
MINI_BATCHES_RNG = ("structural", "numpy_legacy")
MINI_BATCHES_Y_ROWS = ("one_row", "multi_row")

#: Every convention, its allowed values (the first is the default) and what it means.
CONVENTIONS: dict[str, dict] = {
    "adam.epsilon": {
        "values": ADAM_EPSILON,
        "help": "outside_sqrt: p -= lr*vh/(sqrt(sh)+eps) (Kingma & Ba, PyTorch, the course); "
        "inside_sqrt: p -= lr*vh/sqrt(sh+eps) (the seed notebook); "
        "epsilon_hat: p -= lr*sqrt(1-beta2**t)/(1-beta1**t) * v/(sqrt(s)+eps), i.e. epsilon before the "
        "second bias correction, eps/sqrt(1-beta2**t) against sqrt(sh) (Kingma & Ba section 2, Keras, TensorFlow)",
    },
    "rmsprop.epsilon": {
        "values": RMSPROP_EPSILON,
        "help": "outside_sqrt: p -= lr*g/(sqrt(s)+eps) (PyTorch, numpy-ml); inside_sqrt: p -= lr*g/sqrt(s+eps) "
        "(jax.example_libraries, Keras 3); undeclared, it follows adam.epsilon (epsilon_hat counts as outside)",
    },
    "momentum.form": {
        "values": MOMENTUM_FORM,
        "help": "ema: v = beta*v + (1-beta)*g; p -= lr*v (the course); heavy_ball: v = beta*v + g; p -= lr*v "
        "(PyTorch SGD); lr_scaled: v = beta*v + lr*g; p -= v, the state holds the step (numpy-ml; Keras keeps -v)",
    },
    "mini_batches.rng": {
        "values": MINI_BATCHES_RNG,
        "help": "structural: any RNG, batches checked for structure; "
        "numpy_legacy: np.random.seed(seed) then np.random.permutation(m), checked exactly",
    },
    "mini_batches.y_rows": {
        "values": MINI_BATCHES_Y_ROWS,
        "help": "one_row: Y is (1, m), as in the course, whose code reshapes Y to (1, m); "
        "multi_row: Y may have several rows (n_y, m), as a general port supports",
    },
    "platform.subnormals": {
        "values": SUBNORMALS,
        "help": "kept: subnormal numbers are computed as IEEE 754 says; flushed: the platform flushes them to zero "
        "(JAX and XLA on CPU), so the cases built on subnormal numbers are not run",
    },
}

DEFAULTS: dict[str, str] = {name: spec["values"][0] for name, spec in CONVENTIONS.items()}

#: The families an op's computation depends on, by the op's family (the part before the dot). A call
#: to a target carries only these: ``platform.*`` describes the target, and the harness applies it.
FAMILIES_OF_OP: dict[str, tuple[str, ...]] = {
    "mini_batches": ("mini_batches.rng", "mini_batches.y_rows"),
    "momentum": ("momentum.form",),
    "adam": ("adam.epsilon",),
    "rmsprop": ("rmsprop.epsilon",),
}


def for_call(op: str, conventions: dict) -> dict:
    """The conventions a call of ``op`` is made under: those of its families, no others."""
    return {name: conventions[name] for name in FAMILIES_OF_OP.get(op.split(".")[0], ()) if name in conventions}


class ConventionError(ValueError):
    """An unknown convention name or value."""


def parse_assignment(text: str) -> tuple[str, str]:
    """``"adam.epsilon=inside_sqrt"`` -> ``("adam.epsilon", "inside_sqrt")``, validated."""
    name, sep, value = text.partition("=")
    if not sep:
        raise ConventionError(f"convention {text!r} is not of the form family.key=value")
    return validate(name.strip(), value.strip())


def validate(name: str, value: str) -> tuple[str, str]:
    """Return ``(name, value)`` if both are known, else raise a one-line ConventionError."""
    if name not in CONVENTIONS:
        raise ConventionError(f"unknown convention {name!r}; known: {', '.join(CONVENTIONS)}")
    allowed = CONVENTIONS[name]["values"]
    if value not in allowed:
        raise ConventionError(f"convention {name} must be one of {', '.join(allowed)}, not {value!r}")
    return name, value


#: A family whose value, where nobody declared it, follows another's: (family, leader, leader value -> value).
FOLLOWERS = (("rmsprop.epsilon", "adam.epsilon", {"epsilon_hat": "outside_sqrt"}),)


def resolve(declared: dict | None, overrides: dict | None = None) -> dict[str, str]:
    """The conventions in force: defaults, then a target's declaration, then overrides.

    A follower family left undeclared takes its leader's value (``rmsprop.epsilon`` follows
    ``adam.epsilon``), so that one declaration covers a course that placed epsilon once for both.
    """
    result = dict(DEFAULTS)
    given = set()
    for source in (declared or {}, overrides or {}):
        for name, value in source.items():
            result.update([validate(name, value)])
            given.add(name)
    for follower, leader, mapped in FOLLOWERS:
        if follower not in given:
            result[follower] = mapped.get(result[leader], result[leader])
    return result
