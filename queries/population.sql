-- title: Clients in view
-- summary: >
--   How many different clients the filters select; pages show nothing when it is under 11.
-- description: >
--   Distinct clients with an episode that matches the global filters and, when From or To is set, was in
--   care during that range. Pages show no results when it is under 11: the minimum population of a view.
-- definition: |
--   Episodes: filtered_episodes for the selected sites and client group (every level of care); with
--   start, episodes not discharged before start; with end, episodes admitted on or before end.
--   clients: distinct client_id of those episodes.
--   Not a measure: it guards every page, so that a narrow filter cannot show results for fewer than
--   11 people, even where each cell of a result would pass small-cell suppression.
-- area: other
-- chart: {kind: table}
-- suppress:
--   counts: [clients]

with

episodes as (
    select client_key
    from filtered(episodes, $filters, tracks := $tracks)
    where
        ($start is null or discharge_date is null or discharge_date >= $start)
        and ($end is null or admit_date <= $end)
),

-- client_key numbers the clients 1..n: the bits set in a bitstring of n bits count them, without a hash of
-- every client id
final as (
    select coalesce(bit_count(bitstring_agg(client_key)), 0) as clients
    from episodes
)

select * from final
