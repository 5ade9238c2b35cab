--[[
  darktable_mock.lua - runs host-examples/photo-managers/editone.lua outside
  darktable, against a stand-in for the documented darktable Lua API
  (only the calls editone.lua uses), and clicks its button.

  usage: lua darktable_mock.lua EDITONE_LUA TMP_DIR EDITONE PRESET STEPS IMAGE...

  Each IMAGE is a file path; it is passed as a types.dt_lua_image_t with
  .path (its folder) and .filename. Prints one line per event:
    REGISTERED <label>          the button registered with gui.libs.image
    IMPORTED <file>             darktable.database.import(<file>)
    GROUPED <file> WITH <file>  image:group_with(other)
    PRINT <message>             darktable.print / print_error
  and exits 0 when the script loaded, registered its button and shortcut,
  and the click ran to the end.
]]

local script, tmp_dir, editone, preset, steps = arg[1], arg[2], arg[3], arg[4], tonumber(arg[5])
local image_files = {}
for i = 6, #arg do
  image_files[#image_files + 1] = arg[i]
end
if not (script and tmp_dir and editone and preset and steps and #image_files > 0) then
  io.stderr:write("usage: lua darktable_mock.lua EDITONE_LUA TMP_DIR EDITONE PRESET STEPS IMAGE...\n")
  os.exit(2)
end

local function say(...)
  io.stdout:write(table.concat({ ... }, " "), "\n")
  io.stdout:flush()
end

local registered = { prefs = {}, actions = {}, events = {} }
local values = { command = editone, preset = preset, steps = steps }

local function new_image(file)
  local folder, name = string.match(file, "^(.*)/([^/]+)$")
  local image = { path = folder, filename = name }
  function image:group_with(other)
    say("GROUPED", self.path .. "/" .. self.filename, "WITH", other.path .. "/" .. other.filename)
  end
  return image
end

local dt = {
  configuration = {
    api_version_major = 9, api_version_minor = 1, api_version_patch = 0,
    running_os = "linux", tmp_dir = tmp_dir, has_gui = true,
  },
  preferences = {
    register = function(script_name, name, pref_type, label, tooltip, default)
      assert(type(script_name) == "string" and type(name) == "string", "register: script and name are strings")
      local known = { enum = 1, directory = 1, file = 1, string = 1, bool = 1, integer = 1, float = 1, lua = 1 }
      assert(known[pref_type], "register: unknown lua_pref_type " .. tostring(pref_type))
      assert(type(label) == "string" and type(tooltip) == "string", "register: label and tooltip are strings")
      registered.prefs[script_name .. "/" .. name] = pref_type
    end,
    read = function(script_name, name, pref_type)
      local t = registered.prefs[script_name .. "/" .. name]
      assert(t, "read of an unregistered preference " .. script_name .. "/" .. name)
      assert(t == pref_type, "read of " .. name .. " as " .. pref_type .. ", registered as " .. t)
      return values[name]
    end,
  },
  gui = {
    libs = {
      image = {
        register_action = function(name, label, callback, tooltip)
          assert(type(name) == "string" and type(label) == "string", "register_action: name and label are strings")
          assert(type(callback) == "function", "register_action: callback is a function")
          assert(tooltip == nil or type(tooltip) == "string", "register_action: tooltip is a string")
          registered.actions[name] = callback
          say("REGISTERED", label)
        end,
        destroy_action = function(name)
          registered.actions[name] = nil
        end,
      },
    },
    action_images = {},
  },
  register_event = function(name, event_type, callback, ...)
    assert(type(callback) == "function", "register_event: callback is a function")
    registered.events[name .. "/" .. event_type] = callback
  end,
  destroy_event = function(name, event_type)
    registered.events[name .. "/" .. event_type] = nil
  end,
  control = {
    -- darktable returns system()'s status: 0 on success.
    execute = function(command)
      local ok, how, code = os.execute(command)
      if ok == true or ok == 0 then
        return 0
      end
      return (code or 1) * 256
    end,
  },
  database = {
    import = function(file)
      say("IMPORTED", file)
      return new_image(file)
    end,
  },
  print = function(message) say("PRINT", message) end,
  print_error = function(message) say("PRINT", message) end,
}
package.preload["darktable"] = function() return dt end

local script_data = dofile(script)
assert(type(script_data) == "table", "the script returns a table (for the script manager)")
assert(type(script_data.destroy) == "function", "the script sets script_data.destroy")

local name, callback = next(registered.actions)
assert(callback, "the script registered a button with darktable.gui.libs.image.register_action")
assert(registered.events[name .. "/shortcut"], "the script registered a shortcut")

local images = {}
for _, file in ipairs(image_files) do
  images[#images + 1] = new_image(file)
end
callback(name, images)

script_data.destroy()
assert(next(registered.actions) == nil, "destroy removes the button")
say("DONE")
