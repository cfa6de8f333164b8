"""Exports and the year's configuration: the method knobs (knobs), the YAML (config), reading an export
(extract), the CRO spellings that match no CRO (unmatched), the inbox's exports (inbox) and a new year's
YAML (new_year).
"""
