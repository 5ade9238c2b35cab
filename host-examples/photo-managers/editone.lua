--[[
  editone.lua - darktable: apply an editone preset to the selected images

  Adds a button "editone: apply preset" to the lighttable's "actions on
  selection" module ("selected image[s]" before darktable 4.0), and a
  shortcut of the same name (unbound until you bind it). For each selected
  PNG or JPEG image it runs

    editone invert TMP/NAME_editone.EXT --out TMP/inv [--steps N]
    editone apply --preset PRESET --inverted TMP/inv --out-dir FOLDER --format png|jpg

  (TMP/NAME_editone.EXT a copy of the photo), so editone writes the edited
  photo next to the original as NAME_editone.EXT (NAME_editone_2.EXT, ...
  if that exists) the way it writes every file: under a hidden temporary
  name, renamed when whole, never over an existing file. Then it imports it
  and groups it with the original. Other formats (raw files, TIFF, ...) are skipped: editone
  reads PNG and JPEG only, so export those first.

  Settings (preferences > lua options):
    editone: command          the editone program (default "editone" on PATH)
    editone: preset           the preset made by 'editone edit ... --out PRESET.json'
    editone: inversion steps  0 = editone's default (600 for the built-in face
                              model, about 10 s per photo on a CPU)
  editone's messages go to TMP_DIR/editone.log (darktable.configuration.tmp_dir).

  Install: copy this file to ~/.config/darktable/lua/editone.lua and add the
  line   require "editone"   to ~/.config/darktable/luarc (darktable adds
  <config dir>/lua/?.lua to package.path). It also returns the table that
  the lua-scripts "script manager" expects, so it can live under
  ~/.config/darktable/lua/contrib/ and be started from there instead.

  Linux and macOS only (the commands run through /bin/sh).

  darktable Lua API used (darktable 4.x, Lua API 9.x; register_action with
  an images argument exists since API 7, darktable 3.6), as documented at
  docs.darktable.org/lua/stable/lua.api.manual/:
    darktable.configuration.api_version_major, .running_os, .tmp_dir
    darktable.preferences.register(script, name, type, label, tooltip, default[, min, max])
    darktable.preferences.read(script, name, type)
    darktable.gui.libs.image.register_action(name, label, callback(event, images), tooltip)
    darktable.gui.libs.image.destroy_action(name)
    darktable.gui.action_images            (images for the shortcut)
    darktable.register_event(name, "shortcut", callback(event, shortcut), tooltip)
    darktable.destroy_event(name, "shortcut")
    darktable.control.execute(command) -> result of system(command), 0 = success
    darktable.database.import(filename) -> types.dt_lua_image_t
    types.dt_lua_image_t .path (folder), .filename, :group_with(image)
    darktable.print(message), darktable.print_error(message)
]]

local dt = require "darktable"

local MODULE = "editone"
local LABEL = "editone: apply preset"

local script_data = {}
script_data.metadata = {
  name = "editone",
  purpose = "apply an editone (Edit One for All) preset to the selected images",
  author = "editone project",
  help = "docs/photo-managers.md in the editone sources",
}
script_data.destroy = nil
script_data.destroy_method = nil
script_data.restart = nil
script_data.show = nil

if dt.configuration.api_version_major < 7 then
  dt.print_error("editone: needs darktable 3.6 or newer (Lua API 7 or newer)")
  return script_data
end

if dt.configuration.running_os == "windows" then
  dt.print_error("editone: this script runs its commands through /bin/sh; Windows is not supported")
  return script_data
end

-- --- preferences (preferences > lua options) --------------------------------

dt.preferences.register(MODULE, "command", "string",
  "editone: command",
  "the editone program: a name on PATH or a full path",
  "editone")
dt.preferences.register(MODULE, "preset", "file",
  "editone: preset",
  "the preset to apply, made with 'editone edit ... --out PRESET.json'",
  "")
dt.preferences.register(MODULE, "steps", "integer",
  "editone: inversion steps",
  "optimisation steps per photo; 0 = editone's default (600 for the built-in face model)",
  0, 0, 100000)

-- --- helpers -------------------------------------------------------------------

-- Quotes s for /bin/sh: 'it'\''s'.
local function sh_quote(s)
  return "'" .. string.gsub(s, "'", "'\\''") .. "'"
end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then
    f:close()
    return true
  end
  return false
end

-- "png" or "jpg" for the file names editone reads, nil for the others.
local function format_of(filename)
  local ext = string.match(filename, "%.([^./]+)$")
  ext = ext and string.lower(ext) or ""
  if ext == "png" then
    return "png"
  elseif ext == "jpg" or ext == "jpeg" then
    return "jpg"
  end
  return nil
end

-- FOLDER/STEM_editone.EXT, or STEM_editone_2.EXT, ... : a name not yet taken.
local function output_name(folder, filename, format)
  local stem = string.match(filename, "^(.*)%.[^.]*$") or filename
  local candidate = folder .. "/" .. stem .. "_editone." .. format
  local n = 2
  while file_exists(candidate) do
    candidate = folder .. "/" .. stem .. "_editone_" .. n .. "." .. format
    n = n + 1
  end
  return candidate
