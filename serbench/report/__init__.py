"""What a run leaves on disk and everything computed from it: result files, metrics,
statistics, scoring of outside predictions, comparisons, fusion, leaderboards, plots and the
site. Usable on results from anywhere, so it never imports :mod:`serbench.run`."""
