-- title: IOP attendance by admission month and week
-- summary: >
--   For clients who started IOP in each month, the share of scheduled sessions they attended in each week
--   after starting.
-- description: >
--   Attended sessions as a share of scheduled sessions for each IOP admission month and week since
--   admission (week 1 = days 0-6), for IOP episodes admitted in the start..end range (by IOP admit date).
--   Program-cancelled sessions and sessions dated before admission are left out.
-- definition: |
--   Population: IOP episodes at the selected sites admitted from start to end (inclusive).
--   Week: (session_date - admit_date) div 7 + 1 for sessions on or after the admit date; weeks
--   1..max_weeks. scheduled: sessions with status attended, no_show or client_cancelled; attended:
--   status attended; attendance_rate = attended / scheduled. Grouped by calendar month of admission.
--   A month and week with no scheduled session has no row.
--   Standard: the same definitions as engagement_by_week, split by admission cohort.
--   Grain: month (the default), quarter, half (January-June, July-December) or year buckets admit_date by
--   calendar period (macro period_start; the column holds the period's first day); auto takes the finest at
--   which 80% of the chart's rates can be shown after suppression, as director pages ask.
-- params:
--   max_weeks: {type: int, default: 12, label: Weeks since admission}
--   grain: {type: choice, choices: [month, quarter, half, year, auto], default: month, label: Per}
-- page: engagement
-- order: 10
-- panel:
--   title: Attendance by admission {grain} and week since admission
--   empty: No IOP admissions match these filters.
--   recent_months: 12
-- chart:
--   kind: rate_heatmap
--   x: week
--   y: admit_month
--   z: attendance_rate
--   n: scheduled
--   x_label: Week since admission
--   y_label: Admitted
-- suppress:
--   keys: [week]
--   counts: [scheduled, attended]
--   rates:
--     attendance_rate: [attended, scheduled]

with

-- iop_weeks: iop_episode_weeks with each IOP episode's admission date and filter attributes
weeks as (
    select period_start(admit_date, $grain) as admit_month, week, scheduled, attended
    from filtered(iop_weeks, $filters, tracks := $tracks)
    where
        week <= $max_weeks
        and scheduled > 0
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
),

final as (
    select
        admit_month,
        week,
        sum(scheduled)::bigint as scheduled,
        sum(attended)::bigint as attended,
        sum(attended) / sum(scheduled) as attendance_rate
    from weeks
    group by admit_month, week
)

select * from final
order by admit_month, week
