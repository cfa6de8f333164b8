-- Check: every published row carries its labels (each cro, attribute and category is in the year's YAML).
-- grain: one row per published row missing a label (none when the check passes)
select
    'attribute_scores' as published_table,
    attribute_scores.segment,
    attribute_scores.cro,
    attribute_scores.attribute as item,
from attribute_scores
where attribute_scores.cro_name is null or attribute_scores.attribute_label is null
union all
select
    'composite_scores' as published_table,
    composite_scores.segment,
    composite_scores.cro,
    composite_scores.category as item,
from composite_scores
where composite_scores.cro_name is null or composite_scores.category_label is null
union all
select
    'awards' as published_table,
    awards.segment,
    awards.cro,
    awards.category as item,
from awards
where awards.cro_name is null or awards.category_label is null
