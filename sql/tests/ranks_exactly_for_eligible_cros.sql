-- Check: a composite has a rank exactly when its CRO is eligible in the cell.
-- grain: one row per composite ranked but not eligible, or eligible but not ranked (none when it passes)
select int_composite_scores.*
from int_composite_scores
where coalesce(int_composite_scores.is_eligible, false) <> (int_composite_scores.rank is not null)
