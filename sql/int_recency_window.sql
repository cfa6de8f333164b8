-- The recency window as validation judges last_engaged against it: from survey_close minus
-- recency_months (months subtracted as DuckDB does: the day clamped to the month's last) to
-- survey_close, both days included.
-- grain: one row
-- key: window_start
-- params: $survey_close, $recency_months
with

final as (
    select
        cast($survey_close::date - to_months($recency_months) as date) as window_start,
        $survey_close::date as window_end
)

select * from final
