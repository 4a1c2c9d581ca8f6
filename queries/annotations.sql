-- title: Program events
-- description: >
--   Program events from the optional annotations extract (a new service, a staffing gap) for the sites in
--   view: each site's own events and those for all sites. Charts over time draw them; this lists them.
-- definition: |
--   Rows of annotations whose site is empty (all sites) or one of the selected sites, and which overlap
--   start..end when those are set (an event without end_date lasts its start_date only).
--   Not a measure: no counts, so nothing to suppress. Labels were checked at load for identifiers.
-- area: other
-- chart: {kind: table}

with

in_view as (
    select annotation_id, start_date, end_date, site, label, category
    from annotations
    where
        (site is null or $filters['sites'] is null or list_contains($filters['sites'], site))
        and ($end is null or start_date <= $end)
        and ($start is null or coalesce(end_date, start_date) >= $start)
),

final as (
    select
        annotation_id,
        start_date,
        end_date,
        coalesce(site, '') as site,
        label,
        coalesce(category, '') as category
    from in_view
    order by start_date, annotation_id
)

select * from final
