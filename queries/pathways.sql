-- title: Care pathways between levels of care
-- summary: >
--   How clients move from one level of care to the next along their path through treatment.
-- description: >
--   Counts of moves from one level of care to the next along each client's path, labelled by step
--   (1. to 5.) so the flow reads left to right, for paths whose first admission falls in the start..end
--   range. A gap of more than 90 days between a discharge and the next admission starts a new path.
-- definition: |
--   Episodes: all episodes of every client admitted on or before as_of (a discharge after as_of counts as
--   open), ordered by admit_date, then discharge_date (open last), then episode_id.
--   Paths: a client's first episode starts a path; each later episode continues the path unless the
--   previous episode (in that order) was discharged more than 90 days before its admission (so a 90-day
--   gap continues, 91 days starts a new path; overlapping or open episodes always continue).
--   Step: position of the episode within its path. Index: the path's first episode, which must be at the
--   selected sites, match the other filters and be admitted from start to end.
--   transitions: consecutive pairs (step k, step k + 1) within those paths, for target steps up to 5;
--   later steps are left out. source/target read "k. level_of_care". Paths of one episode add nothing.
--   Standard: none external; pathways are built from episode dates, not from referrals (transitions).
-- params:
--   as_of: {type: date, default: data_through, label: As of}
-- page: pathways
-- order: 10
-- panel:
--   title: Moves between levels of care along each client's path
--   empty: No care paths match these filters.
--   n: transitions
-- chart: {kind: sankey, source: source, target: target, value: transitions}
-- suppress:
--   counts: [transitions]

with

known as (
    select
        client_id,
        episode_id,
        level_of_care,
        admit_date,
        case when discharge_date <= $as_of then discharge_date end as discharge_date
    from enrollments
    where
        admit_date <= $as_of
        -- as of the data-through date or later, the paths are precomputed in path_steps (below)
        and $as_of < (select data_through from load_info)
),

ordered as (
    select
        *,
        row_number() over (
            partition by client_id order by admit_date, discharge_date nulls last, episode_id
        ) as seq
    from known
),

breaks as (
    select
        *,
        seq = 1 or coalesce(admit_date - lag(discharge_date) over by_client > 90, false) as starts_path
    from ordered
    window by_client as (partition by client_id order by seq)
),

paths as (
    select
        *,
        sum(case when starts_path then 1 else 0 end) over (
            partition by client_id order by seq rows between unbounded preceding and current row
        ) as path_no
    from breaks
),

steps as (
    select *, row_number() over (partition by client_id, path_no order by seq) as step
    from paths
),

in_view as (
    select episode_id
    from filtered(episodes, $filters)
),

index_paths as (
    select s.client_id, s.path_no
    from steps as s
    inner join in_view as f on s.episode_id = f.episode_id
    where
        s.step = 1
        and ($start is null or s.admit_date >= $start)
        and ($end is null or s.admit_date <= $end)
),

links as (
    select
        cur.step || '. ' || cur.level_of_care as source,
        nxt.step || '. ' || nxt.level_of_care as target
    from steps as cur
    inner join index_paths as p on cur.client_id = p.client_id and cur.path_no = p.path_no
    inner join steps as nxt
        on cur.client_id = nxt.client_id
        and cur.path_no = nxt.path_no
        and nxt.step = cur.step + 1
    where nxt.step <= 5

    union all

    -- path_steps: these steps on all the data, each with the level of the next step and the attributes and
    -- admission date (path_start) of the path's first step
    select
        step || '. ' || level_of_care as source,
        (step + 1) || '. ' || next_level as target
    from filtered(path_steps, $filters)
    where
        $as_of >= (select data_through from load_info)
        and next_level is not null
        and step + 1 <= 5
        and ($start is null or path_start >= $start)
        and ($end is null or path_start <= $end)
),

final as (
    select source, target, count(*) as transitions
    from links
    group by source, target
)

select * from final
order by source, target
