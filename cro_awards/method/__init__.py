"""Judging and scoring: the Great Expectations suites and the screens (validate), the sources and the
scores taken out (transform), respondent-level resampling (uncertainty) and the leniency adjustment
(leniency).
"""
