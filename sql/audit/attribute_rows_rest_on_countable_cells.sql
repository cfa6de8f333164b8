-- Check: every published attribute row rests on at least min_cell_size ratings.
-- grain: one row per published attribute row with fewer than min_cell_size ratings (none when it passes)
-- params: $min_cell_size
select
    attribute_scores.segment,
    attribute_scores.cro,
    attribute_scores.attribute as item,
from attribute_scores
where attribute_scores.n_ratings < $min_cell_size
