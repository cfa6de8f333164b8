"""The typed record of a run: the manifest every reader reads (manifest) and the run's summary for people
(summary).
"""
