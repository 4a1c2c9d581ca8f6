-- title: Step-down from residential to IOP by site
-- summary: >
--   Site by site, the share of clients leaving residential care who attended an IOP session within the
--   window.
-- description: >
--   Share of residential discharges followed by an attended IOP session within window_days (day 0 = the
--   discharge day), for each site of the residential episode and each calendar month or quarter of
--   discharge (grain). The same population and rule as stepdown_rate, split by site.
-- definition: |
--   Exactly the stepdown_rate definition: residential episodes discharged in start..end and on or before
--   as_of at the selected sites, less deaths, incarcerations, direct transfers (another residential or
--   withdrawal management admission on the discharge day or the next) and discharges whose window runs
--   past as_of. Numerator: an attended IOP session (any site) from the discharge date to discharge date +
--   window_days, both inclusive. Rate with a Wilson 95% interval.
--   Rows: one per site (of the residential episode) and period; period is the first day of the calendar
--   month (grain month) or quarter (grain quarter) of discharge. A site and period with no eligible
--   discharge has no row.
--   Grain: month, quarter (the default), half (January-June, July-December) or year buckets discharge_date by
--   calendar period (macro period_start; the column holds the period's first day); auto takes the finest at
--   which 80% of the chart's rates can be shown after suppression, as director pages ask.
-- params:
--   grain: {type: choice, choices: [month, quarter, half, year, auto], default: quarter, label: Per}
--   window_days: {type: int, default: 14, label: Window (days)}
--   as_of: {type: date, default: data_through, label: As of}
-- page: stepdown
-- order: 20
-- panel:
--   title: "{window_days}-day step-down rate by site"
--   empty: No residential discharges match these filters.
-- chart:
--   kind: p_chart_grid
--   group: site
--   x: period
--   events: stepped_down
--   n: eligible_discharges
--   rate: stepdown_rate
-- suppress:
--   counts: [eligible_discharges, stepped_down]
--   rates:
--     stepdown_rate: [stepped_down, eligible_discharges]
--     ci_low: [stepped_down, eligible_discharges]
--     ci_high: [stepped_down, eligible_discharges]

with

eligible as (
    select
        site,
        period_start(discharge_date, $grain) as period,
        coalesce(days_to_iop <= $window_days, false) as stepped
    -- residential_stepdowns: residential_discharges with each discharge's filter attributes
    from filtered(residential_stepdowns, $filters)
    where
        discharge_date <= $as_of
        and discharge_date + $window_days <= $as_of
        and not is_transfer
        and discharge_reason not in ('deceased', 'incarcerated')
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
),

counted as (
    select
        site,
        period,
        count(*) as eligible_discharges,
        count(*) filter (where stepped) as stepped_down
    from eligible
    group by site, period
),

final as (
    select
        site,
        period,
        eligible_discharges,
        stepped_down,
        stepped_down / eligible_discharges as stepdown_rate,
        wilson_low(stepped_down, eligible_discharges) as ci_low,
        wilson_high(stepped_down, eligible_discharges) as ci_high
    from counted
)

select * from final
order by site, period
