-- Episodes with the client attributes the global filters use, and the age band at admission.
create table episodes as
with

-- client_key numbers clients 1..n, so a query can count distinct clients fast (bitstring_agg)
clients_keyed as (
    select *, row_number() over (order by client_id) as client_key
    from clients
),

final as (
    select
        e.episode_id,
        e.client_id,
        e.site,
        e.level_of_care,
        e.admit_date,
        e.discharge_date,
        e.discharge_reason,
        e.payer,
        e.track,
        e.asam_level,
        c.gender,
        c.primary_substance,
        c.co_occurring_mh,
        c.living_situation,
        c.employment,
        case
            when c.birth_year is null then 'unknown'
            when year(e.admit_date) - c.birth_year < 18 then 'under 18'
            when year(e.admit_date) - c.birth_year <= 25 then '18-25'
            when year(e.admit_date) - c.birth_year <= 34 then '26-34'
            when year(e.admit_date) - c.birth_year <= 44 then '35-44'
            when year(e.admit_date) - c.birth_year <= 54 then '45-54'
            when year(e.admit_date) - c.birth_year <= 64 then '55-64'
            else '65+'
        end as age_band,
        c.client_key
    from enrollments as e
    inner join clients_keyed as c on e.client_id = c.client_id
)

select * from final
order by admit_date, episode_id;

-- The filter values offered in the sidebar, one row per filter and value.
create table filter_options as
select 'site' as filter, site as value from episodes where site is not null group by all
union all select 'payer', payer from episodes where payer is not null group by all
union all select 'gender', gender from episodes where gender is not null group by all
union all select 'age_band', age_band from episodes group by all
union all select 'primary_substance', primary_substance from episodes where primary_substance is not null group by all
union all select 'living_situation', living_situation from episodes where living_situation is not null group by all
union all select 'employment', employment from episodes where employment is not null group by all
union all select 'track', track from episodes where track is not null group by all
union all select 'level_of_care', level_of_care from episodes group by all
order by 1, 2;

-- Episodes matching the global filters; a null argument means "all". Every catalog query filters through this.
create macro filtered_episodes(
    sites := null, payers := null, genders := null, age_bands := null, substances := null,
    co_occurring := null, living := null, employments := null, tracks := null
) as table
select *
from episodes
where (sites is null or list_contains(sites, site))
    and (payers is null or list_contains(payers, payer))
    and (genders is null or list_contains(genders, gender))
    and (age_bands is null or list_contains(age_bands, age_band))
    and (substances is null or list_contains(substances, primary_substance))
    and (co_occurring is null or co_occurring_mh = co_occurring)
    and (living is null or list_contains(living, living_situation))
    and (employments is null or list_contains(employments, employment))
    and (tracks is null or list_contains(tracks, track));

-- Wilson score 95% interval for x successes out of n.
create macro wilson_low(x, n) as
    case when n > 0 and x = 0 then 0.0 when n > 0 then
        ((x / n) + 1.959963984540054 ** 2 / (2 * n)
         - 1.959963984540054 * sqrt((x / n) * (1 - x / n) / n + 1.959963984540054 ** 2 / (4 * n * n)))
        / (1 + 1.959963984540054 ** 2 / n)
    end;

create macro wilson_high(x, n) as
    case when n > 0 and x = n then 1.0 when n > 0 then
        ((x / n) + 1.959963984540054 ** 2 / (2 * n)
         + 1.959963984540054 * sqrt((x / n) * (1 - x / n) / n + 1.959963984540054 ** 2 / (4 * n * n)))
        / (1 + 1.959963984540054 ** 2 / n)
    end;
