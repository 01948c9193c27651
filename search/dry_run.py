"""``python -m search.run SPEC --dry-run``: the resolved space, a few sampled configs and their costs, run nothing."""

from __future__ import annotations

from typing import Any

__all__ = ["PREVIEW_CONFIGS", "print_dry_run"]

#: Random configs whose costs the dry run computes (it stops after 10 s).
PREVIEW_CONFIGS = 2000


def print_dry_run(spec: Any, warm: Any = None) -> None:
    """Print what a sweep of ``spec`` would search, with costs known before training.

    With ``warm`` (a :class:`~search.warm_start.WarmStart`), also what each ``--warm-start`` run
    dir would give.
    """
    import yaml

    from search.preview import describe_space
    from search.space import sample_configs
    from search.static_costs import static_cost_model

    print(f"spec {spec.name}: trainable {spec.trainable}, data {spec.data.name}, {spec.budget.epochs} epochs, {spec.num_samples} trials")
    print("objectives: " + ", ".join(f"{o.metric} ({o.mode})" for o in spec.objectives))
    if spec.constraints:
        print("constraints: " + ", ".join(c.text for c in spec.constraints))
    print(f"sampler: {spec.sampler.name} (seed {spec.run.seed}); scheduler: {spec.scheduler_text()}")
    print("space:")
    print("\n".join(describe_space(spec)))
    if spec.fixed:
        print("fixed:")
        for key, value in spec.fixed.items():
            print(f"  {key:<22} {value}")
    n = min(5, spec.num_samples)
    info, problem = _data_info(spec)
    costs = static_cost_model(spec, info) if spec.constraints else None
    print(f"first {n} sampled configs:")
    for i, params in enumerate(sample_configs(spec, n)):
        print(f"  {i}: " + yaml.safe_dump(params, default_flow_style=True, sort_keys=False, width=10_000).strip() + _refused_note(costs, params))
    _print_cost_preview(spec, info, problem)
    if warm is not None:
        print("\n".join(line.replace("warm start from", "would be told from", 1) for line in warm.lines()))


def _data_info(spec: Any) -> tuple[Any, str | None]:
    """The data's shape for static costs (None, and why, where it is not available or not needed)."""
    from trainables.data import DataError, check_available

    if spec.entry.static_costs is None:
        return None, None
    try:
        return check_available(spec.data.model_dump()), None
    except (DataError, ValueError) as exc:
        return None, " ".join(str(exc).split())


def _refused_note(costs: Any, params: Any) -> str:
    """``  (refused before training: …)`` for a sampled config whose static costs break a constraint
    (``costs``: the spec's :class:`~search.static_costs.StaticCostModel`, None without one)."""
    if costs is None:
        return ""
    broken = costs.broken(params)
    if broken is None:
        return "  (not a valid config: the sweep draws another)"
    return f"  (refused before training: {', '.join(c.text for c in broken)}; the sweep draws another)" if broken else ""


def _print_cost_preview(spec: Any, info: Any, problem: str | None) -> None:
    """The dry run's costs before training: each static metric's range, the constraints' feasible share."""
    from search.preview import cost_preview
    from trainables.report import format_number

    if spec.entry.static_costs is None:
        print(f"costs before training: {spec.trainable} declares none (they are known only from trained trials)")
        return
    if info is None:
        print(f"costs before training: not previewed, the data's shape is needed (data: {problem})")
        return
    preview = cost_preview(spec, info, n=PREVIEW_CONFIGS)
    assert preview is not None
    print(f"costs before training, over {preview.built} of {preview.sampled} configs drawn at random from the space:")
    if preview.built < preview.sampled and preview.invalid:
        print(f"  {preview.sampled - preview.built} sampled configs are not valid, e.g.: {preview.invalid}")
    bound = {"exact": "exact", "upper": "trained value at most this", "lower": "trained value at least this", "bound": "exact or a bound"}
    for metric, (low, median, high) in preview.ranges.items():
        print(f"  {metric:<22} min {format_number(low)}  median {format_number(median)}  max {format_number(high)}  ({bound[preview.relations[metric]]})")
    for constraint in spec.constraints:
        if constraint.text in preview.feasible:
            share = 100 * preview.feasible[constraint.text]
            if preview.relations[constraint.metric] == "exact":
                print(f"  constraint {constraint.text}: met by {share:.1f} % of them (the rest would be refused before training)")
            else:
                print(f"  constraint {constraint.text}: not ruled out for {share:.1f} % of them (the rest would be refused before training)")
    if len(preview.feasible) > 1 and preview.all_feasible is not None:
        print(f"  every constraint above: not ruled out for {100 * preview.all_feasible:.1f} %")
    for text in preview.learnt:
        print(f"  constraint {text}: known only after training")


