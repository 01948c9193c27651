"""The search: from a YAML spec to a finished Ray Tune sweep and its run dir, one job per module.

* ``search.run`` — the command line (``python -m search.run SPEC``);
* ``search.preflight`` — every check before Ray starts, made once; the sweep reuses what it read;
* ``search.ray_session`` — Ray's session: a local Ray bound to 127.0.0.1, or a cluster joined
  with its token authentication; waiting for room; shutting down;
* ``search.sweep`` — the sweep and the search API (``run_sweep``, ``prepare_sweep``, ``build_tuner``);
* ``search.summary`` — the end-of-sweep lines; ``search.dry_run`` and ``search.preview`` — ``--dry-run``;
* ``search.resume`` — all of ``--resume``; ``search.signals`` — stop signals;
* ``search.warm_start`` — ``--warm-start``: earlier sweeps' trials that fit, told to the new study;
* ``search.spec`` — the spec's schema, loading and checks; ``search.bounds`` — the bound grammar;
* ``search.space`` — the define-by-run space; ``search.static_costs`` — costs known before training;
* ``search.samplers`` and ``search.schedulers`` — the sampler and scheduler tables (name → factory);
* ``search.searcher`` — the searcher on Ray Tune's public ``Searcher`` and Optuna's ask-and-tell;
  ``search.study`` — what the Optuna study records of each trial;
* ``search.recorder`` and ``search.progress`` — the driver's callbacks: the record, the progress lines;
* ``search.tracking`` — experiment trackers (MLflow, TensorBoard) the recorder hands what the run
  dir holds for good;
* ``search.rundir`` — the run dir: every sweep-level file has one typed reader and writer there.

It builds on the documented interfaces of Ray Tune and Optuna only (no private module or
attribute of either), and imports ``trainables`` below it and ``analysis.pareto`` (pure) only.
"""
