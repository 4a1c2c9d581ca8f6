-- title: Step-down from residential to IOP
-- summary: >
--   Each month, the share of clients leaving residential care who attended an IOP session within the window,
--   with the range that chance alone would explain.
-- description: >
--   Share of residential discharges followed by an attended IOP session within the window,
--   counting from the discharge day (day 0, so a same-day step-down counts) to day window_days inclusive.
--   Excludes deaths, incarcerations, direct transfers (another residential or withdrawal management
--   admission on the discharge day or the next) and discharges whose window is not complete by as_of.
-- definition: |
--   Denominator: residential episodes discharged on or before as_of, in the start..end discharge range,
--   at the selected sites, less (a) discharge_reason deceased or incarcerated, (b) direct transfers: the
--   same client has another residential or withdrawal management episode admitted on the discharge date
--   or the day after, (c) incomplete windows: discharge_date + window_days after as_of.
--   Numerator: of those, the client has an attended session (status attended) in an IOP episode, at any
--   site, dated from the discharge date to discharge date + window_days, both inclusive.
--   Rate = numerator / denominator with a Wilson 95% interval; one row per calendar month of discharge
--   (grain month, the default), one row for the whole start..end range (grain period, month empty), or one
--   row per period (grain periods: period_starts holds the first day of each period, a discharge falls in the
--   period with the latest start on or before its date, the last period runs to end, discharges before the
--   earliest start are left out, and month holds the period's first day). Each period's row equals the
--   grain period row for that period's dates.
--   Grain: month (the default), quarter, half (January-June, July-December) or year buckets discharge_date by
--   calendar period (macro period_start; the column holds the period's first day); auto takes the finest at
--   which 80% of the chart's rates can be shown after suppression, as director pages ask.
-- params:
--   grain:
--     type: choice
--     choices: [month, quarter, half, year, auto, period, periods]
--     default: month
--     label: Rows
--   period_starts: {type: dates, label: Period starts (grain periods)}
--   window_days: {type: int, default: 14, label: Window (days)}
--   as_of: {type: date, default: data_through, label: As of}
-- page: stepdown
-- order: 10
-- panel:
--   title: "{window_days}-day step-down rate by discharge {grain}"
--   empty: No residential discharges match these filters.
-- chart: {kind: p_chart, x: month, events: stepped_down, n: eligible_discharges, rate: stepdown_rate}
-- suppress:
--   counts: [eligible_discharges, stepped_down]
--   rates:
--     stepdown_rate: [stepped_down, eligible_discharges]
--     ci_low: [stepped_down, eligible_discharges]
--     ci_high: [stepped_down, eligible_discharges]

with

-- residential_stepdowns: residential_discharges (transfers flagged, days to the first attended IOP session)
-- with each discharge's filter attributes
eligible as (
    select
        case
            when $grain = 'periods' then list_max(list_filter($period_starts, lambda p: p <= discharge_date))
            else period_start(discharge_date, $grain)
        end as month,
        coalesce(days_to_iop <= $window_days, false) as stepped
    from filtered(residential_stepdowns, $filters)
    where
        discharge_date <= $as_of
        and discharge_date + $window_days <= $as_of
        and not is_transfer
        and discharge_reason not in ('deceased', 'incarcerated')
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
        and ($grain <> 'periods' or discharge_date >= list_min($period_starts))
),

counted as (
    select
        month,
        count(*) as eligible_discharges,
        count(*) filter (where stepped) as stepped_down
    from eligible
    group by month
),

final as (
    select
        month,
        eligible_discharges,
        stepped_down,
        stepped_down / eligible_discharges as stepdown_rate,
        wilson_low(stepped_down, eligible_discharges) as ci_low,
        wilson_high(stepped_down, eligible_discharges) as ci_high
    from counted
)

select * from final
order by month
