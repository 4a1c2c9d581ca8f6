-- title: IOP weekly dose
-- summary: >
--   For each IOP track, how often a client's week in care reached 3 attended sessions and 9 attended hours.
-- description: >
--   Share of active IOP client-weeks with at least 3 attended sessions and with at least 9 attended hours,
--   by track, for IOP episodes admitted in the start..end range (by IOP admit date). Every week from
--   admission to the week of discharge (or of as_of while enrolled) counts, including weeks with no
--   sessions.
-- definition: |
--   Population: IOP episodes at the selected sites admitted from start to end and on or before as_of.
--   Active weeks: week 1 (days 0-6 after admission) through the week containing the discharge date, or
--   the week containing as_of when the episode is open or discharged after as_of; weeks with no session
--   count as zero. Denominator client_weeks: active episode-weeks.
--   3+ sessions: at least 3 attended sessions that week. 9+ hours: attended duration_minutes sum to at
--   least 540; a week with any attended session lacking a duration meets the hours rule if and only if
--   it meets the 3-session rule. Sessions are taken whole-week from iop_episode_weeks, so a session later
--   in the discharge (or as_of) week still counts. Track: the episode's track, "unknown" when empty.
--   Standard: ASAM Criteria level 2.1 (adult IOP) minimum of 9 hours of services a week. Differences:
--   only scheduled program sessions recorded in attendance count, weeks run from the admit date rather
--   than the calendar, and partial first/last weeks are not pro-rated.
-- params:
--   as_of: {type: date, default: data_through, label: As of}
-- page: engagement
-- order: 40
-- panel:
--   title: Weekly dose by track
--   empty: No IOP episodes match these filters.
-- chart:
--   kind: rate_bars
--   x: track
--   ys: {share_3plus_sessions: 3+ sessions, share_9plus_hours: 9+ hours}
--   n: client_weeks
--   height: 320
-- suppress:
--   counts: [client_weeks, weeks_3plus_sessions, weeks_9plus_hours]
--   rates:
--     share_3plus_sessions: [weeks_3plus_sessions, client_weeks]
--     share_9plus_hours: [weeks_9plus_hours, client_weeks]

with

-- episodes discharged by as_of: their active weeks (1 to the week of the discharge) and the weeks among them
-- reaching each rule, counted at load (iop_episode_doses)
closed as (
    select
        coalesce(track, 'unknown') as track,
        active_weeks,
        weeks_3plus_sessions,
        weeks_9plus_hours
    from filtered(iop_episode_doses, $filters, tracks := $tracks)
    where
        discharge_date <= $as_of
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
),

-- episodes open at as_of (a discharge after as_of had not happened yet): active weeks 1 to the week of as_of
open_episodes as (
    select
        coalesce(track, 'unknown') as track,
        ($as_of - admit_date) // 7 + 1 as active_weeks
    from filtered(iop_episodes, $filters, tracks := $tracks)
    where
        admit_date <= $as_of
        and (discharge_date is null or discharge_date > $as_of)
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
),

-- their active weeks with sessions (iop_weeks: iop_episode_weeks with the episode's dates and attributes);
-- an active week without sessions is a client week with neither 3 sessions nor 9 hours
open_weeks as (
    select
        coalesce(track, 'unknown') as track,
        three_sessions,
        nine_hours
    from filtered(iop_weeks, $filters, tracks := $tracks)
    where
        admit_date <= $as_of
        and (discharge_date is null or discharge_date > $as_of)
        and ($start is null or admit_date >= $start)
        and ($end is null or admit_date <= $end)
        and week <= ($as_of - admit_date) // 7 + 1
),

open_qualifying as (
    select
        track,
        count(*) filter (where three_sessions) as weeks_3plus_sessions,
        count(*) filter (where nine_hours) as weeks_9plus_hours
    from open_weeks
    group by track
),

active as (
    select track, active_weeks from closed
    union all
    select track, active_weeks from open_episodes
),

reaching as (
    select track, weeks_3plus_sessions, weeks_9plus_hours from closed
    union all
    select track, weeks_3plus_sessions, weeks_9plus_hours from open_qualifying
),

client_weeks as (
    select track, sum(active_weeks)::bigint as client_weeks
    from active
    group by track
),

qualifying as (
    select
        track,
        sum(weeks_3plus_sessions)::bigint as weeks_3plus_sessions,
        sum(weeks_9plus_hours)::bigint as weeks_9plus_hours
    from reaching
    group by track
),

final as (
    select
        c.track,
        c.client_weeks,
        coalesce(q.weeks_3plus_sessions, 0) as weeks_3plus_sessions,
        coalesce(q.weeks_9plus_hours, 0) as weeks_9plus_hours,
        coalesce(q.weeks_3plus_sessions, 0) / c.client_weeks as share_3plus_sessions,
        coalesce(q.weeks_9plus_hours, 0) / c.client_weeks as share_9plus_hours
    from client_weeks as c
    left join qualifying as q on c.track = q.track
)

select * from final
order by track
