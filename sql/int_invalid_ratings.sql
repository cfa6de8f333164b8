-- The evaluations holding a rating that validation found invalid, with the attributes holding one.
-- Validation judges each distinct rating text once (expectations/rating_values.json) and binds the texts
-- it rejected; here each row gets the attributes whose field holds one of them.
-- grain: one row per well-formed export row with at least one invalid rating
-- key: source_row
-- params: $invalid_rating_texts (the trimmed rating texts that validation rejected)
with

final as (
    select
        source_row,
        list(attribute order by attribute) as attributes,
    from stg_ratings
    where rating_text in (select unnest($invalid_rating_texts))
    group by source_row
)

select * from final
