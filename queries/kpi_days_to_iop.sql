-- title: Days from residential discharge to first IOP session (Overview tile)
-- summary: >
--   For clients who went from residential care to IOP within a month, the typical (median) number of days
--   before their first IOP session.
-- description: >
--   Median days from a residential discharge to the client's first attended IOP session, among discharges
--   in the start..end range whose client attended IOP within max_day days (day 0 = the discharge day): one
--   row for the whole range (grain period, the Overview tile) or one per calendar month of discharge. Only
--   discharges whose max_day window is complete by as_of count, so recent ones do not pull the median down.
-- definition: |
--   Population: as stepdown_rate with window_days = max_day: residential episodes discharged in start..end
--   and on or before as_of at the selected sites, less deaths, incarcerations, direct transfers (another
--   residential or withdrawal management admission on the discharge day or the next) and discharges with
--   discharge_date + max_day after as_of. eligible_discharges: that population.
--   stepped_down: of those, discharges with a first attended IOP session (any site) on day 0..max_day.
--   median_days: median (quantile_cont, interpolated) of those days; p25_days and p75_days the quartiles.
--   It describes the clients who did step down, not the whole population (see time_to_stepdown).
--   Rows: grain period gives one row for the whole start..end range (month empty), what the Overview tile
--   shows; grain month gives one row per calendar month of discharge; grain periods gives one row per period
--   for the tile's trend line: period_starts holds the first day of each period, a discharge falls in the
--   period with the latest start on or before its date, discharges before the earliest start are left out,
--   and month holds the period's first day. Each period's row equals the grain period row for its dates.
-- area: overview
-- params:
--   grain: {type: choice, choices: [period, month, periods], default: period, label: Rows}
--   period_starts: {type: dates, label: Period starts (grain periods)}
--   max_day: {type: int, default: 30, label: Days after discharge}
--   as_of: {type: date, default: data_through, label: As of}
-- chart: {kind: rate_lines, x: month, y: median_days, n: stepped_down, percent: false, y_label: Median days}
-- suppress:
--   counts: [eligible_discharges, stepped_down]
--   stats:
--     median_days: stepped_down
--     p25_days: stepped_down
--     p75_days: stepped_down
--   totals:
--     eligible_discharges: [stepped_down, ~not_stepped_down]

with

eligible as (
    select
        case
            when $grain = 'month' then date_trunc('month', discharge_date)::date
            when $grain = 'periods' then list_max(list_filter($period_starts, lambda p: p <= discharge_date))
        end as month,
        case when days_to_iop <= $max_day then days_to_iop end as days
    -- residential_stepdowns: residential_discharges with each discharge's filter attributes
    from filtered(residential_stepdowns, $filters)
    where
        discharge_date <= $as_of
        and discharge_date + $max_day <= $as_of
        and not is_transfer
        and discharge_reason not in ('deceased', 'incarcerated')
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
        and ($grain <> 'periods' or discharge_date >= list_min($period_starts))
),

final as (
    select
        month,
        count(*) as eligible_discharges,
        count(days) as stepped_down,
        quantile_cont(days, 0.5) as median_days,
        quantile_cont(days, 0.25) as p25_days,
        quantile_cont(days, 0.75) as p75_days
    from eligible
    group by month
)

select * from final
order by month
