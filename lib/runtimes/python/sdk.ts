/**
 * The Python side of a Python plugin, written into Pyodide's in-memory file system by the
 * worker (kept as TS strings so the build needs no copy step):
 *
 * - `logomesh`: the SDK plugins import (`plugin`, `expose`, `on_event`, `hook`, the context and
 *   the exceptions);
 * - `_logomesh_runtime`: the worker's dispatcher (load, invoke) and the defence-in-depth
 *   sealing of the interpreter (blocked modules, `os.system` & co.).
 *
 * Conventions (documented for plugin authors in the `logomesh` docstring):
 * - `@plugin` (or `@plugin(id="…")`) marks the class; the worker constructs it with `ctx`.
 * - `@expose` marks callable methods; `@on_event("topic.*")` event handlers (one or more
 *   patterns); `@hook("onStart")` lifecycle hooks: the host's names (`onStart`, `onStop`,
 *   `serializeState`, `deserializeState`, `checkHealth`, `onDependencyDown`, `onDependencyUp`)
 *   or their snake_case spellings (`on_start`, …). Method names alone mean nothing.
 * - Handlers receive an `Event` (`.topic`, `.data`, `.source`; also `event["topic"]`).
 * - Methods may be `async`; results must be JSON-serialisable.
 */

export const SDK_DIR = '/lib/logomesh';
export const PLUGIN_DIR = '/plugin';
export const RUNTIME_MODULE = '_logomesh_runtime';

