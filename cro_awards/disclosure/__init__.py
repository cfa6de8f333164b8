"""What may be published: the audit of the countable-cells rule on the tables to be written (audit) and
the differencing guard at release (guard).
"""
