-- title: Discharge outcomes
-- summary: >
--   Of the clients discharged each month, the share who completed treatment, with the range that chance alone
--   would explain.
-- description: >
--   Discharges by recorded discharge reason, level of care and month of discharge, with the share that
--   completed treatment and the share with a positive outcome (completed, or transferred to further
--   treatment, as TEDS reports it). "other" here also holds incarcerated and deceased. Every discharged
--   episode counts, transfers included. start/end bound the discharge date.
-- definition: |
--   Population: episodes discharged on or before as_of, in the start..end discharge range, at the selected
--   sites, of every level of care; grouped by level_of_care and calendar month of discharge_date.
--   Counts by discharge_reason as recorded, mapped to the TEDS discharge (TEDS-D) reason categories:
--   completed = 1 treatment completed; left_against_advice = 2 dropped out of treatment; administrative
--   = 3 terminated by facility; transferred = 4 transferred to another treatment program or facility;
--   other = 7 other, plus 5 incarcerated and 6 death (reported here in one column).
--   positive = completed + transferred (the TEDS "completed or transferred to further treatment").
--   positive_rate = positive / discharges; completion_rate = completed / discharges.
--   Differences from TEDS: "transferred" is the reason staff recorded, not a check that the client
--   arrived anywhere (see referral_not_arrived and stepdown_rate for that), and every level of care at
--   this provider counts, not only publicly funded episodes.
--   Grain: month (the default), quarter, half (January-June, July-December) or year buckets discharge_date by
--   calendar period (macro period_start; the column holds the period's first day); auto takes the finest at
--   which 80% of the chart's rates can be shown after suppression, as director pages ask.
-- params:
--   as_of: {type: date, default: data_through, label: As of}
--   grain: {type: choice, choices: [month, quarter, half, year, auto], default: month, label: Per}
-- page: retention
-- order: 20
-- panel:
--   title: IOP completion by {grain} of discharge
--   empty: No IOP discharges match these filters.
--   rows: {level_of_care: iop}
-- chart:
--   kind: p_chart
--   x: month
--   events: completed
--   n: discharges
--   rate: completion_rate
--   benchmark: teds_iop_completion
-- suppress:
--   counts: [discharges, completed, left_against_advice, administrative, transferred, other, positive]
--   headline: [completed]
--   rates:
--     positive_rate: [positive, discharges]
--     completion_rate: [completed, discharges]
--   totals:
--     discharges: [completed, left_against_advice, administrative, transferred, other]
--     positive: [completed, transferred]

with

discharged as (
    select level_of_care, discharge_date, discharge_reason
    from filtered(episodes, $filters, tracks := $tracks)
    where
        discharge_date <= $as_of
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
),

-- counted by reason first: a few thousand groups, so each reason is compared once per group, not per row
by_reason as (
    select
        period_start(discharge_date, $grain) as month,
        level_of_care,
        discharge_reason,
        count(*) as n
    from discharged
    group by all
),

monthly as (
    select
        month,
        level_of_care,
        sum(n)::bigint as discharges,
        sum(if(discharge_reason = 'completed', n, 0))::bigint as completed,
        sum(if(discharge_reason = 'left_against_advice', n, 0))::bigint as left_against_advice,
        sum(if(discharge_reason = 'administrative', n, 0))::bigint as administrative,
        sum(if(discharge_reason = 'transferred', n, 0))::bigint as transferred,
        sum(if(discharge_reason in ('other', 'incarcerated', 'deceased'), n, 0))::bigint as other,
        sum(if(discharge_reason in ('completed', 'transferred'), n, 0))::bigint as positive
    from by_reason
    group by 1, 2
),

final as (
    select
        month,
        level_of_care,
        discharges,
        completed,
        left_against_advice,
        administrative,
        transferred,
        other,
        positive,
        positive / discharges as positive_rate,
        completed / discharges as completion_rate
    from monthly
)

select * from final
order by month, list_position(['withdrawal_management', 'residential', 'php', 'iop', 'op'], level_of_care)
