-- Small-image pushes or pulls for wrk (benchmarks/wrk_load.py writes the images and reads
-- the result). One connection per thread: each thread walks its own images, a request at a
-- time, and what a response says (an upload's Location) shapes the next request.
--
-- Environment: WRK_MODE push|pull, WRK_IMAGES a folder of <thread>.bin files, WRK_TOKEN a
-- bearer token (optional), WRK_PULL_COUNTS (pull) how many images of each thread to cycle
-- through, as "n1,n2,...".
--
-- A .bin file: per image "IMAGE <repository> <tag> <blobs>\n", then per blob
-- "BLOB <digest> <length>\n<bytes>", then "MANIFEST <length>\n<bytes>".

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local mode, token
local images = {}
local image, blob, stage, location = 1, 1, nil, nil
images_done, failures, ran_out = 0, 0, 0

local function load(path)
   local file = assert(io.open(path, "rb"))
   local data = file:read("*a")
   file:close()
   local at = 1
   local function line()
      local stop = assert(data:find("\n", at, true), "truncated image file")
      local text = data:sub(at, stop - 1)
      at = stop + 1
      return text
   end
   local function bytes(length)
      local text = data:sub(at, at + length - 1)
      at = at + length
      return text
   end
   while at <= #data do
      local repository, tag, count = line():match("^IMAGE (%S+) (%S+) (%d+)$")
      local entry = { repository = repository, tag = tag, blobs = {} }
      for _ = 1, tonumber(count) do
         local digest, length = line():match("^BLOB (%S+) (%d+)$")
         table.insert(entry.blobs, { digest = digest, data = bytes(tonumber(length)) })
      end
      entry.manifest = bytes(tonumber(line():match("^MANIFEST (%d+)$")))
      table.insert(images, entry)
   end
end

-- Each image starts with its manifest when pulling, with a blob's upload when pushing.
local function first_stage()
   return mode == "pull" and "manifest" or "open"
end

function init(args)
   mode = os.getenv("WRK_MODE")
   token = os.getenv("WRK_TOKEN")
   load(os.getenv("WRK_IMAGES") .. "/" .. id .. ".bin")
   if mode == "pull" then
      local counts = {}
      for n in os.getenv("WRK_PULL_COUNTS"):gmatch("%d+") do
         table.insert(counts, tonumber(n))
      end
      for n = #images, counts[id + 1] + 1, -1 do
         images[n] = nil
      end
   end
   stage = first_stage()
end

local function headers(extra)
   local found = { Host = wrk.headers["Host"] }
   if token and token ~= "" then
      found["Authorization"] = "Bearer " .. token
   end
   for name, value in pairs(extra or {}) do
      found[name] = value
   end
   return found
end

function request()
   local entry = images[image]
   if entry == nil then
      -- Pushes ran out of new images: wait on something cheap (counted in ran_out).
      return wrk.format("GET", "/v2/", headers())
   end
   local base = "/v2/" .. entry.repository
   if stage == "manifest" and mode == "pull" then
      return wrk.format("GET", base .. "/manifests/" .. entry.tag,
         headers({ Accept = "application/vnd.oci.image.manifest.v1+json" }))
   elseif stage == "blob" then
      return wrk.format("GET", base .. "/blobs/" .. entry.blobs[blob].digest, headers())
   elseif stage == "open" then
      return wrk.format("POST", base .. "/blobs/uploads/", headers())
   elseif stage == "put" then
      local separator = location:find("?", 1, true) and "&" or "?"
      return wrk.format("PUT", location .. separator .. "digest=" .. entry.blobs[blob].digest,
         headers({ ["Content-Type"] = "application/octet-stream" }), entry.blobs[blob].data)
   else
      return wrk.format("PUT", base .. "/manifests/" .. entry.tag,
         headers({ ["Content-Type"] = "application/vnd.oci.image.manifest.v1+json" }),
         entry.manifest)
   end
end

local function next_image()
   images_done = images_done + 1
   image = image + 1
   blob = 1
   if mode == "pull" and images[image] == nil then
      image = 1  -- round and round
   end
   stage = first_stage()
end

function response(status, response_headers, body)
   local entry = images[image]
   if entry == nil then
      ran_out = ran_out + 1
      return
   end
   if mode == "pull" then
      local expected = stage == "manifest" and entry.manifest or entry.blobs[blob].data
      if status ~= 200 or #body ~= #expected then
         failures = failures + 1
         return
      end
      if stage == "manifest" then
         stage = "blob"
      elseif blob < #entry.blobs then
         blob = blob + 1
      else
         next_image()
      end
   elseif stage == "open" then
      location = response_headers["Location"] or response_headers["location"]
      if status ~= 202 or location == nil then
         failures = failures + 1
         return
      end
      -- wrk sends paths: an absolute Location (docker-registry's) loses its origin.
      location = location:gsub("^https?://[^/]+", "")
      stage = "put"
   elseif stage == "put" then
      if status ~= 201 then
         failures = failures + 1
         stage = "open"
         return
      end
      blob = blob + 1
      stage = blob > #entry.blobs and "manifest" or "open"
   elseif status ~= 201 then
      failures = failures + 1
   else
      next_image()
   end
end

function done(summary, latency, requests)
   local counts = {}
   local total, failed, idle = 0, 0, 0
   for _, thread in ipairs(threads) do
      table.insert(counts, thread:get("images_done"))
      total = total + thread:get("images_done")
      failed = failed + thread:get("failures")
      idle = idle + thread:get("ran_out")
   end
   io.write(string.format(
      'WRK_RESULT {"images": %d, "failures": %d, "ran_out": %d, "seconds": %.6f, '
         .. '"requests": %d, "errors": %d, "per_thread": [%s]}\n',
      total, failed, idle, summary.duration / 1e6, summary.requests,
      summary.errors.connect + summary.errors.read + summary.errors.write
         + summary.errors.timeout + summary.errors.status,
      table.concat(counts, ",")))
end
