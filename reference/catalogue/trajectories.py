"""Trajectory scenarios: twelve steps from init, momentum and Adam."""

from __future__ import annotations

from .scenario import ADAM_EPSILONS, COURSE_DIMS, MOMENTUM_FORMS, Scenario, network

# ---------------------------------------------------------------- trajectories

TRAJECTORY_STEPS = 12


def _trajectory(dims, hyper, steps=TRAJECTORY_STEPS, grad_scale=1.0):
    def build(rng):
        return {"parameters": network(rng, dims),
                "grads": [network(rng, dims, grad_scale, "d") for _ in range(steps)], **hyper}

    return build


def trajectory_scenarios():
    scenarios = []
    momentum_runs = [
        ("course", COURSE_DIMS, {"beta": 0.9, "learning_rate": 0.01}, "the course's beta 0.9 and lr 0.01"),
        ("nondefault", [4, 3, 2], {"beta": 0.77, "learning_rate": 0.05}, "beta 0.77, lr 0.05"),
        ("deep", [5, 4, 4, 3, 1], {"beta": 0.95, "learning_rate": 0.02}, "four layers, beta 0.95"),
        ("low-beta", [2, 2], {"beta": 0.5, "learning_rate": 0.3}, "beta 0.5, lr 0.3"),
    ]
    for name, dims, hyper, description in momentum_runs:
        scenarios.append(Scenario(
            "momentum.trajectory", name, f"{TRAJECTORY_STEPS} momentum steps from init, {description}",
            "state carried wrongly between calls: a stale or reset velocity, or v not returned",
            ("momentum", "trajectory"), _trajectory(dims, hyper), MOMENTUM_FORMS))
    adam_runs = [
        ("course", COURSE_DIMS, {"learning_rate": 0.01, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
         "the course's defaults"),
        ("nondefault", [4, 3, 2], {"learning_rate": 0.03, "beta1": 0.8, "beta2": 0.97, "epsilon": 1e-6},
         "lr 0.03, beta1 0.8, beta2 0.97, epsilon 1e-6"),
        ("deep", [5, 4, 4, 3, 1], {"learning_rate": 0.005, "beta1": 0.85, "beta2": 0.99, "epsilon": 1e-7},
         "four layers"),
        ("large-epsilon", [2, 3, 1], {"learning_rate": 0.02, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-3},
         "epsilon 1e-3, where its placement shows"),
    ]
    for name, dims, hyper, description in adam_runs:
        scenarios.append(Scenario(
            "adam.trajectory", name, f"{TRAJECTORY_STEPS} Adam steps from init (t = 1, 2, ...), {description}",
            "state carried wrongly between calls: a private step counter, v and s aliased to one dict, stale moments",
            ("adam", "trajectory"), _trajectory(dims, hyper), ADAM_EPSILONS))
    return scenarios