export const LOGOMESH_PY = String.raw`"""LogoMesh plugin SDK for Python.

    from logomesh import plugin, expose, on_event, hook

    @plugin
    class DataVisualizer:
        def __init__(self, ctx):
            self.ctx = ctx

        @expose
        def histogram(self, values, bins=10):
            ...

        @on_event("data.*")
        async def changed(self, event):          # event.topic, event.data, event.source
            await self.ctx.emit("chart.ready", {"topic": event.topic})

        @hook("onStart")                          # or "on_start"
        async def start(self):
            self.ctx.log.info("started")

ctx: log(level, message) / log.debug|info|warn|error(message); emit(topic, data);
await call(plugin_id, method, *args); await fs.read_file(path, encoding="utf8")
(encoding=None: bytes), write_file, append_file, readdir, stat, mkdir, rm;
await net.fetch(url, method=, headers=, body=); await services.call(operation, args).
A denied or failed host request raises HostError (PermissionDenied for permission
denials, LimitExceeded for limits) with .name, .code and .message.
"""

import base64 as _base64
import json as _json

__all__ = [
    "plugin", "expose", "on_event", "hook", "Event", "Context",
    "HostError", "PermissionDenied", "LimitExceeded",
]

HOOKS = {
    "onStart": "onStart", "on_start": "onStart",
    "onStop": "onStop", "on_stop": "onStop",
    "serializeState": "serializeState", "serialize_state": "serializeState",
    "deserializeState": "deserializeState", "deserialize_state": "deserializeState",
    "checkHealth": "checkHealth", "check_health": "checkHealth",
    "onDependencyDown": "onDependencyDown", "on_dependency_down": "onDependencyDown",
    "onDependencyUp": "onDependencyUp", "on_dependency_up": "onDependencyUp",
}


class HostError(Exception):
    """A host request failed: .name is the host's error name, .code its code (or None)."""

    def __init__(self, message, name="Error", code=None):
        super().__init__(message)
        self.message = message
        self.name = name
        self.code = code


class PermissionDenied(HostError):
    """The plugin lacks the permission for a host request (PermissionDeniedError)."""


class LimitExceeded(HostError):
    """A limit was reached (requests per invocation, payload size, host rate)."""


def _host_error(error):
    error = error if isinstance(error, dict) else {}
    name = str(error.get("name") or "Error")
    message = str(error.get("message") or name)
    code = error.get("code")
    if name == "PermissionDeniedError":
        cls = PermissionDenied
    elif name == "ResourceLimitError":
        cls = LimitExceeded
    else:
        cls = HostError
    return cls(message, name, code)


def plugin(cls=None, *, id=None):
    """Marks the plugin class (one per entry module); optionally declares its id."""

    def mark(c):
        if not isinstance(c, type):
            raise TypeError("@plugin decorates a class")
        c.__logomesh_plugin__ = True
        c.__logomesh_id__ = id
        return c

    return mark(cls) if cls is not None else mark


def expose(fn=None):
    """Marks a method callable by the host and other plugins."""

    def mark(f):
        f.__logomesh_expose__ = True
        return f

    return mark(fn) if fn is not None else mark


def on_event(*patterns):
    """Marks an event handler for topic patterns ("*" one segment, trailing "**" any)."""
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise TypeError("@on_event needs one or more topic patterns")

    def mark(f):
        f.__logomesh_events__ = list(getattr(f, "__logomesh_events__", [])) + list(patterns)
        return f

    return mark


def hook(name):
    """Marks a lifecycle hook: onStart, onStop, serializeState, deserializeState, checkHealth,
    onDependencyDown, onDependencyUp (or on_start, on_stop, ...)."""
    if name not in HOOKS:
        raise ValueError(f"unknown hook {name!r}; one of: {', '.join(sorted(set(HOOKS.values())))}")

    def mark(f):
        f.__logomesh_hook__ = HOOKS[name]
        return f

    return mark


class Event:
    """An event delivered to an @on_event handler."""

    __slots__ = ("topic", "data", "source")

    def __init__(self, topic, data, source):
        self.topic = topic
        self.data = data
        self.source = source

    def __getitem__(self, key):
        if key in Event.__slots__:
            return getattr(self, key)
        raise KeyError(key)

    def __repr__(self):
        return f"Event(topic={self.topic!r}, source={self.source!r})"


class _Done:
    """What fire-and-forget operations return: awaiting it is optional."""

    __slots__ = ()

    def __await__(self):
        return iter(())


_DONE = _Done()


class _Bridge:
    request = None
    post = None


_bridge = _Bridge()


def _encode(request):
    try:
        return _json.dumps(request, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{request.get('op')}: the request is not JSON-serialisable: {e}") from None


async def _request(request):
    answer = _json.loads(await _bridge.request(_encode(request)))
    if answer.get("ok"):
        return answer.get("value")
    raise _host_error(answer.get("error"))


def _post(request):
    _bridge.post(_encode(request))
    return _DONE


def _data(data):
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _base64.b64encode(bytes(data)).decode("ascii"), "base64"
    return str(data), "utf8"


class _Log:
    def __call__(self, level, message, fields=None):
        if level == "warning":
            level = "warn"
        request = {"op": "log", "level": level, "message": str(message)}
        if fields is not None:
            request["fields"] = fields
        return _post(request)

    def debug(self, message, fields=None):
        return self("debug", message, fields)

    def info(self, message, fields=None):
        return self("info", message, fields)

    def warn(self, message, fields=None):
        return self("warn", message, fields)

    warning = warn

    def error(self, message, fields=None):
        return self("error", message, fields)


class _Fs:
    async def read_file(self, path, encoding="utf8"):
        """Text (encoding="utf8"), base64 text (encoding="base64") or bytes (encoding=None)."""
        value = await _request({"op": "fs.readFile", "path": path, "encoding": encoding or "base64"})
        return _base64.b64decode(value) if encoding is None else value

    async def write_file(self, path, data, encoding=None):
        text, enc = _data(data)
        return await _request({"op": "fs.writeFile", "path": path, "data": text, "encoding": encoding or enc})

    async def append_file(self, path, data, encoding=None):
        text, enc = _data(data)
        return await _request({"op": "fs.appendFile", "path": path, "data": text, "encoding": encoding or enc})

    async def readdir(self, path):
        return await _request({"op": "fs.readdir", "path": path})

    async def stat(self, path):
        return await _request({"op": "fs.stat", "path": path})

    async def mkdir(self, path, recursive=None):
        request = {"op": "fs.mkdir", "path": path}
        if recursive is not None:
            request["recursive"] = bool(recursive)
        return await _request(request)

    async def rm(self, path, recursive=None):
        request = {"op": "fs.rm", "path": path}
        if recursive is not None:
            request["recursive"] = bool(recursive)
        return await _request(request)


class _Net:
    async def fetch(self, url, method=None, headers=None, body=None, response_encoding=None):
        """The host's fetch result (a dict, e.g. status, headers, body)."""
        init = {}
        if method is not None:
            init["method"] = method
        if headers is not None:
            init["headers"] = dict(headers)
        if body is not None:
            init["body"], encoding = _data(body)
            if encoding != "utf8":
                init["bodyEncoding"] = encoding
        if response_encoding is not None:
            init["responseEncoding"] = response_encoding
        request = {"op": "net.fetch", "url": url}
        if init:
            request["init"] = init
        return await _request(request)


class _Services:
    async def call(self, operation, args=None):
        request = {"op": "services.call", "operation": operation}
        if args is not None:
            request["args"] = args
        return await _request(request)


class Context:
    """What the plugin class is constructed with."""

    def __init__(self, plugin_id):
        self.plugin_id = plugin_id
        self.log = _Log()
        self.fs = _Fs()
        self.net = _Net()
        self.services = _Services()

    def emit(self, topic, data=None):
        """Publishes an event (fire-and-forget; await is optional)."""
        request = {"op": "emit", "topic": topic}
        if data is not None:
            request["data"] = data
        return _post(request)

    async def call(self, plugin_id, method, *args):
        """Calls an exposed method of another plugin."""
        return await _request({"op": "call", "pluginId": plugin_id, "method": method, "args": list(args)})
`;

