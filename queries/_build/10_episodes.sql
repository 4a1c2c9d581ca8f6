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

-- Distinct clients holding each client-group filter value, at each site and at every site (site null): what
-- filter_values.sql counts for a view of every site or of one site with no client group chosen (the
-- sidebar's view), counted once here instead of on every first page of a server.
create table filter_value_clients as
with

held as (
    select site, client_key, 'payer' as filter, payer as value from episodes where payer is not null
    union all
    select site, client_key, 'gender' as filter, gender as value from episodes where gender is not null
    union all
    select site, client_key, 'age_band' as filter, age_band as value from episodes where age_band is not null
    union all
    select site, client_key, 'primary_substance' as filter, primary_substance as value
    from episodes
    where primary_substance is not null
    union all
    select site, client_key, 'living_situation' as filter, living_situation as value
    from episodes
    where living_situation is not null
    union all
    select site, client_key, 'employment' as filter, employment as value from episodes where employment is not null
    union all
    select site, client_key, 'track' as filter, track as value from episodes where track is not null
),

-- each client once per site and value (a third less load time than two count(distinct) over `held`)
held_once as (
    select distinct site, client_key, filter, value
    from held
),

by_site as (
    select site, filter, value, count(*) as clients
    from held_once
    group by site, filter, value
),

every_site as (
    select cast(null as varchar) as site, filter, value, count(distinct client_key) as clients
    from held_once
    group by filter, value
),

final as (
    select * from by_site
    union all
    select * from every_site
)

select * from final
order by filter, value, site;
