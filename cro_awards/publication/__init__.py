"""Drafts and releases: the private store (publish), release, log and keep policy (releases), a draft
against a release (diff), every released year (history) and the Parquet's column descriptions (columns).
"""