end

-- The shell command that edits src into dest = folder/NAME.format (see the
-- header): the photo's copy is named NAME.format, so editone names the
-- edited photo NAME.format and writes it into folder itself.
local function edit_command(editone, preset, steps, src, folder, dest, format, log)
  local e = sh_quote(editone)
  local copy = "\"$tmp\"/" .. sh_quote(string.match(dest, "[^/]+$"))
  local steps_arg = ""
  if steps and steps > 0 then
    steps_arg = " --steps " .. tostring(math.floor(steps))
  end
  return table.concat({
    "{",
    " printf '== editone.lua: %s\\n' " .. sh_quote(src) .. ";",
    " tmp=$(mktemp -d \"${TMPDIR:-/tmp}/editone-dt.XXXXXX\") || exit 1;",
    " trap 'rm -rf \"$tmp\"' EXIT;",
    " cp -- " .. sh_quote(src) .. " " .. copy .. " &&",
    " " .. e .. " invert " .. copy .. " --out \"$tmp/inv\"" .. steps_arg .. " &&",
    " " .. e .. " apply --preset " .. sh_quote(preset) ..
      " --inverted \"$tmp/inv\" --out-dir " .. sh_quote(folder) .. " --format " .. format .. ";",
    "} >>" .. sh_quote(log) .. " 2>&1",
  }, "\n")
end

-- --- the action ----------------------------------------------------------------

-- Edits each PNG/JPEG image, imports the result, counts into counts.
local function edit_all(images, editone, preset, steps, log, counts)
  local seen = {}
  for i, image in ipairs(images) do
    local src = image.path .. "/" .. image.filename
    local format = format_of(image.filename)
    if seen[src] then
      -- a duplicate (another version of the same file): one edit is enough
    elseif not format then
      counts.skipped = counts.skipped + 1
      dt.print("editone: skipped " .. image.filename .. " (editone reads PNG and JPEG only)")
    else
      seen[src] = true
      local dest = output_name(image.path, image.filename, format)
      dt.print(string.format("editone: %d/%d %s ...", i, #images, image.filename))
      local result = dt.control.execute(edit_command(editone, preset, steps, src, image.path, dest, format, log))
      if result == 0 and file_exists(dest) then
        local edited = dt.database.import(dest)
        if edited then
          edited:group_with(image)
        end
        counts.done = counts.done + 1
      else
        counts.failed = counts.failed + 1
        dt.print_error("editone: failed on " .. src .. " (status " .. tostring(result) .. "), see " .. log)
        dt.print("editone: failed on " .. image.filename .. ", see " .. log)
      end
    end
  end
end

local busy = false

local function apply_preset(images)
  if busy then
    dt.print("editone: still working on the previous images")
    return
  end
  if not images or #images == 0 then
    dt.print("editone: select one or more images first")
    return
  end

  local editone = dt.preferences.read(MODULE, "command", "string")
  local preset = dt.preferences.read(MODULE, "preset", "file")
  local steps = dt.preferences.read(MODULE, "steps", "integer")
  if editone == nil or editone == "" then
    editone = "editone"
  end
  if preset == nil or preset == "" or not file_exists(preset) then
    dt.print("editone: set an existing preset in preferences > lua options > editone: preset")
    return
  end
  local log = dt.configuration.tmp_dir .. "/editone.log"

  -- pcall: busy is reset even if a call below raises an error
  -- (pcall can be yielded across since Lua 5.2, so execute() works in it).
  busy = true
  local counts = { done = 0, failed = 0, skipped = 0 }
  local ok, err = pcall(edit_all, images, editone, preset, steps, log, counts)
  busy = false
  if not ok then
    dt.print_error("editone: " .. tostring(err))
    dt.print("editone: stopped by an error: " .. tostring(err))
  end

  local summary = string.format("editone: %d edited", counts.done)
  if counts.failed > 0 then
    summary = summary .. string.format(", %d failed (see %s)", counts.failed, log)
  end
  if counts.skipped > 0 then
    summary = summary .. string.format(", %d skipped", counts.skipped)
  end
  dt.print(summary)
end

-- --- user interface ------------------------------------------------------------

dt.gui.libs.image.register_action(
  MODULE, LABEL,
  function(event, images) apply_preset(images) end,
  "apply the editone preset set in preferences > lua options to the selected PNG/JPEG images; " ..
  "the results are imported next to them as NAME_editone.png/.jpg"
)

dt.register_event(MODULE, "shortcut",
  function(event, shortcut) apply_preset(dt.gui.action_images) end,
  LABEL
)

local function destroy()
  dt.gui.libs.image.destroy_action(MODULE)
  dt.destroy_event(MODULE, "shortcut")
end
script_data.destroy = destroy

return script_data
