-- title: Client-group filter values at the sites
-- description: >
--   For each client-group filter of the sidebar, the values held at the selected sites and how many distinct
--   clients hold each. The sidebar offers only these values, and groups those of 1 to 10 clients under
--   "Other"; the counts themselves are never shown.
-- definition: |
--   Episodes: episodes at the selected sites (every level of care). For each filter (payer, gender, age_band,
--   primary_substance, living_situation, employment, track) and each non-empty value of it, clients:
--   distinct client_id with an episode holding that value.
-- area: other
-- chart: {kind: table}
-- suppress:
--   counts: [clients]

with

episodes as (
    select client_key, payer, gender, age_band, primary_substance, living_situation, employment, track
    from filtered(episodes, $filters)
),

-- one row per episode and filter
values_held as (
    unpivot episodes
    on payer, gender, age_band, primary_substance, living_situation, employment, track
    into name filter value value
),

final as (
    select filter, value, count(distinct client_key) as clients
    from values_held
    where value is not null
    group by filter, value
)

select * from final
order by filter, value
