-- title: IOP attendance by week since admission
-- summary: >
--   In each week after starting IOP, the share of scheduled sessions that clients attended.
-- description: >
--   For IOP episodes admitted in the start..end range, attended sessions as a share of scheduled sessions
--   in each week since admission (week 1 = days 0-6). Scheduled = attended + no-show + client-cancelled;
--   program-cancelled sessions and sessions dated before admission are left out.
-- definition: |
--   Population: episodes at level iop, admitted from start to end (inclusive), at the selected sites.
--   Week: (session_date - admit_date) div 7 + 1, for sessions on or after the admit date; weeks 1..max_weeks.
--   scheduled_sessions: sessions with status attended, no_show or client_cancelled.
--   attended_sessions: status attended. active_episodes: episodes with at least one scheduled session
--   that week. attendance_rate = attended_sessions / scheduled_sessions. A week with no scheduled
--   session has no row.
-- params:
--   max_weeks: {type: int, default: 12, label: Weeks since admission}
-- page: engagement
-- order: 20
-- panel:
--   title: Attendance by week since admission
--   empty: No IOP episodes match these filters.
-- chart:
--   kind: rate_lines
--   x: week
--   y: attendance_rate
--   n: scheduled_sessions
--   y_label: Attended
--   height: 300
-- suppress:
--   keys: [week]
--   counts: [scheduled_sessions, attended_sessions, active_episodes]
--   rates:
--     attendance_rate: [attended_sessions, scheduled_sessions]

with

-- iop_weeks: iop_episode_weeks with each IOP episode's admission date and filter attributes
weeks as (
    select week, scheduled, attended
    from filtered(iop_weeks, $filters, tracks := $tracks)
    where
        week <= $max_weeks
        and scheduled > 0
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
),

final as (
    select
        week,
        sum(scheduled)::bigint as scheduled_sessions,
        sum(attended)::bigint as attended_sessions,
        count(*) as active_episodes,
        sum(attended) / sum(scheduled) as attendance_rate
    from weeks
    group by week
)

select * from final
order by week
