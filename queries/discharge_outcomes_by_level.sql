-- title: Discharge outcomes by level of care
-- summary: >
--   For each level of care, the share of discharges that completed treatment and the share that left against
--   advice.
-- description: >
--   Discharges in the start..end range by level of care and recorded discharge reason, with the share
--   that completed treatment and the share that left against advice. The same counts as
--   discharge_outcomes, over the whole range instead of by month. "other" also holds incarcerated and
--   deceased. start/end bound the discharge date.
-- definition: |
--   Population: episodes discharged on or before as_of, in the start..end discharge range, at the selected
--   sites, of every level of care; grouped by level_of_care.
--   Counts by discharge_reason as recorded, in the TEDS discharge reason groups: completed (TEDS 1),
--   left_against_advice (2, dropped out), administrative (3, terminated by facility), transferred (4),
--   other (7 other, 5 incarcerated, 6 death). completion_rate = completed / discharges;
--   left_against_advice_rate = left_against_advice / discharges.
--   Differences from TEDS: every level of care and payer at this provider counts, not only publicly
--   funded episodes; "transferred" is the reason staff recorded, not a check that the client arrived.
-- params:
--   as_of: {type: date, default: data_through, label: As of}
-- page: retention
-- order: 30
-- panel:
--   title: Completed or left against advice
--   empty: No discharges match these filters.
-- chart:
--   kind: rate_bars
--   x: level_of_care
--   ys: {completion_rate: Completed, left_against_advice_rate: Left against advice}
--   n: discharges
--   x_labels: levels
--   height: 320
-- suppress:
--   counts: [discharges, completed, left_against_advice, administrative, transferred, other]
--   rates:
--     completion_rate: [completed, discharges]
--     left_against_advice_rate: [left_against_advice, discharges]
--   totals:
--     discharges: [completed, left_against_advice, administrative, transferred, other]

with

discharged as (
    select level_of_care, discharge_reason
    from filtered(episodes, $filters, tracks := $tracks)
    where
        discharge_date <= $as_of
        and ($start is null or discharge_date >= $start)
        and ($end is null or discharge_date <= $end)
),

-- counted by reason first, so each reason is compared once per group, not per row (as discharge_outcomes)
by_reason as (
    select level_of_care, discharge_reason, count(*) as n
    from discharged
    group by all
),

counted as (
    select
        level_of_care,
        sum(n)::bigint as discharges,
        sum(if(discharge_reason = 'completed', n, 0))::bigint as completed,
        sum(if(discharge_reason = 'left_against_advice', n, 0))::bigint as left_against_advice,
        sum(if(discharge_reason = 'administrative', n, 0))::bigint as administrative,
        sum(if(discharge_reason = 'transferred', n, 0))::bigint as transferred,
        sum(if(discharge_reason in ('other', 'incarcerated', 'deceased'), n, 0))::bigint as other
    from by_reason
    group by level_of_care
),

final as (
    select
        level_of_care,
        discharges,
        completed,
        left_against_advice,
        administrative,
        transferred,
        other,
        completed / discharges as completion_rate,
        left_against_advice / discharges as left_against_advice_rate
    from counted
)

select * from final
order by list_position(['withdrawal_management', 'residential', 'php', 'iop', 'op'], level_of_care)
