-- zrelay: create many bookmarks of one pool in one channel program
-- (`zfs program -j <pool> - argv...`, see crates/zfs/src/real_bookmarks.rs).
--
-- argv holds 5 strings per request: the source kind ("s": a snapshot, checked
-- here; "b": a bookmark, already checked by the caller, since channel programs
-- can read neither a bookmark's guid nor whether it exists), the source, the
-- new bookmark, the new bookmark's filesystem, and "g" followed by the
-- expected guid as a signed decimal (Lua numbers are int64).
--
-- Returns {["<request number>"] = outcome}, outcome one of:
--   "ok"            created
--   "exists"        a bookmark of that name exists (the caller compares guids)
--   "nosrc"         the source snapshot does not exist
--   "mismatch:<g>"  the source snapshot's guid is <g>, not the expected one
--   "err:<errno>"   zfs.sync.bookmark failed otherwise
-- Checks run in the order of `zfs bookmark`: source, existing bookmark, guid.
local argv = (...)["argv"]
local marks = {}
local function has_mark(fs, bm)
	local set = marks[fs]
	if set == nil then
		set = {}
		if zfs.exists(fs) then
			for b in zfs.list.bookmarks(fs) do
				set[b] = true
			end
		end
		marks[fs] = set
	end
	return set[bm] == true
end
local out = {}
local n = 0
for i = 1, #argv - 4, 5 do
	n = n + 1
	local kind, src, bm, fs, want = argv[i], argv[i + 1], argv[i + 2], argv[i + 3], argv[i + 4]
	local r
	if kind == "s" and not zfs.exists(src) then
		r = "nosrc"
	elseif has_mark(fs, bm) then
		r = "exists"
	else
		local guid = nil
		if kind == "s" then
			guid = zfs.get_prop(src, "guid")
		end
		if guid ~= nil and "g" .. tostring(guid) ~= want then
			r = "mismatch:" .. tostring(guid)
		else
			local err = zfs.sync.bookmark(src, bm)
			if err == 0 then
				r = "ok"
				marks[fs][bm] = true
			elseif err == 17 then
				r = "exists"
			else
				r = "err:" .. tostring(err)
			end
		end
	end
	out[tostring(n)] = r
end
return out
