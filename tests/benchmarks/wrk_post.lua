-- POST the same JSON body on every request: `wrk ... -s wrk_post.lua URL -- BODY_FILE`.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
end
