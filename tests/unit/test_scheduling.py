"""The live-trial queue picks the trial Ray Tune's FIFO rule picks, without scanning finished ones."""

from __future__ import annotations

import random
from types import SimpleNamespace

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler

from search.schedulers.fifo import QueueFIFOScheduler



class _Trial:
    """Hashable by identity, like Ray's Trial."""

    def __init__(self, status: str, trial_id: str) -> None:
        self.status, self.trial_id = status, trial_id


def test_choice_equals_rays_fifo_through_adds_requeues_and_ends():
    rng = random.Random(0)
    ours, theirs = QueueFIFOScheduler(), FIFOScheduler()
    trials: list = []  # Tune's list, in its order
    controller = SimpleNamespace(get_trials=lambda: trials)
    for step in range(400):
        action = rng.random()
        if action < 0.3 or not trials:
            trial = _Trial(Trial.PENDING, str(step))
            trials.append(trial)
            ours.on_trial_add(controller, trial)
        else:
            trial = rng.choice(trials)
            if trial.status in (Trial.TERMINATED, Trial.ERROR):
                continue
            if action < 0.5:  # a failed trial Tune retries: error, then requeued at the end
                ours.on_trial_error(controller, trial)
                trials.remove(trial)
                trials.append(trial)
                trial.status = Trial.PENDING
                ours.on_trial_add(controller, trial)
            elif action < 0.7:
                trial.status = Trial.TERMINATED
                ours.on_trial_complete(controller, trial, {})
            elif action < 0.75:
                trial.status = Trial.ERROR  # ended without a callback
            else:
                trial.status = rng.choice([Trial.RUNNING, Trial.PAUSED, Trial.PENDING])
        assert ours.choose_trial_to_run(controller) is theirs.choose_trial_to_run(controller), step
    for trial in trials:  # every trial ends, some without a scheduler callback
        trial.status = Trial.TERMINATED
    assert ours.choose_trial_to_run(controller) is None
    assert not ours._queue(), "ended trials must leave the queue"
