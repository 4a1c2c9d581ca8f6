-- title: Follow-up after residential or withdrawal management discharge (FUI-aligned)
-- summary: >
--   Each month, the share of clients leaving residential or withdrawal management care who attended a PHP,
--   IOP or outpatient session within the follow-up window, as the national follow-up measure counts it.
-- description: >
--   FUI-aligned (adapted; this provider's services only). Share of residential and withdrawal
--   management discharges followed by an attended PHP, IOP or OP session from day 1 to day
--   window_days after discharge (the discharge day itself does not count). Only the last discharge
--   of a direct-transfer chain counts; deaths are excluded; of a client's discharges only those at
--   least 31 days after the previous counted one are kept; discharges whose window is not complete
--   by as_of are left out. start/end bound the discharge date.
-- definition: |
--   Follows HEDIS Follow-Up After High-Intensity Care for Substance Use Disorder (FUI), MY2025, adapted.
--   Index discharges: episodes at level residential or withdrawal_management discharged on or before
--   as_of, less (a) direct transfers: the same client has another residential or withdrawal management
--   episode admitted on the discharge date or the day after (only a chain's last discharge counts),
--   (b) discharge_reason deceased. 31-day rule: of each client's remaining discharges, in date order,
--   the first is kept and each later one only when it is at least 31 days after the last kept one.
--   The rule runs on all of the client's discharges before the site, date and demographic filters,
--   which then choose among the kept discharges (site = site of the index episode).
--   Denominator: kept discharges in the start..end discharge range with discharge_date + window_days
--   on or before as_of. Numerator: of those, the client has an attended session (status attended) in
--   an episode at level php, iop or op, at any site, dated discharge_date + 1 to discharge_date +
--   window_days, both inclusive. Withdrawal management and residential sessions never count.
--   Rate with a Wilson 95% interval, one row per calendar month of discharge (grain month, the default),
--   one row for the whole start..end range (grain period, month empty), or one row per period (grain
--   periods: period_starts holds the first day of each period, a discharge falls in the period with the
--   latest start on or before its date, discharges before the earliest start are left out, and month holds
--   the period's first day; each row equals the grain period row for that period). HEDIS reports 7 and 30
--   days.
--   Differences from HEDIS: no claims (only this provider's own services count as follow-up), no
--   pharmacotherapy (MOUD dispensing or administration) events, a residential readmission is not
--   follow-up (HEDIS counts some residential and inpatient visits), and the age (13+) and continuous
--   enrollment criteria are not applied.
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
--   window_days: {type: int, default: 30, label: Follow-up window (days; 7 and 30 are standard)}
--   as_of: {type: date, default: data_through, label: As of}
-- page: stepdown
-- order: 60
-- panel:
--   title: "{window_days}-day follow-up after residential or withdrawal management (FUI-aligned)"
--   empty: No residential or withdrawal management discharges match these filters.
-- chart:
--   kind: p_chart
--   x: month
--   events: followed_up
--   n: eligible_discharges
--   rate: followup_rate
--   benchmark: "va_followup_{window_days}"
-- suppress:
--   counts: [eligible_discharges, followed_up]
--   rates:
--     followup_rate: [followed_up, eligible_discharges]
--     ci_low: [followed_up, eligible_discharges]
--     ci_high: [followed_up, eligible_discharges]

with

-- followup_discharges: residential and withdrawal management discharges less direct transfers and deaths,
-- with kept (the 31-day rule, over all of the client's discharges) and days_to_followup (to the client's
-- first attended PHP, IOP or OP session after the discharge day)
eligible as (
    select discharge_date, days_to_followup
    from filtered(followup_discharges, $filters)
    where
        kept
        and discharge_date <= $as_of
        and discharge_date + $window_days <= $as_of
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
        and ($grain <> 'periods' or discharge_date >= list_min($period_starts))
),

counted as (
    select
        case
            when $grain = 'periods' then list_max(list_filter($period_starts, lambda p: p <= discharge_date))
            else period_start(discharge_date, $grain)
        end as month,
        count(*) as eligible_discharges,
        count(*) filter (where days_to_followup <= $window_days) as followed_up
    from eligible
    group by 1
),

final as (
    select
        month,
        eligible_discharges,
        followed_up,
        followed_up / eligible_discharges as followup_rate,
        wilson_low(followed_up, eligible_discharges) as ci_low,
        wilson_high(followed_up, eligible_discharges) as ci_high
    from counted
)

select * from final
order by month
