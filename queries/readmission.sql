-- title: Readmission after residential or IOP discharge
-- summary: >
--   Each month, the share of clients leaving residential care or IOP who were admitted again to residential
--   or withdrawal management care within the window.
-- description: >
--   Share of residential and IOP discharges followed by a new residential or withdrawal management
--   admission, at any site, on day 2-30 and on day 2-90 after discharge. An admission on day 0 or 1 is a
--   direct transfer, not a readmission: such a discharge is dropped and the chain's last discharge counts.
--   Deaths are excluded; each window counts only discharges whose window is complete by as_of, so the
--   30- and 90-day denominators differ. start/end bound the discharge date.
-- definition: |
--   Denominator (per window W = 30 or 90): episodes at level residential or iop discharged on or before
--   as_of, in the start..end discharge range, at the selected sites, less (a) discharge_reason deceased,
--   (b) direct transfers: the same client has another residential or withdrawal management episode
--   admitted on the discharge date or the day after, (c) discharge_date + W after as_of.
--   Numerator: of those, the same client has a residential or withdrawal management episode admitted
--   discharge_date + 2 to discharge_date + W, both inclusive (any site, any discharge reason).
--   Rates by level of the discharging episode and calendar month of discharge; a month with no complete
--   30-day window has no row, and readmission_rate_90 is empty when no 90-day window is complete.
--   Follows the shape of the 30-day all-cause readmission measures (CMS hospital-wide readmission, HEDIS
--   PCR) adapted to SUD care: the readmission is to residential or withdrawal management care at this
--   provider only (no claims), there is no risk adjustment, no planned-readmission exclusion, and IOP
--   discharges are index stays too. Transfers are chained as in those measures.
--   Grain: month (the default), quarter, half (January-June, July-December) or year buckets discharge_date by
--   calendar period (macro period_start; the column holds the period's first day); auto takes the finest at
--   which 80% of the chart's rates can be shown after suppression, as director pages ask.
-- params:
--   as_of: {type: date, default: data_through, label: As of}
--   grain: {type: choice, choices: [month, quarter, half, year, auto], default: month, label: Per}
-- page: retention
-- order: 50
-- panel:
--   title: "Readmission within {window} days of a residential or IOP discharge"
--   empty: No residential or IOP discharges match these filters.
--   n: "discharges_{window}"
--   vars: {window: 30}
-- chart:
--   kind: rate_lines
--   x: month
--   y: "readmission_rate_{window}"
--   n: "discharges_{window}"
--   color: level_of_care
--   y_label: Readmitted
--   colours: levels
-- suppress:
--   counts: [discharges_30, readmitted_30, discharges_90, readmitted_90]
--   other: [level_of_care]
--   rates:
--     readmission_rate_30: [readmitted_30, discharges_30]
--     readmission_rate_90: [readmitted_90, discharges_90]
--   totals:
--     discharges_30: [discharges_90, ~window_30_not_90]

with

-- discharge_readmissions: residential and IOP discharges with is_transfer (a residential or withdrawal
-- management admission of the client 0-1 days after, at any site) and days_to_readmission (to the first such
-- admission 2-90 days after)
per_discharge as (
    select
        level_of_care,
        discharge_date,
        is_transfer,
        coalesce(days_to_readmission <= 30, false) as readmitted_30,
        days_to_readmission is not null as readmitted_90
    from filtered(discharge_readmissions, $filters, tracks := $tracks)
    where
        discharge_date <= $as_of
        and discharge_reason <> 'deceased'
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
),

eligible as (
    select
        level_of_care,
        discharge_date,
        discharge_date + 30 <= $as_of as complete_30,
        discharge_date + 90 <= $as_of as complete_90,
        readmitted_30,
        readmitted_90
    from per_discharge
    where not is_transfer
),

monthly as (
    select
        period_start(discharge_date, $grain) as month,
        level_of_care,
        count(*) filter (where complete_30) as discharges_30,
        count(*) filter (where complete_30 and readmitted_30) as readmitted_30,
        count(*) filter (where complete_90) as discharges_90,
        count(*) filter (where complete_90 and readmitted_90) as readmitted_90
    from eligible
    group by 1, 2
),

final as (
    select
        month,
        level_of_care,
        discharges_30,
        readmitted_30,
        readmitted_30 / discharges_30 as readmission_rate_30,
        discharges_90,
        readmitted_90,
        readmitted_90 / nullif(discharges_90, 0) as readmission_rate_90
    from monthly
    where discharges_30 > 0
)

select * from final
order by month, list_position(['residential', 'iop'], level_of_care)
