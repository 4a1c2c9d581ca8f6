-- title: Weekly census by level of care
-- description: >
--   Distinct clients active at each level of care in each week (Monday to Sunday), from the week of
--   start (default: 26 weeks before as_of) to the week of end or of as_of, whichever is earlier. A client
--   is active in a week when an episode at that level overlaps it.
-- definition: |
--   Weeks: Monday week starts from the week containing start (default as_of - 182 days) to the week
--   containing the earlier of end and as_of; the last week may be partial.
--   Episodes: all episodes at the selected sites (the episode's site) admitted on or before as_of.
--   Active: admit_date <= week_start + 6 and (discharge_date is null or discharge_date >= week_start);
--   a discharge after as_of counts as still open. active_clients: distinct clients with an active
--   episode at the level that week (a client at two levels in one week counts at both).
--   Every week has a row for every level of care found among the selected episodes, zero when none.
--   Standard: a point-in-period census (any overlap with the week), not an average daily census.
-- area: overview
-- params:
--   as_of: {type: date, default: data_through, label: As of}
--   start: {type: date, label: Weeks from}
--   end: {type: date, label: Weeks to}
--   sites: filter
--   payers: filter
--   genders: filter
--   age_bands: filter
--   substances: filter
--   co_occurring: filter
--   living: filter
--   employment: filter
-- chart: {kind: line, x: week_start, y: active_clients, color: level_of_care}
-- suppress:
--   counts: [active_clients]

with

population as (
    select client_id, level_of_care, admit_date, discharge_date
    from filtered_episodes(
        sites := $sites, payers := $payers, genders := $genders, age_bands := $age_bands,
        substances := $substances, co_occurring := $co_occurring, living := $living,
        employments := $employment
    )
    where admit_date <= $as_of
),

weeks as (
    select unnest(generate_series(
        date_trunc('week', coalesce($start, $as_of - 182)),
        date_trunc('week', least(coalesce($end, $as_of), $as_of)),
        interval 7 day
    ))::date as week_start
),

levels as (
    select distinct level_of_care
    from population
),

active as (
    select w.week_start, p.level_of_care, count(distinct p.client_id) as active_clients
    from weeks as w
    inner join population as p
        on w.week_start + 6 >= p.admit_date
        and (p.discharge_date is null or w.week_start <= p.discharge_date)
    group by w.week_start, p.level_of_care
),

final as (
    select
        w.week_start,
        l.level_of_care,
        coalesce(a.active_clients, 0) as active_clients
    from weeks as w
    cross join levels as l
    left join active as a on w.week_start = a.week_start and l.level_of_care = a.level_of_care
)

select * from final
order by week_start, level_of_care
