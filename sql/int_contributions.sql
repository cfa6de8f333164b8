-- Each accepted evaluation's contribution to what is published: the attributes whose rating counted
-- (in a countable cell of its segment). A published row's contributing evaluations follow from it: an
-- attribute row's are the evaluations of its segment (either, for overall) and CRO listing the
-- attribute; a composite's, those listing any of the category's attributes. Composites count their
-- evaluations from it, and each draft keeps it privately for the differencing guard at release.
-- grain: one row per accepted evaluation with at least one counted rating
-- key: source_row
-- reads: int_counted_ratings, int_accepted_evaluations
with

counted as (
    select
        source_row,
        list(attribute order by attribute) as attributes,
    from int_counted_ratings
    group by source_row
),

final as (
    select
        int_accepted_evaluations.source_row,
        int_accepted_evaluations.respondent_id,
        int_accepted_evaluations.cro,
        int_accepted_evaluations.segment,
        counted.attributes,
    from counted
    inner join int_accepted_evaluations on counted.source_row = int_accepted_evaluations.source_row
)

select * from final
