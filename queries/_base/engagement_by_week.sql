-- engagement_by_week (queries/engagement_by_week.sql) computed from the base tables alone, for the benchmark:
-- the same definition and rows, without the load-time tables (iop_weeks).

with

iop as (
    select
        e.episode_id,
        e.admit_date,
        case
            when c.birth_year is null then 'unknown'
            when year(e.admit_date) - c.birth_year < 18 then 'under 18'
            when year(e.admit_date) - c.birth_year <= 25 then '18-25'
            when year(e.admit_date) - c.birth_year <= 34 then '26-34'
            when year(e.admit_date) - c.birth_year <= 44 then '35-44'
            when year(e.admit_date) - c.birth_year <= 54 then '45-54'
            when year(e.admit_date) - c.birth_year <= 64 then '55-64'
            else '65+'
        end as age_band
    from enrollments as e
    inner join clients as c on e.client_id = c.client_id
    where
        e.level_of_care = 'iop'
        and ($start is null or e.admit_date >= $start)
        and ($end is null or e.admit_date <= $end)
        and ($sites is null or list_contains($sites, e.site))
        and ($payers is null or list_contains($payers, e.payer))
        and ($tracks is null or list_contains($tracks, e.track))
        and ($genders is null or list_contains($genders, c.gender))
        and ($substances is null or list_contains($substances, c.primary_substance))
        and ($co_occurring is null or c.co_occurring_mh = $co_occurring)
        and ($living is null or list_contains($living, c.living_situation))
        and ($employment is null or list_contains($employment, c.employment))
),

episode_weeks as (
    select
        a.episode_id,
        (a.session_date - i.admit_date) // 7 + 1 as week,
        count(*) filter (where a.status <> 'program_cancelled') as scheduled,
        count(*) filter (where a.status = 'attended') as attended
    from attendance as a
    inner join iop as i on a.episode_id = i.episode_id
    where
        ($age_bands is null or list_contains($age_bands, i.age_band))
        and a.session_date >= i.admit_date
        and (a.session_date - i.admit_date) // 7 + 1 <= $max_weeks
    group by a.episode_id, week
),

final as (
    select
        week,
        sum(scheduled)::bigint as scheduled_sessions,
        sum(attended)::bigint as attended_sessions,
        count(*) as active_episodes,
        sum(attended) / sum(scheduled) as attendance_rate
    from episode_weeks
    where scheduled > 0
    group by week
)

select * from final
order by week
