-- Every macro the catalog queries use, in one place.

-- Rows of `tbl` matching the global filters: `tbl` is episodes, or a load-time table that carries the same
-- attribute columns (so a query filters it without a join to episodes); `f` is a query's $filters, the sites
-- and the client group, where a null member means "all". `tracks` (a query's $tracks) applies only where a
-- query passes it: a residential discharge has no IOP track.
create macro filtered(tbl, f, tracks := null) as table
select *
from query_table(tbl)
where (f['sites'] is null or list_contains(f['sites'], site))
    and (f['payers'] is null or list_contains(f['payers'], payer))
    and (f['genders'] is null or list_contains(f['genders'], gender))
    and (f['age_bands'] is null or list_contains(f['age_bands'], age_band))
    and (f['substances'] is null or list_contains(f['substances'], primary_substance))
    and (f['co_occurring'] is null or co_occurring_mh = f['co_occurring'])
    and (f['living'] is null or list_contains(f['living'], living_situation))
    and (f['employment'] is null or list_contains(f['employment'], employment))
    and (tracks is null or list_contains(tracks, track));

-- Whether a query's $filters `f` view every site or one site, with no client group chosen: the views whose
-- filter values were counted at load (filter_value_clients).
create macro one_site_or_all(f) as
    (f['sites'] is null or len(f['sites']) = 1)
    and f['payers'] is null
    and f['genders'] is null
    and f['age_bands'] is null
    and f['substances'] is null
    and f['co_occurring'] is null
    and f['living'] is null
    and f['employment'] is null;

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

-- The first day of the period of `grain` (a query's $grain: week, month, quarter, half, year) holding date d;
-- null for any other grain. Every rate-over-time query buckets its dates through this, so each grain means
-- the same calendar periods everywhere (a week starts on Monday, a half-year on 1 January or 1 July).
create macro period_start(d, grain) as
    case grain
        when 'week' then date_trunc('week', d)::date
        when 'month' then date_trunc('month', d)::date
        when 'quarter' then date_trunc('quarter', d)::date
        when 'half' then make_date(year(d), case when month(d) <= 6 then 1 else 7 end, 1)
        when 'year' then date_trunc('year', d)::date
    end;
