-- Check: every award goes to a CRO that is eligible in its cell (segment, category).
-- grain: one row per award whose CRO is not eligible in its cell (none when the check passes)
select awards.*
from awards
left join int_composite_scores
    on awards.segment = int_composite_scores.segment
    and awards.category = int_composite_scores.category
    and awards.cro = int_composite_scores.cro
where not coalesce(int_composite_scores.is_eligible, false)
