-- title: Length of stay
-- summary: >
--   How long discharged clients stayed at each level of care: the middle (median) stay, and the range of the
--   middle half of stays.
-- description: >
--   Median and quartiles of length of stay, in days, of discharged episodes by level of care:
--   discharge date minus admit date, with a same-day stay counted as 1 day. Open episodes are not
--   counted. start/end bound the discharge date.
-- definition: |
--   Population: episodes discharged on or before as_of, in the start..end discharge range, at the
--   selected sites, any discharge reason; grouped by level_of_care.
--   Length of stay = greatest(discharge_date - admit_date, 1) days, so a same-day and a next-day
--   discharge are both 1 day (an episode that was opened was at least one day of care).
--   median_days, p25_days, p75_days: quantile_cont (linear interpolation between the two nearest
--   stays, the same as numpy's default and R type 7), so a median of an even count can end in .5.
--   Because only discharged episodes count, a recent start..end range understates long stays that have
--   not ended yet.
-- params:
--   as_of: {type: date, default: data_through, label: As of}
-- page: retention
-- order: 40
-- panel:
--   title: Length of stay (median, quartiles)
--   empty: No discharges match these filters.
-- chart:
--   kind: median_bars
--   x: level_of_care
--   y: median_days
--   low: p25_days
--   high: p75_days
--   n: episodes
--   x_labels: levels
--   height: 320
-- suppress:
--   counts: [episodes]
--   stats:
--     median_days: episodes
--     p25_days: episodes
--     p75_days: episodes

with

stays as (
    select
        level_of_care,
        greatest(discharge_date - admit_date, 1) as days
    from filtered(episodes, $filters, tracks := $tracks)
    where
        discharge_date <= $as_of
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
),

-- the three quantiles in one call: one sort of each level's stays, not three
quartiles as (
    select level_of_care, count(*) as episodes, quantile_cont(days, [0.25, 0.5, 0.75]) as q
    from stays
    group by level_of_care
),

final as (
    select
        level_of_care,
        episodes,
        q[2] as median_days,
        q[1] as p25_days,
        q[3] as p75_days
    from quartiles
)

select * from final
order by list_position(['withdrawal_management', 'residential', 'php', 'iop', 'op'], level_of_care)