export const RUNTIME_PY = String.raw`"""The worker's side of a Python plugin: loads it, dispatches invocations, seals the interpreter."""

import asyncio
import importlib
import inspect
import json
import os
import sys
import traceback

import logomesh

_state = {"instance": None, "exposed": {}, "handlers": {}, "hooks": {}}

BLOCKED = (
    "js", "pyodide_js", "ctypes", "_ctypes", "socket", "_socket", "select", "ssl", "_ssl",
    "subprocess", "_posixsubprocess", "micropip", "pyodide.http", "pyodide.code", "pyodide._run_js",
    "pyodide.ffi.wrappers", "pyodide.console", "pyodide._package_loader", "multiprocessing",
    "_multiprocessing", "webbrowser", "pty", "resource",
)


def _blocked(name):
    return any(name == b or name.startswith(b + ".") for b in BLOCKED)


class _Blocker:
    """A meta-path finder refusing the modules that reach JS, the network or processes."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if _blocked(name):
            raise ImportError(f"module {name!r} is not available to LogoMesh plugins", name=name)
        return None

    @staticmethod
    def invalidate_caches():
        pass


def _denied(name):
    def denied(*args, **kwargs):
        raise PermissionError(f"os.{name}() is not available to LogoMesh plugins")

    denied.__name__ = name
    return denied


PROCESS_FUNCTIONS = (
    "system", "popen", "fork", "forkpty", "vfork", "posix_spawn", "posix_spawnp", "kill", "killpg",
    "execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe",
    "spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe",
)


def seal():
    """Defence in depth; the realm the interpreter runs in is the wall (see worker.ts)."""
    from _pyodide import _importhook

    for name in ("js", "pyodide_js"):
        _importhook.jsfinder.jsproxies.pop(name, None)
    for name in list(sys.modules):
        if _blocked(name):
            del sys.modules[name]
    import pyodide

    for attr in ("http", "code", "_run_js", "console", "_package_loader"):
        pyodide.__dict__.pop(attr, None)
    if _Blocker not in sys.meta_path:
        sys.meta_path.insert(0, _Blocker)
    import posix

    for name in PROCESS_FUNCTIONS:
        setattr(os, name, _denied(name))
        if hasattr(posix, name):
            setattr(posix, name, _denied(name))


def install(request, post):
    logomesh._bridge.request = request
    logomesh._bridge.post = post


def _error(e):
    name = type(e).__name__
    stack = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return "error\n" + json.dumps({"name": name, "message": str(e) or name, "stack": stack})


def _outcome(e):
    if isinstance(e, MemoryError):
        return "limit\nmemory"
    if isinstance(e, KeyboardInterrupt):
        return "limit\ninterrupted"
    return _error(e)


# json.dumps with options builds a new JSONEncoder on every call: one, made once.
_dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode
# json.loads adds two regex matches and several Python calls to the C scanner (~1 µs here):
# the scanner is called directly, and text it does not take whole goes to json.loads (its errors).
_scan = json.decoder.JSONDecoder().scan_once


def _loads(text):
    try:
        value, end = _scan(text, 0)
        if end == len(text):
            return value
    except Exception:
        pass
    return json.loads(text)


def _result(value, what, suffix=""):
    if value is None:
        return "none\n"
    try:
        text = _dumps(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"the result of {what}{suffix} is not JSON-serialisable: {e}") from None
    return "ok\n" + text


def load(plugin_id, entry_point, files_json):
    """Writes nothing (the worker wrote the files); imports the entry module and builds the plugin."""
    try:
        if "/plugin" not in sys.path:
            sys.path.insert(0, "/plugin")
        module_name = entry_point[:-3].replace("/", ".")
        if module_name.startswith("./"):
            module_name = module_name[2:]
        importlib.invalidate_caches()
        module = importlib.import_module(module_name)
        classes = [
            c for c in vars(module).values()
            if isinstance(c, type) and c.__dict__.get("__logomesh_plugin__") and c.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise TypeError(f"the entry point {entry_point} must define exactly one @plugin class (found {len(classes)})")
        cls = classes[0]
        exposed, handlers, hooks = {}, [], {}
        for name in dir(cls):
            if name.startswith("__"):
                continue
            fn = getattr(cls, name, None)
            if not callable(fn):
                continue
            if getattr(fn, "__logomesh_expose__", False):
                # True for a plain method: invoke() calls it without an asyncio task.
                exposed[name] = not inspect.iscoroutinefunction(fn)
            for pattern in getattr(fn, "__logomesh_events__", ()):
                handlers.append({"pattern": pattern, "method": name})
            hook_name = getattr(fn, "__logomesh_hook__", None)
            if hook_name:
                if hook_name in hooks:
                    raise TypeError(f"hook {hook_name} is declared twice ({hooks[hook_name]}, {name})")
                hooks[hook_name] = name
        instance = cls(logomesh.Context(plugin_id))
        _state.update(instance=instance, exposed=exposed, handlers={h["method"] for h in handlers}, hooks=hooks)
        description = {"exposed": sorted(exposed), "handlers": handlers, "hooks": sorted(hooks)}
        declared = cls.__dict__.get("__logomesh_id__")
        if declared:
            description["declaredId"] = str(declared)
        return "ok\n" + json.dumps(description)
    except BaseException as e:
        return _outcome(e)


async def _call(fn, *args):
    value = fn(*args)
    if inspect.isawaitable(value):
        value = await value
    return value


async def _run(inv):
    try:
        instance = _state["instance"]
        if instance is None:
            raise RuntimeError("no plugin is loaded")
        kind = inv.get("type")
        if kind == "call":
            method = inv["method"]
            if method not in _state["exposed"]:
                raise AttributeError(f"method {method!r} is not exposed")
            value = getattr(instance, method)(*inv.get("args", []))
            if inspect.isawaitable(value):
                value = await value
            return _result(value, f"{method}()")
        if kind == "event":
            event = logomesh.Event(inv["topic"], inv.get("data"), inv.get("source"))
            for method in inv.get("methods", []):
                if method not in _state["handlers"]:
                    raise AttributeError(f"method {method!r} is not an event handler")
                await _call(getattr(instance, method), event)
            return "none\n"
        if kind == "hook":
            method = _state["hooks"].get(inv["hook"])
            if method is None:
                return "none\n"
            args = (inv["arg"],) if "arg" in inv else ()
            return _result(await _call(getattr(instance, method), *args), inv["hook"])
        raise ValueError(f"unknown invocation type {kind!r}")
    except BaseException as e:
        return _outcome(e)


async def _awaited(value, what, suffix=""):
    try:
        return _result(await value, what, suffix)
    except BaseException as e:
        return _outcome(e)


def _start(coro):
    task = asyncio.Task(coro, loop=asyncio.get_event_loop(), eager_start=True)
    return task.result() if task.done() else task


# Results that are surely not awaitable: checked before inspect.isawaitable, which costs more.
_PLAIN = frozenset((str, int, float, bool, type(None), list, dict, tuple))


def invoke(text):
    """Runs an invocation: its answer (a str) when it finished without waiting, else its task.

    The text is a call written positionally (the method's name, a newline, the JSON text of its
    arguments: the hot path, no JSON object to parse) or the JSON text of any invocation.
    A plain (non-async) exposed method is called directly: no asyncio task, no event-loop
    turn (asyncio.current_task() is None in it; the loop is Pyodide's, always running). Anything
    else runs as a task started eagerly (it runs to its first real await inside this call): an
    async method that never waits is answered here too; one that waits (host requests, sleep)
    goes on as an ordinary asyncio task that JS awaits (current_task, contextvars, cancellation
    as usual).
    """
    try:
        if text[:1] == "{":
            inv = json.loads(text)
            if inv.get("type") != "call":
                return _start(_run(inv))
            method = inv.get("method")
            args = inv.get("args", [])
        else:
            cut = text.find("\n")
            method = text[:cut]
            args = _loads(text[cut + 1:])
        if type(args) is not list:
            raise TypeError("the arguments of a call must be a JSON array")
        plain = _state["exposed"].get(method) if type(method) is str else None
        instance = _state["instance"]
        if plain is None or instance is None:
            # Not callable: _run raises the error the caller sees.
            return _start(_run({"type": "call", "method": method, "args": args}))
        value = getattr(instance, method)(*args)
        if plain is True and (type(value) in _PLAIN or not inspect.isawaitable(value)):
            return _result(value, method, "()")
        return _start(_awaited(value, method, "()"))
    except BaseException as e:
        return _outcome(e)
`;
