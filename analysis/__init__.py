"""Analysis of finished or running sweeps: results tables, Pareto fronts, plots, selection."""
