"""undo.py A.png B.png STEPS LOG: the plug-in's undo steps and its cancel,
in GIMP's own window. GIMP 2.10's procedure database cannot undo, so this
runs the real GIMP (gimp-2.10, started here with the Script-Fu server) on
the X display it is given (run it under xvfb-run) and presses Ctrl+Z in the
image window with xdotool, as a user would. Checks:
- one undo after Apply to Selection restores the image as Set Example
  left it (layers, their parasites, the image's parasites),
- a second undo restores it as it was before Set Example (one step too),
- cancelling Apply while it projects faces (GIMP's Cancel ends the plug-in
  at once; here the plug-in is killed the same way) leaves the image as it
  was and puts nothing on the undo stack.
Prints "ok   ..." or "FAIL ..." per check; the profile is $GIMP2_DIRECTORY,
whose plug-ins/editone/editone is the plug-in under test."""
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time


class ScriptFu:
    """A client of GIMP's Script-Fu server: 'G', 16-bit length, script;
    the reply is 'G', an error byte, 16-bit length, text."""

    def __init__(self, port, gimp, deadline=120):
        end = time.time() + deadline
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=600)
                return
            except OSError:
                if gimp.poll() is not None or time.time() > end:
                    raise RuntimeError("the Script-Fu server did not start")
                time.sleep(0.3)

    def read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the Script-Fu server closed the connection")
            data += chunk
        return data

    def run(self, script):
        data = script.encode()
        self.sock.sendall(b"G" + struct.pack(">H", len(data)) + data)
        _, error, n = struct.unpack(">cBH", self.read(4))
        return error == 0, self.read(n).decode(errors="replace")

    def must(self, script):
        good, text = self.run(script)
        if not good:
            raise RuntimeError(f"{script[:80]}: {text}")
        return text


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plugin_pids(plugin):
    """Processes running the plug-in binary under test."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.path.realpath(f"/proc/{entry}/exe") == plugin:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


STATE = """(let ((layers (vector->list (cadr (gimp-image-get-layers image)))))
  (list (map (lambda (l) (list (car (gimp-item-get-name l)) (cadr (gimp-item-get-parasite-list l)))) layers)
        (cadr (gimp-image-get-parasite-list image))))"""

results = []


def check(name, good, detail=""):
    results.append(good)
    print(f"{'ok  ' if good else 'FAIL'} {name}" + ("" if good else f"\n     | {detail}"))


def undo(sf, expected):
    """Ctrl+Z in the image window; waits for the state to become `expected`."""
    windows = subprocess.run(["xdotool", "search", "--name", r"A\.png-"], capture_output=True, text=True, timeout=30).stdout.split()
    if not windows:
        return "no image window"
    subprocess.run(["xdotool", "windowfocus", "--sync", windows[0]], timeout=30)
    subprocess.run(["xdotool", "key", "--clearmodifiers", "ctrl+z"], timeout=30)
    end, state = time.time() + 20, None
    while time.time() < end:
        state = sf.must(STATE)
        if state == expected:
            return state
        time.sleep(0.2)
    return state


def main():
    a_png, b_png, steps, log_path = sys.argv[1:5]
    plugin = os.path.realpath(os.path.join(os.environ["GIMP2_DIRECTORY"], "plug-ins", "editone", "editone"))
    port = free_port()
    with open(log_path, "w") as log:
        gimp = subprocess.Popen(["gimp-2.10", "--no-splash", "--no-data", "--no-fonts",
                                 "-b", f'(plug-in-script-fu-server 1 "127.0.0.1" {port} "")'],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            run(ScriptFu(port, gimp), plugin, a_png, b_png, steps)
        except Exception as e:  # noqa: BLE001 - every failure is reported as one
            check("the GUI session ran", False, repr(e))
        finally:
            if gimp.poll() is None:
                try:
                    ScriptFu(port, gimp, 5).run("(gimp-quit 1)")
                except Exception:  # noqa: BLE001 - killed below then
                    pass
                try:
                    gimp.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(gimp.pid, signal.SIGKILL)
                    gimp.wait()
    return 0 if results and all(results) else 1


def run(sf, plugin, a_png, b_png, steps):
    sf.must(f'(define image (car (gimp-file-load RUN-NONINTERACTIVE "{a_png}" "A.png")))')
    sf.must('(define a (car (gimp-image-get-active-layer image)))')
    sf.must('(gimp-item-set-name a "A")')
    sf.must(f'(define b (car (gimp-file-load-layer RUN-NONINTERACTIVE image "{b_png}")))')
    sf.must('(gimp-item-set-name b "B")')
    sf.must('(gimp-image-insert-layer image b 0 -1)')
    sf.must('(gimp-layer-set-offsets b 80 50)')
    sf.must('(gimp-display-new image)')
    before_example = sf.must(STATE)
    sf.must(f'(plug-in-editone-set-example RUN-NONINTERACTIVE image a 0 0 4.0 20 {steps} 0)')
    after_example = sf.must(STATE)
    sf.must(f'(plug-in-editone-apply-to-selection RUN-NONINTERACTIVE image a {steps} 0)')
    layers = sf.must('(car (gimp-image-get-layers image))')
    check("Apply adds one result layer per source layer (GUI session)", layers == "4", f"{layers} layers")

    state = undo(sf, after_example)
    check("one undo takes Apply to Selection back whole", state == after_example,
          f"after undo: {state}\n     | expected:   {after_example}")
    state = undo(sf, before_example)
    check("a second undo takes Set Example back whole", state == before_example,
          f"after undo: {state}\n     | expected:   {before_example}")

    # Cancel: B's faces are not cached (their cache went with the undone
    # Apply), so Apply spends its first seconds projecting them.
    sf.must(f'(plug-in-editone-set-example RUN-NONINTERACTIVE image a 0 0 4.0 20 {steps} 0)')
    example_again = sf.must(STATE)
    reply = {}
    call = threading.Thread(target=lambda: reply.update(
        r=sf.run('(plug-in-editone-apply-to-selection RUN-NONINTERACTIVE image a 100000 0)')))
    call.start()
    end, killed, seen = time.time() + 60, False, None
    while time.time() < end and not killed and call.is_alive():
        pids = plugin_pids(plugin)
        seen = seen or (time.time() if pids else None)
        # Cancel once the plug-in has run 5 s: model and detector loaded, B's faces under projection.
        if pids and time.time() - seen > 5:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            killed = True
        time.sleep(0.1)
    call.join(120)
    check("the long Apply was still projecting when cancelled", killed and not reply.get("r", (True,))[0], f"reply {reply}")
    state = sf.must(STATE)
    check("a cancelled Apply leaves the image as it was", state == example_again,
          f"after cancel: {state}\n     | expected:     {example_again}")
    state = undo(sf, before_example)
    check("a cancelled Apply leaves no undo step (one undo takes Set Example back)", state == before_example,
          f"after undo: {state}\n     | expected:   {before_example}")


if __name__ == "__main__":
    sys.exit(main())
