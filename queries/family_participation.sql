-- title: Family session participation in IOP
-- summary: >
--   Each month, the share of clients in IOP who attended at least one family session.
-- description: >
--   Share of active IOP episodes with an attended family session, per calendar month (or quarter,
--   half-year or year: grain), for the months from the month of start to the month of end (whole months,
--   by session date). An episode is active in a period when it has at least one scheduled session then.
-- definition: |
--   Sessions: attendance rows of IOP episodes at the selected sites (the episode's site), dated on or
--   after the episode's admit date, status other than program_cancelled, in calendar months from the
--   month containing start to the month containing end.
--   Denominator active_episodes: episodes with at least one such session in the month (an episode whose
--   only sessions that month were program-cancelled is not active).
--   Numerator with_family_session: of those, episodes with a session of type family and status attended
--   in the month. family_rate = with_family_session / active_episodes. With a coarser grain each episode
--   counts once per period: active in any of its months, with a family session in any of them.
--   Standard: none external; a program process measure of family involvement.
-- params:
--   grain: {type: choice, choices: [month, quarter, half, year, auto], default: month, label: Per}
-- page: engagement
-- order: 50
-- panel:
--   title: Family sessions by {grain}
--   empty: No IOP sessions match these filters.
-- chart:
--   kind: rate_lines
--   x: month
--   y: family_rate
--   n: active_episodes
--   y_label: With a family session
--   height: 320
-- suppress:
--   counts: [active_episodes, with_family_session]
--   rates:
--     family_rate: [with_family_session, active_episodes]

with

-- iop_months: one row per IOP episode and month with sessions on or after admission (scheduled: those not
-- cancelled by the program; had_family: one was an attended family session), with the episode's attributes
episode_months as (
    select period_start(month, $grain) as period, episode_key, had_family
    from filtered(iop_months, $filters, tracks := $tracks)
    where
        scheduled > 0
        and ($start is null or month >= date_trunc('month', $start::date))
        and ($end is null or month <= date_trunc('month', $end::date))
),

-- an episode active in several months of a period counts once in it (a month is one row already)
episode_periods as (
    select period, episode_key, had_family
    from episode_months
    where $grain = 'month'
    union all
    select period, episode_key, bool_or(had_family) as had_family
    from episode_months
    where $grain <> 'month'
    group by period, episode_key
),

final as (
    select
        period as month,
        count(*) as active_episodes,
        count(*) filter (where had_family) as with_family_session,
        count(*) filter (where had_family) / count(*) as family_rate
    from episode_periods
    group by period
)

select * from final
order by month
