"""Customer lifetime value: BTYD summaries, transaction models (BG/NBD, MBG/NBD, Pareto/NBD),
the Gamma-Gamma spend model and the CLV they give together."""
