-- Dates and numbers in range (issue 14, item 7). Merge chains are kept one hop long from now on
-- (ll_merge points the members merged into a merged member at its survivor; ll_resolve_member
-- compresses any longer chain it meets); this compresses the chains made before, and indexes
-- merged_into so that a merge finds the members pointing at the merged one without a scan.
create index if not exists members_merged_into on members (program_id, merged_into) where merged_into is not null;

with recursive chain (program_id, member_id, live, hops) as (
  select program_id, member_id, merged_into, 1 from members where merged_into is not null
  union all
  select c.program_id, c.member_id, m.merged_into, c.hops + 1
    from chain c join members m on m.program_id = c.program_id and m.member_id = c.live
   where m.merged_into is not null and c.hops < 10000
),
final as (
  select distinct on (program_id, member_id) program_id, member_id, live
    from chain order by program_id, member_id, hops desc
)
update members m set merged_into = f.live
  from final f
 where m.program_id = f.program_id and m.member_id = f.member_id and m.merged_into is distinct from f.live;
